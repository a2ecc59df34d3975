//! Procedure step 7: from outside the mesh, `http://$INGRESS_IP:80/hello` through the
//! config cluster's ingress gateway (in `external-istiod`) answers the v1 greeting.
//! The ingress IP is a MetalLB address on the kind network of this machine.

use ecp_harness::checks::Retry;
use ecp_harness::install::Check;
use ecp_scenarios::{client, topology};

#[tokio::test]
async fn the_ingress_gateway_serves_helloworld_v1() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let check = Check::ingress_greeting(&["v1"], 1);
    check.run(&config.name, &c, Retry::default()).await.unwrap();
}
