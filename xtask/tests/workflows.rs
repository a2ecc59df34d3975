//! The CI workflows parse and agree with the one definition of supported Istio
//! versions (`ecp_harness::version::RELEASES`, `NEWEST`).

use ecp_harness::version::{NEWEST, RELEASES};
use serde_json::Value;

fn yaml(path: &str) -> Value {
    let path = format!("{}/../.github/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

fn workflow(name: &str) -> Value {
    yaml(&format!("workflows/{name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")).to_string())
        .collect()
}

/// The job's steps hand its matrix to the shared e2e action.
fn assert_runs_the_e2e_action(job: &Value) {
    let steps = job["steps"].as_array().unwrap_or_else(|| panic!("no steps: {job}"));
    let e2e = steps
        .iter()
        .find(|s| s["uses"] == "./.github/actions/e2e")
        .unwrap_or_else(|| panic!("no step uses ./.github/actions/e2e: {job}"));
    assert_eq!(e2e["with"]["istio"], "${{ matrix.istio }}");
    assert_eq!(e2e["with"]["installer"], "${{ matrix.installer }}");
    assert_eq!(job["strategy"]["fail-fast"], false, "one version failing must not cancel the rest");
}

/// Pushes to main, nightly and by hand: the newest patch of every supported minor,
/// with both installers.
#[test]
fn the_e2e_matrix_is_every_supported_minor_with_both_installers() {
    let e2e = workflow("e2e.yml");
    let job = &e2e["jobs"]["e2e"];
    let expected: Vec<String> = RELEASES.iter().map(|v| v.to_string()).collect();
    let minors: Vec<u32> = RELEASES.iter().map(|v| v.minor).collect();
    assert!(minors.windows(2).all(|w| w[0] < w[1]), "one release per minor: {minors:?}");
    assert_eq!(strings(&job["strategy"]["matrix"]["istio"]), expected, "update e2e.yml");
    assert_eq!(strings(&job["strategy"]["matrix"]["installer"]), ["istioctl", "helm"]);
    assert_eq!(job["if"], "github.event_name != 'pull_request'");
    assert_runs_the_e2e_action(job);

    let on = &e2e["on"];
    assert_eq!(strings(&on["push"]["branches"]), ["main"]);
    assert!(on["schedule"][0]["cron"].is_string(), "nightly: {on}");
}

/// Pull requests: the newest minor with both installers.
#[test]
fn pull_requests_run_the_newest_minor_with_both_installers() {
    let e2e = workflow("e2e.yml");
    let job = &e2e["jobs"]["e2e-pr"];
    assert_eq!(strings(&job["strategy"]["matrix"]["istio"]), [NEWEST.to_string()]);
    assert_eq!(strings(&job["strategy"]["matrix"]["installer"]), ["istioctl", "helm"]);
    assert_eq!(job["if"], "github.event_name == 'pull_request'");
    assert!(e2e["on"].get("pull_request").is_some());
    assert_runs_the_e2e_action(job);
}

/// Each job caches images by version, uploads the report and writes its summary.
#[test]
fn the_e2e_action_caches_images_uploads_the_report_and_writes_the_summary() {
    let action = yaml("actions/e2e/action.yml");
    let steps = action["runs"]["steps"].as_array().unwrap();
    let run = |needle: &str| {
        steps
            .iter()
            .find(|s| s["run"].as_str().is_some_and(|r| r.contains(needle)))
            .unwrap_or_else(|| panic!("no step runs `{needle}`"))
    };
    assert!(run("cargo xtask e2e --istio ${{ inputs.istio }} --installer ${{ inputs.installer }}")["run"]
        .as_str()
        .unwrap()
        .contains("--report report"));
    assert_eq!(run("GITHUB_STEP_SUMMARY")["if"], "always()");
    assert!(run("GITHUB_STEP_SUMMARY")["run"].as_str().unwrap().contains("report/summary.md"));
    let images = steps.iter().find(|s| s["id"] == "images").expect("an image cache step");
    let key = images["with"]["key"].as_str().unwrap();
    assert!(key.contains("${{ inputs.istio }}") && key.contains("node_image.rs"), "{key}");
    assert!(run("docker load")["if"].as_str().unwrap().contains("cache-hit == 'true'"));
    assert!(run("docker save")["if"].as_str().unwrap().contains("cache-hit != 'true'"));
    let upload = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact")))
        .expect("an artefact upload");
    assert_eq!(upload["if"], "always()");
    assert_eq!(upload["with"]["path"], "report");
    assert_eq!(upload["with"]["name"], "report-${{ inputs.istio }}-${{ inputs.installer }}");
    assert_eq!(run("cargo xtask down")["if"], "always()");
}

#[test]
fn the_self_test_workflow_runs_cargo_xtask_test() {
    let selftest = workflow("self-test.yml");
    let steps = selftest["jobs"]["test"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["run"] == "cargo xtask test"));
}
