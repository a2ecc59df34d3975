//! The provider seam on control-plane-only clusters: what the suite does with any
//! provider (preflight, start, clusters reached by URL and kubeconfig, capabilities,
//! the run's removal), written once against the traits and run with the apiserver
//! provider.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use ecp_harness::cluster::{
    ApiserverOptions, ApiserverProvider, ClusterError, Provided, Provider, RunId,
};
use ecp_harness::execute::ClusterAccess;
use ecp_harness::topology::{NetworkMode, Topology};
use kube_support::{assert_gone, labelled};

/// The plan a suite would make for `topology` (providers check it in their preflight).
fn plan_for(topology: &Topology) -> ecp_harness::install::Plan {
    let options = ecp_harness::install::PlanOptions {
        network_mode: topology.network_mode,
        ..ecp_harness::install::PlanOptions::new(
            ecp_harness::version::NEWEST,
            ecp_harness::install::Installer::Istioctl,
            topology.remotes().count(),
        )
    };
    ecp_harness::install::plan(&options).unwrap()
}

/// What the suite does with any provider before installing: preflight, start, then
/// every cluster reached through its kubeconfig at the URL it is given.
async fn start_and_reach<P: Provider>(provider: &P, topology: &Topology) -> P::Handle {
    let problems = provider.preflight(&plan_for(topology)).await;
    assert!(
        problems.is_empty(),
        "{} preflight (run via `cargo xtask test`): {problems:?}",
        provider.name()
    );
    let handle = provider
        .start(topology)
        .await
        .unwrap_or_else(|e| panic!("starting {} clusters: {e}", provider.name()));
    let clusters = handle.clusters();
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let wanted: Vec<&str> = topology.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, wanted, "clusters in topology order");
    for c in &clusters {
        assert!(c.server.starts_with("https://"), "{c:?}");
        assert!(c.peer_server.starts_with("https://"), "{c:?}");
        let kubeconfig = kube::config::Kubeconfig::read_from(&c.kubeconfig).unwrap();
        let named = kubeconfig.clusters[0].cluster.as_ref().and_then(|k| k.server.clone());
        assert_eq!(named.as_deref(), Some(c.server.as_str()), "the kubeconfig names the URL");
        let access = ClusterAccess::connect(c).await.unwrap();
        access.client.apiserver_version().await.unwrap_or_else(|e| panic!("{}: {e}", c.server));
        assert_eq!(access.api_server.as_deref(), Some(c.peer_server.as_str()));
    }
    handle
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apiserver_provider_gives_reachable_clusters_and_removes_them_on_drop() {
    let topology = Topology::new(1, NetworkMode::default()).unwrap();
    let provider = ApiserverProvider::default();
    assert_eq!(provider.name(), "apiserver");
    let handle = start_and_reach(&provider, &topology).await;
    let run_id = handle.run().id().clone();

    // Host and peers reach a cluster at the same address on the internal network.
    for c in Provided::clusters(&handle) {
        assert_eq!(c.server, c.peer_server);
        let addr: std::net::SocketAddr = c.server.trim_start_matches("https://").parse().unwrap();
        assert_eq!(addr.port(), 6443);
    }

    let caps = handle.capabilities();
    assert!(!caps.load_images && !caps.install_load_balancer, "{caps:?}");
    assert!(caps.node_logs && caps.network_faults, "{caps:?}");
    assert_eq!(caps.missing().len(), 2, "{:?}", caps.missing());
    let err = handle.load_images(&["registry.example/none:1".to_string()]).await.unwrap_err();
    assert!(matches!(err, ClusterError::Unsupported { .. }), "{err}");
    let err = handle.install_load_balancer().await.unwrap_err();
    assert!(matches!(err, ClusterError::Unsupported { .. }), "{err}");

    let logs = handle.node_logs("external", 20).await.unwrap();
    assert_eq!(logs.len(), 1, "one node per cluster: {:?}", logs.keys());
    let (node, tail) = logs.iter().next().unwrap();
    assert!(node.contains("external"), "{node}");
    assert!(!tail.is_empty() && tail.lines().count() <= 20, "{tail}");
    assert!(!tail.contains("PRIVATE KEY"));
    assert!(handle.node_logs("nowhere", 20).await.is_err());

    assert_eq!(labelled(&run_id).await.containers.len(), 2);
    drop(handle);
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_taken_out_of_the_handle_without_a_state_dir_is_not_kept_but_removed() {
    let topology = Topology::new(1, NetworkMode::default()).unwrap();
    let run_id = RunId::new();
    let options =
        ApiserverOptions { run_id: Some(run_id.clone()), ..ApiserverOptions::numbered(0) };
    let handle = start_and_reach(&ApiserverProvider::new(options), &topology).await;
    assert_eq!(handle.run().id(), &run_id);
    let run = handle.into_run();
    assert_eq!(labelled(&run_id).await.containers.len(), 2, "taking the run out removes nothing");
    let err = run.keep().unwrap_err().to_string();
    assert!(err.contains("without a state directory"), "{err}");
    assert_gone(&labelled(&run_id).await, &run_id);
}
