//! Faults: a cluster killed, or cut from the network, in the middle of an operation.
//! Every operation ends with a clear error within its configured timeout, and a
//! diagnostics bundle is still written for every cluster.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::{Duration, Instant};

use ecp_harness::diag::{self, ClusterInput};
use ecp_harness::fault::{self, Outage};
use ecp_harness::kube::apply::{ApplyOptions, apply_yaml};
use ecp_harness::kube::wait::{self, WaitCause, WaitError};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams};
use kube_support::{FIELD_MANAGER, apply, start};

const FLAG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flag, namespace: default}\ndata: {round: \"0\"}\n";
const MORE: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: more, namespace: default}\ndata: {a: b}\n";
/// Slack for scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn never(cm: Option<&ConfigMap>) -> bool {
    cm.and_then(|c| c.data.as_ref()).is_some_and(|d| d.contains_key("never"))
}

/// Starts a wait that cannot succeed, lets it get past its initial list, and returns it.
fn waiting(
    api: Api<ConfigMap>,
    cluster: &'static str,
    timeout: Duration,
) -> tokio::task::JoinHandle<(Result<ConfigMap, WaitError>, Instant)> {
    tokio::spawn(async move {
        let r = wait::until(cluster, &api, "flag", "flag to carry `never`", never, timeout).await;
        (r, Instant::now())
    })
}

async fn bundle_for(
    run: &ecp_harness::cluster::ApiserverRun,
    out: &std::path::Path,
) -> (diag::Bundle, Duration) {
    let mut inputs = Vec::new();
    for c in run.clusters() {
        inputs.push(ClusterInput {
            name: c.name.clone(),
            client: c.client().await.unwrap(),
            namespaces: vec!["default".into()],
            container_logs: vec![(c.container_name().to_string(), c.logs().await.unwrap())],
        });
    }
    let started = Instant::now();
    let bundle = diag::collect(&inputs, out, Duration::from_secs(3)).await.unwrap();
    (bundle, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_cluster_ends_waits_and_applies_within_their_timeouts() {
    let run = start(&["alive", "doomed"]).await;
    let doomed = run.cluster("doomed").unwrap();
    let client = doomed.client().await.unwrap();
    apply(&client, "doomed", FLAG, "flag.yaml").await;
    let alive_client = run.cluster("alive").unwrap().client().await.unwrap();
    apply(&alive_client, "alive", FLAG, "flag.yaml").await;

    let timeout = Duration::from_secs(8);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let waiter = waiting(api, "doomed", timeout);
    tokio::time::sleep(Duration::from_millis(300)).await; // the wait is watching
    doomed.kill().await.unwrap();

    let (result, ended) = waiter.await.unwrap();
    let err = result.unwrap_err();
    let took = ended - started;
    eprintln!("wait on the killed cluster ended after {took:?}: {err}");
    assert_eq!(err.cause, WaitCause::TimedOut(timeout));
    assert!(took < timeout + SLACK, "{took:?}");
    assert!(err.where_.contains("cluster doomed"), "{err}");
    assert!(err.last_state.contains("resourceVersion"), "the state seen before the kill: {err}");

    // A new apply fails within its deadline, naming cluster and file.
    let started = Instant::now();
    let opts = ApplyOptions::new("doomed", FIELD_MANAGER).timeout(Duration::from_secs(5));
    let err = apply_yaml(&client, MORE, "more.yaml", &opts).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("apply to the killed cluster failed after {took:?}: {err}");
    assert!(took < Duration::from_secs(5) + SLACK, "{took:?}");
    assert!(err.to_string().contains("more.yaml") && err.to_string().contains("doomed"), "{err}");

    // A plain request, bounded and classified: the API is unreachable, whether the
    // connection is refused or nothing answers.
    let started = Instant::now();
    let listed = fault::within(
        Duration::from_secs(5),
        Api::<Namespace>::all(client.clone()).list(&ListParams::default()),
    )
    .await;
    let took = started.elapsed();
    let outage = listed.unwrap_err();
    eprintln!("direct request failed after {took:?}: {outage}");
    assert!(matches!(outage, Outage::ApiUnreachable { .. }), "{outage:?}");
    assert!(took < Duration::from_secs(5) + SLACK, "{took:?}");

    // The bundle has both clusters; the dead one says why it holds only logs.
    let out = tempfile::tempdir().unwrap();
    let (bundle, took) = bundle_for(&run, out.path()).await;
    eprintln!("bundle written in {took:?}: {:?}; problems: {:?}", bundle.files, bundle.problems);
    assert!(took < Duration::from_secs(15), "{took:?}");
    let files: Vec<String> = bundle.files.iter().map(|f| f.display().to_string()).collect();
    for expected in [
        "alive/events.txt",
        "alive/webhooks.yaml",
        "alive/namespaces/default.yaml",
        "doomed/problems.txt",
    ] {
        assert!(files.contains(&expected.to_string()), "{expected} missing from {files:?}");
    }
    for c in run.clusters() {
        let log = format!("{}/logs/{}.log", c.name, c.container_name());
        assert!(files.contains(&log), "{log} missing from {files:?}");
        let text = std::fs::read_to_string(out.path().join(&log)).unwrap();
        assert!(text.lines().count() > 10, "{log} holds the container's log");
    }
    let problems = std::fs::read_to_string(out.path().join("doomed/problems.txt")).unwrap();
    assert!(problems.contains("API unreachable"), "{problems}");
    let default_ns =
        std::fs::read_to_string(out.path().join("alive/namespaces/default.yaml")).unwrap();
    assert!(default_ns.contains("name: flag"), "{default_ns}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnected_cluster_ends_waits_and_applies_within_their_timeouts() {
    let run = start(&["cut"]).await;
    let cut = &run.clusters()[0];
    let client = cut.client().await.unwrap();
    apply(&client, "cut", FLAG, "flag.yaml").await;

    let timeout = Duration::from_secs(6);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let waiter = waiting(api, "cut", timeout);
    tokio::time::sleep(Duration::from_millis(300)).await; // the wait is watching
    cut.disconnect().await.unwrap();

    let (result, ended) = waiter.await.unwrap();
    let err = result.unwrap_err();
    let took = ended - started;
    eprintln!("wait on the disconnected cluster ended after {took:?}: {err}");
    assert_eq!(err.cause, WaitCause::TimedOut(timeout));
    assert!(took < timeout + SLACK, "{took:?}");
    assert!(err.last_state.contains("resourceVersion"), "{err}");

    let started = Instant::now();
    let opts = ApplyOptions::new("cut", FIELD_MANAGER).timeout(Duration::from_secs(4));
    let err = apply_yaml(&client, MORE, "more.yaml", &opts).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("apply to the disconnected cluster failed after {took:?}: {err}");
    assert!(took < Duration::from_secs(4) + SLACK, "{took:?}");
    assert!(err.to_string().contains("more.yaml") && err.to_string().contains("cut"), "{err}");

    let out = tempfile::tempdir().unwrap();
    let (bundle, took) = bundle_for(&run, out.path()).await;
    eprintln!("bundle written in {took:?}: {:?}; problems: {:?}", bundle.files, bundle.problems);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        bundle.problems.iter().any(|p| p.starts_with("cut: API unreachable")),
        "{:?}",
        bundle.problems
    );
    let log = format!("cut/logs/{}.log", cut.container_name());
    assert!(bundle.files.iter().any(|f| f.display().to_string() == log), "{:?}", bundle.files);
}
