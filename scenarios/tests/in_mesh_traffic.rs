//! Procedure step 6: from the client sample, `curl helloworld.sample:5000/hello`
//! answers `Hello version: v1, instance: ...`.

use ecp_harness::execute::checks::{self, Retry};
use ecp_scenarios::{SAMPLE_NAMESPACE, client, topology};

#[tokio::test]
async fn the_client_reaches_helloworld_v1() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let name = t.istio.client_sample();
    checks::exec_greeting(
        &config.name,
        &c,
        SAMPLE_NAMESPACE,
        &format!("app={name}"),
        name,
        "http://helloworld.sample:5000/hello",
        &["v1".to_string()],
        1,
        Retry::default(),
    )
    .await
    .unwrap();
}
