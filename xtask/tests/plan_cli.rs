//! `cargo xtask plan` as users run it: the printed plan, the written files, and
//! one-line errors with a non-zero exit for bad input.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("plan")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("xtask runs")
}

/// Asserts a failure with exactly one line on stderr, starting `error: `, holding
/// every one of `needles`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "expected failure, got {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` missing from: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "a failed plan printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn default_plan_is_the_newest_istio_with_istioctl_one_remote_and_passthrough() {
    let out = xtask(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "Install plan: Istio {} with istioctl, 1 remote(s) (multi-network), gateway TLS \
             passthrough, external address 192.0.2.10",
            ecp_harness::version::NEWEST
        )
    );
    for step in ["1. [external]", "2. [config]", "3. [external]", "4. [external]", "5. [external]"]
    {
        assert!(text.contains(step), "{step} missing:\n{text}");
    }
    assert!(text.contains("6. [config]") && text.contains("7. [config]") && text.contains("9. ["));
    assert!(!text.contains("8. ["), "one remote has no step 8:\n{text}");
    assert!(text.contains("run istioctl install -y -f external/controlplane-gateway.yaml"));
}

#[test]
fn helm_simple_two_remotes_prints_every_step() {
    let out = xtask(&[
        "--istio",
        "1.23.6",
        "--installer",
        "helm",
        "--remotes",
        "2",
        "--gateway-tls",
        "simple",
        "--external-addr",
        "172.18.6.66",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Istio 1.23.6 with helm, 2 remote(s)"), "{text}");
    assert!(text.contains("run helm upgrade --install istiod-remote istiod-remote"), "{text}");
    assert!(text.contains("8. [remote2]"), "{text}");
    assert!(text.contains("apply external/gateway-tls-secret.yaml"), "{text}");
    assert!(!text.contains("PRIVATE KEY"));
}

#[test]
fn older_versions_are_refused_naming_the_range() {
    let out = xtask(&["--istio", "1.21.9"]);
    assert_one_line_error(&out, &["1.21.9", "1.22.0 and later", "1.22 to 1.31"]);
    assert_one_line_error(&xtask(&["--istio", "latest"]), &["`latest` is not an Istio version"]);
}

/// Release candidates and builds of the next minor plan with the newest known rules,
/// and say so before anything else.
#[test]
fn newer_and_pre_release_versions_plan_with_a_notice() {
    let out = xtask(&["--istio", "1.32.0-rc.1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("Install plan: Istio 1.32.0-rc.1 with istioctl"));
    assert_eq!(
        lines.next().unwrap(),
        "Note: Istio 1.32.0-rc.1 is newer than this suite knows; using 1.31's rules (those of \
         Istio 1.31.0)"
    );
    let rc = xtask(&["--istio", "1.31.0-rc.0", "--installer", "helm"]);
    let text = String::from_utf8(rc.stdout).unwrap();
    assert!(text.contains("--version 1.31.0-rc.0"), "{text}");
    assert!(!text.contains("Note:"), "a known minor's pre-release: {text}");
    let dev =
        xtask(&["--istio", "1.32.0-dev", "--hub", "dev.example/istio", "--tag", "1.32-dev.abc"]);
    assert!(dev.status.success(), "{}", String::from_utf8_lossy(&dev.stderr));
}

#[test]
fn an_ipv6_external_address_needs_istio_1_30() {
    let out = xtask(&["--istio", "1.29.7", "--external-addr", "fd00::66"]);
    assert_one_line_error(&out, &["1.29.7", "fd00::66", "ExternalName", "IPv4"]);
    assert!(xtask(&["--istio", "1.30.4", "--external-addr", "fd00::66"]).status.success());
}

/// Issue 7's acceptance, for each version and installer: no workload the install
/// renders sets `CLUSTER_ID` again (the chart renders it from clusterName), and 1.22
/// and 1.23 carry `defaultRevision: default`.
#[test]
fn plans_of_every_listed_version_set_no_chart_env_and_the_default_revision() {
    for version in ["1.22.8", "1.23.6", "1.24.6", "1.27.9", "1.28.10", "1.30.4", "1.31.0"] {
        for (installer, istiod, remote) in [
            ("istioctl", "external/istiod.yaml", "config/remote-config-cluster.yaml"),
            ("helm", "external/istiod-values.yaml", "config/remote-config-cluster-values.yaml"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let out_dir = dir.path().to_str().unwrap();
            let out = xtask(&["--istio", version, "--installer", installer, "--out", out_dir]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let istiod = read(dir.path(), istiod);
            assert!(istiod.contains("clusterName: remote1"), "{version} {installer}:\n{istiod}");
            assert!(!istiod.contains("CLUSTER_ID"), "{version} {installer}:\n{istiod}");
            let remote = read(dir.path(), remote);
            assert!(
                remote.contains("defaultRevision: default"),
                "{version} {installer}:\n{remote}"
            );
        }
    }
}

#[test]
fn zero_remotes_is_refused() {
    assert_one_line_error(&xtask(&["--remotes", "0"]), &["--remotes must be between 1 and"]);
}

#[test]
fn hostname_as_external_addr_is_refused() {
    let out = xtask(&["--external-addr", "istiod.example.com"]);
    assert_one_line_error(&out, &["istiod.example.com", "not an IP address", "istio/istio#45014"]);
}

#[test]
fn unwritable_out_is_refused_naming_the_directory() {
    // Tests may run as root, which writes anywhere: a path beneath a regular file is
    // unwritable for everyone.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out_dir = file.join("plan");
    let out = xtask(&["--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, &["cannot write the plan to", out_dir.to_str().unwrap()]);
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The acceptance command: every value of procedure.md is in the files.
#[test]
fn out_writes_every_file_and_plan_json() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        xtask(&["--istio", "1.30.3", "--remotes", "2", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(&format!("files to {}", dir.path().display())), "{stdout}");

    let plan: serde_json::Value = serde_json::from_str(&read(dir.path(), "plan.json")).unwrap();
    let files = plan["files"].as_array().unwrap();
    for f in files {
        let path = dir.path().join(f["path"].as_str().unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let private = f["private"].as_bool().unwrap();
        assert_eq!(mode, if private { 0o600 } else { 0o644 }, "{}", path.display());
    }
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps[0]["cluster"], "external");
    assert_eq!(steps[0]["number"], 1);

    let config = read(dir.path(), "config/remote-config-cluster.yaml");
    for v in [
        "profile: remote",
        "configCluster: true",
        "configMap: true",
        "injectionPath: /inject/cluster/remote1/net/network1",
        "remotePilotAddress:",
    ] {
        assert!(config.contains(v), "{v}:\n{config}");
    }
    let istiod = read(dir.path(), "external/istiod.yaml");
    for v in [
        "externalIstiod: true",
        "clusterName: remote1",
        "LOCAL_CLUSTER_SECRET_WATCHER: \"true\"",
        "SHARED_MESH_CONFIG: istio",
        "istio-sidecar-injector-external-istiod",
        "istio-validator-external-istiod",
        "caAddress: 192.0.2.10:15012",
        "discoveryAddress: 192.0.2.10:15012",
    ] {
        assert!(istiod.contains(v), "{v}:\n{istiod}");
    }
    let gw = read(dir.path(), "external/external-istiod-gw.yaml");
    assert_eq!(gw.matches("mode: PASSTHROUGH").count(), 2, "{gw}");
    assert!(gw.contains("number: 443"), "{gw}");
    let remote2 = read(dir.path(), "remote2/remote-config-cluster.yaml");
    assert!(remote2.contains("/inject/cluster/remote2/net/network2"), "{remote2}");
    let json = read(dir.path(), "plan.json");
    assert!(json.contains("\"topology.istio.io/controlPlaneClusters\": \"remote1\""));
    assert!(json.contains("\"secret_type\": \"remote\""));
}

#[test]
fn simple_out_writes_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&["--gateway-tls", "simple", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for key in
        ["external/tls/server.key", "external/tls/ca.key", "external/gateway-tls-secret.yaml"]
    {
        let mode = std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    assert!(read(dir.path(), "external/tls/server.key").starts_with("-----BEGIN PRIVATE KEY-----"));
    // The gateway re-encrypts to istiod verifying it against the harness CA, held as
    // `ca.crt` by the credential the DestinationRule names.
    let gw = read(dir.path(), "external/external-istiod-gw.yaml");
    assert!(gw.contains("kind: DestinationRule"), "{gw}");
    assert_eq!(gw.matches("credentialName: external-istiod-gateway-tls").count(), 4, "{gw}");
    assert!(read(dir.path(), "external/gateway-tls-secret.yaml").contains("ca.crt:"));
}

#[test]
fn overrides_are_printed_and_written_to_plan_json() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("x.yaml");
    std::fs::write(&values, "pilot:\n  resources:\n    requests:\n      cpu: 500m\n").unwrap();
    let out_dir = dir.path().join("plan");
    let external = format!("external={}", values.display());
    let out =
        xtask(&["--values", &external, "--revision", "canary", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Overrides:\n  revision: canary\n"), "{text}");
    let line = format!("  values (external): {}: pilot.resources.requests.cpu\n", values.display());
    assert!(text.contains(&line), "{text}");
    let json: serde_json::Value = serde_json::from_str(&read(&out_dir, "plan.json")).unwrap();
    let overrides = &json["options"]["overrides"];
    assert_eq!(overrides["revision"], "canary");
    assert_eq!(overrides["values"][0]["role"], "external");
    assert!(read(&out_dir, "external/istiod.yaml").contains("cpu: 500m"));
    assert!(read(&out_dir, "external/istiod.yaml").contains("revision: canary"));
}

/// A file that does not parse, or sets a key the procedure owns, is refused before
/// anything is planned or written, naming the file and the key.
#[test]
fn bad_values_files_are_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("plan");
    let owned = dir.path().join("owned.yaml");
    std::fs::write(&owned, "global:\n  multiCluster:\n    clusterName: vendor\n").unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "pilot:\n  env: [unclosed\n").unwrap();
    let owned_arg = owned.to_str().unwrap();
    let broken_arg = format!("config={}", broken.display());
    let out_arg = out_dir.to_str().unwrap();

    let out = xtask(&["--values", owned_arg, "--out", out_arg]);
    assert_one_line_error(&out, &[owned_arg, "`global.multiCluster.clusterName`"]);
    let out = xtask(&["--values", &broken_arg, "--out", out_arg]);
    assert_one_line_error(&out, &[broken.to_str().unwrap(), "not valid YAML", "line 2"]);
    let missing = dir.path().join("missing.yaml");
    let out = xtask(&["--values", missing.to_str().unwrap(), "--out", out_arg]);
    assert_one_line_error(&out, &["reading values file", missing.to_str().unwrap()]);
    let out = xtask(&["--revision", "Canary", "--out", out_arg]);
    assert_one_line_error(&out, &["--revision `Canary`", "DNS-1123"]);
    let out = xtask(&["--helm-repo", "https://charts.example", "--out", out_arg]);
    assert_one_line_error(&out, &["--helm-repo", "istioctl uses no chart repository"]);
    assert!(!out_dir.exists(), "nothing was written");
}

/// `--meshes 2 --out DIR`: both meshes' files, the routing table printed and
/// written beside plan.json.
#[test]
fn two_meshes_write_both_meshes_files_and_the_routing_table() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("plan");
    let out = xtask(&["--meshes", "2", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in [
        "Routing (control-plane gateway istio-system/istio-ingressgateway):",
        "mesh1  15012     15017 -> 443 external-istiod        config (remote1)",
        "mesh2  16022     16027 -> 443 external-istiod-mesh2  mesh2-config (mesh2-remote1)",
    ] {
        assert!(stdout.contains(text), "`{text}` missing:\n{stdout}");
    }
    let routing = read(&out_dir, "routing.txt");
    assert!(routing.contains("external-istiod-mesh2"), "{routing}");
    for file in [
        "external/istiod.yaml",
        "external/mesh2/istiod.yaml",
        "external/mesh2/external-istiod-gw.yaml",
        "config/remote-config-cluster.yaml",
        "mesh2-config/remote-config-cluster.yaml",
        "mesh2-config/istiod-service.yaml",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} not written");
    }
    assert!(read(&out_dir, "external/mesh2/istiod.yaml").contains("meshID: mesh2"));
    // One mesh prints no routing table and writes none.
    let one = dir.path().join("one");
    let out = xtask(&["--out", one.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Routing"));
    assert!(!one.join("routing.txt").exists());
}

#[test]
fn mesh_counts_the_scheme_cannot_hold_are_refused() {
    assert_one_line_error(&xtask(&["--meshes", "0"]), &["--meshes must be between 1 and 8"]);
    assert_one_line_error(&xtask(&["--meshes", "9"]), &["--meshes must be between 1 and 8"]);
    assert_one_line_error(
        &xtask(&["--meshes", "3", "--remotes", "3"]),
        &["9 remote clusters", "at most 8"],
    );
    assert_one_line_error(
        &xtask(&["--meshes", "2", "--installer", "sail", "--istio", "1.30.3"]),
        &["--meshes 2 is not built for --installer sail"],
    );
}
