//! The suite, without the binary, on control-plane-only clusters: a run whose
//! installer fails at step 1 is reported with the step, diagnostics from every
//! cluster and node logs, and leaves no cluster behind; a run whose preflight fails
//! creates nothing and says why in its report.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ecp_harness::cluster::{ApiserverOptions, ApiserverProvider, RunId, docker};
use ecp_harness::preflight::ProblemKind;
use ecp_harness::suite::{self, Requested, ScenarioRunner, SuiteError, SuiteOptions};
use ecp_harness::version::NEWEST;

/// TEST STAND-IN for istioctl: answers `version` with the suite's newest version and
/// fails every install, as a broken installer would.
fn stand_in_istioctl(dir: &Path) -> PathBuf {
    let path = dir.join("istioctl");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  version) echo {NEWEST} ;;\n  *) echo \"stand-in: $1 refused\" >&2; exit 1 ;;\nesac\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn options(report: &Path, istioctl: PathBuf) -> SuiteOptions {
    let requested = Requested {
        scenarios: vec!["control_plane_install".into()],
        report_dir: report.to_path_buf(),
        istioctl: Some(istioctl),
        ..Requested::new(vec![NEWEST.to_string()])
    };
    // Never started: the install fails before the scenarios.
    let runner = ScenarioRunner {
        cargo: "/nonexistent/cargo".into(),
        workspace: report.to_path_buf(),
        target_dir: report.join("target"),
    };
    SuiteOptions::new(requested, runner).unwrap().0
}

fn provider(run_id: &RunId) -> ApiserverProvider {
    let mut options = ApiserverOptions::named(Vec::<String>::new());
    options.run_id = Some(run_id.clone());
    ApiserverProvider::new(options)
}

async fn assert_nothing_left(run_id: &RunId) {
    let d = docker::connect().await.unwrap();
    let left = docker::list_labelled(&d, &docker::run_filter(run_id)).await.unwrap();
    assert!(left.is_empty(), "run {run_id} left {left:?}");
}

fn quiet(_: &str) {}

#[tokio::test]
async fn a_failed_install_is_reported_with_diagnostics_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let s = options(&report, stand_in_istioctl(dir.path()));
    let run_id = RunId::new();

    let err = suite::run(&s, |_| Ok(provider(&run_id)), quiet).await.unwrap_err();

    let SuiteError::Failed { failed, index } = &err else { panic!("{err}") };
    assert_eq!(failed.len(), 1, "{err}");
    assert!(index.exists());
    let version_dir = report.join(&failed[0]);
    let summary = std::fs::read_to_string(version_dir.join("summary.md")).unwrap();
    assert!(summary.contains("install failed"), "{summary}");
    assert!(summary.contains("step 1"), "names the step: {summary}");
    assert!(summary.contains("control_plane_install"), "the scenario is reported not run");
    // report.json: the clusters as observed before teardown, the platform, a failed
    // install step, and a report that verifies (it claims no profile).
    let checked = ecp_harness::conformance::verify::verify_version(&version_dir);
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    let json = checked.report.unwrap();
    assert!(json.platform.starts_with("control-plane-only"), "{}", json.platform);
    let names: Vec<&str> = json.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["config", "external"]);
    assert!(json.clusters.iter().all(|c| c.server_version.is_some()), "{:#?}", json.clusters);
    assert!(json.steps.iter().any(|s| !s.passed && s.reason.is_some()), "{:#?}", json.steps);
    assert!(json.claimed().is_empty());
    assert!(summary.contains("## Reproduce"), "{summary}");
    for cluster in ["external", "config"] {
        let d = version_dir.join("diagnostics").join(cluster);
        assert!(d.is_dir(), "diagnostics of {cluster} in {}", d.display());
    }
    let bundle = walk(&version_dir.join("diagnostics"));
    assert!(
        bundle.iter().any(|p| p.to_string_lossy().contains(run_id.as_str())),
        "the node logs are in the bundle: {bundle:?}"
    );
    assert_nothing_left(&run_id).await;
}

#[tokio::test]
async fn a_failed_preflight_creates_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let s = options(&report, dir.path().join("no-istioctl"));
    let run_id = RunId::new();

    let err = suite::run(&s, |_| Ok(provider(&run_id)), quiet).await.unwrap_err();

    let SuiteError::Preflight { problems, .. } = &err else { panic!("{err}") };
    let program = problems.iter().find(|p| p.kind == ProblemKind::Program).expect("{problems:?}");
    assert!(program.message.contains("no-istioctl"), "{program}");
    assert!(program.remedy.contains("istioctl"), "{program}");
    assert!(err.to_string().contains("nothing was created"), "{err}");
    let index = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(index.contains(&NEWEST.to_string()), "{index}");
    let summaries = walk(&report);
    let summary = summaries
        .iter()
        .find(|p| p.ends_with("summary.md") && p.parent() != Some(report.as_path()))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    assert!(summary.contains("preflight failed") && summary.contains("no-istioctl"), "{summary}");
    assert_nothing_left(&run_id).await;
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { todo.push(path) } else { out.push(path) }
        }
    }
    out
}
