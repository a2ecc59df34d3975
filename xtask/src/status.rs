//! `cargo xtask status`: the containers and networks of this suite's runs (by their
//! `ecp-harness.run-id` label) and, for runs `cargo xtask up` started, the
//! kubeconfig paths.

use std::collections::BTreeMap;

use ecp_harness::cluster::{CLUSTER_LABEL, RUN_ID_LABEL, docker};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    crate::print_out(&report()?)?;
    Ok(())
}

fn report() -> anyhow::Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let found = crate::runtime()?.block_on(async {
        let d = docker::connect().await?;
        docker::list_labelled(&d, RUN_ID_LABEL).await
    })?;
    if found.is_empty() {
        return Ok("no run of this suite has containers or networks\n".to_string());
    }
    let mut runs: BTreeMap<&str, (Vec<String>, Vec<&str>)> = BTreeMap::new();
    for c in &found.containers {
        let run = c.labels.get(RUN_ID_LABEL).map_or("?", String::as_str);
        let cluster = c.labels.get(CLUSTER_LABEL).map_or("?", String::as_str);
        runs.entry(run)
            .or_default()
            .0
            .push(format!("{} (cluster {cluster}): {}", c.name, c.status));
    }
    for n in &found.networks {
        let run = n.labels.get(RUN_ID_LABEL).map_or("?", String::as_str);
        runs.entry(run).or_default().1.push(&n.name);
    }
    let here = crate::runs::recorded()?;
    for (run, (containers, networks)) in runs {
        let started_here = here.iter().any(|r| r.as_str() == run);
        writeln!(
            out,
            "run {run}{}",
            if started_here { " (started from this checkout)" } else { "" }
        )?;
        for n in networks {
            writeln!(out, "  network {n}")?;
        }
        for c in containers {
            writeln!(out, "  container {c}")?;
        }
        let dir = crate::up::runs_dir().join(run);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut kubeconfigs: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "kubeconfig"))
                .collect();
            kubeconfigs.sort();
            for k in kubeconfigs {
                writeln!(out, "  kubeconfig {}", k.display())?;
            }
        }
    }
    writeln!(
        out,
        "remove with: cargo xtask down (this checkout's runs), --run-id ID (one run), --all (every run)"
    )?;
    Ok(out)
}
