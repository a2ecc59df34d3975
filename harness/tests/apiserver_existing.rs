//! The existing-cluster provider against control-plane-only clusters started
//! separately, as a vendor's clusters would be: the topology file is written by hand
//! (with `externalAddress` on the external cluster, since these clusters have no
//! LoadBalancer). The preflight passes on clean clusters, and fails for the right
//! reason with a restricted service account (the missing permission named), with an
//! unreachable server, and with an existing install (unless forced); a bad file and
//! an unknown context fail at once. After the install executor ran the plan (a
//! stand-in istioctl, as in apiserver_execute.rs) and its cleanup, every namespace
//! the run touched, and the cluster-scoped objects an install creates, are exactly
//! as before.
//!
//! The clusters run Kubernetes 1.20 (architecture.md "Where the tier 2 binaries come
//! from"), older than any Istio version supports: the tests widen the accepted range
//! to 1.20, except the one that checks that the version is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is a test failure
mod kube_support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecp_harness::cluster::existing::access::{self, Access, Resolved};
use ecp_harness::cluster::existing::{ExistingOptions, ExistingProvider};
use ecp_harness::cluster::{ApiserverRun, Capabilities, Cleanup, Provided, Provider, kubeconfig};
use ecp_harness::execute::{Clusters, ExecOptions, Phase, execute};
use ecp_harness::install::{self, Action, Check, Installer, Plan, PlanOptions};
use ecp_harness::preflight::ProblemKind;
use ecp_harness::topology::{NetworkMode, Topology};
use ecp_harness::version::NEWEST;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Scope, verbs};
use kube::{Client, Resource};
use kube_support::{apply, executor_clusters, stand_in_exec_options, start};

/// `EXTERNAL_ISTIOD_ADDR` in the topology file: TEST-NET-1, never contacted (the
/// stand-in installer renders nothing that points at it).
const EXTERNAL_ADDR: &str = "192.0.2.10";

/// Options accepting these clusters' Kubernetes 1.20.
fn options() -> ExistingOptions {
    let mut o = ExistingOptions::new(NEWEST);
    o.kubernetes_minors = (20, NEWEST.kubernetes_minors().1);
    o
}

/// The plan `cargo xtask e2e` would run on this topology (external + config).
fn plan() -> Plan {
    install::plan(&PlanOptions {
        external_addr: EXTERNAL_ADDR.parse().unwrap(),
        ..PlanOptions::new(NEWEST, Installer::Istioctl, 1)
    })
    .unwrap()
}

/// The topology file, by hand: the external cluster's kubeconfig copied beside it
/// (a relative path) with its context named, the config cluster's by absolute path
/// and its current context.
fn topology_file(dir: &Path, external: &Path, config: &Path) -> PathBuf {
    std::fs::copy(external, dir.join("external.kubeconfig")).unwrap();
    let text = format!(
        "# clusters a vendor already has\n\
         - role: external\n  name: external\n  kubeconfig: external.kubeconfig\n  \
         context: external\n  externalAddress: {EXTERNAL_ADDR}\n\
         - role: config\n  name: config\n  kubeconfig: {}\n  network: network1\n",
        config.display()
    );
    let path = dir.join("clusters.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn provider_for(run: &ApiserverRun, dir: &Path, opts: &ExistingOptions) -> ExistingProvider {
    let file = topology_file(
        dir,
        &run.cluster("external").unwrap().host_kubeconfig,
        &run.cluster("config").unwrap().host_kubeconfig,
    );
    ExistingProvider::from_file(&file, opts).unwrap()
}

async fn admin(run: &ApiserverRun, name: &str) -> Client {
    run.cluster(name).unwrap().client().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_passes_on_clean_clusters_and_start_gives_them() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_for(&run, dir.path(), &options());
    let topology = provider.topology().clone();
    assert_eq!(topology, Topology::new(1, NetworkMode::MultiNetwork).unwrap());

    let started = Instant::now();
    let checked = provider.check(&plan()).await;
    let took = started.elapsed();
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    let warnings = checked.warnings.join("\n");
    eprintln!("preflight of 2 clusters: {took:.1?}; warnings:\n{warnings}");
    assert!(warnings.contains("images are not loaded into existing clusters"), "{warnings}");
    assert!(warnings.contains("externalAddress 192.0.2.10"), "{warnings}");
    assert!(
        warnings.contains("cluster config: a LoadBalancer implementation is required"),
        "{warnings}"
    );
    assert!(provider.preflight(&plan()).await.is_empty(), "the trait's preflight agrees");

    // The Istio version's own range refuses 1.20, naming each cluster.
    let strict =
        ExistingProvider::from_file(&provider.file().path, &ExistingOptions::new(NEWEST)).unwrap();
    let problems = strict.preflight(&plan()).await;
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for (p, cluster) in problems.iter().zip(["external", "config"]) {
        assert_eq!(p.kind, ProblemKind::KubernetesVersion);
        assert!(p.message.starts_with(&format!("cluster {cluster}: Kubernetes 1.20")), "{p}");
    }

    // Another topology than the file's is refused.
    let mut options = plan().options;
    options.remotes = 2;
    let bigger_plan = install::plan(&options).unwrap();
    let bigger = bigger_plan.topology.clone();
    let problems = provider.preflight(&bigger_plan).await;
    assert!(problems.iter().any(|p| p.kind == ProblemKind::TopologyFile), "{problems:#?}");
    assert!(provider.start(&bigger).await.is_err());

    assert_eq!(Provider::capabilities(&provider), Capabilities::default());
    let clusters = provider.start(&topology).await.unwrap();
    assert_eq!(clusters.capabilities(), Capabilities::default());
    assert_eq!(clusters.run().cleanup(), Cleanup::Nothing);
    assert_eq!(clusters.external_address(), Some(EXTERNAL_ADDR.parse().unwrap()));
    let names: Vec<String> = clusters.clusters().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["external", "config"]);
    for c in clusters.clusters() {
        let server = run.cluster(&c.name).unwrap().server_url();
        assert_eq!((c.server.as_str(), c.peer_server.as_str()), (server.as_str(), server.as_str()));
        assert!(c.kubeconfig.starts_with(clusters.run().dir()));
        let mode = std::fs::metadata(&c.kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&c.kubeconfig).unwrap();
        assert!(text.contains(&format!("current-context: {}", c.name)), "{}", c.name);
        let client = kubeconfig::client(&c.name, &c.kubeconfig).await.unwrap();
        client.apiserver_version().await.unwrap();
    }
    // Nothing is deleted: the clusters still answer after the run is gone.
    let dir_of_run = clusters.run().dir().to_path_buf();
    clusters.into_run().down().await.unwrap();
    assert!(!dir_of_run.exists(), "the temporary run directory goes with the run");
    admin(&run, "config").await.apiserver_version().await.unwrap();
}

/// A kubeconfig for service account `default/<name>` of `cluster`, bound to `rules`
/// (a ClusterRole's rules as YAML flow text).
async fn service_account_kubeconfig(
    run: &ApiserverRun,
    cluster: &str,
    name: &str,
    rules: &str,
    dir: &Path,
) -> PathBuf {
    let api = run.cluster(cluster).unwrap();
    let client = api.client().await.unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: default}}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n\
         metadata: {{name: {name}}}\nrules: {rules}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
         metadata: {{name: {name}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
         subjects: [{{kind: ServiceAccount, name: {name}, namespace: default}}]\n\
         ---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\n\
         metadata: {{name: {name}-token, namespace: default, annotations: \
         {{kubernetes.io/service-account.name: {name}}}}}\n"
    );
    apply(&client, cluster, &manifest, "restricted.yaml").await;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let filled = |s: Option<&Secret>| {
        s.and_then(|s| s.data.as_ref()).is_some_and(|d| d.contains_key("token"))
    };
    let secret = ecp_harness::kube::wait::until(
        cluster,
        &secrets,
        &format!("{name}-token"),
        "the token",
        filled,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let token = String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {name}\n\
         clusters: [{{name: c, cluster: {{server: '{}', certificate-authority-data: {}}}}}]\n\
         users: [{{name: u, user: {{token: {token}}}}}]\n\
         contexts: [{{name: {name}, context: {{cluster: c, user: u}}}}]\n",
        api.server_url(),
        STANDARD.encode(&api.ca_pem)
    );
    let path = dir.join(format!("{name}.kubeconfig"));
    ecp_harness::files::write_new(&path, text.as_bytes(), 0o600).unwrap();
    // The token and RBAC reach the authenticator and authorizer through informers:
    // wait (bounded) until the token is accepted (401 before) and the binding is in
    // force, by a permission every rule set here grants.
    let sa = kubeconfig::client(name, &path).await.unwrap();
    let mut last = String::new();
    for _ in 0..100 {
        let answer = access_review(
            &sa,
            "list",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        )
        .await;
        match answer {
            Ok(true) => return path,
            Ok(false) => last = "not allowed yet".into(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the token or ClusterRoleBinding of {name} did not take effect within 10s: {last}");
}

/// A SelfSubjectAccessReview's answer (the preflight's own), or why there is none
/// (401 while a new token is not yet known to the API server).
async fn access_review(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
) -> Result<bool, kube::Error> {
    let access = Access {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: None,
        namespace: None,
    };
    ecp_harness::cluster::existing::preflight::review(client, &access).await
}

/// The ClusterRole rules granting everything the plan needs on `cluster` but `left_out`
/// (`verb`, `resource` or `resource/subresource`), as YAML flow text.
async fn rules_for_plan_but(client: &Client, cluster: &str, left_out: (&str, &str)) -> String {
    let discovery = ecp_harness::kube::discover(client, Duration::from_secs(30)).await.unwrap();
    let resolve = |api_version: &str, kind: &str| {
        ecp_harness::kube::resolve(&discovery, api_version, kind).map(|(r, caps)| Resolved {
            group: r.group,
            resource: r.plural,
            namespaced: caps.scope == Scope::Namespaced,
        })
    };
    let mut grants: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for a in access::required(&plan(), cluster, &resolve) {
        let resource = match &a.subresource {
            Some(s) => format!("{}/{s}", a.resource),
            None => a.resource.clone(),
        };
        if (a.verb.as_str(), resource.as_str()) != left_out {
            grants.entry((a.group, resource)).or_default().insert(a.verb);
        }
    }
    let rules: Vec<serde_json::Value> = grants
        .into_iter()
        .map(|((group, resource), verbs)| {
            serde_json::json!({ "apiGroups": [group], "resources": [resource], "verbs": verbs })
        })
        .collect();
    serde_json::Value::Array(rules).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_service_account_fails_naming_the_missing_permission() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    let external = &run.cluster("external").unwrap().host_kubeconfig;

    // Allowed little: reading webhook configurations. Many problems, among them the
    // namespaces the plan creates.
    let little = r#"[{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [list]}]"#;
    let kc = service_account_kubeconfig(&run, "config", "ecp-little", little, dir.path()).await;
    let file = topology_file(dir.path(), external, &kc);
    let provider = ExistingProvider::from_file(&file, &options()).unwrap();
    let problems = provider.preflight(&plan()).await;
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Permission), "{problems:#?}");
    assert!(problems.iter().all(|p| p.message.starts_with("cluster config: ")), "{problems:#?}");
    let namespaces = problems
        .iter()
        .find(|p| p.message.contains(" namespaces cluster-wide"))
        .unwrap_or_else(|| panic!("no problem names the namespaces: {problems:#?}"));
    assert!(
        namespaces.message.contains(
            "the credentials of context `ecp-little` may not create, delete, get, list, patch, \
             watch namespaces cluster-wide"
        ),
        "{namespaces}"
    );
    assert!(
        namespaces.remedy.contains("kubectl auth can-i create namespaces --context ecp-little")
    );
    eprintln!("{} problems with a service account allowed little, e.g.:", problems.len());
    for p in problems.iter().take(5) {
        eprintln!("  {p}");
    }

    // Allowed everything the plan needs but exec into the sample's pods: that one
    // permission is named, with its verb, resource and namespace, and nothing else.
    let config_admin = admin(&run, "config").await;
    let rules = rules_for_plan_but(&config_admin, "config", ("create", "pods/exec")).await;
    let kc =
        service_account_kubeconfig(&run, "config", "ecp-all-but-exec", &rules, dir.path()).await;
    let file = topology_file(dir.path(), external, &kc);
    let provider = ExistingProvider::from_file(&file, &options()).unwrap();
    let problems = provider.preflight(&plan()).await;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::Permission);
    assert!(
        problems[0].message.starts_with(
            "cluster config: the credentials of context `ecp-all-but-exec` may not create \
             pods/exec in namespace sample"
        ),
        "{}",
        problems[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_named_with_its_url() {
    let run = start(&["external"]).await;
    let dir = tempfile::tempdir().unwrap();
    let external = run.cluster("external").unwrap();
    // A port on this machine where nothing listens (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}");
    let text = std::fs::read_to_string(&external.host_kubeconfig)
        .unwrap()
        .replace(&external.server_url(), &url);
    let config_kc = dir.path().join("config.kubeconfig");
    ecp_harness::files::write_new(&config_kc, text.as_bytes(), 0o600).unwrap();
    let file = topology_file(dir.path(), &external.host_kubeconfig, &config_kc);
    let provider = ExistingProvider::from_file(&file, &options()).unwrap();

    let started = Instant::now();
    let problems = provider.preflight(&plan()).await;
    let took = started.elapsed();
    assert_eq!(problems.len(), 1, "only the unreachable cluster: {problems:#?}");
    let p = &problems[0];
    assert_eq!(p.kind, ProblemKind::Unreachable);
    assert!(
        p.message.starts_with(&format!("cluster config: the API server {url} cannot be reached")),
        "{p}"
    );
    assert!(p.remedy.contains("context `external`"), "{p}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    eprintln!("unreachable server found in {took:.1?}: {p}");

    let error = provider.start(provider.topology()).await.unwrap_err().to_string();
    assert!(error.contains("cluster config") && error.contains(&url), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_install_is_refused_unless_forced() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    // What an Istio leaves: its root certificate in istio-system on the external
    // cluster, its default validator on the config cluster (no webhooks: never called).
    let external = admin(&run, "external").await;
    let ca = "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n---\n\
              apiVersion: v1\nkind: ConfigMap\n\
              metadata: {name: istio-ca-root-cert, namespace: istio-system}\n\
              data: {root-cert.pem: placeholder}\n";
    apply(&external, "external", ca, "istio-leftovers.yaml").await;
    let config = admin(&run, "config").await;
    let validator = "apiVersion: admissionregistration.k8s.io/v1\n\
                     kind: ValidatingWebhookConfiguration\n\
                     metadata: {name: istiod-default-validator}\nwebhooks: []\n";
    apply(&config, "config", validator, "istio-validator.yaml").await;

    let provider = provider_for(&run, dir.path(), &options());
    let problems = provider.preflight(&plan()).await;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(problems.iter().all(|p| p.kind == ProblemKind::ExistingInstall), "{problems:#?}");
    assert_eq!(
        messages,
        [
            "cluster external: Istio is already installed: ConfigMap \
             istio-system/istio-ca-root-cert",
            "cluster external: the plan's namespaces istio-system already exist, and the \
             cleanup deletes the namespaces the plan creates with everything in them",
            "cluster config: Istio is already installed: ValidatingWebhookConfiguration \
             istiod-default-validator",
        ]
    );
    assert!(problems.iter().all(|p| p.remedy.contains("--force installs anyway")));

    let mut forced = options();
    forced.force = true;
    let provider = provider_for(&run, dir.path(), &forced);
    let checked = provider.check(&plan()).await;
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    let warnings: Vec<&String> =
        checked.warnings.iter().filter(|w| w.ends_with("(going ahead: --force)")).collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
}

#[test]
fn a_bad_file_or_an_unknown_context_fails_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let opts = options();

    let missing = dir.path().join("missing.yaml");
    let e = ExistingProvider::from_file(&missing, &opts).unwrap_err();
    assert_eq!(e.problem().kind, ProblemKind::TopologyFile);
    assert!(e.to_string().contains(&format!("{}: cannot read it", missing.display())), "{e}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "- role: external\n  name: external\n  kubeconfig: [unclosed\n")
        .unwrap();
    let e = ExistingProvider::from_file(&broken, &opts).unwrap_err().to_string();
    assert!(e.starts_with(&format!("topology file {}: not a valid", broken.display())), "{e}");
    assert!(e.contains("line 3"), "{e}");
    eprintln!("{e}");

    // A kubeconfig by hand; its server (TEST-NET-1) is never contacted.
    let kc = dir.path().join("vendor.kubeconfig");
    let text = "apiVersion: v1\nkind: Config\ncurrent-context: admin\n\
                clusters: [{name: c, cluster: {server: 'https://192.0.2.1:6443'}}]\n\
                users: [{name: u, user: {token: not-a-real-token}}]\n\
                contexts: [{name: admin, context: {cluster: c, user: u}}]\n";
    ecp_harness::files::write_new(&kc, text.as_bytes(), 0o600).unwrap();
    let file = dir.path().join("clusters.yaml");
    let topology = format!(
        "- role: external\n  name: external\n  kubeconfig: {kc}\n\
         - role: config\n  name: config\n  kubeconfig: {kc}\n  context: ops@config\n  \
         network: network1\n",
        kc = kc.display()
    );
    std::fs::write(&file, topology).unwrap();
    let e = ExistingProvider::from_file(&file, &opts).unwrap_err();
    assert_eq!(e.problem().kind, ProblemKind::Unreachable);
    assert_eq!(
        e.to_string(),
        format!(
            "cluster config: context `ops@config` is not in kubeconfig {} (it has: admin)",
            kc.display()
        )
    );
    assert!(!e.to_string().contains("not-a-real-token"));
    assert!(started.elapsed() < Duration::from_secs(2), "no cluster is contacted");
}

/// A TEST STAND-IN for istioctl: `manifest generate` prints the remote profile as
/// the config cluster's checks read it (istiod's service account, the mesh config
/// maps, the injector and validator webhooks; their namespace selector matches no
/// namespace, so the API server never calls them); every other command (install,
/// uninstall) does nothing.
const STAND_IN_ISTIOCTL: &str = r#"#!/bin/sh
case "$1" in
  manifest) cat "$(dirname "$0")/remote-profile.yaml" ;;
  *) exit 0 ;;
esac
"#;

fn remote_profile() -> String {
    let webhook = |name: &str, path: &str| {
        format!(
            "  - name: {name}\n    admissionReviewVersions: [v1]\n    sideEffects: None\n    \
             failurePolicy: Ignore\n    clientConfig:\n      service: {{name: istiod, \
             namespace: external-istiod, path: {path}, port: 443}}\n    namespaceSelector:\n      \
             matchLabels: {{ecp-harness-test-never: 'true'}}\n    rules:\n      - operations: \
             [CREATE]\n        apiGroups: ['']\n        apiVersions: [v1]\n        resources: \
             [pods]\n"
        )
    };
    let injectors: String = ["rev", "sidecar", "namespace", "object"]
        .iter()
        .map(|p| webhook(&format!("{p}.sidecar-injector.istio.io"), "/inject"))
        .collect();
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: istiod, namespace: external-istiod}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio, namespace: external-istiod}}\n\
         data: {{mesh: 'rootNamespace: external-istiod'}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: values, namespace: external-istiod}}\n\
         data: {{values: '{{}}'}}\n\
         ---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n\
         metadata: {{name: istio-sidecar-injector-external-istiod}}\nwebhooks:\n{injectors}\
         ---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n\
         metadata: {{name: istio-validator-external-istiod}}\nwebhooks:\n{}",
        webhook("rev.validation.istio.io", "/validate")
    )
}

fn exec_options(dir: &Path) -> ExecOptions {
    std::fs::write(dir.join("remote-profile.yaml"), remote_profile()).unwrap();
    stand_in_exec_options(dir, STAND_IN_ISTIOCTL)
}

/// The plan reduced to what runs on control-plane-only clusters, and what was left
/// out. No pod ever runs there, so the waits for Deployments, pods and LoadBalancer
/// IPs, the istiod address check and the greeting checks go; so do the apply and
/// delete of plan files whose kinds the cluster does not serve (Istio's Gateway and
/// VirtualService: the stand-in installs no CRDs), and of the sample application's
/// files (Kubernetes 1.20's server-side apply refuses a Service port without
/// `protocol`, which later versions default). Every namespace (the sample's
/// included), the other applies, installer runs, the remote secret, deletes and the
/// webhook and config map checks stay.
async fn runnable_here(plan: Plan, clusters: &Clusters) -> (Plan, Vec<String>) {
    let mut served = BTreeMap::new();
    for (name, access) in clusters {
        let d = ecp_harness::kube::discover(&access.client, Duration::from_secs(30)).await.unwrap();
        served.insert(name.clone(), d);
    }
    let mut plan = plan;
    let files = plan.files.clone();
    let mut left_out = Vec::new();
    for step in &mut plan.steps {
        let discovery = &served[&step.cluster];
        let label = format!("step {} ({}) on {}", step.number, step.id, step.cluster);
        step.actions.retain(|action| {
            let keep = match action {
                Action::WaitFor { .. } => false,
                Action::Verify { check } => !matches!(
                    check,
                    Check::IstiodAddress { .. }
                        | Check::ExecGreeting { .. }
                        | Check::IngressGreeting { .. }
                ),
                Action::Apply { file, .. } | Action::Delete { file, .. }
                    if file.contains("/sample/") =>
                {
                    false
                }
                Action::Apply { file, .. } | Action::Delete { file, .. } => {
                    files.iter().find(|f| &f.path == file).is_none_or(|f| {
                        let objects =
                            ecp_harness::kube::delete::objects_to_delete(&f.contents, None)
                                .unwrap();
                        objects.iter().all(|o| {
                            ecp_harness::kube::resolve(discovery, &o.api_version, &o.kind).is_some()
                        })
                    })
                }
                _ => true,
            };
            if !keep {
                left_out.push(format!("{label}: {action:?}"));
            }
            keep
        });
    }
    (plan, left_out)
}

/// Every object of every namespaced kind in `namespaces`, and the cluster-scoped
/// objects an install creates (namespaces, CRDs, cluster roles and bindings, webhook
/// configurations), each with its uid (and resourceVersion where nothing else
/// changes it), so that a deleted and recreated object also differs.
async fn inventory(client: &Client, namespaces: &BTreeSet<String>) -> BTreeSet<String> {
    let discovery = ecp_harness::kube::discover(client, Duration::from_secs(30)).await.unwrap();
    let cluster_kinds = [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    let mut out = BTreeSet::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let apis: Vec<(Option<&str>, Api<DynamicObject>)> = match caps.scope {
                Scope::Namespaced => namespaces
                    .iter()
                    .map(|ns| {
                        (Some(ns.as_str()), Api::namespaced_with(client.clone(), ns, &resource))
                    })
                    .collect(),
                Scope::Cluster if cluster_kinds.contains(&resource.kind.as_str()) => {
                    vec![(None, Api::all_with(client.clone(), &resource))]
                }
                Scope::Cluster => vec![],
            };
            for (ns, api) in apis {
                for o in api.list(&ListParams::default()).await.unwrap() {
                    let meta = o.meta();
                    // ClusterRoles are reconciled by the API server and the aggregation
                    // controller: their uid says whether they are the same objects.
                    let version = match resource.kind.as_str() {
                        "ClusterRole" | "ClusterRoleBinding" | "Namespace" => "",
                        _ => meta.resource_version.as_deref().unwrap_or_default(),
                    };
                    out.insert(format!(
                        "{} {}/{} uid={} rv={version}",
                        resource.kind,
                        ns.unwrap_or("-"),
                        meta.name.as_deref().unwrap_or_default(),
                        meta.uid.as_deref().unwrap_or_default(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn after_install_and_cleanup_every_touched_namespace_is_as_before() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_for(&run, dir.path(), &options());
    let topology = provider.topology().clone();
    let checked = provider.check(&plan()).await;
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
    let handle = provider.start(&topology).await.unwrap();
    let clusters = executor_clusters(&handle.clusters()).await;

    let plan = plan();
    let touched: BTreeMap<String, BTreeSet<String>> =
        clusters.keys().map(|c| (c.clone(), access::namespaces(&plan, c))).collect();
    let mut before = BTreeMap::new();
    for (name, access) in &clusters {
        before.insert(name.clone(), inventory(&access.client, &touched[name]).await);
    }

    let (plan, left_out) = runnable_here(plan, &clusters).await;
    eprintln!("left out on control-plane-only clusters ({}):", left_out.len());
    for l in &left_out {
        eprintln!("  {l}");
    }
    let kept: Vec<&Action> = plan.steps.iter().flat_map(|s| &s.actions).collect();
    for what in ["Run", "CreateRemoteSecret", "Apply", "Delete", "DeleteNamespace", "Verify"] {
        assert!(kept.iter().any(|a| format!("{a:?}").starts_with(what)), "no {what} kept");
    }

    let opts = exec_options(dir.path());
    let install = execute(plan.clone(), &clusters, Phase::Install, &opts).await;
    assert!(install.error.is_none(), "{:#?}", install.error);
    let ran: Vec<String> = install.steps.iter().map(|s| s.label()).collect();
    eprintln!("install: {} steps\n  {}", ran.len(), ran.join("\n  "));
    // The install did create things, in both clusters.
    for (name, access) in &clusters {
        let during = inventory(&access.client, &touched[name]).await;
        assert_ne!(during, before[name], "nothing was installed in {name}");
    }

    let cleanup = execute(plan, &clusters, Phase::Cleanup, &opts).await;
    assert!(cleanup.error.is_none(), "{:#?}", cleanup.error);
    eprintln!("cleanup: {} steps", cleanup.steps.len());
    for (name, access) in &clusters {
        let after = inventory(&access.client, &touched[name]).await;
        let gone: Vec<_> = before[name].difference(&after).collect();
        let added: Vec<_> = after.difference(&before[name]).collect();
        assert!(
            gone.is_empty() && added.is_empty(),
            "cluster {name}: gone {gone:#?}, left behind {added:#?}"
        );
        eprintln!(
            "cluster {name}: {} objects compared in {:?} and cluster-wide: as before",
            after.len(),
            touched[name]
        );
    }
    handle.into_run().down().await.unwrap();
}

/// The permissions the preflight asks for are enough for what the executor does: with
/// service accounts granted exactly those (nothing cluster-admin), the preflight
/// passes and the plan (reduced as above) installs and cleans up on both clusters.
#[tokio::test(flavor = "multi_thread")]
async fn the_permissions_asked_for_are_enough_for_the_executor() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut kubeconfigs = BTreeMap::new();
    for name in ["external", "config"] {
        let rules = rules_for_plan_but(&admin(&run, name).await, name, ("", "")).await;
        let sa = format!("ecp-installer-{name}");
        let kc = service_account_kubeconfig(&run, name, &sa, &rules, dir.path()).await;
        kubeconfigs.insert(name, kc);
    }
    let file = topology_file(dir.path(), &kubeconfigs["external"], &kubeconfigs["config"]);
    // The external kubeconfig was copied beside the file; its context is the account's.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("context: external", "context: ecp-installer-external");
    std::fs::write(&file, text).unwrap();
    let provider = ExistingProvider::from_file(&file, &options()).unwrap();
    let checked = provider.check(&plan()).await;
    assert!(checked.problems.is_empty(), "{:#?}", checked.problems);

    let handle = provider.start(provider.topology()).await.unwrap();
    let clusters = executor_clusters(&handle.clusters()).await;
    let (plan, _) = runnable_here(plan(), &clusters).await;
    let opts = exec_options(dir.path());
    let install = execute(plan.clone(), &clusters, Phase::Install, &opts).await;
    assert!(install.error.is_none(), "{:#?}", install.error);
    let cleanup = execute(plan, &clusters, Phase::Cleanup, &opts).await;
    assert!(cleanup.error.is_none(), "{:#?}", cleanup.error);
    eprintln!(
        "as service accounts with only the asked-for permissions: install {} steps, cleanup {} \
         steps",
        install.steps.len(),
        cleanup.steps.len()
    );
}

/// A stand-in for a CRD an operator installs: `plural.group`, served as `v1`, any
/// content accepted. Not the operator's schema: the preflight only asks whether
/// the API is served.
fn stand_in_crd(plural: &str, group: &str, kind: &str, scope: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: {{name: {plural}.{group}}}\n\
         spec:\n  group: {group}\n  scope: {scope}\n\
         \x20 names: {{kind: {kind}, plural: {plural}, singular: {singular}, listKind: {kind}List}}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n\
         \x20   schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n",
        singular = kind.to_lowercase(),
    )
}

/// `--installer sail` on existing clusters: the plan does not install the operator,
/// so the preflight names each missing CRD of each cluster; with stand-in CRDs of
/// those names the problems go. A cluster serving `security.openshift.io` (a
/// stand-in CRD again) makes the provider say OpenShift.
#[tokio::test(flavor = "multi_thread")]
async fn sail_on_existing_clusters_needs_the_operators_crds_and_openshift_is_found() {
    let run = start(&["external", "config"]).await;
    let dir = tempfile::tempdir().unwrap();
    let istio: ecp_harness::version::IstioVersion = "1.30.3".parse().unwrap();
    let mut opts = ExistingOptions::new(istio);
    opts.kubernetes_minors = (20, istio.kubernetes_minors().1);
    let provider = provider_for(&run, dir.path(), &opts);
    let plan = install::plan(&PlanOptions {
        external_addr: EXTERNAL_ADDR.parse().unwrap(),
        operator: install::OperatorSource::Preinstalled,
        ..PlanOptions::new(istio, Installer::Sail, 1)
    })
    .unwrap();
    let helm_runs = plan.steps.iter().flat_map(|s| &s.actions);
    assert!(!helm_runs.into_iter().any(|a| matches!(a, Action::Run { .. })), "no operator install");

    let problems = provider.preflight(&plan).await;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(problems.iter().all(|p| p.kind == ProblemKind::MissingOperator), "{problems:#?}");
    let mut expected = Vec::new();
    for cluster in ["external", "config"] {
        for crd in ["istios.sailoperator.io", "istiocnis.sailoperator.io"] {
            expected.push(format!(
                "cluster {cluster}: the CRD {crd} (sailoperator.io/v1) is not there: \
                 --installer sail on existing clusters needs the Sail operator installed first"
            ));
        }
    }
    assert_eq!(messages, expected);
    assert!(!provider.openshift().await);

    // Only one CRD on the config cluster: the other is still named.
    let config = admin(&run, "config").await;
    let istios = stand_in_crd("istios", "sailoperator.io", "Istio", "Cluster");
    apply(&config, "config", &istios, "stand-in-istios-crd.yaml").await;
    let problems = provider.preflight(&plan).await;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages, [&expected[0], &expected[1], &expected[3]]);

    let cnis = stand_in_crd("istiocnis", "sailoperator.io", "IstioCNI", "Cluster");
    apply(&config, "config", &cnis, "stand-in-istiocnis-crd.yaml").await;
    let external = admin(&run, "external").await;
    apply(&external, "external", &format!("{istios}---\n{cnis}"), "stand-in-crds.yaml").await;
    let problems = provider.preflight(&plan).await;
    assert!(problems.is_empty(), "{problems:#?}");

    let scc = stand_in_crd(
        "securitycontextconstraints",
        "security.openshift.io",
        "SecurityContextConstraints",
        "Cluster",
    );
    apply(&config, "config", &scc, "stand-in-scc-crd.yaml").await;
    assert!(provider.openshift().await, "config serves security.openshift.io");
}
