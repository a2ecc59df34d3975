//! Watch-based waits against a real API server: prompt on success, explicit on timeout.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::{Duration, Instant};

use ecp_harness::kube::conditions::{Condition, Explain};
use ecp_harness::kube::delete::{DeleteError, delete_and_wait, delete_manifest};
use ecp_harness::kube::wait::{self, WaitCause};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube_support::{apply, start};

fn ready(round: u32) -> impl Fn(Option<&ConfigMap>) -> bool {
    move |cm: Option<&ConfigMap>| {
        cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get("round")).map(String::as_str)
            == Some(&round.to_string())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_returns_within_200ms_of_its_condition_becoming_true() {
    let run = start(&["waits"]).await;
    let client = run.clusters()[0].client().await.unwrap();
    apply(&client, "waits", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flag, namespace: default}\ndata: {round: \"0\"}\n", "flag.yaml").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let mut latencies = Vec::new();
    for round in 1..=5u32 {
        let waiter = {
            let api = api.clone();
            tokio::spawn(async move {
                let what = format!("round {round}");
                let r = wait::until(
                    "waits",
                    &api,
                    "flag",
                    &what,
                    ready(round),
                    Duration::from_secs(30),
                )
                .await;
                (r, Instant::now())
            })
        };
        // Let the watch get past its initial list, so what is measured is how fast a
        // change reaches a running wait (there is nothing to watch for "watching").
        tokio::time::sleep(Duration::from_millis(300)).await;
        let flipped = Instant::now();
        let patch = serde_json::json!({"data": {"round": round.to_string()}});
        api.patch("flag", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        let (result, returned) = waiter.await.unwrap();
        let cm = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cm.data.unwrap()["round"], round.to_string());
        latencies.push(returned.saturating_duration_since(flipped));
    }
    eprintln!("wait latency after the change (including the PATCH round trip): {latencies:?}");
    let worst = latencies.iter().max().unwrap();
    assert!(
        *worst < Duration::from_millis(200),
        "slowest wait returned {worst:?} after the change"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_wait_says_what_where_and_the_last_state() {
    let run = start(&["waits"]).await;
    let client = run.clusters()[0].client().await.unwrap();
    apply(&client, "waits", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flag, namespace: default}\ndata: {round: \"0\"}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: hidden, namespace: default}\nstringData: {password: hunter2-not-shown}\n", "objects.yaml").await;

    // An object that exists but never meets the condition.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let err = wait::until("waits", &api, "flag", "flag round 9", ready(9), Duration::from_secs(2))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.cause, WaitCause::TimedOut(Duration::from_secs(2)));
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(err.what, "flag round 9");
    assert_eq!(err.where_, "cluster waits, /api/v1/namespaces/default/configmaps/flag");
    assert!(err.last_state.contains("\"dataKeys\":[\"round\"]"), "{}", err.last_state);
    assert!(err.last_state.contains("resourceVersion"), "{}", err.last_state);
    let text = err.to_string();
    assert!(text.starts_with("timed out after 2.0s waiting for flag round 9 (cluster waits, /api/v1/namespaces/default/configmaps/flag); last state seen: {"), "{text}");
    eprintln!("{text}");

    // An object that does not exist.
    let err = wait::until(
        "waits",
        &api,
        "absent",
        "absent to exist",
        |c: Option<&ConfigMap>| c.is_some(),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert_eq!(err.last_state, "object not found");

    // A Secret's state names its keys, never its values.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let err = wait::until(
        "waits",
        &secrets,
        "hidden",
        "a never-true condition",
        |_: Option<&Secret>| false,
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(err.last_state.contains("\"dataKeys\":[\"password\"]"), "{}", err.last_state);
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!err.to_string().contains("aHVudGVyMi"), "{err}"); // base64 of the value

    // A kind the server does not serve ends the wait at once, not at the deadline.
    let gvk = GroupVersionKind::gvk("nothing.ecp.test", "v1", "Nothing");
    let nothing: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk));
    let started = Instant::now();
    let err = wait::until(
        "waits",
        &nothing,
        "x",
        "x",
        |_: Option<&DynamicObject>| true,
        Duration::from_secs(20),
    )
    .await
    .unwrap_err();
    assert_eq!(err.cause, WaitCause::Refused, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.last_error.as_deref().unwrap_or_default().contains("404"), "{err}");

    // Deletion is awaited the same way.
    let deleter = {
        let api = api.clone();
        tokio::spawn(async move { api.delete("flag", &Default::default()).await.map(|_| ()) })
    };
    wait::until_gone("waits", &api, "flag", Duration::from_secs(10)).await.unwrap();
    deleter.await.unwrap().unwrap();
}

/// A named condition over config maps: `data.round` is the given round.
#[derive(Clone, Copy)]
struct Round(u32);

impl Explain<ConfigMap> for Round {
    fn unmet(&self, cm: &ConfigMap) -> Option<String> {
        let name = cm.metadata.name.as_deref().unwrap_or_default();
        let round = cm.data.as_ref().and_then(|d| d.get("round")).map_or("none", String::as_str);
        (round != self.0.to_string()).then(|| format!("{name} is at round {round}"))
    }
}

impl Condition<ConfigMap> for Round {
    fn matches_object(&self, obj: Option<&ConfigMap>) -> bool {
        obj.is_some_and(|cm| self.unmet(cm).is_none())
    }
}

fn labelled(name: &str, round: u32) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default, \
         labels: {{ecp-set: \"yes\"}}}}\ndata: {{round: \"{round}\"}}\n"
    )
}

/// A wait over a label selector needs at least one object and every one meeting the
/// condition; at the deadline it names each object that does not. Deletion waits
/// until gone, and what is already gone (or no longer served) is fine.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_over_a_selector_needs_every_object_and_deletions_wait_until_gone() {
    let run = start(&["waits"]).await;
    let client = run.clusters()[0].client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let selector = "ecp-set=yes";

    let waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            wait::until_all("waits", &api, selector, "round 1", Round(1), Duration::from_secs(30))
                .await
        })
    };
    // Nothing matches yet: the wait must not end on an empty list.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    apply(&client, "waits", &format!("{}---\n{}", labelled("a", 0), labelled("b", 0)), "ab.yaml")
        .await;
    apply(&client, "waits", &labelled("a", 1), "a.yaml").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "b is still at round 0");
    apply(&client, "waits", &labelled("b", 1), "b.yaml").await;
    let done = waiter.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = done.iter().filter_map(|c| c.metadata.name.as_deref()).collect();
    assert_eq!(names, ["a", "b"]);

    let err = wait::until_all("waits", &api, selector, "round 2", Round(2), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.cause, WaitCause::TimedOut(Duration::from_secs(1)));
    assert_eq!(err.last_state, "a is at round 1; b is at round 1");
    assert_eq!(
        err.where_,
        "cluster waits, /api/v1/namespaces/default/configmaps with labels ecp-set=yes"
    );
    let none = "ecp-set=none";
    let err = wait::until_all("waits", &api, none, "round 1", Round(1), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.last_state, "no object matches ecp-set=none");

    // One object, then one already gone.
    let dp = DeleteParams::default();
    delete_and_wait("waits", &api, "a", &dp, Duration::from_secs(10)).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    delete_and_wait("waits", &api, "a", &dp, Duration::from_secs(10)).await.unwrap();

    // A manifest: last first, a kind the server does not serve skipped, the default
    // namespace filled in.
    let manifest = format!(
        "{}---\napiVersion: nothing.ecp.test/v1\nkind: Nothing\nmetadata: {{name: x}}\n",
        labelled("b", 1)
    );
    delete_manifest(
        "waits",
        &client,
        &manifest,
        "b.yaml",
        Some("default"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(api.get_opt("b").await.unwrap().is_none());
    let err = delete_manifest(
        "waits",
        &client,
        "kind: ConfigMap\n",
        "bad.yaml",
        None,
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DeleteError::Request { .. }), "{err}");
    assert!(err.to_string().starts_with("deleting bad.yaml on cluster waits: "), "{err}");
}
