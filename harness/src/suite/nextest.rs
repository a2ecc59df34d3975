//! Running the scenarios: the topology file written beside the report, then
//! `cargo nextest run -p ecp-scenarios --features e2e --profile e2e` with
//! `ECP_TOPOLOGY` naming it, and nextest's JUnit read back.

use std::path::Path;

use super::topology_file::{FORMAT, TOPOLOGY_ENV, TopologyFile, figures_dir_in};
use super::{Prepared, Say, SuiteOptions};
use crate::cluster::Provided;
use crate::install::Plan;
use crate::report::{self, ScenarioResult};

/// Held while nextest runs: the e2e profile writes its JUnit to one fixed path, so
/// with `parallel` one version's scenarios run at a time (clusters and installs
/// still run in parallel).
static SCENARIO_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Writes the topology file and runs the selected scenarios.
pub(super) async fn run_scenarios<P, H: Provided>(
    s: &SuiteOptions,
    p: &Prepared<P>,
    plan: &Plan,
    handle: &H,
    dir: &Path,
    skip: &[&str],
    say: Say,
) -> Result<Vec<ScenarioResult>, String> {
    let io = |what: &str, path: &Path, e: std::io::Error| format!("{what} {}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let topology_file = dir.join("topology.json");
    let file = TopologyFile {
        format: FORMAT,
        run_id: handle.run().id().to_string(),
        istio: p.version,
        installer: s.installer,
        topology: plan.topology.clone(),
        external_addr: plan.options.external_addr,
        kubeconfigs: handle.clusters().into_iter().map(|c| (c.name, c.kubeconfig)).collect(),
        istioctl: Some(p.programs.istioctl.clone()).filter(|p| p.is_absolute()),
        revision: plan.options.revision().0.map(String::from),
    };
    file.write(&topology_file).map_err(|e| e.to_string())?;
    let topology_file =
        std::path::absolute(&topology_file).map_err(|e| io("resolving", &topology_file, e))?;
    // Figures of an earlier run in this report directory must not pass for this one's.
    let figures = figures_dir_in(dir);
    match std::fs::remove_dir_all(&figures) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing old figures", &figures, e));
        }
        _ => {}
    }

    let _one_at_a_time = SCENARIO_RUNS.lock().await;
    let junit = junit_path(&s.runner.workspace);
    let _ = std::fs::remove_file(&junit);
    let names: Vec<&str> = s.scenarios.iter().map(|sc| sc.name).collect();
    let args = nextest_args(&names, skip);
    say(&format!("    cargo {}", args.join(" ")));
    let status = tokio::process::Command::new(&s.runner.cargo)
        .args(&args)
        .env(TOPOLOGY_ENV, &topology_file)
        .current_dir(&s.runner.workspace)
        .status()
        .await
        .map_err(|e| format!("starting cargo nextest: {e}"))?;
    let results = report::read_junit(&junit)
        .map_err(|e| format!("nextest exited with {status} and wrote no JUnit report: {e}"))?;
    let _ = std::fs::copy(&junit, dir.join("nextest-junit.xml"));
    Ok(results)
}

/// Where the `e2e` profile's JUnit lands: nextest keeps its store in the workspace's
/// `target/nextest` (its `store.dir` default), whatever `CARGO_TARGET_DIR` says
/// (seen with cargo-nextest 0.9.143).
pub fn junit_path(workspace: &Path) -> std::path::PathBuf {
    workspace.join("target").join("nextest").join("e2e").join("junit.xml")
}

/// `cargo nextest run` of the selected scenario test binaries but the `skip` tests,
/// in the `e2e` profile (one retry, flaky results kept, JUnit written where the
/// self-tests' `ci` profile does not write).
pub fn nextest_args(scenarios: &[&str], skip: &[&str]) -> Vec<String> {
    let binaries =
        scenarios.iter().map(|name| format!("binary(={name})")).collect::<Vec<_>>().join(" | ");
    let skipped: String = skip.iter().map(|t| format!(" & !test(={t})")).collect();
    [
        "nextest",
        "run",
        "--package",
        "ecp-scenarios",
        "--features",
        "e2e",
        "--profile",
        "e2e",
        "--no-fail-fast",
        "-E",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("kind(test) & ({binaries}){skipped}")])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nextest_runs_only_the_selected_scenario_binaries() {
        assert_eq!(
            nextest_args(&["control_plane_install", "multi_remote"], &[]).join(" "),
            "nextest run --package ecp-scenarios --features e2e --profile e2e --no-fail-fast \
             -E kind(test) & (binary(=control_plane_install) | binary(=multi_remote))"
        );
        assert_eq!(
            nextest_args(&["outage"], &["external_cluster_paused"]).last().unwrap(),
            "kind(test) & (binary(=outage)) & !test(=external_cluster_paused)"
        );
    }
}
