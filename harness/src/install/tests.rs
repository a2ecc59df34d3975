//! Plans as a whole: snapshots per installer, version and remote count; the order,
//! files and cleanup every plan must have; the SIMPLE variant; writing to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use rstest::rstest;
use serde_json::Value;

use super::plan::{RELEASE_DIR_PLACEHOLDER, api_server_placeholder, resolve_placeholders};
use super::*;
use crate::remote_secret::SecretType;
use crate::topology::{NetworkMode, PLACEHOLDER_EXTERNAL_ADDR};
use crate::version::{IstioVersion, NEWEST};

fn opts(installer: Installer, version: &str, remotes: usize, tls: GatewayTls) -> PlanOptions {
    PlanOptions {
        network_mode: NetworkMode::MultiNetwork,
        gateway_tls: tls,
        external_addr: PLACEHOLDER_EXTERNAL_ADDR,
        ..PlanOptions::new(version.parse().unwrap(), installer, remotes)
    }
}

fn plan_for(installer: Installer, version: &str, remotes: usize) -> Plan {
    plan(&opts(installer, version, remotes, GatewayTls::Passthrough)).unwrap()
}

/// The text plan followed by every file, as a reader of `--out` sees them.
fn snapshot_text(p: &Plan) -> String {
    let mut out = p.render_text();
    for f in &p.files {
        out.push_str(&format!("\n# ---- {}{}\n", f.path, if f.private { " (0600)" } else { "" }));
        out.push_str(&f.contents);
    }
    out
}

/// Two remotes (every step) for the versions where the procedure changes: the
/// `istiod-remote` years, the first `profile: remote`, the last `Endpoints`, the first
/// `EndpointSlice`, the new hub, and the newest release.
#[rstest]
fn plan_snapshots(
    #[values(Installer::Istioctl, Installer::Helm)] installer: Installer,
    #[values("1.22.8", "1.23.6", "1.24.6", "1.27.9", "1.28.10", "1.30.4", "1.31.0")] version: &str,
) {
    snapshot(installer, version, 2, GatewayTls::Passthrough);
}

/// The default topology (one remote) and the SIMPLE variant, on the newest release.
#[rstest]
fn plan_snapshots_newest(
    #[values(Installer::Istioctl, Installer::Helm)] installer: Installer,
    #[values(GatewayTls::Passthrough, GatewayTls::Simple)] tls: GatewayTls,
) {
    snapshot(installer, &NEWEST.to_string(), 1, tls);
}

fn snapshot(installer: Installer, version: &str, remotes: usize, tls: GatewayTls) {
    let p = plan(&opts(installer, version, remotes, tls)).unwrap();
    let installer = installer.name();
    let tls = match tls {
        GatewayTls::Passthrough => String::new(),
        GatewayTls::Simple => "_simple".into(),
    };
    let name = format!("plan_{installer}_{}_{remotes}_remotes{tls}", version.replace('.', "_"));
    let text = match p.options.gateway_tls {
        GatewayTls::Passthrough => snapshot_text(&p),
        // Keys and certificates are new on every run: the snapshot shows their shape.
        GatewayTls::Simple => redact_pem(&snapshot_text(&p)),
    };
    insta::assert_snapshot!(name, text);
}

/// Replaces the body of every PEM block and every base64 `data:` value of a Secret
/// with a marker.
fn redact_pem(text: &str) -> String {
    let mut out = String::new();
    let mut in_pem = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            in_pem = true;
            out.push_str(line);
            out.push_str("\n<redacted>\n");
            continue;
        }
        if line.starts_with("-----END") {
            in_pem = false;
        }
        if in_pem {
            continue;
        }
        let trimmed = line.trim_start();
        let secret_value = [
            "tls.crt:",
            "tls.key:",
            "ca.crt:",
            "ca-cert.pem:",
            "ca-key.pem:",
            "cert-chain.pem:",
            "root-cert.pem:",
        ]
        .iter()
        .find(|k| trimmed.starts_with(*k));
        match secret_value {
            Some(key) => {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}{key} <redacted>"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Every file name an action names, with whether it is generated at run time.
fn files_named(action: &Action) -> Vec<(String, bool)> {
    match action {
        Action::Apply { file, .. } | Action::Delete { file, .. } => vec![(file.clone(), false)],
        Action::CreateRemoteSecret { token_file, file, .. } => {
            vec![(token_file.clone(), false), (file.clone(), false)]
        }
        Action::Run { args, stdout_file, .. } => {
            let mut files: Vec<(String, bool)> = args
                .windows(2)
                .filter(|w| w[0] == "-f" || w[0] == "--values")
                .map(|w| (w[1].clone(), false))
                .collect();
            if let Some(out) = stdout_file {
                files.push((out.clone(), true));
            }
            files
        }
        _ => Vec::new(),
    }
}

/// Every version plans are checked for: the oldest patch and the newest known patch
/// of every minor, patches where a fact changes, and pre-releases of the newest and
/// the next minor.
fn every_version() -> Vec<String> {
    let mut versions: Vec<String> =
        crate::version::RELEASES.iter().map(|v| v.to_string()).collect();
    versions.extend(
        ["1.22.0", "1.25.4", "1.26.3", "1.27.0", "1.28.0", "1.31.0-rc.0", "1.32.0-alpha.1"]
            .map(String::from),
    );
    versions
}

/// Every backend's plans for [`every_version`] it installs (Sail: 1.24.0 to 1.30.3).
fn every_plan() -> Vec<Plan> {
    let mut plans = Vec::new();
    for installer in Installer::ALL {
        for version in every_version() {
            let version = version.as_str();
            if installer.backend().check_version(version.parse().unwrap()).is_err() {
                continue;
            }
            for remotes in [1, 2, 3] {
                for tls in [GatewayTls::Passthrough, GatewayTls::Simple] {
                    plans.push(plan(&opts(installer, version, remotes, tls)).unwrap());
                }
            }
            if installer != Installer::Sail {
                for (meshes, remotes) in [(2, 1), (2, 2), (4, 2)] {
                    let o = opts(installer, version, remotes, GatewayTls::Passthrough);
                    plans.push(plan(&PlanOptions { meshes, ..o }).unwrap());
                }
            }
        }
    }
    plans
}

#[test]
fn steps_follow_the_procedure_order_with_unique_ids() {
    for p in every_plan() {
        let numbers: Vec<u8> = p.steps.iter().map(|s| s.number).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");
        let distinct: BTreeSet<u8> = numbers.iter().copied().collect();
        let expected: BTreeSet<u8> =
            if p.options.remotes > 1 { (1..=9).collect() } else { (1..=7).chain([9]).collect() };
        assert_eq!(distinct, expected);
        let ids: BTreeSet<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), p.steps.len(), "duplicate step ids");
        for s in &p.steps {
            assert!(p.topology.by_name(&s.cluster).is_some(), "unknown cluster {}", s.cluster);
            assert!(!s.actions.is_empty(), "empty step {}", s.id);
        }
    }
}

#[test]
fn every_file_an_action_names_is_in_the_plan_or_generated_before() {
    for p in every_plan() {
        let mut generated = BTreeSet::new();
        for s in &p.steps {
            for a in &s.actions {
                for (file, is_output) in files_named(a) {
                    if is_output {
                        generated.insert(file);
                    } else {
                        assert!(
                            p.file(&file).is_some() || generated.contains(&file),
                            "{}: {file} is neither a plan file nor generated earlier",
                            s.id
                        );
                    }
                }
            }
        }
        let paths: BTreeSet<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths.len(), p.files.len(), "duplicate file paths");
    }
}

#[test]
fn every_command_runs_against_its_steps_cluster() {
    for p in every_plan() {
        for s in &p.steps {
            for a in &s.actions {
                if let Action::Run { args, .. } = a {
                    let at = args.iter().position(|a| a == "--kubeconfig").expect("--kubeconfig");
                    assert_eq!(args[at + 1], format!("{{kubeconfig:{}}}", s.cluster), "{}", s.id);
                }
            }
        }
    }
}

/// Step 9 undoes every creation: each namespace created is deleted later on the
/// same cluster, each applied file's objects deleted, each Helm release uninstalled.
#[test]
fn cleanup_undoes_everything_in_reverse() {
    for p in every_plan() {
        let mut created: Vec<(String, String)> = Vec::new();
        let mut undone: Vec<(String, String)> = Vec::new();
        for s in &p.steps {
            for a in &s.actions {
                let c = s.cluster.clone();
                match a {
                    Action::CreateNamespace { name, .. } => created.push((c, format!("ns {name}"))),
                    Action::DeleteNamespace { name } => undone.push((c, format!("ns {name}"))),
                    Action::Apply { file, .. } => created.push((c, format!("file {file}"))),
                    Action::Delete { file, .. } => undone.push((c, format!("file {file}"))),
                    Action::Run { program: Program::Helm, args, .. } if args[0] == "upgrade" => {
                        created.push((c, format!("helm {} {}", args[2], namespace_arg(args))));
                    }
                    Action::Run { program: Program::Helm, args, .. } if args[0] == "uninstall" => {
                        undone.push((c, format!("helm {} {}", args[1], namespace_arg(args))));
                    }
                    Action::CreateRemoteSecret {
                        source_cluster,
                        target_cluster,
                        token_file,
                        file,
                        ..
                    } => {
                        created.push((source_cluster.clone(), format!("file {token_file}")));
                        created.push((target_cluster.clone(), format!("file {file}")));
                    }
                    _ => {}
                }
            }
        }
        let mut expected = created.clone();
        expected.reverse();
        assert_eq!(undone, expected, "cleanup is not the reverse of the install");
        let first_cleanup = p.steps.iter().position(|s| s.number == 9).unwrap();
        assert!(p.steps[first_cleanup..].iter().all(|s| s.number == 9));
        let install_steps = &p.steps[..first_cleanup];
        assert!(install_steps.iter().all(|s| {
            s.actions
                .iter()
                .all(|a| !matches!(a, Action::Delete { .. } | Action::DeleteNamespace { .. }))
        }));
    }
}

fn namespace_arg(args: &[String]) -> String {
    let at = args.iter().position(|a| a == "--namespace").expect("--namespace");
    args[at + 1].clone()
}

/// The remote profile's charts differ by version (procedure.md): `istiod-remote`
/// from the release archive (1.22) or the repository (1.23); `base` then `istiod`
/// with `profile: remote` from 1.24.
#[rstest]
#[case("1.22.8", &["istiod-remote {istio-release}/manifests/charts/istiod-remote"])]
#[case("1.23.6", &["istiod-remote istiod-remote"])]
#[case("1.24.6", &["istio-base base", "istiod istiod"])]
#[case("1.30.3", &["istio-base base", "istiod istiod"])]
fn helm_remote_charts_by_version(#[case] version: &str, #[case] charts: &[&str]) {
    let p = plan_for(Installer::Helm, version, 1);
    let step = p.steps.iter().find(|s| s.id == "install-remote-profile-config").unwrap();
    let installs: Vec<String> = step
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Run { args, .. } => Some(format!("{} {}", args[2], args[3])),
            _ => None,
        })
        .collect();
    assert_eq!(installs, charts);
    for a in &step.actions {
        if let Action::Run { args, .. } = a {
            let repo = args.iter().any(|a| a == "--repo");
            assert_eq!(repo, !args[3].starts_with(RELEASE_DIR_PLACEHOLDER), "{args:?}");
            if repo {
                let at = args.iter().position(|a| a == "--version").unwrap();
                assert_eq!(args[at + 1], version);
            }
        }
    }
    let values = &p.file("config/remote-config-cluster-values.yaml").unwrap().contents;
    let values: Value = serde_saphyr::from_str(values).unwrap();
    let remote = version.parse::<IstioVersion>().unwrap().minor >= 24;
    let profile = if remote { Some("remote") } else { None };
    assert_eq!(values.get("profile").and_then(Value::as_str), profile);
}

/// istioctl: the guide generates the remote profile's manifest and applies it.
#[test]
fn istioctl_remote_profile_is_generated_then_applied() {
    let p = plan_for(Installer::Istioctl, "1.30.3", 1);
    let step = p.steps.iter().find(|s| s.id == "install-remote-profile-config").unwrap();
    let generated = "config/remote-config-cluster.generated.yaml";
    assert!(step.actions.iter().any(|a| matches!(
        a,
        Action::Run { program: Program::Istioctl, args, stdout_file: Some(out) }
            if args[..4] == ["manifest", "generate", "-f", "config/remote-config-cluster.yaml"]
                && out == generated
    )));
    assert!(
        step.actions.iter().any(|a| matches!(a, Action::Apply { file, .. } if file == generated))
    );
}

#[rstest]
#[case("1.22.8", "Endpoints", false)]
#[case("1.25.5", "Endpoints", false)]
#[case("1.26.0", "Endpoints", true)]
#[case("1.27.9", "Endpoints", true)]
#[case("1.28.0", "EndpointSlice", true)]
#[case("1.31.0", "EndpointSlice", true)]
fn config_cluster_checks_follow_the_version(
    #[case] version: &str,
    #[case] object: &str,
    #[case] values_configmap: bool,
) {
    let p = plan_for(Installer::Istioctl, version, 1);
    let step = p.steps.iter().find(|s| s.id == "install-remote-profile-config").unwrap();
    let checks: Vec<&Check> = step
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Verify { check } => Some(check),
            _ => None,
        })
        .collect();
    let address = checks.iter().find_map(|c| match c {
        Check::IstiodAddress { object, address, .. } => Some((object, address)),
        _ => None,
    });
    let (found, address) = address.unwrap();
    assert_eq!(format!("{found:?}"), object);
    assert_eq!(*address, PLACEHOLDER_EXTERNAL_ADDR);
    let has_values =
        checks.iter().any(|c| matches!(c, Check::ConfigMapExists { name, .. } if name == "values"));
    assert_eq!(has_values, values_configmap);
    assert!(checks.iter().any(|c| matches!(
        c,
        Check::WebhookConfigurationExists { kind: WebhookKind::Mutating, name, min_webhooks: 4 }
            if name == "istio-sidecar-injector-external-istiod"
    )));
    assert!(checks.iter().any(|c| matches!(
        c,
        Check::WebhookConfigurationExists { kind: WebhookKind::Validating, name, .. }
            if name == "istio-validator-external-istiod"
    )));
}

#[test]
fn second_remote_is_annotated_and_gets_a_remote_secret() {
    let p = plan_for(Installer::Istioctl, "1.30.3", 2);
    let add = p.steps.iter().find(|s| s.id == "add-remote-remote2").unwrap();
    assert_eq!(add.cluster, "remote2");
    let Action::CreateNamespace { name, labels, annotations } = &add.actions[0] else {
        panic!("first action: {:?}", add.actions[0]);
    };
    assert_eq!(name, "external-istiod");
    assert_eq!(annotations["topology.istio.io/controlPlaneClusters"], "remote1");
    assert_eq!(labels["topology.istio.io/network"], "network2");
    let secret = p.steps.iter().find(|s| s.id == "create-remote-secret-remote2").unwrap();
    assert_eq!(secret.cluster, "external");
    assert!(matches!(
        &secret.actions[0],
        Action::CreateRemoteSecret {
            source_cluster, target_cluster, cluster_id, secret_type: SecretType::Remote,
            service_account, namespace, ..
        } if source_cluster == "remote2" && target_cluster == "external" && cluster_id == "remote2"
            && service_account == "istio-reader-service-account" && namespace == "external-istiod"
    ));
    let manifest = &p.file("external/remote-secret-remote2.yaml").unwrap();
    assert!(manifest.private);
    assert!(manifest.contents.contains("istio-remote-secret-remote2"));
    assert!(manifest.contents.contains(&api_server_placeholder("remote2")));
    let both = p.steps.iter().find(|s| s.id == "verify-both-versions").unwrap();
    assert!(matches!(
        &both.actions[0],
        Action::Verify { check: Check::IngressGreeting { versions, requests: 10, .. } }
            if versions == &["v1", "v2"]
    ));
}

#[test]
fn config_cluster_gets_the_config_type_secret_from_istiod() {
    let p = plan_for(Installer::Helm, "1.24.6", 1);
    let step = p.steps.iter().find(|s| s.number == 3).unwrap();
    assert_eq!(step.cluster, "external");
    assert!(step.actions.iter().any(|a| matches!(
        a,
        Action::CreateRemoteSecret { source_cluster, secret_type: SecretType::Config, service_account, .. }
            if source_cluster == "config" && service_account == "istiod"
    )));
    let secret = &p.file("external/remote-secret-remote1.yaml").unwrap().contents;
    assert!(secret.contains("\"istio-kubeconfig\""), "{secret}");
    assert!(secret.contains("\"config\": |"), "{secret}");
}

#[test]
fn same_network_remotes_need_no_east_west_gateways() {
    let mut o = opts(Installer::Istioctl, "1.30.3", 2, GatewayTls::Passthrough);
    o.network_mode = NetworkMode::SameNetwork;
    let p = plan(&o).unwrap();
    assert!(p.steps.iter().all(|s| !s.id.starts_with("install-eastwest-gateway")));
    let remote = p.file("remote2/remote-config-cluster.yaml").unwrap();
    assert!(remote.contents.contains("/inject/cluster/remote2/net/network1"));
    let multi = plan_for(Installer::Istioctl, "1.30.3", 2);
    let eastwest: Vec<&str> = multi
        .steps
        .iter()
        .filter(|s| s.id.starts_with("install-eastwest-gateway"))
        .map(|s| s.cluster.as_str())
        .collect();
    assert_eq!(eastwest, ["config", "remote2"]);
    assert!(
        multi.file("config/expose-services.yaml").unwrap().contents.contains("AUTO_PASSTHROUGH")
    );
}

#[test]
fn simple_variant_terminates_tls_with_the_harness_certificate() {
    let addr: IpAddr = "172.18.6.66".parse().unwrap();
    let mut o = opts(Installer::Istioctl, "1.30.3", 1, GatewayTls::Simple);
    o.external_addr = addr;
    let p = plan(&o).unwrap();
    let private: BTreeMap<&str, bool> =
        p.files.iter().map(|f| (f.path.as_str(), f.private)).collect();
    for (path, is_private) in [
        ("external/gateway-tls-secret.yaml", true),
        ("external/cacerts.yaml", true),
        ("external/tls/ca.key", true),
        ("external/tls/server.key", true),
        ("external/tls/ca.crt", false),
        ("external/tls/server.crt", false),
    ] {
        assert_eq!(private.get(path), Some(&is_private), "{path}");
    }
    let secret: Value =
        serde_saphyr::from_str(&p.file("external/gateway-tls-secret.yaml").unwrap().contents)
            .unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["namespace"], "istio-system");
    assert_eq!(secret["metadata"]["name"], crate::tls::GATEWAY_TLS_SECRET);

    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&p.file("external/external-istiod-gw.yaml").unwrap().contents)
            .unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Gateway", "VirtualService", "DestinationRule"]);
    for server in docs[0]["spec"]["servers"].as_array().unwrap() {
        assert_eq!(server["port"]["protocol"], "https");
        assert_eq!(server["tls"]["mode"], "SIMPLE");
        assert_eq!(server["tls"]["credentialName"], crate::tls::GATEWAY_TLS_SECRET);
    }
    let routes = docs[1]["spec"]["http"].as_array().unwrap();
    assert_eq!(routes[0]["match"][0]["port"], 15012);
    assert_eq!(routes[1]["route"][0]["destination"]["port"]["number"], 443);
    let dr = &docs[2]["spec"]["trafficPolicy"]["portLevelSettings"];
    assert_eq!(dr[0]["port"]["number"], 15012);
    assert_eq!(dr[0]["connectionPool"]["http"]["h2UpgradePolicy"], "UPGRADE");
    assert_eq!(dr[1]["port"]["number"], 443);
    // The gateway verifies istiod against the harness CA, never the system roots: the
    // credential it names holds that CA as `ca.crt`, in the gateway's namespace.
    for port in dr.as_array().unwrap() {
        assert_eq!(port["tls"]["mode"], "SIMPLE");
        assert_eq!(port["tls"]["credentialName"], crate::tls::GATEWAY_TLS_SECRET);
        assert_eq!(port["tls"].get("insecureSkipVerify"), None);
    }
    assert_eq!(secret["metadata"]["namespace"], "istio-system", "the gateway's namespace");
    let ca_in_secret = BASE64_STANDARD.decode(secret["data"]["ca.crt"].as_str().unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(ca_in_secret).unwrap(),
        p.file("external/tls/ca.crt").unwrap().contents,
        "the secret's CA is the CA of istiod's cacerts"
    );
    let cacerts: Value =
        serde_saphyr::from_str(&p.file("external/cacerts.yaml").unwrap().contents).unwrap();
    assert_eq!(cacerts["data"]["root-cert.pem"], secret["data"]["ca.crt"]);

    let remote = &p.file("config/remote-config-cluster.yaml").unwrap().contents;
    assert!(
        remote.contains(
            "injectionURL: https://172.18.6.66:15017/inject/cluster/remote1/net/network1"
        ),
        "{remote}"
    );
    assert!(remote.contains("validationURL: https://172.18.6.66:15017/validate"), "{remote}");
    assert!(remote.contains("XDS_ROOT_CA"), "{remote}");
    assert!(remote.contains("CA_ROOT_CA"), "{remote}");
    assert!(remote.contains("discoveryAddress: 172.18.6.66:15012"), "{remote}");

    // The secret is applied in step 5, before the Gateway that names it.
    let step5 = p.steps.iter().find(|s| s.number == 5).unwrap();
    let applied: Vec<&str> = step5
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { file, .. } => Some(file.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(applied, ["external/gateway-tls-secret.yaml", "external/external-istiod-gw.yaml"]);

    // Keys never reach the text plan or plan.json.
    assert!(!p.render_text().contains("PRIVATE KEY"));
    assert!(!p.to_json().contains("PRIVATE KEY"));
    assert!(!p.to_json().contains("BEGIN CERTIFICATE"));
}

#[test]
fn passthrough_variant_has_no_certificates_and_no_destination_rule() {
    let p = plan_for(Installer::Helm, "1.30.3", 1);
    assert!(p.files.iter().all(|f| !f.path.contains("tls") && !f.path.contains("cacerts")));
    let gw = &p.file("external/external-istiod-gw.yaml").unwrap().contents;
    assert!(!gw.contains("DestinationRule"));
    assert_eq!(gw.matches("mode: PASSTHROUGH").count(), 2);
}

#[test]
fn every_manifest_parses_as_kubernetes_objects() {
    for p in every_plan() {
        for f in p.files.iter().filter(|f| f.path.ends_with(".yaml")) {
            let docs: Vec<Value> = serde_saphyr::from_multiple(&f.contents)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", f.path, f.contents));
            assert!(!docs.is_empty(), "{}", f.path);
            for d in &docs {
                assert!(d.is_object(), "{}", f.path);
                if !f.path.ends_with("-values.yaml") {
                    assert!(d["apiVersion"].is_string() && d["kind"].is_string(), "{}", f.path);
                }
            }
        }
    }
}

#[test]
fn hub_and_tag_reach_istio_images_and_samples() {
    let mut o = opts(Installer::Helm, "1.30.3", 1, GatewayTls::Passthrough);
    o.hub = Some("quay.io/vendor".into());
    o.tag = Some("1.30.3-vendor".into());
    let p = plan(&o).unwrap();
    let istiod: Value =
        serde_saphyr::from_str(&p.file("external/istiod-values.yaml").unwrap().contents).unwrap();
    assert_eq!(istiod["global"]["hub"], "quay.io/vendor");
    assert_eq!(istiod["global"]["tag"], "1.30.3-vendor");
    let hello = &p.file("config/sample/helloworld-v1.yaml").unwrap().contents;
    assert!(hello.contains("quay.io/vendor/examples-helloworld-v1:1.0"), "{hello}");
    let plain = plan_for(Installer::Helm, "1.30.3", 1);
    let hello = &plain.file("config/sample/helloworld-v1.yaml").unwrap().contents;
    assert!(hello.contains("registry.istio.io/release/examples-helloworld-v1:1.0"), "{hello}");
}

mod meshes;

#[test]
fn unsupported_versions_and_remote_counts_are_refused() {
    let mut o = opts(Installer::Istioctl, "1.30.3", 1, GatewayTls::Passthrough);
    o.istio = IstioVersion::new(1, 21, 0);
    let err = plan(&o).unwrap_err().to_string();
    assert!(err.contains("1.21.0") && err.contains("1.22.0 and later"), "{err}");
    o.istio = NEWEST;
    o.remotes = 0;
    let err = plan(&o).unwrap_err().to_string();
    assert!(err.contains("--remotes must be between 1 and"), "{err}");
}

#[test]
fn plan_json_carries_the_steps_for_the_executor() {
    let p = plan_for(Installer::Istioctl, "1.30.3", 2);
    let json: Value = serde_json::from_str(&p.to_json()).unwrap();
    let steps: Vec<Step> = serde_json::from_value(json["steps"].clone()).unwrap();
    assert_eq!(steps, p.steps);
    let options: PlanOptions = serde_json::from_value(json["options"].clone()).unwrap();
    assert_eq!(options, p.options);
    assert_eq!(json["steps"][0]["actions"][0]["action"], "create-namespace");
    assert_eq!(json["files"].as_array().unwrap().len(), p.files.len());
    assert!(json["files"][0].get("contents").is_none());
}

/// Step 9 cleans up, everything before installs; exactly one step publishes the
/// external address: step 1 on the external cluster, whose wait is for the
/// control-plane gateway's LoadBalancer IP. plan.json says so only where it holds.
#[test]
fn steps_carry_their_phase_and_the_step_that_publishes_the_address() {
    for p in every_plan() {
        for s in &p.steps {
            let expected = if s.number == 9 { StepPhase::Cleanup } else { StepPhase::Install };
            assert_eq!(s.phase, expected, "{}", s.id);
        }
        let publishing: Vec<&Step> =
            p.steps.iter().filter(|s| s.publishes_external_address).collect();
        assert_eq!(publishing.len(), 1);
        let step = publishing[0];
        assert_eq!((step.number, step.cluster.as_str()), (1, p.topology.external().name.as_str()));
        let waits: Vec<&WaitCondition> = step
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::WaitFor { condition: c @ WaitCondition::LoadBalancerIp { .. }, .. } => {
                    Some(c)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            waits,
            [&WaitCondition::LoadBalancerIp {
                namespace: ISTIO_SYSTEM.into(),
                service: INGRESS_GATEWAY.into(),
            }]
        );
        let json: Value = serde_json::from_str(&p.to_json()).unwrap();
        for (s, j) in p.steps.iter().zip(json["steps"].as_array().unwrap()) {
            let phase = (s.phase == StepPhase::Cleanup).then(|| Value::from("cleanup"));
            assert_eq!(j.get("phase").cloned(), phase, "{}", s.id);
            let publishes = s.publishes_external_address.then(|| Value::from(true));
            assert_eq!(j.get("publishes_external_address").cloned(), publishes, "{}", s.id);
        }
    }
}

/// A backend's declaration of what it needs is what its plans use: the programs its
/// actions run, every `--repo` they name, and the release exactly when an argument
/// points into it.
#[test]
fn backends_declare_what_their_plans_run() {
    for p in every_plan() {
        let needs = p.options.needs();
        let mut programs = Vec::new();
        let mut repos = BTreeSet::new();
        let mut release = false;
        for a in p.steps.iter().flat_map(|s| &s.actions) {
            let Action::Run { program, args, .. } = a else { continue };
            if !programs.contains(program) {
                programs.push(*program);
            }
            repos.extend(args.windows(2).filter(|w| w[0] == "--repo").map(|w| w[1].clone()));
            release |= args.iter().any(|a| a.contains(RELEASE_DIR_PLACEHOLDER));
        }
        let what = format!("{} {}", p.options.istio, p.options.installer);
        assert_eq!(needs.programs, programs, "{what}");
        let declared: BTreeSet<String> = needs.repositories.iter().map(|r| r.url.clone()).collect();
        assert_eq!(declared, repos, "{what}");
        assert_eq!(needs.release, release, "{what}");
    }
}

#[test]
fn write_puts_every_file_and_plan_json_with_private_files_0600() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(&opts(Installer::Istioctl, "1.30.3", 2, GatewayTls::Simple)).unwrap();
    let written = p.write(dir.path()).unwrap();
    assert_eq!(written.len(), p.files.len() + 1);
    assert_eq!(written.last().unwrap(), &dir.path().join("plan.json"));
    for f in &p.files {
        let path = dir.path().join(&f.path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), f.contents, "{}", f.path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, if f.private { 0o600 } else { 0o644 }, "{}", f.path);
    }
    // Writing again replaces the files (a key keeps mode 0600).
    p.write(dir.path()).unwrap();
    let key = dir.path().join("external/tls/server.key");
    assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600);
}

/// A plan kept in a report keeps its public files and loses its keys.
#[test]
fn private_files_are_removed_after_the_run_and_public_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(&opts(Installer::Istioctl, "1.31.0", 1, GatewayTls::Simple)).unwrap();
    p.write(dir.path()).unwrap();
    let replaced = p.remove_private_files(dir.path()).unwrap();
    let private: Vec<&PlanFile> = p.files.iter().filter(|f| f.private).collect();
    assert!(private.iter().any(|f| f.path == "external/tls/ca.key"), "{private:?}");
    assert_eq!(replaced.len(), private.len());
    for f in &p.files {
        let text = std::fs::read_to_string(dir.path().join(&f.path)).unwrap();
        if f.private {
            assert_eq!(text, super::render::REMOVED_PRIVATE_FILE, "{}", f.path);
        } else {
            assert_eq!(text, f.contents, "{}", f.path);
        }
        assert!(!text.contains("PRIVATE KEY"), "{}", f.path);
    }
    // The CA certificate the scenarios compare caBundles with stays.
    assert!(
        std::fs::read_to_string(dir.path().join("external/tls/ca.crt"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        p.remove_private_files(empty.path()).unwrap().is_empty(),
        "nothing written, nothing replaced"
    );
}

/// One mapping between a backend and its name: parsing, display and serde agree.
#[test]
fn installer_names_round_trip() {
    for installer in Installer::ALL {
        assert_eq!(installer.name().parse::<Installer>(), Ok(installer));
        assert_eq!(installer.to_string(), installer.name());
        assert_eq!(serde_json::to_value(installer).unwrap(), installer.name());
    }
    assert_eq!(
        "kubectl".parse::<Installer>().unwrap_err(),
        "unknown installer `kubectl`: expected istioctl, helm or sail"
    );
}

#[test]
fn debug_of_a_plan_leaves_out_private_contents() {
    let p = plan(&opts(Installer::Istioctl, "1.30.3", 2, GatewayTls::Simple)).unwrap();
    let key = p.file("external/tls/server.key").unwrap();
    assert!(key.private && key.contents.contains("PRIVATE KEY"));
    let debug = format!("{p:?}");
    assert!(!debug.contains("PRIVATE KEY"), "a key is printed");
    assert!(debug.contains("external/tls/server.key") && debug.contains("private>"));
    // Files without secrets still show what they hold.
    assert!(debug.contains("kind: ServiceAccount"), "{debug}");
}

#[test]
fn write_to_an_unwritable_place_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("plan");
    let p = plan_for(Installer::Istioctl, "1.30.3", 1);
    let err = p.write(&out).unwrap_err().to_string();
    assert!(err.starts_with(&format!("cannot write the plan to {}", out.display())), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn placeholders_resolve_to_kubeconfigs_and_the_release() {
    let kubeconfigs: BTreeMap<&str, PathBuf> =
        [("external", PathBuf::from("/k/external.yaml"))].into_iter().collect();
    let lookup = |c: &str| kubeconfigs.get(c).cloned();
    let release = PathBuf::from("/cache/istio-1.22.8");
    assert_eq!(
        resolve_placeholders("{kubeconfig:external}", lookup, &release).as_deref(),
        Some("/k/external.yaml")
    );
    assert_eq!(
        resolve_placeholders("{istio-release}/manifests/charts/istiod-remote", lookup, &release)
            .as_deref(),
        Some("/cache/istio-1.22.8/manifests/charts/istiod-remote")
    );
    assert_eq!(resolve_placeholders("{kubeconfig:config}", lookup, &release), None);
    assert_eq!(resolve_placeholders("plain", lookup, &release).as_deref(), Some("plain"));
}

/// The acceptance: in the files of `--istio 1.30.3 --remotes 2`, a reader
/// finds every value of procedure.md.
#[test]
fn written_files_hold_every_value_of_the_procedure() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan_for(Installer::Istioctl, "1.30.3", 2);
    p.write(dir.path()).unwrap();
    let all = |path: &str| std::fs::read_to_string(dir.path().join(path)).unwrap();
    let config = all("config/remote-config-cluster.yaml");
    for v in [
        "profile: remote",
        "configCluster: true",
        "configMap: true",
        "injectionPath: /inject/cluster/remote1/net/network1",
        "remotePilotAddress: \"192.0.2.10\"",
        "defaultRevision: default",
    ] {
        assert!(config.contains(v), "{v} missing:\n{config}");
    }
    let istiod = all("external/istiod.yaml");
    for v in [
        "externalIstiod: true",
        "LOCAL_CLUSTER_SECRET_WATCHER: \"true\"",
        "SHARED_MESH_CONFIG: istio",
        "INJECTION_WEBHOOK_CONFIG_NAME: istio-sidecar-injector-external-istiod",
        "VALIDATION_WEBHOOK_CONFIG_NAME: istio-validator-external-istiod",
        "caAddress: 192.0.2.10:15012",
        "discoveryAddress: 192.0.2.10:15012",
        "mountPath: /etc/istio/config",
        "mountPath: /var/lib/istio/inject",
        "rootNamespace: external-istiod",
        "operatorManageWebhooks: true",
        "configValidation: false",
        "meshID: mesh1",
        "clusterName: remote1",
    ] {
        assert!(istiod.contains(v), "{v} missing:\n{istiod}");
    }
    // The chart renders CLUSTER_ID from clusterName: set again, it is a duplicate.
    assert!(!istiod.contains("CLUSTER_ID"), "{istiod}");
    let gw = all("external/external-istiod-gw.yaml");
    for v in ["name: external-istiod-gw", "name: external-istiod-vs", "mode: PASSTHROUGH"] {
        assert!(gw.contains(v), "{v} missing:\n{gw}");
    }
    let remote2 = all("remote2/remote-config-cluster.yaml");
    assert!(remote2.contains("injectionPath: /inject/cluster/remote2/net/network2"));
    let json = all("plan.json");
    assert!(json.contains("\"topology.istio.io/controlPlaneClusters\": \"remote1\""));
    assert!(json.contains("\"secret_type\": \"remote\""));
    assert!(all("external/remote-secret-remote2.yaml").contains("istio-remote-secret-remote2"));
}

/// The names in `list` (an array of objects) under `key`, with those seen twice.
fn duplicates_in(list: &Value, key: impl Fn(&Value) -> Option<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut twice = Vec::new();
    for item in list.as_array().into_iter().flatten() {
        if let Some(k) = key(item)
            && !seen.insert(k.clone())
        {
            twice.push(k);
        }
    }
    twice
}

fn field(name: &'static str) -> impl Fn(&Value) -> Option<String> {
    move |v| v[name].as_str().map(String::from)
}

fn port_key(v: &Value) -> Option<String> {
    let port = v["containerPort"].as_u64()?;
    Some(format!("{port}/{}", v["protocol"].as_str().unwrap_or("TCP")))
}

/// What server-side apply refuses in a workload: two env entries, ports, mounts or
/// volumes of one key, in any container of a Deployment, DaemonSet, StatefulSet or
/// Pod.
fn workload_duplicates(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let pod = match kind {
        "Pod" => &doc["spec"],
        "Deployment" | "DaemonSet" | "StatefulSet" => &doc["spec"]["template"]["spec"],
        _ => return Vec::new(),
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let mut found: Vec<String> = duplicates_in(&pod["volumes"], field("name"))
        .into_iter()
        .map(|v| format!("{kind}/{name}: volume {v}"))
        .collect();
    let containers = pod["containers"].as_array().into_iter().flatten();
    let init = pod["initContainers"].as_array().into_iter().flatten();
    for c in containers.chain(init) {
        let cname = c["name"].as_str().unwrap_or_default();
        for (what, list, key) in [
            ("env", &c["env"], Box::new(field("name")) as Box<dyn Fn(&Value) -> Option<String>>),
            ("port", &c["ports"], Box::new(port_key)),
            ("mount", &c["volumeMounts"], Box::new(field("mountPath"))),
        ] {
            for d in duplicates_in(list, key) {
                found.push(format!("{kind}/{name} container {cname}: {what} {d}"));
            }
        }
    }
    found
}

/// The chart values a plan file passes to istiod's chart: an IstioOperator's or a
/// Sail `Istio`'s `spec.values`, or a Helm values file.
fn chart_values(path: &str, doc: &Value) -> Option<Value> {
    if doc["kind"] == "IstioOperator" || doc["kind"] == "Istio" {
        Some(doc["spec"]["values"].clone())
    } else if path.ends_with("-values.yaml") {
        Some(doc.clone())
    } else {
        None
    }
}

/// Issue 7: the chart renders `CLUSTER_ID` (and more) itself, and `pilot.env` is
/// appended to its env list, so a value of the same name is a duplicate that
/// server-side apply refuses. No plan may set one, for either installer on any
/// version; and no workload, volume list or istioctl overlay the plan writes holds a
/// duplicate env, port, mount or volume.
#[test]
fn no_plan_sets_an_env_the_chart_renders_or_writes_a_duplicate() {
    let mut checked_env = 0;
    for p in every_plan() {
        let owned = p.options.istio.chart_env_names();
        let what =
            format!("{} {:?} {} remotes", p.options.istio, p.options.installer, p.options.remotes);
        for f in p.files.iter().filter(|f| f.path.ends_with(".yaml") && !f.private) {
            let docs: Vec<Value> = serde_saphyr::from_multiple(&f.contents).unwrap();
            for doc in &docs {
                let dups = workload_duplicates(doc);
                assert!(dups.is_empty(), "{what}: {}: {dups:?}", f.path);
                for component in
                    doc["spec"]["components"]["ingressGateways"].as_array().into_iter().flatten()
                {
                    let dups = duplicates_in(&component["k8s"]["env"], field("name"));
                    assert!(dups.is_empty(), "{what}: {}: k8s.env {dups:?}", f.path);
                }
                let Some(values) = chart_values(&f.path, doc) else { continue };
                let pilot = &values["pilot"];
                if let Some(env) = pilot["env"].as_object() {
                    checked_env += 1;
                    let clash: Vec<&String> =
                        env.keys().filter(|k| owned.contains(&k.as_str())).collect();
                    assert!(clash.is_empty(), "{what}: {} sets chart env {clash:?}", f.path);
                }
                for (list, key) in
                    [("volumes", "name"), ("volumeMounts", "mountPath"), ("volumeMounts", "name")]
                {
                    let dups = duplicates_in(&pilot[list], field(key));
                    assert!(dups.is_empty(), "{what}: {}: pilot.{list} {dups:?}", f.path);
                }
            }
        }
    }
    assert!(checked_env > 0, "no pilot.env was checked");
}

/// The checker itself: it finds what it is for.
#[test]
fn workload_duplicates_are_found() {
    let deployment: Value = serde_json::json!({
        "kind": "Deployment",
        "metadata": { "name": "istiod" },
        "spec": { "template": { "spec": {
            "volumes": [{ "name": "a" }, { "name": "a" }],
            "containers": [{
                "name": "discovery",
                "env": [{ "name": "CLUSTER_ID", "value": "x" }, { "name": "CLUSTER_ID", "value": "y" }],
                "ports": [{ "containerPort": 15012 }, { "containerPort": 15012, "protocol": "UDP" }, { "containerPort": 15012, "protocol": "TCP" }],
                "volumeMounts": [{ "name": "a", "mountPath": "/x" }, { "name": "b", "mountPath": "/x" }],
            }],
        } } },
    });
    assert_eq!(
        workload_duplicates(&deployment),
        [
            "Deployment/istiod: volume a",
            "Deployment/istiod container discovery: env CLUSTER_ID",
            "Deployment/istiod container discovery: port 15012/TCP",
            "Deployment/istiod container discovery: mount /x",
        ]
    );
    assert!(workload_duplicates(&serde_json::json!({ "kind": "Service" })).is_empty());
}

/// The guide passes `defaultRevision: default` on every version; on 1.22 and 1.23
/// (`istiodRemote`) it is what renders `istiod-default-validator`.
#[rstest]
fn the_config_cluster_gets_the_default_revision(
    #[values(Installer::Istioctl, Installer::Helm)] installer: Installer,
    #[values("1.22.8", "1.23.6", "1.24.6", "1.31.0")] version: &str,
) {
    let p = plan_for(installer, version, 2);
    for path in ["config/remote-config-cluster", "remote2/remote-config-cluster"] {
        let file = match installer {
            Installer::Istioctl | Installer::Sail => format!("{path}.yaml"),
            Installer::Helm => format!("{path}-values.yaml"),
        };
        let doc: Value = serde_saphyr::from_str(&p.file(&file).unwrap().contents).unwrap();
        let values = chart_values(&file, &doc).unwrap();
        assert_eq!(values["defaultRevision"], "default", "{version} {file}");
    }
}

/// The Sail plan for the newest patch of every minor it installs (1.30 stops at
/// 1.30.3, the newest the Sail releases of procedure.md's table install), with one
/// and two remotes.
#[rstest]
fn sail_plan_snapshots(
    #[values("1.24.6", "1.25.5", "1.26.8", "1.27.9", "1.28.10", "1.29.7", "1.30.3")] version: &str,
    #[values(1, 2)] remotes: usize,
) {
    snapshot(Installer::Sail, version, remotes, GatewayTls::Passthrough);
}

/// Every minor of `RELEASES` that Sail installs has a snapshot above.
#[test]
fn sail_snapshots_cover_every_installable_minor() {
    let covered = [24, 25, 26, 27, 28, 29, 30];
    for v in crate::version::RELEASES {
        let installable = sail::release_for(IstioVersion::new(1, v.minor, 0)).is_some();
        assert_eq!(installable, covered.contains(&v.minor), "{v}");
    }
}

/// Versions no Sail release installs are refused at plan time, naming the range.
#[test]
fn sail_refuses_versions_outside_its_table() {
    for version in ["1.22.8", "1.23.6", "1.31.0", "1.30.4"] {
        let err = plan(&opts(Installer::Sail, version, 1, GatewayTls::Passthrough)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PlanError::NotInstallable { .. }), "{msg}");
        assert!(msg.contains(&format!("Istio {version}")), "{msg}");
        assert!(msg.contains("--installer sail"), "{msg}");
        assert!(msg.contains("1.24.0 to 1.30.3"), "{msg}");
    }
}

/// `--cni`: the Sail plan with an `IstioCNI` on every remote, on the newest version
/// it installs.
#[test]
fn sail_plan_snapshot_with_cni() {
    let p = plan(&PlanOptions {
        cni: true,
        ..opts(Installer::Sail, "1.30.3", 2, GatewayTls::Passthrough)
    })
    .unwrap();
    insta::assert_snapshot!("plan_sail_1_30_3_2_remotes_cni", snapshot_text(&p));
}

/// The acceptance for Sail: `--istio 1.30.3 --cni` writes `Istio` and
/// `IstioCNI` resources carrying the procedure's values, and the procedure follows
/// the revision (remote secret accounts, sample label, istiod's names, the address
/// check).
#[test]
fn sail_plan_writes_istio_and_istio_cni_resources() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(&PlanOptions {
        cni: true,
        ..opts(Installer::Sail, "1.30.3", 2, GatewayTls::Passthrough)
    })
    .unwrap();
    p.write(dir.path()).unwrap();
    let all = |path: &str| std::fs::read_to_string(dir.path().join(path)).unwrap();
    let config = all("config/remote-config-cluster.yaml");
    for v in [
        "apiVersion: sailoperator.io/v1",
        "kind: Istio",
        "name: external-istiod",
        "version: v1.30.3",
        "profile: remote",
        "configCluster: true",
        "configMap: true",
        "injectionPath: /inject/cluster/remote1/net/network1",
        "remotePilotAddress: \"192.0.2.10\"",
        "defaultRevision: external-istiod",
    ] {
        assert!(config.contains(v), "{v} missing:\n{config}");
    }
    let remote2 = all("remote2/remote-config-cluster.yaml");
    assert!(remote2.contains("injectionPath: /inject/cluster/remote2/net/network2"));
    assert!(!remote2.contains("configCluster"), "{remote2}");
    for cluster in ["config", "remote2"] {
        let cni = all(&format!("{cluster}/istio-cni.yaml"));
        assert!(cni.contains("kind: IstioCNI") && cni.contains("namespace: istio-cni"), "{cni}");
        assert!(cni.contains("hub: registry.istio.io/release") && cni.contains("tag: \"1.30.3\""));
    }
    let istiod = all("external/istiod.yaml");
    for v in [
        "cni:\n        enabled: true",
        "kind: Istio",
        "profile: empty",
        "externalIstiod: true",
        "LOCAL_CLUSTER_SECRET_WATCHER: \"true\"",
        "SHARED_MESH_CONFIG: istio",
        "INJECTION_WEBHOOK_CONFIG_NAME: istio-sidecar-injector-external-istiod-external-istiod",
        "VALIDATION_WEBHOOK_CONFIG_NAME: istio-validator-external-istiod-external-istiod",
        "name: istio-external-istiod",
        "name: istio-sidecar-injector-external-istiod",
        "caAddress: 192.0.2.10:15012",
        "discoveryAddress: 192.0.2.10:15012",
        "mountPath: /etc/istio/config",
        "mountPath: /var/lib/istio/inject",
        "rootNamespace: external-istiod",
        "operatorManageWebhooks: true",
        "configValidation: false",
        "meshID: mesh1",
        "clusterName: remote1",
    ] {
        assert!(istiod.contains(v), "{v} missing:\n{istiod}");
    }
    assert!(all("external/gateway-mesh.yaml").contains("name: default"));
    let gw = all("external/external-istiod-gw.yaml");
    assert!(gw.contains("host: istiod-external-istiod.external-istiod.svc.cluster.local"), "{gw}");
    let secret = p.steps.iter().flat_map(|s| &s.actions).find_map(|a| match a {
        Action::CreateRemoteSecret { secret_type: SecretType::Config, service_account, .. } => {
            Some(service_account.clone())
        }
        _ => None,
    });
    assert_eq!(secret.as_deref(), Some("istiod-external-istiod"));
    let json = all("plan.json");
    assert!(json.contains("\"istio.io/rev\": \"external-istiod\""), "sample namespace label");
    assert!(!json.contains("istio-injection"));
    assert!(json.contains("\"condition\": \"resource-ready\""));
    assert!(json.contains("\"name\": \"istiod-external-istiod\""));
    // Step 2 checks the revision's Service; the second remote's reader account is
    // created before its secret.
    let step2 = p.steps.iter().find(|s| s.number == 2).unwrap();
    assert!(step2.actions.iter().any(|a| matches!(a,
        Action::Verify { check: Check::IstiodAddress { service, .. } }
            if service == "istiod-external-istiod")));
    assert!(
        all("remote2/istio-reader-service-account.yaml").contains("namespace: external-istiod")
    );
    let position =
        |f: &dyn Fn(&Action) -> bool| p.steps.iter().flat_map(|s| &s.actions).position(f).unwrap();
    let reader = position(
        &|a| matches!(a, Action::Apply { file, .. } if file == "remote2/istio-reader-service-account.yaml"),
    );
    let secret = position(&|a| {
        matches!(a, Action::CreateRemoteSecret { secret_type: SecretType::Remote, service_account, .. }
            if service_account == "istio-reader-service-account")
    });
    assert!(reader < secret);
}

/// Without `--cni` no `IstioCNI` and no CNI injection; every Sail resource names
/// the hub and tag the suite loads (Sail's own image list is off).
#[test]
fn sail_cni_is_off_by_default_and_images_are_pinned() {
    let p = plan_for(Installer::Sail, "1.27.9", 2);
    assert!(p.files.iter().all(|f| !f.path.ends_with("istio-cni.yaml")));
    assert!(p.steps.iter().all(|s| s.actions.iter().all(|a| !matches!(a,
        Action::CreateNamespace { name, .. } if name == "istio-cni"))));
    let istiod = &p.file("external/istiod.yaml").unwrap().contents;
    assert!(!istiod.contains("cni:"), "{istiod}");
    for path in [
        "external/gateway-mesh.yaml",
        "external/istiod.yaml",
        "config/remote-config-cluster.yaml",
        "remote2/remote-config-cluster.yaml",
    ] {
        let text = &p.file(path).unwrap().contents;
        assert!(
            text.contains("hub: docker.io/istio") && text.contains("tag: \"1.27.9\""),
            "{path}: {text}"
        );
    }
    let vendor = plan(&PlanOptions {
        hub: Some("quay.io/vendor/".into()),
        tag: Some("1.27.9-v1".into()),
        ..opts(Installer::Sail, "1.27.9", 1, GatewayTls::Passthrough)
    })
    .unwrap();
    let text = &vendor.file("config/remote-config-cluster.yaml").unwrap().contents;
    assert!(text.contains("hub: quay.io/vendor\n") && text.contains("tag: 1.27.9-v1"), "{text}");
}

/// On existing clusters the operator is already there: the plan neither installs
/// nor removes it, and says so.
#[test]
fn a_preinstalled_operator_is_neither_installed_nor_removed() {
    let p = plan(&PlanOptions {
        operator: OperatorSource::Preinstalled,
        ..opts(Installer::Sail, "1.30.3", 2, GatewayTls::Passthrough)
    })
    .unwrap();
    let actions: Vec<&Action> = p.steps.iter().flat_map(|s| &s.actions).collect();
    assert!(!actions.iter().any(|a| matches!(a, Action::Run { .. })), "{actions:#?}");
    assert!(!actions.iter().any(|a| matches!(a,
        Action::CreateNamespace { name, .. } | Action::DeleteNamespace { name } if name == "sail-operator")));
    let text = p.render_text();
    assert!(text.contains("Sail operator: already installed on every cluster"), "{text}");
    let helm = plan_for(Installer::Sail, "1.30.3", 1).render_text();
    assert!(helm.contains("Sail operator: installed from its Helm chart 1.30.3, removed in step 9; IstioCNI on the remotes: off (--cni turns it on)"), "{helm}");
}

/// The operator is installed first on every cluster and uninstalled last.
#[test]
fn sail_operator_comes_first_and_goes_last_on_every_cluster() {
    let p = plan_for(Installer::Sail, "1.30.3", 2);
    for cluster in ["external", "config", "remote2"] {
        let runs: Vec<(StepPhase, &Vec<String>)> = p
            .steps
            .iter()
            .filter(|s| s.cluster == cluster)
            .flat_map(|s| s.actions.iter().map(move |a| (s.phase, a)))
            .filter_map(|(phase, a)| match a {
                Action::Run { args, .. } => Some((phase, args)),
                _ => None,
            })
            .collect();
        assert_eq!(runs.len(), 2, "{cluster}: {runs:?}");
        assert_eq!(runs[0].0, StepPhase::Install);
        assert_eq!(runs[0].1[..3], ["upgrade", "--install", "sail-operator"]);
        assert!(runs[0].1.contains(&"1.30.3".to_string()), "{:?}", runs[0].1);
        assert_eq!(runs[1].0, StepPhase::Cleanup);
        assert_eq!(runs[1].1[0], "uninstall");
        let first_apply = p
            .steps
            .iter()
            .filter(|s| s.cluster == cluster)
            .flat_map(|s| &s.actions)
            .position(|a| matches!(a, Action::Apply { .. }));
        let install = p
            .steps
            .iter()
            .filter(|s| s.cluster == cluster)
            .flat_map(|s| &s.actions)
            .position(|a| matches!(a, Action::Run { .. }));
        assert!(install < first_apply, "{cluster}");
    }
}

/// A vendor's values files: one for every cluster, one for the external cluster.
fn vendor_overrides() -> Overrides {
    Overrides {
        values: vec![
            ValuesFile::new(
                "vendor.yaml",
                None,
                "global:\n  imagePullSecrets: [vendor-pull]\npilot:\n  resources:\n    \
                 requests:\n      cpu: 250m\nmeshConfig:\n  accessLogFile: /dev/stdout\n",
            ),
            ValuesFile::new(
                "external.yaml",
                Some(crate::topology::Role::External),
                "pilot:\n  resources:\n    requests:\n      cpu: 500m\n  env:\n    \
                 PILOT_TRACE_SAMPLING: \"5\"\n",
            ),
        ],
        ..Overrides::default()
    }
}

/// The plan's header and the files carrying istiod's and the remote profiles' values.
fn values_snapshot(p: &Plan) -> String {
    let header: String = p.render_text().lines().take_while(|l| *l != "Clusters:").fold(
        String::new(),
        |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        },
    );
    let mut out = header;
    for f in &p.files {
        let name = f.path.rsplit('/').next().unwrap_or_default();
        let stem = name.trim_end_matches(".yaml").trim_end_matches("-values");
        if ["istiod", "istiod-local", "remote-config-cluster"].contains(&stem) {
            out.push_str(&format!("\n# ---- {}\n{}", f.path, f.contents));
        }
    }
    out
}

/// Values files reach every backend's form of the same values: IstioOperator
/// `spec.values`/`spec.meshConfig`, Helm values files, Sail's `spec.values`; the
/// external cluster's file only the external istiod, and after the every-cluster one.
#[rstest]
fn values_files_merge_into_every_backend(
    #[values(Installer::Istioctl, Installer::Helm, Installer::Sail)] installer: Installer,
) {
    let mut o = opts(installer, "1.30.3", 2, GatewayTls::Passthrough);
    o.overrides = vendor_overrides();
    let p = plan(&o).unwrap();
    insta::assert_snapshot!(format!("values_files_{}", installer.name()), values_snapshot(&p));
    assert!(p.to_json().contains("external.yaml"), "plan.json carries the overrides");
}

/// `--revision canary`: every backend installs istiod and the remote profiles as
/// that revision, and the procedure follows its names.
#[rstest]
fn a_revision_is_followed_by_every_backend(
    #[values(Installer::Istioctl, Installer::Helm, Installer::Sail)] installer: Installer,
) {
    let mut o = opts(installer, "1.30.3", 1, GatewayTls::Passthrough);
    o.overrides.revision = Some("canary".into());
    let p = plan(&o).unwrap();
    let text = snapshot_text(&p);
    insta::assert_snapshot!(format!("revision_canary_{}", installer.name()), text);
    let json = text;
    for name in [
        "istiod-canary",
        "istiod-canary.external-istiod.svc.cluster.local",
        "istio-sidecar-injector-canary-external-istiod",
        "istio-validator-canary-external-istiod",
    ] {
        assert!(json.contains(name), "{installer}: {name}");
    }
    let sample = p
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .find_map(|a| match a {
            Action::CreateNamespace { name, labels, .. } if name == SAMPLE_NAMESPACE => {
                Some(labels.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(sample.get("istio.io/rev").map(String::as_str), Some("canary"), "{installer}");
    assert!(!sample.contains_key("istio-injection"), "{installer}");
}

/// Refused at plan time, before any step: a forbidden key, a bad revision, a chart
/// repository for istioctl.
#[test]
fn overrides_are_refused_when_planning() {
    let mut o = opts(Installer::Helm, "1.30.3", 1, GatewayTls::Passthrough);
    o.overrides.values =
        vec![ValuesFile::new("x.yaml", None, "global:\n  multiCluster:\n    clusterName: c\n")];
    let err = plan(&o).unwrap_err().to_string();
    assert!(err.contains("x.yaml") && err.contains("`global.multiCluster.clusterName`"), "{err}");
    let mut o = opts(Installer::Istioctl, "1.30.3", 1, GatewayTls::Passthrough);
    o.overrides.helm_repo = Some("https://charts.example".into());
    assert!(plan(&o).unwrap_err().to_string().contains("--helm-repo"));
}

/// `--helm-repo` replaces the backend's own chart repository, in the commands and in
/// what the preflight checks.
#[rstest]
#[case(Installer::Helm)]
#[case(Installer::Sail)]
fn a_chart_repository_replaces_the_backends_own(#[case] installer: Installer) {
    let mut o = opts(installer, "1.30.3", 1, GatewayTls::Passthrough);
    o.overrides.helm_repo = Some("https://charts.example/vendor".into());
    let p = plan(&o).unwrap();
    let repos: BTreeSet<&str> = p
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .filter_map(|a| match a {
            Action::Run { args, .. } => args.windows(2).find(|w| w[0] == "--repo").map(|w| &*w[1]),
            _ => None,
        })
        .collect();
    assert_eq!(repos, BTreeSet::from(["https://charts.example/vendor"]), "{installer}");
    let needs = o.needs();
    assert_eq!(needs.repositories.len(), 1);
    assert_eq!(needs.repositories[0].host, "charts.example");
}
