//! The plan executor against real API servers (control-plane-only clusters named like
//! the topology's): namespaces, server-side apply of plan files, an installer command
//! whose output is applied by a later action, a native remote secret from the config
//! cluster into the external one, waits, verify checks, and cleanup; and a failing
//! step that stops the execution and says where.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ecp_harness::cluster::{ApiserverRun, Provided};
use ecp_harness::execute::{Clusters, ExecOptions, Phase, execute};
use ecp_harness::install::{
    Action, Check, Installer, Plan, PlanFile, PlanOptions, Program, Step, WaitCondition,
    WebhookKind,
};
use ecp_harness::remote_secret::SecretType;
use ecp_harness::topology::{NetworkMode, PLACEHOLDER_EXTERNAL_ADDR, Topology};
use ecp_harness::version::NEWEST;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube_support::{executor_clusters, stand_in_exec_options, start, step};

const NS: &str = "external-istiod";

/// What the remote profile leaves on the config cluster, reduced to what the checks
/// read: istiod's service account, the shared mesh config, and the injector webhook
/// (it selects a label no namespace carries, so the API server never calls it).
const CONFIG_FILE: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: istiod, namespace: external-istiod}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio}
data: {mesh: "rootNamespace: external-istiod"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: istio-sidecar-injector-external-istiod}
webhooks:
  - name: rev.namespace.sidecar-injector.istio.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig:
      service: {name: istiod, namespace: external-istiod, path: /inject, port: 443}
    namespaceSelector:
      matchLabels: {ecp-harness-test-never: "true"}
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods]
"#;

/// A stand-in installer: prints a ConfigMap naming its arguments (the kubeconfig
/// path among them), its working directory and its KUBECONFIG.
const FAKE_ISTIOCTL: &str = r#"#!/bin/sh
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: installer-output, namespace: external-istiod}\ndata:\n  args: "%s"\n  cwd: "%s"\n  env: "%s"\n' "$*" "$(pwd)" "$KUBECONFIG"
"#;

fn file(path: &str, contents: &str) -> PlanFile {
    PlanFile { path: path.into(), contents: contents.into(), private: false }
}

fn plan(steps: Vec<Step>, files: Vec<PlanFile>) -> Plan {
    let options = PlanOptions::new(NEWEST, Installer::Istioctl, 1);
    Plan { options, topology: Topology::new(1, NetworkMode::MultiNetwork).unwrap(), steps, files }
}

/// The clusters as the suite reaches any provider's: through the provider seam.
async fn clusters(run: &ApiserverRun) -> Clusters {
    executor_clusters(&Provided::clusters(run)).await
}

fn options(dir: &Path) -> ExecOptions {
    stand_in_exec_options(dir, FAKE_ISTIOCTL)
}

fn install_plan() -> Plan {
    let labels = BTreeMap::from([("ecp-harness-test".to_string(), "yes".to_string())]);
    let steps = vec![
        step(
            2,
            "install-remote-profile",
            "config",
            vec![
                Action::CreateNamespace {
                    name: NS.into(),
                    labels: labels.clone(),
                    annotations: BTreeMap::new(),
                },
                Action::Apply { file: "config/remote.yaml".into(), namespace: Some(NS.into()) },
                Action::Run {
                    program: Program::Istioctl,
                    args: vec![
                        "install".into(),
                        "-f".into(),
                        "config/remote.yaml".into(),
                        "--kubeconfig".into(),
                        "{kubeconfig:config}".into(),
                    ],
                    stdout_file: Some("config/generated.yaml".into()),
                },
                Action::Apply { file: "config/generated.yaml".into(), namespace: None },
                Action::WaitFor {
                    condition: WaitCondition::ConfigMapExists {
                        namespace: NS.into(),
                        name: "installer-output".into(),
                    },
                    timeout_secs: 30,
                },
                Action::Verify {
                    check: Check::WebhookConfigurationExists {
                        kind: WebhookKind::Mutating,
                        name: "istio-sidecar-injector-external-istiod".into(),
                        min_webhooks: 1,
                    },
                },
                Action::Verify {
                    check: Check::ConfigMapExists { namespace: NS.into(), name: "istio".into() },
                },
            ],
        ),
        step(
            3,
            "create-remote-secret",
            "external",
            vec![
                Action::CreateNamespace {
                    name: NS.into(),
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                },
                Action::CreateRemoteSecret {
                    source_cluster: "config".into(),
                    target_cluster: "external".into(),
                    cluster_id: "remote1".into(),
                    secret_type: SecretType::Config,
                    service_account: "istiod".into(),
                    namespace: NS.into(),
                    token_file: "unused-by-the-native-creation".into(),
                    file: "unused-by-the-native-creation".into(),
                },
                Action::Verify { check: Check::WebhooksDoNotMention { text: NS.into() } },
            ],
        ),
        Step {
            phase: Phase::Cleanup,
            ..step(
                9,
                "cleanup-config",
                "config",
                vec![
                    Action::Delete {
                        file: "config/remote.yaml".into(),
                        namespace: Some(NS.into()),
                    },
                    Action::DeleteNamespace { name: NS.into() },
                ],
            )
        },
    ];
    plan(steps, vec![file("config/remote.yaml", CONFIG_FILE)])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_installs_verifies_and_cleans_up() {
    let run = start(&["external", "config"]).await;
    let clusters = clusters(&run).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());

    let install = execute(install_plan(), &clusters, Phase::Install, &opts).await;
    assert!(install.error.is_none(), "{:#?}", install.error);
    let ids: Vec<_> = install.steps.iter().map(|s| (s.number, s.id.as_str())).collect();
    assert_eq!(ids, [(2, "install-remote-profile"), (3, "create-remote-secret")]);
    assert!(install.steps.iter().all(|s| s.error.is_none() && s.elapsed > Duration::ZERO));
    assert!(dir.path().join("plan/plan.json").is_file(), "the plan is written first");

    // The installer ran in the plan directory with the config cluster's kubeconfig,
    // and its output was applied.
    let config = &clusters["config"].client;
    let out =
        Api::<ConfigMap>::namespaced(config.clone(), NS).get("installer-output").await.unwrap();
    let data = out.data.unwrap();
    let kubeconfig = clusters["config"].kubeconfig.display().to_string();
    assert_eq!(data["args"], format!("install -f config/remote.yaml --kubeconfig {kubeconfig}"));
    assert_eq!(data["env"], kubeconfig, "KUBECONFIG is the step's cluster too");
    let plan_dir = dir.path().join("plan").canonicalize().unwrap();
    assert_eq!(PathBuf::from(&data["cwd"]).canonicalize().unwrap(), plan_dir);
    let ns = Api::<Namespace>::all(config.clone()).get(NS).await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["ecp-harness-test"], "yes");

    // The remote secret for the config cluster landed in the external cluster.
    let external = &clusters["external"].client;
    let secret =
        Api::<Secret>::namespaced(external.clone(), NS).get("istio-kubeconfig").await.unwrap();
    let annotations = secret.metadata.annotations.unwrap();
    assert_eq!(annotations["networking.istio.io/cluster"], "remote1");
    let kubeconfig = String::from_utf8(secret.data.unwrap()["config"].0.clone()).unwrap();
    assert!(kubeconfig.contains(&format!("https://{}", run.cluster("config").unwrap().address)));

    let cleanup = execute(install_plan(), &clusters, Phase::Cleanup, &opts).await;
    assert!(cleanup.error.is_none(), "{:#?}", cleanup.error);
    assert_eq!(cleanup.steps.len(), 1);
    assert!(Api::<Namespace>::all(config.clone()).get_opt(NS).await.unwrap().is_none());
    let webhooks =
        Api::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>::all(
            config.clone(),
        );
    assert!(webhooks.get_opt("istio-sidecar-injector-external-istiod").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_stops_the_run_and_says_where() {
    let run = start(&["external", "config"]).await;
    let clusters = clusters(&run).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let steps = vec![
        step(
            2,
            "verify-webhooks",
            "config",
            vec![Action::Verify {
                check: Check::WebhookConfigurationExists {
                    kind: WebhookKind::Validating,
                    name: "istio-validator-external-istiod".into(),
                    min_webhooks: 1,
                },
            }],
        ),
        step(
            3,
            "never-reached",
            "external",
            vec![Action::CreateNamespace {
                name: "never".into(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            }],
        ),
    ];
    let execution = execute(plan(steps, vec![]), &clusters, Phase::Install, &opts).await;
    let error = execution.error.unwrap().to_string();
    assert!(error.starts_with("step 2 (verify-webhooks) on cluster config:"), "{error}");
    assert!(error.contains("istio-validator-external-istiod") && error.contains("does not exist"));
    assert_eq!(execution.steps.len(), 1, "the failing step is the last one run");
    assert!(execution.steps[0].error.is_some());
    let external = &clusters["external"].client;
    assert!(Api::<Namespace>::all(external.clone()).get_opt("never").await.unwrap().is_none());
}

/// Without a kubelet pods stay Pending: the pod wait must end at its timeout and say
/// which pod is in which state.
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_wait_times_out_naming_the_pending_pod() {
    let run = start(&["config"]).await;
    let clusters = clusters(&run).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: helloworld-v1-x, labels: {app: helloworld}}\nspec:\n  automountServiceAccountToken: false\n  containers: [{name: helloworld, image: helloworld}]\n";
    let steps = vec![step(
        6,
        "deploy-helloworld",
        "config",
        vec![
            Action::CreateNamespace {
                name: "sample".into(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            },
            Action::Apply { file: "config/pod.yaml".into(), namespace: Some("sample".into()) },
            Action::WaitFor {
                condition: WaitCondition::PodsReady {
                    namespace: "sample".into(),
                    selector: "app=helloworld".into(),
                    containers: 2,
                    sidecar: true,
                },
                timeout_secs: 2,
            },
        ],
    )];
    let started = std::time::Instant::now();
    let execution =
        execute(plan(steps, vec![file("config/pod.yaml", pod)]), &clusters, Phase::Install, &opts)
            .await;
    let error = execution.error.unwrap().to_string();
    assert!(error.contains("timed out after 2.0s"), "{error}");
    assert!(error.contains("pod helloworld-v1-x is Pending"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// With the external address given (clusters without a LoadBalancer), the step that
/// publishes it does not wait for a LoadBalancer IP; without it, the same wait runs
/// and ends at its timeout (nothing here hands out LoadBalancer IPs).
#[tokio::test(flavor = "multi_thread")]
async fn a_given_external_address_skips_the_load_balancer_wait() {
    let run = start(&["external"]).await;
    let clusters = clusters(&run).await;
    let dir = tempfile::tempdir().unwrap();
    let publishing = || {
        let mut s = step(
            1,
            "set-up-gateway",
            "external",
            vec![Action::WaitFor {
                condition: WaitCondition::LoadBalancerIp {
                    namespace: "istio-system".into(),
                    service: "istio-ingressgateway".into(),
                },
                timeout_secs: 2,
            }],
        );
        s.publishes_external_address = true;
        s
    };
    let mut opts = options(dir.path());
    opts.given_external_addr = true;
    let given = execute(plan(vec![publishing()], vec![]), &clusters, Phase::Install, &opts).await;
    assert!(given.succeeded(), "{:?}", given.error);
    assert_eq!(given.plan.options.external_addr, PLACEHOLDER_EXTERNAL_ADDR, "not planned again");

    opts.given_external_addr = false;
    let observed =
        execute(plan(vec![publishing()], vec![]), &clusters, Phase::Install, &opts).await;
    let error = observed.error.expect("the wait times out").to_string();
    assert!(error.contains("istio-ingressgateway"), "{error}");
}
