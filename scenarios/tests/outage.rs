//! The external control plane goes away while workloads run (issue 8), in three
//! variants, each followed by its restore: (a) the external istiod scaled to 0;
//! (b) the external cluster's control-plane gateway Deployment scaled to 0; (c) the
//! whole external cluster gone (its node container paused, same address after).
//!
//! Asserted during each outage: both traffic streams (client pod -> helloworld, host
//! -> ingress) succeed on every one of at least 50 requests; a new pod in `sample`
//! is refused as "injection unavailable", never admitted without a sidecar; a pod in
//! a namespace without injection and a ConfigMap are admitted; a VirtualService is
//! refused by validation or admitted (recorded either way); no sample pod or proxy
//! restarts. After the restore, measured and reported (never asserted as a time),
//! each bounded by 300 s: a new pod injected, validation answering, a routing change
//! in effect, and the Deployment refused during the outage Running.
//! The tests of this file must not overlap: the e2e profile runs one test at a time.
//!
//! Nothing between the cut and the restore panics: that stretch returns a `Result`,
//! the restore runs after every cut (also a failed one), then the cleanup (everything
//! the test created, `outage-plain` included), and only then the verdicts.
//!
//! Worst case, every bound reached: visibility 120 s + traffic window 90 s (+ 10 s for
//! the last request) + restore 10 s + four recoveries of 300 s + namespace deletion
//! 90 s, about 26 minutes with the probes. The e2e profile's override for this binary
//! (`.config/nextest.toml`) kills a test after 30 minutes.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ecp_harness::checks::{
    self, HELLOWORLD_URL, HostClient, INGRESS_PATH, INGRESS_PORT, MeshClient, parse_greeting,
};
use ecp_harness::cluster::{docker, kind};
use ecp_harness::kube::conditions::load_balancer_ip;
use ecp_harness::kube::delete::delete_and_wait;
use ecp_harness::kube::wait;
use ecp_harness::outage::recovery::{RECOVERY_TIMEOUT, all_recovered, measure, poll};
use ecp_harness::outage::restarts::{RestartCounts, restart_counts, unchanged};
use ecp_harness::outage::traffic::{Tally, steady};
use ecp_harness::outage::{Admission, OutageFigures, Recovery};
use ecp_scenarios::{
    EXTERNAL_ISTIOD, INGRESS_GATEWAY, SAMPLE_NAMESPACE, TopologyFile, client, topology,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// At least this many requests per stream during the outage, all successful.
const MIN_REQUESTS: u32 = 50;
const REQUESTS: u32 = 60;
const PACE: Duration = Duration::from_millis(500);
/// The traffic normally takes `REQUESTS` x `PACE` (30 s); a request not started
/// within this window counts as failed without being sent, which bounds the
/// traffic when requests hang (each one is bounded to 10 s by the harness).
const TRAFFIC_WINDOW: Duration = Duration::from_secs(90);
/// How long the config cluster may take to see the injector unavailable.
const VISIBLE_WITHIN: Duration = Duration::from_secs(120);
/// The restore is retried on errors: it must not be lost to one failed API call.
const RESTORE_ATTEMPTS: u32 = 5;
const RESTORE_INTERVAL: Duration = Duration::from_secs(2);
/// How long the cleanup waits for `outage-plain` to be gone (a retry creates it again).
const NAMESPACE_GONE: Duration = Duration::from_secs(90);
/// A namespace without injection, for the admitted probe.
const PLAIN: &str = "outage-plain";
const REFUSED: &str = "outage-refused";
const ROUTING: &str = "outage-routing";
const PROBE_CONFIG_MAP: &str = "outage-probe";
const PROBE_LABEL: &str = "ecp-outage-probe=true";
const FIELD_MANAGER: &str = "ecp-scenarios";

#[derive(Clone, Copy)]
enum Variant {
    Istiod,
    Gateway,
    ExternalCluster,
}

impl Variant {
    /// Its name in the figures and the report (one of the harness's `VARIANTS`).
    fn name(self) -> &'static str {
        let [istiod, gateway, external_cluster] = ecp_harness::outage::VARIANTS;
        match self {
            Variant::Istiod => istiod,
            Variant::Gateway => gateway,
            Variant::ExternalCluster => external_cluster,
        }
    }
}

#[tokio::test]
async fn istiod_scaled_to_zero() {
    outage(Variant::Istiod).await;
}

#[tokio::test]
async fn control_plane_gateway_scaled_to_zero() {
    outage(Variant::Gateway).await;
}

#[tokio::test]
async fn external_cluster_paused() {
    outage(Variant::ExternalCluster).await;
}

/// One variant: look up, prepare, cut, observe, restore, recover, write the figures,
/// clean up, and only then judge.
async fn outage(variant: Variant) {
    let t = topology();
    let c = client(&t, t.config()).await;
    // Looked up before anything is changed: a failure here leaves nothing behind.
    let sample = Sample::find(&t, &c).await.unwrap_or_else(|e| panic!("{}: {e}", variant.name()));
    let cut = Cut::plan(&t, variant).await.unwrap_or_else(|e| panic!("{}: {e}", variant.name()));

    let seen = run(&t, &c, variant, &sample, &cut).await;
    let mut figures = OutageFigures::new(variant.name());
    let written = seen.record(&mut figures);
    eprintln!("{figures:#?}");
    let cleaned = cleanup(&t, &c).await;

    let failed: Vec<String> = seen
        .verdicts()
        .into_iter()
        .chain([("figures", written), ("cleanup", cleaned)])
        .filter_map(|(what, v)| v.err().map(|e| format!("{what}: {e}")))
        .collect();
    assert!(failed.is_empty(), "outage {}: {}", variant.name(), failed.join("\n"));
}

/// What the test needs from the sample, found before the outage.
struct Sample {
    client_pod: String,
    client_container: &'static str,
    /// The client's image: the refused Deployment runs it, it is on the nodes already.
    image: String,
    /// The config cluster's ingress LoadBalancer IP.
    ingress: IpAddr,
    /// The host's HTTP client for the ingress stream.
    http: HostClient,
}

impl Sample {
    async fn find(t: &TopologyFile, c: &kube::Client) -> Result<Self, String> {
        let client_container = t.istio.client_sample();
        let selector = MeshClient::sample(client_container).selector;
        let found = checks::pods(&t.config().name, c, SAMPLE_NAMESPACE, &selector)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no {client_container} pod in {SAMPLE_NAMESPACE}"))?;
        let client_pod = found.metadata.name.clone().unwrap_or_default();
        let image = found
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == client_container))
            .and_then(|c| c.image.clone())
            .ok_or_else(|| {
                format!("the {client_container} pod has no {client_container} container")
            })?;
        let svc = Api::<Service>::namespaced(c.clone(), EXTERNAL_ISTIOD).get(INGRESS_GATEWAY).await;
        let ingress = svc
            .ok()
            .as_ref()
            .and_then(load_balancer_ip)
            .ok_or("the config cluster's ingress has no LoadBalancer IP")?;
        let http = HostClient::new()?;
        Ok(Self { client_pod, client_container, image, ingress, http })
    }
}

/// How the control plane is taken away and what gives it back, found before the cut.
enum Cut {
    /// A Deployment of the external cluster scaled to 0, then back to `replicas`.
    ScaledToZero { external: kube::Client, namespace: &'static str, name: String, replicas: i32 },
    /// The external cluster's node container paused, then unpaused.
    Paused { node: String },
}

impl Cut {
    async fn plan(t: &TopologyFile, variant: Variant) -> Result<Self, String> {
        match variant {
            // `istiod`, or `istiod-<revision>` for a revisioned install.
            Variant::Istiod => Self::scaled(t, EXTERNAL_ISTIOD, &t.revision().istiod()).await,
            Variant::Gateway => Self::scaled(t, "istio-system", INGRESS_GATEWAY).await,
            Variant::ExternalCluster => Ok(Cut::Paused { node: external_node(t).await? }),
        }
    }

    async fn scaled(t: &TopologyFile, namespace: &'static str, name: &str) -> Result<Self, String> {
        let external = t.client(&t.external().name).await.map_err(|e| e.to_string())?;
        let replicas = replicas(&external, namespace, name).await?;
        Ok(Cut::ScaledToZero { external, namespace, name: name.to_string(), replicas })
    }

    async fn take_down(&self) -> Result<(), String> {
        match self {
            Cut::ScaledToZero { external, namespace, name, .. } => {
                scale(external, namespace, name, 0).await
            }
            Cut::Paused { node } => {
                let d = docker::connect().await.map_err(|e| e.to_string())?;
                docker::pause(&d, node).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Gives the control plane back, retried on errors.
    async fn restore(&self) -> Result<(), String> {
        poll(RESTORE_INTERVAL, RESTORE_ATTEMPTS, || async {
            match self {
                Cut::ScaledToZero { external, namespace, name, replicas } => {
                    scale(external, namespace, name, *replicas).await
                }
                Cut::Paused { node } => {
                    let d = docker::connect().await.map_err(|e| e.to_string())?;
                    docker::unpause(&d, node).await.map_err(|e| e.to_string())
                }
            }
        })
        .await
    }
}

/// What one variant saw: the outage (if it could be observed at all), the restore,
/// and the recoveries after it.
struct Seen {
    during: Result<During, String>,
    /// `None`: nothing was cut, so nothing was restored.
    restore: Option<Result<(), String>>,
    recoveries: Vec<Recovery>,
}

/// Prepares, cuts, observes, restores (after every cut) and measures the recoveries.
/// Never panics: whatever fails is in the result.
async fn run(
    t: &TopologyFile,
    c: &kube::Client,
    variant: Variant,
    sample: &Sample,
    cut: &Cut,
) -> Seen {
    let before = match prepare(t, c).await {
        Ok(before) => before,
        Err(e) => {
            let during = Err(format!("before the outage: {e}"));
            return Seen { during, restore: None, recoveries: Vec::new() };
        }
    };
    let during = async {
        cut.take_down().await.map_err(|e| format!("the cut: {e}"))?;
        observe(t, c, variant, sample, &before).await
    }
    .await;
    let restored = Instant::now();
    let restore = cut.restore().await;
    let recoveries = match (&during, &restore) {
        (Ok(_), Ok(())) => recover(t, c, restored).await,
        // Only the injector: the refused Deployment may not exist. The next scenario
        // should find the control plane back.
        (Err(_), Ok(())) => vec![injection_recovered(c, restored).await],
        (_, Err(_)) => Vec::new(),
    };
    Seen { during, restore: Some(restore), recoveries }
}

/// The namespace without injection, and the sample's restart counts before the cut.
async fn prepare(t: &TopologyFile, c: &kube::Client) -> Result<RestartCounts, String> {
    ecp_harness::kube::apply::apply_yaml(
        c,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {PLAIN}\n"),
        "outage-plain.yaml",
        &ecp_harness::kube::apply::ApplyOptions::new(&t.config().name, FIELD_MANAGER),
    )
    .await
    .map_err(|e| e.to_string())?;
    sample_restarts(t, c).await
}

/// What was seen during the outage, judged only after the cleanup.
struct During {
    down: Result<(), String>,
    mesh: Tally,
    host: Tally,
    injected: Admission,
    plain: Admission,
    vs: Admission,
    config_map: Admission,
    deployed: Result<(), String>,
    restarts: Result<(), String>,
}

/// The outage, seen from the config cluster, in order: the injector cannot be called;
/// traffic; the admission probes; the Deployment to be refused; the restarts.
async fn observe(
    t: &TopologyFile,
    c: &kube::Client,
    variant: Variant,
    sample: &Sample,
    before: &RestartCounts,
) -> Result<During, String> {
    let pods: Api<Pod> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let down = outage_visible(&pods).await;
    let (mesh, host) = traffic(c, sample).await;

    let injected = Admission::of_pod(
        pods.create(&PostParams::default(), &probe_pod("during")?).await.as_ref(),
    );
    let plain_pods: Api<Pod> = Api::namespaced(c.clone(), PLAIN);
    let plain = Admission::of_pod(
        plain_pods.create(&PostParams::default(), &probe_pod("during")?).await.as_ref(),
    );
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let vs = Admission::of_object(apply(&vs_api, &routing("during")?).await.as_ref());
    let cm: ConfigMap = object(json!({
        "metadata": {"name": PROBE_CONFIG_MAP}, "data": {"variant": variant.name()}
    }))?;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let config_map = Admission::of_object(cms.create(&PostParams::default(), &cm).await.as_ref());

    let deployments: Api<Deployment> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let _ = deployments.delete(REFUSED, &DeleteParams::default()).await;
    let deployed = deployments
        .create(&PostParams::default(), &refused_deployment(&sample.image)?)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let restarts = match sample_restarts(t, c).await {
        Ok(during) => unchanged(before, &during),
        Err(e) => Err(e),
    };
    Ok(During { down, mesh, host, injected, plain, vs, config_map, deployed, restarts })
}

/// A new pod in `sample` refused as "injection unavailable", within [`VISIBLE_WITHIN`].
async fn outage_visible(pods: &Api<Pod>) -> Result<(), String> {
    let seen = poll(Duration::from_secs(2), 60, || async {
        let created = pods.create(&PostParams::default(), &probe_pod("probe")?).await;
        Admission::of_pod(created.as_ref()).expect_injection_unavailable()
    });
    tokio::time::timeout(VISIBLE_WITHIN, seen)
        .await
        .unwrap_or_else(|_| Err(format!("not within {VISIBLE_WITHIN:?}")))
}

/// Both streams at once, within [`TRAFFIC_WINDOW`].
async fn traffic(c: &kube::Client, sample: &Sample) -> (Tally, Tally) {
    let end = Instant::now() + TRAFFIC_WINDOW;
    tokio::join!(
        steady("client -> helloworld", REQUESTS, PACE, || within(
            end,
            mesh_request(c, &sample.client_pod, sample.client_container)
        )),
        steady("host -> ingress", REQUESTS, PACE, || within(
            end,
            ingress_request(&sample.http, sample.ingress)
        )),
    )
}

/// `request`, unless the traffic window ended at `end` (then a failure, not sent).
async fn within(
    end: Instant,
    request: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    if Instant::now() >= end {
        return Err(format!("not sent: the traffic window of {TRAFFIC_WINDOW:?} was over"));
    }
    request.await
}

impl Seen {
    /// Records the figures and writes them, only when the outage was observed: a
    /// variant without a file is reported "not measured", never with made-up figures.
    fn record(&self, figures: &mut OutageFigures) -> Result<(), String> {
        let Ok(during) = &self.during else { return Ok(()) };
        figures.stream(&during.mesh);
        figures.stream(&during.host);
        figures.probe("pod in sample", &during.injected);
        figures.probe("pod in a namespace without injection", &during.plain);
        figures.probe("VirtualService", &during.vs);
        figures.probe("ConfigMap", &during.config_map);
        for r in &self.recoveries {
            figures.recovery(r);
        }
        match ecp_scenarios::figures_dir() {
            Some(dir) => figures.write(&dir).map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Every verdict, named (all of them reported, not just the first).
    fn verdicts(&self) -> Vec<(&'static str, Result<(), String>)> {
        let mut verdicts = match &self.during {
            Ok(d) => vec![
                ("the outage was visible", d.down.clone()),
                ("mesh traffic", d.mesh.all_succeeded(MIN_REQUESTS)),
                ("ingress traffic", d.host.all_succeeded(MIN_REQUESTS)),
                ("pod in sample", d.injected.expect_injection_unavailable()),
                ("pod without injection", d.plain.expect_admitted()),
                ("VirtualService", d.vs.expect_validation_closed_or_open()),
                ("ConfigMap", d.config_map.expect_admitted()),
                ("Deployment accepted", d.deployed.clone()),
                ("no restart", d.restarts.clone()),
            ],
            Err(e) => vec![("the outage", Err(e.clone()))],
        };
        match &self.restore {
            Some(Ok(())) => verdicts.push(("recovery", all_recovered(&self.recoveries))),
            Some(Err(e)) => verdicts.push(("restore", Err(e.clone()))),
            None => {}
        }
        verdicts
    }
}

/// The four recoveries after the restore, in order, each bounded by [`RECOVERY_TIMEOUT`].
async fn recover(t: &TopologyFile, c: &kube::Client, restored: Instant) -> Vec<Recovery> {
    vec![
        injection_recovered(c, restored).await,
        validation_recovered(c, restored).await,
        routing_recovered(t, c, restored).await,
        refused_running(t, c, restored).await,
    ]
}

fn recovery_attempts() -> u32 {
    u32::try_from(RECOVERY_TIMEOUT.as_secs()).unwrap_or(300)
}

async fn injection_recovered(c: &kube::Client, restored: Instant) -> Recovery {
    let pods: Api<Pod> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let injected = poll(Duration::from_secs(1), recovery_attempts(), || async {
        let created = pods.create(&PostParams::default(), &probe_pod("after")?).await;
        Admission::of_pod(created.as_ref()).expect_injected()
    });
    measure("a new pod injected", restored, RECOVERY_TIMEOUT, injected).await
}

async fn validation_recovered(c: &kube::Client, restored: Instant) -> Recovery {
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let dry = PostParams { dry_run: true, ..Default::default() };
    let answering = poll(Duration::from_secs(1), recovery_attempts(), || async {
        match vs_api.create(&dry, &invalid_virtual_service()?).await {
            Err(kube::Error::Api(s)) if s.message.contains("denied the request") => Ok(()),
            Err(e) => Err(Admission::of_object::<()>(Err(&e)).to_string()),
            Ok(_) => Err("an invalid VirtualService was admitted".into()),
        }
    });
    measure("validation answers", restored, RECOVERY_TIMEOUT, answering).await
}

async fn routing_recovered(t: &TopologyFile, c: &kube::Client, restored: Instant) -> Recovery {
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let dr_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &destination_rule());
    let marker = format!("after-{}", restored.elapsed().as_millis());
    let routed = async {
        apply(&dr_api, &subsets()?).await.map_err(|e| e.to_string())?;
        apply(&vs_api, &routing(&marker)?).await.map_err(|e| e.to_string())?;
        routing_in_effect(t, c, &marker).await
    };
    measure("a routing change in effect", restored, RECOVERY_TIMEOUT, routed).await
}

async fn refused_running(t: &TopologyFile, c: &kube::Client, restored: Instant) -> Recovery {
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let running = wait::until(
        &t.config().name,
        &deployments,
        REFUSED,
        "the refused Deployment Running",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0) >= 1
        },
        RECOVERY_TIMEOUT,
    );
    measure("the refused Deployment Running", restored, RECOVERY_TIMEOUT, async {
        running.await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await
}

/// Ten requests in a row all answer v1 with the marker header of the change.
async fn routing_in_effect(t: &TopologyFile, c: &kube::Client, marker: &str) -> Result<(), String> {
    let name = t.istio.client_sample();
    let selector = MeshClient::sample(name).selector;
    let pods = checks::pods(&t.config().name, c, SAMPLE_NAMESPACE, &selector)
        .await
        .map_err(|e| e.to_string())?;
    let pod = pods.into_iter().find_map(|p| p.metadata.name).ok_or("no client pod")?;
    let curl = ["curl", "-sS", "-i", HELLOWORLD_URL];
    poll(Duration::from_secs(1), recovery_attempts(), || async {
        for _ in 0..10 {
            let out = checks::exec(c, SAMPLE_NAMESPACE, &pod, name, &curl).await?;
            let header = format!("x-ecp-outage: {marker}");
            let greeting = out.lines().find_map(parse_greeting);
            match greeting {
                Some(g) if g.version == "v1" && out.to_ascii_lowercase().contains(&header) => {}
                _ => return Err(format!("not yet routed: {out:.300}")),
            }
        }
        Ok(())
    })
    .await
}

/// Deletes everything the test created (what is already gone is fine) and waits for
/// `outage-plain` to be gone, so that a retry can create it again.
async fn cleanup(t: &TopologyFile, c: &kube::Client) -> Result<(), String> {
    let dp = DeleteParams::default();
    let probes = ListParams::default().labels(PROBE_LABEL);
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let dr_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &destination_rule());
    let pods: Api<Pod> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let deleted = [
        gone("Deployment outage-refused", deployments.delete(REFUSED, &dp).await),
        gone("ConfigMap outage-probe", cms.delete(PROBE_CONFIG_MAP, &dp).await),
        gone("VirtualService outage-routing", vs_api.delete(ROUTING, &dp).await),
        gone("DestinationRule outage-routing", dr_api.delete(ROUTING, &dp).await),
        gone("the probe pods in sample", pods.delete_collection(&dp, &probes).await),
        delete_and_wait(&t.config().name, &namespaces, PLAIN, &dp, NAMESPACE_GONE)
            .await
            .map_err(|e| e.to_string()),
    ];
    let failed: Vec<String> = deleted.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}

/// A deletion's outcome: done, or already gone, or why not.
fn gone<T>(what: &str, deleted: Result<T, kube::Error>) -> Result<(), String> {
    match deleted {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(format!("deleting {what}: {e}")),
    }
}

fn virtual_service() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
    ))
}

fn destination_rule() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
    ))
}

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<K, String> {
    serde_json::from_value(value).map_err(|e| format!("a probe object: {e}"))
}

/// A pod that only has to pass admission (the image need not exist).
fn probe_pod(prefix: &str) -> Result<Pod, String> {
    object(json!({
        "metadata": {"generateName": format!("{prefix}-"), "labels": {"ecp-outage-probe": "true"}},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/probe:1"}]}
    }))
}

/// The Deployment created during the outage: its pods are refused until injection
/// is back.
fn refused_deployment(image: &str) -> Result<Deployment, String> {
    object(json!({
        "metadata": {"name": REFUSED},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": REFUSED}},
            "template": {"metadata": {"labels": {"app": REFUSED}},
                "spec": {"containers": [{"name": "app", "image": image, "command": ["sleep", "3600"]}]}}}
    }))
}

/// A routing change: every helloworld request to v1, with a header naming the run.
fn routing(marker: &str) -> Result<DynamicObject, String> {
    object(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": ROUTING, "namespace": SAMPLE_NAMESPACE},
        "spec": {"hosts": ["helloworld"], "http": [{
            "route": [{"destination": {"host": "helloworld", "subset": "v1"}}],
            "headers": {"response": {"add": {"x-ecp-outage": marker}}}
        }]}
    }))
}

fn subsets() -> Result<DynamicObject, String> {
    object(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
        "metadata": {"name": ROUTING, "namespace": SAMPLE_NAMESPACE},
        "spec": {"host": "helloworld", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}
    }))
}

fn invalid_virtual_service() -> Result<DynamicObject, String> {
    object(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "outage-invalid", "namespace": SAMPLE_NAMESPACE},
        "spec": {"hosts": ["helloworld"], "http": [{"route": [{"destination": {"host": ""}}]}]}
    }))
}

async fn apply(api: &Api<DynamicObject>, obj: &DynamicObject) -> Result<(), kube::Error> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj)).await.map(|_| ())
}

/// The sample's pods with their restart counts.
async fn sample_restarts(t: &TopologyFile, c: &kube::Client) -> Result<RestartCounts, String> {
    let mut all = Vec::new();
    for app in ["helloworld", t.istio.client_sample()] {
        let selector = format!("app={app}");
        let pods = checks::pods(&t.config().name, c, SAMPLE_NAMESPACE, &selector).await;
        all.extend(pods.map_err(|e| e.to_string())?);
    }
    Ok(restart_counts(&all))
}

/// One request from the client pod to helloworld.
async fn mesh_request(c: &kube::Client, pod: &str, container: &str) -> Result<(), String> {
    let curl = ["curl", "-sS", HELLOWORLD_URL];
    let body = checks::exec(c, SAMPLE_NAMESPACE, pod, container, &curl).await?;
    parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
}

async fn ingress_request(http: &HostClient, ip: IpAddr) -> Result<(), String> {
    let body = http.get(ip, INGRESS_PORT, INGRESS_PATH).await?;
    parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
}

/// The external cluster's node container (`ecp-<run id>-<cluster>-control-plane`).
async fn external_node(t: &TopologyFile) -> Result<String, String> {
    let d = docker::connect().await.map_err(|e| e.to_string())?;
    let filter = format!("{}={}", ecp_harness::cluster::RUN_ID_LABEL, t.run_id);
    let labelled = docker::list_labelled(&d, &filter).await.map_err(|e| e.to_string())?;
    let run_id = ecp_harness::cluster::RunId::from_existing(t.run_id.clone());
    let node = kind::node::node_name(&run_id, &t.external().name);
    labelled
        .containers
        .iter()
        .find(|c| c.name.trim_start_matches('/').ends_with(&node))
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("no container {node} in run {}", t.run_id))
}

async fn scale(c: &kube::Client, namespace: &str, name: &str, replicas: i32) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api.patch_scale(name, &PatchParams::default(), &patch)
        .await
        .map(|_| ())
        .map_err(|e| format!("scaling {namespace}/{name} to {replicas}: {e}"))
}

async fn replicas(c: &kube::Client, namespace: &str, name: &str) -> Result<i32, String> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let d = api.get(name).await.map_err(|e| format!("reading {namespace}/{name}: {e}"))?;
    Ok(d.spec.replicas.unwrap_or(1))
}
