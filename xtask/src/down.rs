//! `cargo xtask down`: remove every container and network a run of this suite left
//! behind, found by the `ecp-harness.run-id` label (so also after a killed run),
//! and the run directories `cargo xtask up` wrote.

use ecp_harness::cluster::{RUN_ID_LABEL, RunId, docker};

#[derive(clap::Args)]
pub struct Args {
    /// Only this run (default: every run).
    #[arg(long)]
    run_id: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(id) = &args.run_id
        && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        anyhow::bail!("--run-id `{id}`: a run id has letters, digits and dashes only");
    }
    let filter = match &args.run_id {
        Some(id) => docker::run_filter(&RunId::from_existing(id.as_str())),
        None => RUN_ID_LABEL.to_string(),
    };
    let removed = crate::runtime()?.block_on(async {
        let d = docker::connect().await?;
        docker::remove_labelled(&d, &filter).await
    })?;
    for c in &removed.containers {
        println!("removed container {} (run {})", c.name, run_of(&c.labels));
    }
    for n in &removed.networks {
        println!("removed network {} (run {})", n.name, run_of(&n.labels));
    }
    let runs_dir = crate::up::runs_dir();
    let dirs: Vec<std::path::PathBuf> = match &args.run_id {
        Some(id) => vec![runs_dir.join(id)],
        None => std::fs::read_dir(&runs_dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default(),
    };
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        std::fs::remove_dir_all(&dir)?;
        println!("removed {}", dir.display());
    }
    if removed.is_empty() {
        println!("no labelled container or network was left");
    }
    Ok(())
}

fn run_of(labels: &std::collections::HashMap<String, String>) -> &str {
    labels.get(RUN_ID_LABEL).map_or("?", String::as_str)
}
