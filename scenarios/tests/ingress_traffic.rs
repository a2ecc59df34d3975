//! Procedure step 7: from outside the mesh, `http://$INGRESS_IP:80/hello` through the
//! config cluster's ingress gateway (in `external-istiod`) answers the v1 greeting.
//! The ingress IP is a MetalLB address on the kind network of this machine.

use ecp_harness::checks::{self, Retry};
use ecp_scenarios::{EXTERNAL_ISTIOD, INGRESS_GATEWAY, client, topology};

#[tokio::test]
async fn the_ingress_gateway_serves_helloworld_v1() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    checks::ingress_greeting(
        &config.name,
        &c,
        EXTERNAL_ISTIOD,
        INGRESS_GATEWAY,
        80,
        "/hello",
        &["v1".to_string()],
        1,
        Retry::default(),
    )
    .await
    .unwrap();
}
