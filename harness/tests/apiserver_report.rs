//! A conformance report from a real nextest run of scenario tests, verified: on
//! control-plane-only clusters, the executor installs (with a stand-in installer)
//! what the remote profile leaves on the config cluster (the shared mesh config and
//! the istiod address), the suite's own nextest command line runs the scenario tests
//! that need no pod, and the report written from nextest's JUnit passes
//! `report verify`; a failed scenario, a missing scenario of a claimed profile, a
//! version the images disagree with and a hand-edited summary.md each fail with their
//! own message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test: a failure is a test failure
mod kube_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ecp_harness::cluster::{ApiserverOptions, ApiserverProvider, Provided, Provider};
use ecp_harness::conformance::{self, REPORT_JSON, verify};
use ecp_harness::execute::{Phase, execute};
use ecp_harness::install::{Action, Installer, Plan, PlanFile, PlanOptions, Program};
use ecp_harness::report::{self, ScenarioStatus, VersionReport};
use ecp_harness::suite::nextest::{junit_path, nextest_args};
use ecp_harness::suite::topology_file::{FORMAT, TOPOLOGY_ENV, TopologyFile};
use ecp_harness::topology::{EXTERNAL_ISTIOD_NAMESPACE, NetworkMode, Topology};
use ecp_harness::version::IstioVersion;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_support::{executor_clusters, stand_in_exec_options, start, step};

/// The scenario tests run here: they read objects only, no pod is needed.
const RUN: [&str; 3] = [
    "config_cluster_shares_the_mesh_config",
    "istiod_service_points_at_the_external_gateway",
    "external_clusters_webhooks_do_not_mention_external_istiod",
];
/// The other tests of `control_plane_install`: they need istiod running (its pods, its
/// CA, its webhooks), which control-plane-only clusters cannot run.
const SKIP: [&str; 4] = [
    "config_cluster_has_the_external_istiods_webhooks",
    "external_istiod_is_ready",
    "one_fail_closed_injector_and_both_validators_reach_the_external_istiod",
    "the_webhook_configurations_are_not_rewritten",
];
/// An Istio whose remote profile points `istiod` at the address with `Endpoints`
/// (1.28 on renders an `EndpointSlice`, which older control-plane-only clusters do
/// not serve).
const ISTIO: IstioVersion = IstioVersion::new(1, 27, 9);
/// How long the scenario run may take, its build included.
const NEXTEST_TIMEOUT: Duration = Duration::from_secs(1200);

/// TEST STAND-IN for istioctl: prints what the remote profile leaves on the config
/// cluster, reduced to what the selected checks read (`$1` is the external address).
const STAND_IN_ISTIOCTL: &str = r#"#!/bin/sh
cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: external-istiod}
data: {mesh: "rootNamespace: external-istiod"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: values, namespace: external-istiod}
data: {values: "{}"}
---
apiVersion: v1
kind: Endpoints
metadata: {name: istiod, namespace: external-istiod}
subsets:
  - addresses: [{ip: "$1"}]
    ports: [{name: tcp-istiod, port: 15012}, {name: tcp-webhook, port: 15017}]
YAML
"#;

fn namespace() -> Action {
    Action::CreateNamespace {
        name: EXTERNAL_ISTIOD_NAMESPACE.into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

/// The external-istiod namespace on both clusters, the remote profile's objects on
/// the config cluster from the stand-in installer.
fn plan(options: PlanOptions) -> Plan {
    let addr = options.external_addr.to_string();
    let steps = vec![
        step(1, "external-namespace", "external", vec![namespace()]),
        step(
            2,
            "install-remote-profile",
            "config",
            vec![
                namespace(),
                Action::Run {
                    program: Program::Istioctl,
                    args: vec![addr],
                    stdout_file: Some("config/remote.yaml".into()),
                },
                Action::Apply { file: "config/remote.yaml".into(), namespace: None },
            ],
        ),
    ];
    let topology = Topology::new(1, NetworkMode::MultiNetwork).unwrap();
    Plan { options, topology, steps, files: Vec::<PlanFile>::new() }
}

/// TEST STAND-IN for a kubelet: control-plane-only clusters run no pod, so istiod's
/// pod is created and its container status (image and imageID) written through the
/// status subresource, as a kubelet reports a container it pulled and started.
async fn stand_in_kubelet(client: &kube::Client, image: &str) {
    let pods = Api::<Pod>::namespaced(client.clone(), EXTERNAL_ISTIOD_NAMESPACE);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "istiod-stand-in"},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{"name": "discovery", "image": image}]
        }
    }))
    .unwrap();
    // The namespace's default service account appears shortly after the namespace.
    let mut created = Err(String::new());
    for _ in 0..30 {
        created = pods.create(&PostParams::default(), &pod).await.map_err(|e| e.to_string());
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    created.unwrap();
    let status = serde_json::json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "discovery", "image": image, "ready": true, "restartCount": 0,
        "imageID": format!("{image}@sha256:{}", "0".repeat(64)),
        "state": {"running": {"startedAt": "2026-11-29T00:00:00Z"}}
    }]}});
    pods.patch_status("istiod-stand-in", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// `cargo nextest run` as the suite starts it, in this workspace, with the topology
/// file; nextest's JUnit read back.
async fn run_scenarios(topology_file: &Path) -> Vec<report::ScenarioResult> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let junit = junit_path(&workspace);
    let _ = std::fs::remove_file(&junit);
    let mut args = nextest_args(&["control_plane_install"], &SKIP);
    // The build goes to this test's own target directory.
    args.extend(["--cargo-quiet".to_string(), "--target-dir".into(), target.display().to_string()]);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tokio::process::Command::new(cargo);
    command.args(&args).env(TOPOLOGY_ENV, topology_file).current_dir(&workspace);
    command.kill_on_drop(true);
    let status = tokio::time::timeout(NEXTEST_TIMEOUT, command.status())
        .await
        .expect("the scenario run ends within its timeout")
        .unwrap();
    assert!(status.success(), "cargo {} exited with {status}", args.join(" "));
    report::read_junit(&junit).unwrap()
}

fn edit_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(REPORT_JSON);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// `r` written into a fresh directory under `root`; the version's directory.
fn written(r: &VersionReport, root: &Path, name: &str) -> PathBuf {
    r.write(&root.join(name)).unwrap().json.parent().unwrap().to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_of_a_real_scenario_run_verifies_and_tampering_is_named() {
    let run = start(&["external", "config"]).await;
    let clusters = executor_clusters(&Provided::clusters(&run)).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = stand_in_exec_options(dir.path(), STAND_IN_ISTIOCTL);
    let options = PlanOptions::new(ISTIO, Installer::Istioctl, 1);
    let execution = execute(plan(options.clone()), &clusters, Phase::Install, &opts).await;
    assert!(execution.error.is_none(), "{:#?}", execution.error);

    let image = format!("{}/pilot:{ISTIO}", ISTIO.default_hub());
    stand_in_kubelet(&clusters["external"].client, &image).await;

    let topology_file = dir.path().join("topology.json");
    TopologyFile {
        format: FORMAT,
        run_id: run.run().id().to_string(),
        istio: ISTIO,
        installer: Installer::Istioctl,
        topology: execution.plan.topology.clone(),
        external_addr: options.external_addr,
        kubeconfigs: Provided::clusters(&run).into_iter().map(|c| (c.name, c.kubeconfig)).collect(),
        istioctl: None,
        revision: None,
    }
    .write(&topology_file)
    .unwrap();
    let results = run_scenarios(&topology_file).await;
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    let expected: Vec<String> = RUN.iter().map(|t| format!("control_plane_install::{t}")).collect();
    assert_eq!(names.len(), RUN.len(), "{names:?}");
    for e in &expected {
        assert!(names.contains(&e.as_str()), "{e} not in {names:?}");
    }
    assert!(results.iter().all(|r| r.status == ScenarioStatus::Passed), "{results:#?}");

    let provider = ApiserverProvider::new(ApiserverOptions::named(Vec::<String>::new()));
    let mut report = VersionReport {
        plan_options: Some(execution.plan.options.clone()),
        steps: execution.steps.clone(),
        scenarios: results,
        platform: provider.platform(),
        clusters: conformance::observe::clusters(&clusters).await,
        ..VersionReport::new(ISTIO, Installer::Istioctl, execution.plan.topology.clone())
    };
    let (images, errors) = conformance::observe::images(&clusters, &execution.plan).await;
    assert!(errors.is_empty(), "{errors:?}");
    report.images = images;
    assert_eq!(report.images.len(), 1, "{:#?}", report.images);
    assert_eq!(report.images[0].image, image);
    assert_eq!(report.clusters.len(), 2);
    for c in &report.clusters {
        let v = c.server_version.as_deref().unwrap_or_default();
        assert!(v.starts_with("v1."), "{c:?}");
        assert!(c.nodes.is_empty(), "control-plane-only clusters have no nodes: {c:?}");
    }

    let root = dir.path().join("reports");
    // Genuine: passes, claiming no profile (only part of core ran).
    let genuine = written(&report, &root, "genuine");
    let checked = verify::verify_version(&genuine);
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    let json = checked.report.unwrap();
    assert!(json.claimed().is_empty());
    assert_eq!(json.scenarios.len(), RUN.len());
    assert!(json.profiles.iter().any(|p| p.run && !p.passed));

    // A failed scenario.
    let failed = written(&report, &root, "failed");
    edit_json(&failed, |v| v["scenarios"][0]["result"] = "failed".into());
    let problems = verify::verify_version(&failed).problems;
    let first = &report.scenarios[0].name;
    assert_eq!(
        problems,
        [format!("junit.xml says {first} passed, report.json says failed")],
        "{problems:#?}"
    );

    // A claimed profile with scenarios missing.
    let missing = written(&report, &root, "missing");
    edit_json(&missing, |v| v["profiles"][0]["passed"] = true.into());
    let problems = verify::verify_version(&missing).problems;
    assert!(
        problems.contains(
            &"profile core is claimed passed, but scenario sidecar_injection is missing".into()
        ),
        "{problems:#?}"
    );
    assert!(problems.iter().all(|p| p.starts_with("profile core is claimed passed, but ")));

    // A version the images disagree with.
    let version = written(&report, &root, "version");
    edit_json(&version, |v| v["istio"] = "1.27.8".into());
    let problems = verify::verify_version(&version).problems;
    assert_eq!(
        problems,
        [format!(
            "image {image} (cluster external, pod external-istiod/istiod-stand-in) disagrees \
             with the claimed Istio 1.27.8"
        )]
    );

    // A hand-edited summary.
    let edited = written(&report, &root, "edited");
    let summary = edited.join("summary.md");
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, text.replace("| passed |", "| passed (checked) |")).unwrap();
    let problems = verify::verify_version(&edited).problems;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("summary.md is not the file this run wrote"), "{problems:?}");
}
