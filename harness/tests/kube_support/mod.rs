//! Shared helpers of the `apiserver_*` tests that prove the kube, remote-secret,
//! fault and diagnostics machinery on control-plane-only clusters.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure is a test failure

pub mod stand_in;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecp_harness::cluster::docker::Labelled;
use ecp_harness::cluster::{ApiserverOptions, ApiserverRun, ProvidedCluster, RunId, docker};
use ecp_harness::execute::command::Programs;
use ecp_harness::execute::progress::ProgressMode;
use ecp_harness::execute::{ClusterAccess, Clusters, ExecOptions, Phase};
use ecp_harness::install::{Action, Step};
use ecp_harness::kube::apply::{ApplyOptions, ApplyReport, apply_yaml};
use ecp_harness::kube::wait;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client};

pub const FIELD_MANAGER: &str = "ecp-harness-tests";

/// Starts clusters with these names; fails (never skips) without Docker or binaries.
pub async fn start(names: &[&str]) -> ApiserverRun {
    ApiserverRun::start(ApiserverOptions::named(names.iter().copied()))
        .await
        .unwrap_or_else(|e| panic!("starting clusters {names:?} (run via `cargo xtask test`): {e}"))
}

/// Everything on Docker labelled with the run id.
pub async fn labelled(run: &RunId) -> Labelled {
    let d = docker::connect().await.expect("docker");
    docker::list_labelled(&d, &docker::run_filter(run)).await.expect("list labelled")
}

/// Nothing of the run is left on Docker.
pub fn assert_gone(what: &Labelled, run: &RunId) {
    assert!(
        what.is_empty(),
        "run {run} left behind containers {:?} and networks {:?}",
        what.containers.iter().map(|c| &c.name).collect::<Vec<_>>(),
        what.networks.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
}

/// The executor's clusters from a provider's, each reached through its kubeconfig.
pub async fn executor_clusters(provided: &[ProvidedCluster]) -> Clusters {
    let mut out = Clusters::new();
    for c in provided {
        out.insert(c.name.clone(), ClusterAccess::connect(c).await.unwrap());
    }
    out
}

/// An install step `number` named `id` on `cluster` (its title is the id in words).
pub fn step(number: u8, id: &str, cluster: &str, actions: Vec<Action>) -> Step {
    Step {
        number,
        id: id.into(),
        title: id.replace('-', " "),
        cluster: cluster.into(),
        actions,
        phase: Phase::Install,
        publishes_external_address: false,
    }
}

/// Quiet executor options whose istioctl is `script` (a TEST STAND-IN written into
/// `dir`), with applies and remote secrets bounded at 60 s.
pub fn stand_in_exec_options(dir: &Path, script: &str) -> ExecOptions {
    let istioctl = dir.join("stand-in-istioctl");
    std::fs::write(&istioctl, script).unwrap();
    std::fs::set_permissions(&istioctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let programs = Programs { istioctl, helm: None, helm_version: None, release_dir: None };
    let mut opts = ExecOptions::new(dir.join("plan"), programs);
    opts.progress = ProgressMode::Quiet;
    opts.apply_timeout = Duration::from_secs(60);
    opts.remote_secret_timeout = Duration::from_secs(60);
    opts
}

/// Applies YAML and panics with the apply error on failure.
pub async fn apply(client: &Client, cluster: &str, yaml: &str, file: &str) -> ApplyReport {
    apply_yaml(client, yaml, file, &ApplyOptions::new(cluster, FIELD_MANAGER))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A namespace, waited until its `default` service account exists (pods need it).
pub async fn namespace(client: &Client, cluster: &str, name: &str, labels: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n"
    );
    apply(client, cluster, &yaml, "namespace.yaml").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let what = format!("service account {name}/default");
    wait::until(
        cluster,
        &sas,
        "default",
        &what,
        |_: Option<&ServiceAccount>| true,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
}

/// A fail-closed, sidecar-injector-like webhook configuration: `webhook` at `url`
/// (with `ca_bundle`, base64, if given) for pods created in namespaces labelled
/// `istio-injection: enabled`, 3 s timeout.
pub fn injector_webhook(webhook: &str, url: &str, ca_bundle: Option<&str>) -> String {
    let bundle = ca_bundle.map(|b| format!("\n      caBundle: {b}")).unwrap_or_default();
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: ecp-test-sidecar-injector
webhooks:
  - name: {webhook}
    clientConfig:
      url: {url}{bundle}
    failurePolicy: Fail
    timeoutSeconds: 3
    sideEffects: None
    admissionReviewVersions: [v1]
    namespaceSelector:
      matchLabels:
        istio-injection: enabled
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods]
"#
    )
}

/// The run's internal network: its subnet, the host's (gateway) address on it, and
/// the addresses in use.
pub struct Network {
    pub name: String,
    pub internal: bool,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub used: Vec<Ipv4Addr>,
}

pub async fn network(run: &ApiserverRun) -> Network {
    let d = docker::connect().await.unwrap();
    let net = d.inspect_network(run.network(), None).await.unwrap();
    let config = net.ipam.and_then(|i| i.config).unwrap_or_default();
    let first = config.first().expect("the network has an IPAM config");
    let subnet: Ipv4Net = first.subnet.as_deref().unwrap().parse().unwrap();
    let gateway: Ipv4Addr = first.gateway.as_deref().unwrap().parse().unwrap();
    let used = net
        .containers
        .unwrap_or_default()
        .values()
        .filter_map(|e| e.ipv4_address.as_deref())
        .filter_map(|a| a.split('/').next().and_then(|ip| ip.parse().ok()))
        .collect();
    Network {
        name: run.network().to_string(),
        internal: net.internal == Some(true),
        subnet,
        gateway,
        used,
    }
}

impl Network {
    /// An address inside the subnet that nothing uses: the highest host address not
    /// taken (Docker hands addresses out from the bottom).
    pub fn free_address(&self) -> Ipv4Addr {
        self.subnet
            .hosts()
            .rev()
            .take(64)
            .find(|ip| *ip != self.gateway && !self.used.contains(ip))
            .expect("a free address at the top of the subnet")
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.subnet.contains(&v4),
            IpAddr::V6(_) => false,
        }
    }
}

/// Everything the test process logs through `tracing`, at every level, kept in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Installs the capturing subscriber for this process (each nextest test is one).
    pub fn install() -> Self {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("first subscriber of the process");
        captured
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}
