//! Procedure steps 6 and 8: workloads in `sample` are injected by the external
//! istiod: 2/2 Running with `istio-proxy` (a container up to 1.26, a native sidecar
//! from 1.27 on 1.33+ kubelets), and their proxies name the external istiod.

use ecp_harness::checks::provenance::{pem_certificates, proxy_provenance_problems};
use ecp_harness::checks::{self, MeshClient};
use ecp_harness::install::WaitCondition;
use ecp_harness::outage::restarts::{none_restarted, restart_counts};
use ecp_harness::topology::Role;
use ecp_scenarios::{SAMPLE_NAMESPACE, TopologyFile, client, topology};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

#[tokio::test]
async fn helloworld_pods_are_2_of_2_with_istio_proxy_on_every_remote() {
    let t = topology();
    for remote in t.remotes() {
        let c = client(&t, remote).await;
        let version = TopologyFile::helloworld_version(remote);
        WaitCondition::helloworld_pods(version).check(&remote.name, &c).await.unwrap();
    }
}

#[tokio::test]
async fn the_client_pod_is_2_of_2_with_istio_proxy() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let pods = WaitCondition::client_pods(t.istio.client_sample());
    pods.check(&config.name, &c).await.unwrap();
}

/// The injected proxies are the external istiod's: each names its remote's cluster ID
/// and the external address on 15012 for discovery and CA; the injected namespace has
/// the mesh root (`istio-ca-root-cert`); no container has restarted.
#[tokio::test]
async fn the_proxies_are_the_external_istiods_and_none_restarted() {
    let t = topology();
    let mut problems = Vec::new();
    for remote in t.remotes() {
        let c = client(&t, remote).await;
        let mut selectors = vec!["app=helloworld".to_string()];
        if remote.role == Role::Config {
            selectors.push(MeshClient::sample(t.istio.client_sample()).selector);
        }
        let mut pods = Vec::new();
        for selector in &selectors {
            let found = checks::pods(&remote.name, &c, SAMPLE_NAMESPACE, selector).await;
            pods.extend(found.unwrap_or_else(|e| panic!("{e}")));
        }
        assert!(!pods.is_empty(), "cluster {}: no sample pod", remote.name);
        for pod in &pods {
            let found = proxy_provenance_problems(pod, &remote.cluster_id, t.external_addr);
            problems.extend(found.into_iter().map(|p| format!("cluster {}: {p}", remote.name)));
        }
        if let Err(e) = none_restarted(&restart_counts(&pods)) {
            problems.push(format!("cluster {}: {e}", remote.name));
        }
        let roots = Api::<ConfigMap>::namespaced(c.clone(), SAMPLE_NAMESPACE)
            .get_opt("istio-ca-root-cert")
            .await
            .unwrap_or_else(|e| panic!("cluster {}: reading istio-ca-root-cert: {e}", remote.name));
        let root = roots.and_then(|m| m.data).and_then(|d| d.get("root-cert.pem").cloned());
        if pem_certificates(root.as_deref().unwrap_or_default()).is_empty() {
            problems.push(format!(
                "cluster {}: {SAMPLE_NAMESPACE} has no istio-ca-root-cert with a root certificate",
                remote.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
