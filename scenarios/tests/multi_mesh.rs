//! Several meshes on one external cluster (procedure.md "Several meshes on one
//! external cluster"), run with `--meshes 2`: each mesh's sample pods are injected by
//! its own istiod (its cluster ID, its xDS port, its own root certificate, different
//! from the other mesh's); traffic inside each mesh works; a client of one mesh is
//! refused by the other's STRICT mutual TLS (no shared trust); and with one mesh's
//! istiod scaled to zero the other still injects and serves, while the first refuses
//! new pods in injected namespaces as the outage scenario describes. After the
//! restore both are whole.

use std::time::Duration;

use ecp_harness::checks::mtls::{STRICT_POLICY, strict_peer_authentication};
use ecp_harness::checks::provenance::{pem_certificates, proxy_provenance_problems_at};
use ecp_harness::checks::{self, MeshClient, Retry, parse_greeting};
use ecp_harness::install::{Check, WaitCondition};
use ecp_harness::kube::apply::{ApplyOptions, apply_yaml};
use ecp_harness::mesh::Mesh;
use ecp_harness::outage::admission::Admission;
use ecp_harness::outage::recovery::poll;
use ecp_harness::topology::ClusterSpec;
use ecp_scenarios::{SAMPLE_NAMESPACE, TopologyFile, client, topology};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

const FIELD_MANAGER: &str = "ecp-multi-mesh";
/// The LoadBalancer Service exposing a mesh's helloworld to the other mesh.
const EXPOSED: &str = "helloworld-exposed";
/// The host the other mesh's client asks for (a ServiceEntry in its `sample`).
const CROSS_HOST: &str = "helloworld.other-mesh.test";
/// Polls of at most 2 minutes: policies reaching proxies, istiod going and coming.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
const POLL_ATTEMPTS: u32 = 60;

/// The two meshes the scenario compares, with their config clusters.
fn two_meshes(t: &TopologyFile) -> [(Mesh, &ClusterSpec); 2] {
    let meshes = t.meshes();
    assert!(meshes.len() >= 2, "multi_mesh needs --meshes 2 (this run has {})", meshes.len());
    [meshes[0], meshes[1]].map(|m| {
        let config = t.config_of(m).unwrap_or_else(|| panic!("{m} has no config cluster"));
        (m, config)
    })
}

/// Each mesh's sample pods carry its own cluster ID and xDS port, and its sample
/// namespace its own root certificate: the two roots differ.
#[tokio::test]
async fn each_mesh_is_injected_by_its_own_istiod_with_its_own_root() {
    let t = topology();
    let mut roots = Vec::new();
    let mut problems = Vec::new();
    for (mesh, config) in two_meshes(&t) {
        let c = client(&t, config).await;
        let pods = checks::pods(&config.name, &c, SAMPLE_NAMESPACE, "app=helloworld")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!pods.is_empty(), "{mesh}: no helloworld pod on {}", config.name);
        for pod in &pods {
            let found = proxy_provenance_problems_at(
                pod,
                &config.cluster_id,
                t.external_addr,
                mesh.xds_port(),
            );
            problems.extend(found.into_iter().map(|p| format!("{mesh}: {p}")));
        }
        roots.push(root_certificate(&config.name, &c).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_ne!(
        roots[0], roots[1],
        "the meshes share a root certificate: they would trust each other"
    );
}

#[tokio::test]
async fn traffic_inside_each_mesh_works() {
    let t = topology();
    for (_, config) in two_meshes(&t) {
        greeting_in(&t, config).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Mesh B's helloworld, exposed on a LoadBalancer and under STRICT mutual TLS,
/// answers B's own client through the same ServiceEntry and DestinationRule
/// (`ISTIO_MUTUAL`) that A's client is refused through: A's certificate chains to a
/// root B does not trust.
#[tokio::test]
async fn a_client_of_one_mesh_is_refused_by_the_others_mutual_tls() {
    let t = topology();
    let [(_, a), (mesh_b, b)] = two_meshes(&t);
    let (ca, cb) = (client(&t, a).await, client(&t, b).await);
    let outcome = cross_mesh(&t, (a, &ca), (b, &cb)).await;
    let mut cleanup = Vec::new();
    for (cluster, c) in [(a, &ca), (b, &cb)] {
        cleanup.extend(remove_cross_mesh_objects(&cluster.name, c).await.err());
    }
    outcome.unwrap_or_else(|e| panic!("{mesh_b}: {e}"));
    assert!(cleanup.is_empty(), "cleanup: {}", cleanup.join("; "));
}

/// With mesh A's istiod at zero: A refuses new pods in `sample` as injection
/// unavailable; B admits them with its sidecar and still serves. After the
/// restore, A injects again and both serve.
#[tokio::test]
async fn one_meshs_outage_leaves_the_other_whole() {
    let t = topology();
    let [(mesh_a, a), (mesh_b, b)] = two_meshes(&t);
    let external = client(&t, t.external()).await;
    let (ca, cb) = (client(&t, a).await, client(&t, b).await);
    let ns = mesh_a.namespace();
    let replicas = replicas(&external, &ns).await.unwrap_or_else(|e| panic!("{e}"));
    scale(&external, &ns, 0).await.unwrap_or_else(|e| panic!("{e}"));
    let during = async {
        // Until A's injector is unreachable (its istiod's pods gone).
        poll(POLL_INTERVAL, POLL_ATTEMPTS, || async {
            probe(&ca).await.expect_injection_unavailable()
        })
        .await
        .map_err(|e| format!("{mesh_a}: new pods are not refused: {e}"))?;
        probe(&cb)
            .await
            .expect_injected()
            .map_err(|e| format!("{mesh_b} during {mesh_a}'s outage: {e}"))?;
        greeting_in(&t, b).await.map_err(|e| format!("{mesh_b} during {mesh_a}'s outage: {e}"))
    }
    .await;
    let restored = poll(POLL_INTERVAL, POLL_ATTEMPTS, || scale(&external, &ns, replicas)).await;
    let after = async {
        restored?;
        poll(POLL_INTERVAL, POLL_ATTEMPTS, || async { probe(&ca).await.expect_injected() })
            .await
            .map_err(|e| format!("{mesh_a} after the restore: {e}"))?;
        for config in [a, b] {
            greeting_in(&t, config).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    during.unwrap_or_else(|e| panic!("{e}"));
    after.unwrap_or_else(|e| panic!("{e}"));
}

/// `root-cert.pem` of `istio-ca-root-cert` in `sample`.
async fn root_certificate(cluster: &str, c: &kube::Client) -> String {
    let map = Api::<ConfigMap>::namespaced(c.clone(), SAMPLE_NAMESPACE)
        .get("istio-ca-root-cert")
        .await
        .unwrap_or_else(|e| panic!("cluster {cluster}: reading istio-ca-root-cert: {e}"));
    let root = map.data.and_then(|d| d.get("root-cert.pem").cloned()).unwrap_or_default();
    assert!(!pem_certificates(&root).is_empty(), "cluster {cluster}: no root certificate");
    root
}

/// The guide's in-mesh greeting on `config`.
async fn greeting_in(t: &TopologyFile, config: &ClusterSpec) -> Result<(), String> {
    let c = t.client(&config.name).await.map_err(|e| e.to_string())?;
    let check = Check::helloworld_greeting(MeshClient::sample(t.istio.client_sample()), &["v1"], 1);
    check.run(&config.name, &c, Retry::default()).await.map_err(|e| e.to_string())
}

/// A's and B's clients ask B's exposed helloworld under B's STRICT policy.
async fn cross_mesh(
    t: &TopologyFile,
    (a, ca): (&ClusterSpec, &kube::Client),
    (b, cb): (&ClusterSpec, &kube::Client),
) -> Result<(), String> {
    let expose = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {EXPOSED}\nspec:\n  type: LoadBalancer\n  \
         selector:\n    app: helloworld\n  ports:\n  - name: http\n    port: 5000\n"
    );
    apply(&b.name, cb, &expose).await?;
    let policy = strict_peer_authentication(SAMPLE_NAMESPACE);
    apply(&b.name, cb, &serde_json::to_string(&policy).map_err(|e| e.to_string())?).await?;
    let condition = WaitCondition::load_balancer_ip(SAMPLE_NAMESPACE, EXPOSED);
    let ip = condition
        .wait(&b.name, cb, Duration::from_secs(180))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no LoadBalancer IP on the exposed helloworld")?;
    for (cluster, c) in [(a, ca), (b, cb)] {
        apply(&cluster.name, c, &cross_mesh_route(&ip.to_string())).await?;
    }
    let url = format!("http://{CROSS_HOST}:5000/hello");
    poll(POLL_INTERVAL, POLL_ATTEMPTS, || ask(t, b, cb, &url))
        .await
        .map_err(|e| format!("its own client never reached the exposed helloworld: {e}"))?;
    match ask(t, a, ca, &url).await {
        Ok(()) => Err(format!("a client of {} reached it: the meshes share trust", a.name)),
        Err(_) => Ok(()),
    }
}

/// A ServiceEntry for [`CROSS_HOST`] at `ip` and a DestinationRule originating
/// Istio mutual TLS to it.
fn cross_mesh_route(ip: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: other-mesh\n\
         spec:\n  hosts: [\"{CROSS_HOST}\"]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  \
         ports:\n  - {{number: 5000, name: http, protocol: HTTP}}\n  endpoints:\n  - address: \"{ip}\"\n\
         ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: other-mesh\n\
         spec:\n  host: \"{CROSS_HOST}\"\n  trafficPolicy:\n    tls: {{mode: ISTIO_MUTUAL}}\n"
    )
}

/// The client sample on `cluster` asks `url` once: a greeting, or why not.
async fn ask(
    t: &TopologyFile,
    cluster: &ClusterSpec,
    c: &kube::Client,
    url: &str,
) -> Result<(), String> {
    let name = t.istio.client_sample();
    let sample = MeshClient::sample(name);
    let pods = checks::pods(&cluster.name, c, SAMPLE_NAMESPACE, &sample.selector)
        .await
        .map_err(|e| e.to_string())?;
    let pod = pods.first().and_then(|p| p.metadata.name.clone()).ok_or("no client pod")?;
    let body =
        checks::exec(c, SAMPLE_NAMESPACE, &pod, name, &["curl", "-sS", "--max-time", "10", url])
            .await?;
    parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
}

async fn remove_cross_mesh_objects(cluster: &str, c: &kube::Client) -> Result<(), String> {
    let dp = DeleteParams::default();
    let gone = |r: Result<(), kube::Error>| match r {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!("cluster {cluster}: {e}")),
    };
    gone(
        Api::<Service>::namespaced(c.clone(), SAMPLE_NAMESPACE)
            .delete(EXPOSED, &dp)
            .await
            .map(|_| ()),
    )?;
    for (group, version, kind, name) in [
        ("security.istio.io", "v1beta1", "PeerAuthentication", STRICT_POLICY),
        ("networking.istio.io", "v1", "ServiceEntry", "other-mesh"),
        ("networking.istio.io", "v1", "DestinationRule", "other-mesh"),
    ] {
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            c.clone(),
            SAMPLE_NAMESPACE,
            &kube::core::ApiResource::from_gvk(&gvk),
        );
        gone(api.delete(name, &dp).await.map(|_| ()))?;
    }
    Ok(())
}

async fn apply(cluster: &str, c: &kube::Client, yaml: &str) -> Result<(), String> {
    let options = ApplyOptions::new(cluster, FIELD_MANAGER).namespace(SAMPLE_NAMESPACE);
    apply_yaml(c, yaml, "multi-mesh.yaml", &options).await.map(|_| ()).map_err(|e| e.to_string())
}

/// A pod created in `sample` as a dry run (the injector has no side effects, so it
/// still runs): admitted with `istio-proxy`, or refused.
async fn probe(c: &kube::Client) -> Admission {
    let pod: Pod = match serde_json::from_value(serde_json::json!({
        "metadata": {"generateName": "ecp-multi-mesh-probe-"},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/probe:1"}]}
    })) {
        Ok(pod) => pod,
        Err(e) => panic!("the probe pod: {e}"),
    };
    let params = PostParams { dry_run: true, ..PostParams::default() };
    let created = Api::<Pod>::namespaced(c.clone(), SAMPLE_NAMESPACE).create(&params, &pod).await;
    Admission::of_pod(created.as_ref())
}

async fn scale(c: &kube::Client, namespace: &str, replicas: i32) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
    api.patch_scale("istiod", &PatchParams::default(), &patch)
        .await
        .map(|_| ())
        .map_err(|e| format!("scaling {namespace}/istiod to {replicas}: {e}"))
}

async fn replicas(c: &kube::Client, namespace: &str) -> Result<i32, String> {
    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
    let d = api.get("istiod").await.map_err(|e| format!("reading {namespace}/istiod: {e}"))?;
    Ok(d.spec.replicas.unwrap_or(1))
}
