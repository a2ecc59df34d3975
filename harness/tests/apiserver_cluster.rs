//! The apiserver provider against real Docker and real Kubernetes binaries. Run with
//! `cargo xtask test`, which provides both; without them these tests fail (they never
//! skip) with a message saying so.

mod kube_support;

use kube_support::{assert_gone, labelled};
use std::collections::BTreeSet;

use ecp_harness::cluster::docker;
use ecp_harness::cluster::{ApiserverOptions, ApiserverRun, RUN_ID_LABEL, RunId};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;

#[tokio::test(flavor = "multi_thread")]
async fn one_cluster_serves_the_api_with_its_own_ca() {
    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let c = &run.clusters()[0];
    assert_eq!(c.name, "c1");
    assert_eq!(c.address.port(), 6443);

    // The admin client verifies the cluster's CA and sees the built-in namespaces.
    let client = c.client().await.unwrap();
    let names: BTreeSet<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains("default") && names.contains("kube-system"), "{names:?}");
    let ready = client.request_text(http::Request::get("/readyz").body(vec![]).unwrap()).await;
    assert_eq!(ready.unwrap(), "ok");

    // Both kubeconfigs name the container's address on the internal network, embed the
    // CA, and never switch verification off.
    for path in [&c.host_kubeconfig, &c.peer_kubeconfig] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(&format!("server: https://{}", c.address)), "{}", path.display());
        assert!(!text.contains("insecure-skip-tls-verify"));
    }

    // A CA other than the cluster's is refused: verification is really on.
    let mut other = kube::config::Kubeconfig::read_from(&c.host_kubeconfig).unwrap();
    let foreign = rcgen::generate_simple_self_signed(vec!["c1".to_string()]).unwrap();
    use base64::Engine;
    other.clusters[0].cluster.as_mut().unwrap().certificate_authority_data =
        Some(base64::engine::general_purpose::STANDARD.encode(foreign.cert.pem()));
    let cfg = kube::Config::from_custom_kubeconfig(other, &Default::default()).await.unwrap();
    let untrusting = kube::Client::try_from(cfg).unwrap();
    let err = Api::<Namespace>::all(untrusting).list(&ListParams::default()).await;
    assert!(err.is_err(), "a client trusting another CA must not connect");

    // Custom resources are served (a kube-apiserver 1.20 built with Go >= 1.18 and
    // the reflect2 it vendors crashes on the first one; the assets patch that).
    custom_resource_round_trip(client).await;

    let run_id = run.run_id().clone();
    assert_eq!(labelled(&run_id).await.containers.len(), 1);
    run.down().await.unwrap();
    assert_gone(&labelled(&run_id).await, &run_id);
}

async fn custom_resource_round_trip(client: kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
    use kube::runtime::wait::{await_condition, conditions};
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probes.ecp.test"},
        "spec": {"group": "ecp.test", "scope": "Namespaced",
                 "names": {"plural": "probes", "singular": "probe", "kind": "Probe"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.expect("create CRD");
    let established = await_condition(crds, "probes.ecp.test", conditions::is_crd_established());
    tokio::time::timeout(std::time::Duration::from_secs(30), established)
        .await
        .expect("established in time")
        .expect("watch");
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("ecp.test", "v1", "Probe"));
    let probes: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let mut probe = DynamicObject::new("p1", &ar);
    probe.data = serde_json::json!({"spec": {"size": 3}});
    probes.create(&PostParams::default(), &probe).await.expect("create custom resource");
    assert_eq!(probes.get("p1").await.expect("get custom resource").data["spec"]["size"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn clusters_of_a_run_share_one_internal_network_and_labels() {
    let run = ApiserverRun::start(ApiserverOptions::numbered(2)).await.unwrap();
    let d = docker::connect().await.unwrap();
    let net = d.inspect_network(run.network(), None).await.unwrap();
    assert_eq!(net.internal, Some(true), "the run's network must be --internal");
    assert_eq!(
        net.labels.unwrap_or_default().get(RUN_ID_LABEL).map(String::as_str),
        Some(run.run_id().as_str())
    );

    let subnet: ipnet::IpNet =
        net.ipam.unwrap().config.unwrap()[0].subnet.clone().unwrap().parse().unwrap();
    for c in run.clusters() {
        assert!(subnet.contains(&c.address.ip()), "{} outside {subnet}", c.address);
        // The container is attached to the internal network and to nothing else.
        let info = d.inspect_container(c.container_id(), None).await.unwrap();
        let networks: Vec<String> =
            info.network_settings.unwrap().networks.unwrap().into_keys().collect();
        assert_eq!(networks, [run.network().to_string()]);
        let labels = info.config.unwrap().labels.unwrap();
        assert_eq!(labels.get(RUN_ID_LABEL).map(String::as_str), Some(run.run_id().as_str()));
        // Each cluster has its own CA: the other cluster's client cannot be used.
        assert!(c.client().await.unwrap().apiserver_version().await.is_ok());
    }
    let (a, b) = (&run.clusters()[0], &run.clusters()[1]);
    // Peers reach each other at the address of the peer kubeconfig.
    let peer_server = std::fs::read_to_string(&b.peer_kubeconfig).unwrap();
    assert!(peer_server.contains(&format!("server: https://{}", b.address)));
    let (ip, port) = (b.address.ip().to_string(), b.address.port().to_string());
    // busybox nc: connect (bounded by -w), send nothing, exit 0 when connected.
    let probe = format!("nc -w 3 {ip} {port} </dev/null");
    let (code, out) = a.exec(&["sh", "-c", &probe]).await.unwrap();
    assert_eq!(code, 0, "{} cannot reach {} on the network: {out}", a.name, b.address);
    // And a port nothing listens on is refused: the check can fail.
    let closed = format!("nc -w 3 {ip} 6444 </dev/null");
    assert_ne!(a.exec(&["sh", "-c", &closed]).await.unwrap().0, 0);
    assert_ne!(a.address, b.address);
    assert_ne!(a.ca_pem, b.ca_pem);
    assert_ne!(a.service_cidr, b.service_cidr);

    let run_id = run.run_id().clone();
    drop(run);
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_test_leaves_nothing_behind() {
    let run_id = RunId::new();
    let opts = ApiserverOptions { run_id: Some(run_id.clone()), ..ApiserverOptions::numbered(1) };
    let task = tokio::spawn(async move {
        let run = ApiserverRun::start(opts).await.unwrap();
        assert_eq!(run.clusters().len(), 1);
        panic!("test failure while holding the run");
    });
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_start_leaves_nothing_behind() {
    let run_id = RunId::new();
    let opts = ApiserverOptions {
        run_id: Some(run_id.clone()),
        // No API server becomes ready within a millisecond.
        ready_timeout: std::time::Duration::from_millis(1),
        ..ApiserverOptions::numbered(2)
    };
    let err = ApiserverRun::start(opts).await.unwrap_err().to_string();
    assert!(err.contains("not ready"), "{err}");
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_start_leaves_nothing_behind() {
    let run_id = RunId::new();
    let opts = ApiserverOptions { run_id: Some(run_id.clone()), ..ApiserverOptions::numbered(1) };
    // Cancel the start as soon as the run's network exists.
    // Boxed, so that `drop(start)` below really drops the future.
    let mut start = Box::pin(ApiserverRun::start(opts));
    let d = docker::connect().await.unwrap();
    let filter = docker::run_filter(&run_id);
    let cancelled = loop {
        tokio::select! {
            res = start.as_mut() => break res.map(|_| false).unwrap(),
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                if !docker::list_labelled(&d, &filter).await.unwrap().networks.is_empty() {
                    break true;
                }
            }
        }
    };
    assert!(cancelled, "the start finished before it could be cancelled");
    drop(start);
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_cluster_stops_its_api_and_logs_stay_readable() {
    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let c = &run.clusters()[0];
    let client = c.client().await.unwrap();
    assert!(client.apiserver_version().await.is_ok());
    let logs = c.logs().await.unwrap();
    assert!(logs.contains("starting etcd, kube-apiserver"), "{logs}");
    assert!(!logs.contains("PRIVATE KEY"));

    c.kill().await.unwrap();
    assert!(c.client().await.unwrap().apiserver_version().await.is_err());
    let run_id = run.run_id().clone();
    drop(run);
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnected_cluster_is_unreachable() {
    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let c = &run.clusters()[0];
    c.disconnect().await.unwrap();
    let d = docker::connect().await.unwrap();
    let info = d.inspect_container(c.container_id(), None).await.unwrap();
    let networks = info.network_settings.unwrap().networks.unwrap_or_default();
    assert!(networks.is_empty(), "still attached to {:?}", networks.keys());
    let client = c.client().await.unwrap();
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(5), client.apiserver_version()).await;
    assert!(!matches!(answer, Ok(Ok(_))), "a disconnected API server answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runs_leftovers_are_removed_by_label() {
    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let run_id = run.run_id().clone();
    // What a killed process leaves: the handle never drops.
    std::mem::forget(run);
    let left = labelled(&run_id).await;
    assert_eq!((left.containers.len(), left.networks.len()), (1, 1));
    // What `cargo xtask down --run-id` does.
    let d = docker::connect().await.unwrap();
    let removed = docker::remove_labelled(&d, &docker::run_filter(&run_id)).await.unwrap();
    assert_eq!((removed.containers.len(), removed.networks.len()), (1, 1));
    assert_gone(&labelled(&run_id).await, &run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_manager_runs_the_promised_controllers() {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
    use kube::api::{DeleteParams, PostParams};
    use kube::runtime::{WatchStreamExt, wait::await_condition, watcher};
    use std::time::Duration;
    const LIMIT: Duration = Duration::from_secs(60);

    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let client = run.clusters()[0].client().await.unwrap();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ctl"}
    }))
    .unwrap();
    ns_api.create(&PostParams::default(), &ns).await.unwrap();

    // root-ca-cert-publisher: every namespace gets the cluster CA.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ctl");
    let root_ca = await_condition(cms, "kube-root-ca.crt", |c: Option<&ConfigMap>| c.is_some());
    let root_ca = tokio::time::timeout(LIMIT, root_ca).await.unwrap().unwrap().unwrap();
    let ca = root_ca.data.unwrap_or_default().remove("ca.crt").unwrap_or_default();
    assert_eq!(ca.trim(), run.clusters()[0].ca_pem.trim());

    // serviceaccount + serviceaccount-token: a token Secret gets its token.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "ctl");
    let has_default = await_condition(sas, "default", |s: Option<&_>| s.is_some());
    tokio::time::timeout(LIMIT, has_default).await.unwrap().unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ctl");
    let token: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "default-token",
                     "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &token).await.unwrap();
    let filled = await_condition(secrets, "default-token", |s: Option<&Secret>| {
        s.and_then(|s| s.data.as_ref()).is_some_and(|d| d.contains_key("token"))
    });
    tokio::time::timeout(LIMIT, filled).await.unwrap().unwrap();

    // deployment -> replicaset -> pod (Pending: there is no kubelet).
    let deploy: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "none.invalid/web"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "ctl")
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ctl");
    let mut stream =
        watcher(pods, watcher::Config::default().labels("app=web")).applied_objects().boxed();
    let pod = tokio::time::timeout(LIMIT, stream.next()).await.unwrap().unwrap().unwrap();
    let owner = pod.metadata.owner_references.unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("ReplicaSet"));

    // namespace: deletion finishes (its content removed, the finalizer cleared).
    ns_api.delete("ctl", &DeleteParams::default()).await.unwrap();
    let gone = await_condition(ns_api, "ctl", |n: Option<&Namespace>| n.is_none());
    tokio::time::timeout(LIMIT, gone).await.unwrap().unwrap();
}

/// The controller manager exits when the API server is slow to become healthy (1.20
/// waits only 10 s): the entry script restarts it, so a killed one comes back and a
/// new namespace still gets its `default` service account.
#[tokio::test(flavor = "multi_thread")]
async fn a_controller_manager_that_exits_is_restarted() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::PostParams;
    use kube::runtime::wait::await_condition;
    use std::time::Duration;

    let run = ApiserverRun::start(ApiserverOptions::numbered(1)).await.unwrap();
    let cluster = &run.clusters()[0];
    let (code, out) =
        cluster.exec(&["busybox", "killall", "kube-controller-manager"]).await.unwrap();
    assert_eq!(code, 0, "killall: {out}");
    // The restart is logged by the entry script (bounded: 30 s).
    let mut restarted = false;
    for _ in 0..60 {
        if cluster.logs().await.unwrap().contains("kube-controller-manager exited; restart 1 of 5")
        {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(restarted, "no restart logged:\n{}", cluster.logs().await.unwrap());
    let client = cluster.client().await.unwrap();
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "after-restart"}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client, "after-restart");
    let has_default = await_condition(sas, "default", |s: Option<&ServiceAccount>| s.is_some());
    tokio::time::timeout(Duration::from_secs(60), has_default)
        .await
        .expect("the restarted controller manager makes the default service account")
        .unwrap();
}
