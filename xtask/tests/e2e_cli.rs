//! `cargo xtask e2e` as users run it where it cannot run: it must stop within
//! seconds, say what is missing and how to provide it, and create nothing. Docker is
//! pointed at a socket that does not exist, the release URL at a closed loopback
//! port, and ECP_OFFLINE keeps every reachability check off the network.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn e2e(args: &[&str], dir: &Path, release_url: &str) -> (Output, Duration) {
    let empty_path = dir.join("bin");
    std::fs::create_dir_all(&empty_path).expect("an empty PATH directory");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("e2e")
        .args(args)
        .env_remove("RUST_LOG")
        .env("DOCKER_HOST", format!("unix://{}/no-docker.sock", dir.display()))
        .env("ECP_OFFLINE", "1")
        .env("ECP_ISTIO_RELEASE_URL", release_url)
        .env("ECP_CACHE_DIR", dir.join("cache"))
        .env("PATH", &empty_path)
        .current_dir(dir)
        .output()
        .expect("xtask runs");
    (out, started.elapsed())
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let url = format!("http://{addr}/releases");
    drop(listener);
    url
}

#[test]
fn without_docker_registry_or_release_it_fails_fast_saying_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let (out, elapsed) = e2e(&["--report", "report"], dir.path(), &url);

    assert!(!out.status.success());
    // The bound for this case: under 60 s (expect about a second).
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run on this machine"), "{stderr}");
    assert!(stderr.contains("nothing was created"), "{stderr}");
    assert!(stderr.contains("Docker is not reachable"), "{stderr}");
    assert!(stderr.contains("set DOCKER_HOST"), "how to provide it: {stderr}");
    let newest = ecp_harness::version::NEWEST;
    let release = format!("{url}/{newest}/istio-{newest}-linux-amd64.tar.gz.sha256");
    assert!(stderr.contains(&release), "the release URL is named: {stderr}");
    assert!(stderr.contains("--istioctl PATH"), "how to provide it: {stderr}");
    assert!(!stderr.contains("helm was not found"), "istioctl needs no helm: {stderr}");
    assert!(stderr.contains("metallb-native.yaml"), "{stderr}");

    // The report says why nothing ran.
    let summary = std::fs::read_to_string(
        dir.path().join(format!("report/istio-{newest}-istioctl/summary.md")),
    )
    .unwrap();
    assert!(summary.contains("FAILED") && summary.contains("preflight failed"), "{summary}");
    let junit = std::fs::read_to_string(
        dir.path().join(format!("report/istio-{newest}-istioctl/junit.xml")),
    )
    .unwrap();
    assert!(junit.contains("<error"), "{junit}");
    // Nothing was downloaded into the cache either.
    let cached = dir.path().join(format!("cache/istio/{newest}/istio-{newest}"));
    assert!(!cached.exists());
}

/// The helm backend of 1.22 needs helm and the release (its istiod-remote chart
/// exists only there); several versions are checked in one go.
#[test]
fn helm_and_the_release_are_checked_for_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let args = [
        "--installer",
        "helm",
        "--istio",
        "1.22.8,1.30.3",
        "--node-image",
        "kindest/node:v1.30.0",
        "--report",
        "report",
    ];
    let (out, elapsed) = e2e(&args, dir.path(), &url);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{url}/1.22.8/istio-1.22.8-")), "{stderr}");
    assert!(!stderr.contains("1.30.3/istio-1.30.3"), "1.30's helm charts need no release");
    assert_eq!(stderr.matches("helm was not found").count(), 1, "said once: {stderr}");
    assert!(stderr.contains("--helm PATH"), "{stderr}");
    for version in ["1.22.8", "1.30.3"] {
        let summary = dir.path().join(format!("report/istio-{version}-helm/summary.md"));
        assert!(summary.is_file(), "{}", summary.display());
    }
    let index = std::fs::read_to_string(dir.path().join("report/summary.md")).unwrap();
    assert_eq!(index.matches("FAILED").count(), 2, "{index}");
}

#[test]
fn a_given_istioctl_is_checked_instead_of_downloading() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = e2e(&["--istioctl", "/nonexistent/istioctl"], dir.path(), &closed_port_url());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("istioctl given as /nonexistent/istioctl does not exist"), "{stderr}");
    assert!(!stderr.contains("downloading"), "no release is fetched: {stderr}");
}

#[test]
fn bad_arguments_fail_before_any_check() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = e2e(&["--istio", "1.21.0"], dir.path(), &closed_port_url());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1.22.0 and later"), "{stderr}");
    assert!(!stderr.contains("preflight"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

/// A values file setting a key the procedure owns stops the run before any check:
/// the message names the file and the key, and no report or cluster is made.
#[test]
fn an_owned_key_in_a_values_file_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("vendor.yaml");
    std::fs::write(&values, "pilot:\n  env:\n    INJECTION_WEBHOOK_CONFIG_NAME: mine\n").unwrap();
    let arg = format!("external={}", values.display());
    let (out, _) = e2e(&["--values", &arg, "--report", "report"], dir.path(), &closed_port_url());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&values.display().to_string()), "{stderr}");
    assert!(stderr.contains("`pilot.env.INJECTION_WEBHOOK_CONFIG_NAME`"), "{stderr}");
    assert!(!stderr.contains("preflight"), "{stderr}");
    assert!(!dir.path().join("report").exists(), "no report was written");
}

#[test]
fn help_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["e2e", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--istio <V1,V2,...>",
        "--installer <istioctl|helm|sail>",
        "--remotes <N>",
        "--keep",
        "--reuse",
        "--scenario <NAME>",
        "--report <DIR>",
        "--istioctl <PATH>",
        "--helm <PATH>",
        "--node-image <IMAGE>",
        "--hub <HUB>",
        "--tag <TAG>",
        "--values <[ROLE=]FILE>",
        "--revision <NAME>",
        "--helm-repo <URL>",
        "--registry-mirror <REGISTRY=ENDPOINT>",
    ] {
        assert!(help.contains(option), "{option} missing:\n{help}");
    }
    assert!(help.contains("creates nothing"), "{help}");
}

#[test]
fn a_malformed_registry_mirror_is_refused_before_anything_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["e2e", "--registry-mirror", "docker.io"])
        .env("ECP_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected REGISTRY=ENDPOINT"), "{stderr}");
    assert!(!stderr.contains("preflight"), "{stderr}");
}

/// `--provider existing`: a missing topology file and a context the kubeconfig does
/// not have fail at once, naming the file, the cluster and the context; nothing is
/// contacted and no report is written.
#[test]
fn existing_clusters_with_a_bad_file_or_context_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let missing = dir.path().join("nonexistent.yaml");
    let args = ["--provider", "existing", "--topology", missing.to_str().unwrap()];
    let (out, elapsed) = e2e(&args, dir.path(), &url);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nonexistent.yaml") && stderr.contains("cannot read"), "{stderr}");

    // A kubeconfig naming an address nothing listens on: never contacted here.
    std::fs::write(
        dir.path().join("kc"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:9\"}\n\
         contexts:\n- name: real\n  context: {cluster: c, user: u}\ncurrent-context: real\n\
         users:\n- name: u\n  user: {token: placeholder}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clusters.yaml"),
        "- {role: external, name: external, kubeconfig: kc, context: real}\n\
         - {role: config, name: config, kubeconfig: kc, context: nope, network: network1}\n",
    )
    .unwrap();
    let args = ["--provider", "existing", "--topology", "clusters.yaml", "--report", "report"];
    let (out, elapsed) = e2e(&args, dir.path(), &url);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cluster config") && stderr.contains("context `nope`"), "{stderr}");
    assert!(stderr.contains("it has: real"), "says which contexts there are: {stderr}");
    assert!(!dir.path().join("report").exists(), "nothing ran: {stderr}");

    // Existing clusters hold one install at a time: a kept one would be in the next
    // version's way.
    let file = dir.path().join("clusters.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("context: nope", "context: real");
    std::fs::write(&file, text).unwrap();
    let args = ["--provider", "existing", "--topology", "clusters.yaml", "--keep", "--istio"];
    let (out, _) = e2e(&[&args[..], &["1.29.7,1.31.0"]].concat(), dir.path(), &url);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--keep with several versions"), "{stderr}");
}

/// `--meshes 2 --scenario multi_mesh` is accepted and fails fast here, as e2e does
/// without Docker or a registry: in the preflight, with the report saying so.
#[test]
fn two_meshes_with_multi_mesh_are_accepted_and_fail_fast_in_the_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    let args = ["--meshes", "2", "--scenario", "multi_mesh", "--report", "report"];
    let (out, elapsed) = e2e(&args, dir.path(), &url);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run on this machine"), "{stderr}");
    assert!(stderr.contains("Docker is not reachable"), "{stderr}");
    assert!(!stderr.contains("--meshes"), "the option itself is accepted: {stderr}");
    let newest = ecp_harness::version::NEWEST;
    let summary = std::fs::read_to_string(
        dir.path().join(format!("report/istio-{newest}-istioctl/summary.md")),
    )
    .unwrap();
    assert!(summary.contains("preflight failed"), "{summary}");
    assert!(summary.contains("## Mesh mesh2"), "one section per mesh: {summary}");

    // Without a second mesh the scenario cannot run, and e2e says why at once.
    let (out, _) = e2e(&["--scenario", "multi_mesh", "--report", "r1"], dir.path(), &url);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --meshes 2"), "{stderr}");
}
