//! Procedure step 8: with a second remote running helloworld v2, ten requests
//! through the config cluster's ingress gateway show both `v1` and `v2`, and a client
//! on the second remote reaches both too (cross-cluster in-mesh traffic).
//! `cargo xtask e2e` runs this scenario only with `--remotes 2` or more.

use ecp_harness::checks::{self, MeshClient, REQUESTS_FOR_BOTH_VERSIONS, Retry};
use ecp_harness::install::Check;
use ecp_scenarios::{SAMPLE_NAMESPACE, client, pods, topology};

/// The client pod this scenario starts on the second remote (and removes).
const REMOTE_CLIENT: &str = "ecp-remote-client";

#[tokio::test]
async fn ten_requests_through_the_ingress_reach_v1_and_v2() {
    let t = topology();
    assert!(
        !t.further_remotes().is_empty(),
        "this scenario needs a second remote: run `cargo xtask e2e --remotes 2`"
    );
    let config = t.config();
    let c = client(&t, config).await;
    let check = Check::ingress_greeting(&["v1", "v2"], REQUESTS_FOR_BOTH_VERSIONS);
    check.run(&config.name, &c, Retry::default()).await.unwrap();
}

/// Cross-cluster in-mesh traffic: a client started on the second remote gets the v1
/// greeting, which only the config cluster serves, besides its local v2.
#[tokio::test]
async fn a_client_on_the_second_remote_reaches_helloworld_across_clusters() {
    let t = topology();
    let Some(remote) = t.further_remotes().first().copied() else {
        panic!("this scenario needs a second remote: run `cargo xtask e2e --remotes 2`")
    };
    let config = t.config();
    let name = t.istio.client_sample();
    let selector = MeshClient::sample(name).selector;
    let source = checks::pods(&config.name, &client(&t, config).await, SAMPLE_NAMESPACE, &selector)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {name} pod on {}", config.name));
    let copy =
        pods::client_copy(&source, name, REMOTE_CLIENT, true).unwrap_or_else(|e| panic!("{e}"));
    let rc = client(&t, remote).await;
    let outcome = async {
        pods::start(&remote.name, &rc, SAMPLE_NAMESPACE, &copy, true).await?;
        // The copy carries its own `app` label, so the sample client's pods elsewhere
        // never stand in for it.
        let from = MeshClient { selector: format!("app={REMOTE_CLIENT}"), container: name };
        let check = Check::helloworld_greeting(from, &["v1", "v2"], REQUESTS_FOR_BOTH_VERSIONS);
        check.run(&remote.name, &rc, Retry::default()).await.map_err(|e| e.to_string())
    }
    .await;
    let removed = pods::remove(&remote.name, &rc, SAMPLE_NAMESPACE, REMOTE_CLIENT).await;
    outcome.unwrap_or_else(|e| panic!("{e}"));
    removed.unwrap_or_else(|e| panic!("cleanup: {e}"));
}
