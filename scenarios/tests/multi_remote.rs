//! Procedure step 8: with a second remote running helloworld v2, ten requests
//! through the config cluster's ingress gateway show both `v1` and `v2`.
//! `cargo xtask e2e` runs this scenario only with `--remotes 2` or more.

use ecp_harness::execute::checks::{self, Retry};
use ecp_scenarios::{EXTERNAL_ISTIOD, INGRESS_GATEWAY, client, topology};

#[tokio::test]
async fn ten_requests_through_the_ingress_reach_v1_and_v2() {
    let t = topology();
    assert!(
        !t.further_remotes().is_empty(),
        "this scenario needs a second remote: run `cargo xtask e2e --remotes 2`"
    );
    let config = t.config();
    let c = client(&t, config).await;
    checks::ingress_greeting(
        &config.name,
        &c,
        EXTERNAL_ISTIOD,
        INGRESS_GATEWAY,
        80,
        "/hello",
        &["v1".to_string(), "v2".to_string()],
        10,
        Retry::default(),
    )
    .await
    .unwrap();
}
