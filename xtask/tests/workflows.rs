//! The CI workflows agree with the one definition of supported Istio versions
//! (`ecp_harness::version::RELEASES`).

use ecp_harness::cluster::kind::node_image_for;
use ecp_harness::version::RELEASES;
use serde_json::Value;

fn workflow(name: &str) -> Value {
    let path = format!("{}/../.github/workflows/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")).to_string())
        .collect()
}

/// The e2e matrix is the newest patch of every supported minor that a known kind node
/// image can run, with both installers.
#[test]
fn the_e2e_matrix_is_every_release_with_a_node_image() {
    let e2e = workflow("e2e.yml");
    let matrix = &e2e["jobs"]["e2e"]["strategy"]["matrix"];
    let expected: Vec<String> =
        RELEASES.iter().filter(|v| node_image_for(**v).is_ok()).map(|v| v.to_string()).collect();
    assert!(expected.contains(&ecp_harness::version::NEWEST.to_string()));
    assert_eq!(strings(&matrix["istio"]), expected, "update .github/workflows/e2e.yml");
    assert_eq!(strings(&matrix["installer"]), ["istioctl", "helm"]);
}

#[test]
fn the_self_test_workflow_runs_cargo_xtask_test() {
    let selftest = workflow("self-test.yml");
    let steps = selftest["jobs"]["test"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["run"] == "cargo xtask test"));
}
