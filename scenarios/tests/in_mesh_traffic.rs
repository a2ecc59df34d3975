//! Procedure step 6: from the client sample, `curl helloworld.sample:5000/hello`
//! answers `Hello version: v1, instance: ...` (curl's exit status and stderr are
//! checked). Then mutual TLS is proven, not assumed: under a STRICT
//! `PeerAuthentication` in `sample` the injected client still gets the greeting and a
//! client pod without a sidecar, which got it before the policy, is refused.

use std::time::Duration;

use ecp_harness::checks::mtls::{STRICT_POLICY, plaintext_refused, strict_peer_authentication};
use ecp_harness::checks::{self, HELLOWORLD_URL, MeshClient, Retry, parse_greeting};
use ecp_harness::install::Check;
use ecp_harness::outage::recovery::poll;
use ecp_scenarios::{SAMPLE_NAMESPACE, TopologyFile, client, pods, topology};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

/// The client pod without a sidecar.
const PLAINTEXT: &str = "ecp-plaintext-client";
/// Until the policy reaches helloworld's proxy: 60 tries, 2 s apart.
const POLICY_TRIES: u32 = 60;

#[tokio::test]
async fn the_client_reaches_helloworld_v1() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let check = Check::helloworld_greeting(MeshClient::sample(t.istio.client_sample()), &["v1"], 1);
    check.run(&config.name, &c, Retry::default()).await.unwrap();
}

#[tokio::test]
async fn strict_mutual_tls_admits_the_injected_client_and_refuses_plaintext() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let gvk = GroupVersionKind::gvk("security.istio.io", "v1beta1", "PeerAuthentication");
    let policies: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), SAMPLE_NAMESPACE, &ApiResource::from_gvk(&gvk));

    let outcome = under_strict(&t, &c, &policies).await;
    // Removed whatever happened: a STRICT policy left behind would break later scenarios.
    let policy = match policies.delete(STRICT_POLICY, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!("removing the policy: {e}")),
    };
    let pod = pods::remove(&config.name, &c, SAMPLE_NAMESPACE, PLAINTEXT).await;
    outcome.unwrap_or_else(|e| panic!("{e}"));
    policy.and(pod).unwrap_or_else(|e| panic!("cleanup: {e}"));
}

async fn under_strict(
    t: &TopologyFile,
    c: &kube::Client,
    policies: &Api<DynamicObject>,
) -> Result<(), String> {
    let config = t.config();
    let name = t.istio.client_sample();
    let sample_client = MeshClient::sample(name);
    let source = checks::pods(&config.name, c, SAMPLE_NAMESPACE, &sample_client.selector)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no {name} pod in {SAMPLE_NAMESPACE}"))?;
    let plaintext = pods::client_copy(&source, name, PLAINTEXT, false)?;
    pods::start(&config.name, c, SAMPLE_NAMESPACE, &plaintext, false).await?;
    let request =
        || checks::exec(c, SAMPLE_NAMESPACE, PLAINTEXT, name, &["curl", "-sS", HELLOWORLD_URL]);

    // Before the policy the plaintext client is answered: a refusal later is the policy's.
    poll(Duration::from_secs(2), POLICY_TRIES, || async {
        let body = request().await?;
        parse_greeting(&body).map(|_| ()).ok_or_else(|| format!("no greeting: {body:.200}"))
    })
    .await
    .map_err(|e| format!("without a policy, the client without a sidecar: {e}"))?;

    let policy: DynamicObject =
        serde_json::from_value(strict_peer_authentication(SAMPLE_NAMESPACE))
            .map_err(|e| e.to_string())?;
    policies
        .patch(STRICT_POLICY, &PatchParams::apply("ecp-scenarios").force(), &Patch::Apply(&policy))
        .await
        .map_err(|e| format!("applying the STRICT policy: {e}"))?;
    // The external istiod pushes the policy to helloworld's proxy: bounded polling.
    poll(Duration::from_secs(2), POLICY_TRIES, || async { plaintext_refused(&request().await) })
        .await
        .map_err(|e| format!("under STRICT, the client without a sidecar: {e}"))?;
    Check::helloworld_greeting(sample_client, &["v1"], 1)
        .run(&config.name, c, Retry::default())
        .await
        .map_err(|e| format!("under STRICT, the injected client: {e}"))
}
