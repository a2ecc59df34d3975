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

use std::time::{Duration, Instant};

use ecp_harness::cluster::{docker, kind};
use ecp_harness::execute::checks::{self, parse_greeting};
use ecp_harness::kube::wait;
use ecp_harness::outage::recovery::{RECOVERY_TIMEOUT, all_recovered, measure, poll};
use ecp_harness::outage::restarts::{restart_counts, unchanged};
use ecp_harness::outage::traffic::steady;
use ecp_harness::outage::{Admission, OutageFigures, Recovery};
use ecp_scenarios::{
    EXTERNAL_ISTIOD, INGRESS_GATEWAY, SAMPLE_NAMESPACE, TopologyFile, client, topology,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// At least this many requests per stream during the outage, all successful.
const MIN_REQUESTS: u32 = 50;
const REQUESTS: u32 = 60;
const PACE: Duration = Duration::from_millis(500);
/// A namespace without injection, for the admitted probe.
const PLAIN: &str = "outage-plain";
const REFUSED: &str = "outage-refused";
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

fn virtual_service() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
    ))
}

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("a probe object: {e}"))
}

/// A pod that only has to pass admission (the image need not exist).
fn probe_pod(prefix: &str) -> Pod {
    object(json!({
        "metadata": {"generateName": format!("{prefix}-"), "labels": {"ecp-outage-probe": "true"}},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/probe:1"}]}
    }))
}

/// A routing change: every helloworld request to v1, with a header naming the run.
fn routing(marker: &str) -> DynamicObject {
    object(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "outage-routing", "namespace": SAMPLE_NAMESPACE},
        "spec": {"hosts": ["helloworld"], "http": [{
            "route": [{"destination": {"host": "helloworld", "subset": "v1"}}],
            "headers": {"response": {"add": {"x-ecp-outage": marker}}}
        }]}
    }))
}

fn subsets() -> DynamicObject {
    object(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
        "metadata": {"name": "outage-routing", "namespace": SAMPLE_NAMESPACE},
        "spec": {"host": "helloworld", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}
    }))
}

fn invalid_virtual_service() -> DynamicObject {
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
async fn sample_restarts(t: &TopologyFile) -> ecp_harness::outage::restarts::RestartCounts {
    let config = t.config();
    let c = client(t, config).await;
    let mut all = Vec::new();
    for app in ["helloworld", t.istio.client_sample()] {
        let pods = checks::pods(&config.name, &c, SAMPLE_NAMESPACE, &format!("app={app}")).await;
        all.extend(pods.unwrap_or_else(|e| panic!("{e}")));
    }
    restart_counts(&all)
}

/// One request from the client pod to helloworld.
async fn mesh_request(c: &kube::Client, pod: &str, container: &str) -> Result<(), String> {
    let url = "http://helloworld.sample:5000/hello";
    let body = checks::exec(c, SAMPLE_NAMESPACE, pod, container, &["curl", "-sS", url]).await?;
    parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
}

async fn ingress_request(ip: std::net::IpAddr) -> Result<(), String> {
    let body = checks::http_get(ip, 80, "/hello").await?;
    parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
}

/// The external cluster's node container (`ecp-<run id>-<cluster>-control-plane`).
async fn external_node(t: &TopologyFile) -> String {
    let d = docker::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let filter = format!("{}={}", ecp_harness::cluster::RUN_ID_LABEL, t.run_id);
    let labelled = docker::list_labelled(&d, &filter).await.unwrap_or_else(|e| panic!("{e}"));
    let run_id = ecp_harness::cluster::RunId::from_existing(t.run_id.clone());
    let node = kind::node::node_name(&run_id, &t.external().name);
    labelled
        .containers
        .iter()
        .find(|c| c.name.trim_start_matches('/').ends_with(&node))
        .map(|c| c.id.clone())
        .unwrap_or_else(|| panic!("no container {node} in run {}", t.run_id))
}

async fn scale(c: &kube::Client, namespace: &str, name: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api.patch_scale(name, &PatchParams::default(), &patch)
        .await
        .unwrap_or_else(|e| panic!("scaling {namespace}/{name} to {replicas}: {e}"));
}

async fn replicas(c: &kube::Client, namespace: &str, name: &str) -> i32 {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let d = api.get(name).await.unwrap_or_else(|e| panic!("reading {namespace}/{name}: {e}"));
    d.spec.replicas.unwrap_or(1)
}

/// Takes the control plane away; returns what restores it.
async fn cut(t: &TopologyFile, variant: Variant) -> i32 {
    let ec = client(t, t.external()).await;
    match variant {
        Variant::Istiod => {
            let n = replicas(&ec, EXTERNAL_ISTIOD, "istiod").await;
            scale(&ec, EXTERNAL_ISTIOD, "istiod", 0).await;
            n
        }
        Variant::Gateway => {
            let n = replicas(&ec, "istio-system", INGRESS_GATEWAY).await;
            scale(&ec, "istio-system", INGRESS_GATEWAY, 0).await;
            n
        }
        Variant::ExternalCluster => {
            let d = docker::connect().await.unwrap_or_else(|e| panic!("{e}"));
            docker::pause(&d, &external_node(t).await).await.unwrap_or_else(|e| panic!("{e}"));
            0
        }
    }
}

async fn restore(t: &TopologyFile, variant: Variant, replicas: i32) {
    match variant {
        Variant::Istiod => {
            scale(&client(t, t.external()).await, EXTERNAL_ISTIOD, "istiod", replicas).await
        }
        Variant::Gateway => {
            scale(&client(t, t.external()).await, "istio-system", INGRESS_GATEWAY, replicas).await
        }
        Variant::ExternalCluster => {
            let d = docker::connect().await.unwrap_or_else(|e| panic!("{e}"));
            docker::unpause(&d, &external_node(t).await).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

async fn outage(variant: Variant) {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let mut figures = OutageFigures::new(variant.name());
    let pods: Api<Pod> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let client_name = t.istio.client_sample();
    let found = checks::pods(&config.name, &c, SAMPLE_NAMESPACE, &format!("app={client_name}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {client_name} pod in {SAMPLE_NAMESPACE}"));
    let client_pod = found.metadata.name.clone().unwrap_or_default();
    // The refused Deployment runs the client's image: it is on the nodes already.
    let image = found
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == client_name))
        .and_then(|c| c.image.clone())
        .unwrap_or_else(|| panic!("the {client_name} pod has no {client_name} container"));
    let svc = Api::<Service>::namespaced(c.clone(), EXTERNAL_ISTIOD).get(INGRESS_GATEWAY).await;
    let ingress = svc
        .ok()
        .as_ref()
        .and_then(checks::load_balancer_ip)
        .unwrap_or_else(|| panic!("the config cluster's ingress has no LoadBalancer IP"));
    ecp_harness::kube::apply::apply_yaml(
        &c,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {PLAIN}\n"),
        "outage-plain.yaml",
        &ecp_harness::kube::apply::ApplyOptions::new(&config.name, FIELD_MANAGER),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let before = sample_restarts(&t).await;

    // The outage, seen from the config cluster: the injector cannot be called.
    let restore_to = cut(&t, variant).await;
    let down = poll(Duration::from_secs(2), 60, || async {
        let created = pods.create(&PostParams::default(), &probe_pod("probe")).await;
        Admission::of_pod(created.as_ref()).expect_injection_unavailable()
    })
    .await;

    let (mesh, host) = tokio::join!(
        steady("client -> helloworld", REQUESTS, PACE, || mesh_request(
            &c,
            &client_pod,
            client_name
        )),
        steady("host -> ingress", REQUESTS, PACE, || ingress_request(ingress)),
    );
    figures.stream(&mesh);
    figures.stream(&host);

    let injected =
        Admission::of_pod(pods.create(&PostParams::default(), &probe_pod("during")).await.as_ref());
    figures.probe("pod in sample", &injected);
    let plain_pods: Api<Pod> = Api::namespaced(c.clone(), PLAIN);
    let plain = Admission::of_pod(
        plain_pods.create(&PostParams::default(), &probe_pod("during")).await.as_ref(),
    );
    figures.probe("pod in a namespace without injection", &plain);
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let vs = Admission::of_object(apply(&vs_api, &routing("during")).await.as_ref());
    figures.probe("VirtualService", &vs);
    let cm: ConfigMap =
        object(json!({"metadata": {"name": "outage-probe"}, "data": {"variant": variant.name()}}));
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let config_map = Admission::of_object(cms.create(&PostParams::default(), &cm).await.as_ref());
    figures.probe("ConfigMap", &config_map);
    let refused: Deployment = object(json!({
        "metadata": {"name": REFUSED},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": REFUSED}},
            "template": {"metadata": {"labels": {"app": REFUSED}},
                "spec": {"containers": [{"name": "app", "image": image, "command": ["sleep", "3600"]}]}}}
    }));
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let _ = deployments.delete(REFUSED, &DeleteParams::default()).await;
    let deployed = deployments.create(&PostParams::default(), &refused).await;
    let during = sample_restarts(&t).await;

    let restored = Instant::now();
    restore(&t, variant, restore_to).await;
    let recoveries = recover(&t, &c, restored).await;
    for r in &recoveries {
        figures.recovery(r);
    }
    if let Some(dir) = ecp_scenarios::figures_dir() {
        figures.write(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("{figures:#?}");

    // Cleanup, then the verdicts (all of them named, not just the first).
    let _ = deployments.delete(REFUSED, &DeleteParams::default()).await;
    let _ = cms.delete("outage-probe", &DeleteParams::default()).await;
    let _ = vs_api.delete("outage-routing", &DeleteParams::default()).await;
    let probes = kube::api::ListParams::default().labels("ecp-outage-probe=true");
    let _ = pods.delete_collection(&DeleteParams::default(), &probes).await;
    let _ = plain_pods.delete_collection(&DeleteParams::default(), &probes).await;

    let verdicts = [
        ("the outage was visible", down),
        ("mesh traffic", mesh.all_succeeded(MIN_REQUESTS)),
        ("ingress traffic", host.all_succeeded(MIN_REQUESTS)),
        ("pod in sample", injected.expect_injection_unavailable()),
        ("pod without injection", plain.expect_admitted()),
        ("VirtualService", vs.expect_validation_closed_or_open()),
        ("ConfigMap", config_map.expect_admitted()),
        ("Deployment accepted", deployed.map(|_| ()).map_err(|e| e.to_string())),
        ("no restart", unchanged(&before, &during)),
        ("recovery", all_recovered(&recoveries)),
    ];
    let failed: Vec<String> = verdicts
        .into_iter()
        .filter_map(|(what, v)| v.err().map(|e| format!("{what}: {e}")))
        .collect();
    assert!(failed.is_empty(), "outage {}: {}", variant.name(), failed.join("\n"));
}

/// The four recoveries after the restore, each bounded by [`RECOVERY_TIMEOUT`].
async fn recover(t: &TopologyFile, c: &kube::Client, restored: Instant) -> Vec<Recovery> {
    let pods: Api<Pod> = Api::namespaced(c.clone(), SAMPLE_NAMESPACE);
    let vs_api: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &virtual_service());
    let dr = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
    ));
    let dr_api: Api<DynamicObject> = Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &dr);
    let attempts = u32::try_from(RECOVERY_TIMEOUT.as_secs()).unwrap_or(300);
    let injection = measure(
        "a new pod injected",
        restored,
        RECOVERY_TIMEOUT,
        poll(Duration::from_secs(1), attempts, || async {
            Admission::of_pod(
                pods.create(&PostParams::default(), &probe_pod("after")).await.as_ref(),
            )
            .expect_injected()
        }),
    )
    .await;
    let dry = PostParams { dry_run: true, ..Default::default() };
    let validation = measure(
        "validation answers",
        restored,
        RECOVERY_TIMEOUT,
        poll(Duration::from_secs(1), attempts, || async {
            match vs_api.create(&dry, &invalid_virtual_service()).await {
                Err(kube::Error::Api(s)) if s.message.contains("denied the request") => Ok(()),
                Err(e) => Err(Admission::of_object::<()>(Err(&e)).to_string()),
                Ok(_) => Err("an invalid VirtualService was admitted".into()),
            }
        }),
    )
    .await;
    let marker = format!("after-{}", restored.elapsed().as_millis());
    let routed = async {
        apply(&dr_api, &subsets()).await.map_err(|e| e.to_string())?;
        apply(&vs_api, &routing(&marker)).await.map_err(|e| e.to_string())?;
        routing_in_effect(t, c, &marker).await
    };
    let routing = measure("a routing change in effect", restored, RECOVERY_TIMEOUT, routed).await;
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
    let refused = measure("the refused Deployment Running", restored, RECOVERY_TIMEOUT, async {
        running.await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
    let _ = dr_api.delete("outage-routing", &DeleteParams::default()).await;
    vec![injection, validation, routing, refused]
}

/// Ten requests in a row all answer v1 with the marker header of the change.
async fn routing_in_effect(t: &TopologyFile, c: &kube::Client, marker: &str) -> Result<(), String> {
    let name = t.istio.client_sample();
    let pods = checks::pods(&t.config().name, c, SAMPLE_NAMESPACE, &format!("app={name}"))
        .await
        .map_err(|e| e.to_string())?;
    let pod = pods.into_iter().find_map(|p| p.metadata.name).ok_or("no client pod")?;
    let url = "http://helloworld.sample:5000/hello";
    let attempts = u32::try_from(RECOVERY_TIMEOUT.as_secs()).unwrap_or(300);
    poll(Duration::from_secs(1), attempts, || async {
        for _ in 0..10 {
            let out =
                checks::exec(c, SAMPLE_NAMESPACE, &pod, name, &["curl", "-sS", "-i", url]).await?;
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
