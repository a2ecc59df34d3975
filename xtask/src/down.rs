//! `cargo xtask down`: remove the containers and networks of this suite's runs, found
//! by the `ecp-harness.run-id` label (so also after a killed run), and the run
//! directories `cargo xtask up` and `e2e --keep` wrote.
//!
//! Which runs: without arguments those started from this checkout ([`crate::runs`]);
//! `--run-id ID` one run; `--all` every run of the suite on the Docker daemon, other
//! checkouts' and other users' included.

use ecp_harness::cluster::{RUN_ID_LABEL, RunId, docker};

#[derive(clap::Args)]
pub struct Args {
    /// Only this run (default: the runs started from this checkout).
    #[arg(long, conflicts_with = "all")]
    run_id: Option<String>,
    /// Every run of this suite on the Docker daemon, also those other checkouts or
    /// other users started.
    #[arg(long)]
    all: bool,
}

/// What `down` removes.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// These runs (one with `--run-id`, this checkout's without arguments).
    Runs(Vec<RunId>),
    All,
}

fn scope(args: &Args) -> anyhow::Result<Scope> {
    match (&args.run_id, args.all) {
        (Some(id), _) if !crate::runs::is_run_id(id) => {
            anyhow::bail!("--run-id `{id}`: a run id has letters, digits and dashes only")
        }
        (Some(id), _) => Ok(Scope::Runs(vec![RunId::from_existing(id.as_str())])),
        (None, true) => Ok(Scope::All),
        (None, false) => Ok(Scope::Runs(crate::runs::recorded()?)),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let scope = scope(&args)?;
    if scope == Scope::Runs(Vec::new()) {
        println!(
            "no run started from this checkout is recorded ({}); `cargo xtask status` lists \
             every run on the daemon, `cargo xtask down --run-id ID` removes one, `--all` all",
            crate::runs::records_dir().display()
        );
        return Ok(());
    }
    let filters: Vec<String> = match &scope {
        Scope::All => vec![RUN_ID_LABEL.to_string()],
        Scope::Runs(runs) => runs.iter().map(docker::run_filter).collect(),
    };
    let removed = crate::runtime()?.block_on(async {
        let d = docker::connect().await?;
        let mut all = docker::Labelled::default();
        for filter in &filters {
            let removed = docker::remove_labelled(&d, filter).await?;
            all.containers.extend(removed.containers);
            all.networks.extend(removed.networks);
        }
        anyhow::Ok(all)
    })?;
    for c in &removed.containers {
        println!("removed container {} (run {})", c.name, run_of(&c.labels));
    }
    for n in &removed.networks {
        println!("removed network {} (run {})", n.name, run_of(&n.labels));
    }
    remove_run_dirs(&scope)?;
    if removed.is_empty() {
        println!("no labelled container or network was left");
    }
    Ok(())
}

/// The kubeconfig directories of the removed runs and their records in this checkout.
fn remove_run_dirs(scope: &Scope) -> anyhow::Result<()> {
    let runs_dir = crate::up::runs_dir();
    let runs: Vec<RunId> = match scope {
        Scope::Runs(runs) => runs.clone(),
        Scope::All => std::fs::read_dir(&runs_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .map(RunId::from_existing)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain(crate::runs::recorded()?)
            .collect(),
    };
    for run in runs {
        let dir = runs_dir.join(run.as_str());
        if dir.is_dir() {
            std::fs::remove_dir_all(&dir)?;
            println!("removed {}", dir.display());
        }
        crate::runs::forget(&run);
    }
    Ok(())
}

fn run_of(labels: &std::collections::HashMap<String, String>) -> &str {
    labels.get(RUN_ID_LABEL).map_or("?", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_args("down", argv)
    }

    #[test]
    fn one_run_all_runs_or_this_checkouts() {
        let one = scope(&parse(&["--run-id", "0123456789"]).unwrap()).unwrap();
        assert_eq!(one, Scope::Runs(vec![RunId::from_existing("0123456789")]));
        assert_eq!(scope(&parse(&["--all"]).unwrap()).unwrap(), Scope::All);
        assert!(matches!(scope(&parse(&[]).unwrap()).unwrap(), Scope::Runs(_)));
        assert!(parse(&["--all", "--run-id", "x"]).is_err(), "--all and --run-id conflict");
        let err = scope(&parse(&["--run-id", "../etc"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("letters, digits and dashes"), "{err}");
    }
}
