//! Procedure steps 6 and 8: workloads in `sample` are injected by the external
//! istiod: 2/2 Running with `istio-proxy` (a container up to 1.26, a native sidecar
//! from 1.27 on 1.33+ kubelets).

use ecp_harness::execute::checks;
use ecp_scenarios::{SAMPLE_NAMESPACE, TopologyFile, client, topology};

#[tokio::test]
async fn helloworld_pods_are_2_of_2_with_istio_proxy_on_every_remote() {
    let t = topology();
    for remote in t.remotes() {
        let c = client(&t, remote).await;
        let version = TopologyFile::helloworld_version(remote);
        let selector = format!("app=helloworld,version={version}");
        checks::pods_ready(&remote.name, &c, SAMPLE_NAMESPACE, &selector, 2, true).await.unwrap();
    }
}

#[tokio::test]
async fn the_client_pod_is_2_of_2_with_istio_proxy() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let selector = format!("app={}", t.istio.client_sample());
    checks::pods_ready(&config.name, &c, SAMPLE_NAMESPACE, &selector, 2, true).await.unwrap();
}
