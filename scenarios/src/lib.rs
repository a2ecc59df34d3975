//! Conformance scenarios: each test (one file per scenario in `tests/`) reads the
//! topology file written by `cargo xtask e2e` and checks what procedure.md says the
//! guide checks, against the running clusters. The scenario tests never start
//! clusters themselves: nextest runs each test in its own process.
//!
//! The scenario test files are built only with the `e2e` feature, which
//! `cargo xtask e2e` turns on: the project's self-tests (`cargo nextest run
//! --workspace`) do not see them at all, so they can neither pass vacuously there nor
//! fail for want of clusters. Run by hand without a topology file, they fail with a
//! message saying to run them through `cargo xtask e2e`.

pub mod pods;

use std::path::{Path, PathBuf};

use ecp_harness::topology::ClusterSpec;

// The scenario list and the topology file live in the suite, which runs the
// scenarios and writes the file; re-exported here for the scenario tests.
pub use ecp_harness::suite::scenarios::{SCENARIOS, Scenario, scenario};
pub use ecp_harness::suite::topology_file::{
    FORMAT, TOPOLOGY_ENV, TopologyFile, TopologyFileError, figures_dir_in,
};

/// The namespace of the samples.
pub const SAMPLE_NAMESPACE: &str = ecp_harness::install::SAMPLE_NAMESPACE;
/// The namespace of the external istiod (external cluster) and of the remote profile
/// and the config cluster's ingress gateway (remotes).
pub const EXTERNAL_ISTIOD: &str = ecp_harness::topology::EXTERNAL_ISTIOD_NAMESPACE;
/// The ingress gateway Service of the config cluster (in `external-istiod`).
pub const INGRESS_GATEWAY: &str = ecp_harness::install::INGRESS_GATEWAY;

/// The directory of the run's files: the topology file's (`ECP_TOPOLOGY`).
pub fn run_dir() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os(TOPOLOGY_ENV).filter(|p| !p.is_empty())?);
    path.parent().map(Path::to_path_buf)
}

/// Where scenarios write figures for the report: `<run dir>/figures`.
pub fn figures_dir() -> Option<PathBuf> {
    run_dir().map(|d| figures_dir_in(&d))
}

/// The topology for a scenario test; a test without one fails here, saying how to
/// run it, rather than passing without checking anything.
pub fn topology() -> TopologyFile {
    match TopologyFile::from_env() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// A client for `cluster`, or the test fails with the reason.
pub async fn client(t: &TopologyFile, cluster: &ClusterSpec) -> kube::Client {
    match t.client(&cluster.name).await {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_list_matches_the_test_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".rs").map(String::from))
            .collect();
        files.sort();
        let mut listed: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        listed.sort();
        assert_eq!(files, listed);
        let manifest = std::fs::read_to_string(dir.with_file_name("Cargo.toml")).unwrap();
        for s in SCENARIOS {
            assert!(
                manifest.contains(&format!("name = \"{}\"\nrequired-features = [\"e2e\"]", s.name)),
                "{} is built only with the e2e feature",
                s.name
            );
        }
        assert_eq!(scenario("multi_remote").unwrap().min_remotes, 2);
        assert!(scenario("nope").is_none());
    }
}
