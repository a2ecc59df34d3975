//! The admission semantics the outage scenario relies on: a sidecar-injector-like
//! webhook with `failurePolicy: Fail` that cannot be reached rejects new pods in the
//! namespaces it selects, and only there.
//!
//! Safety: the webhook's target is an address inside the run's `--internal` network
//! that nothing uses, so the API server's call never leaves that network (never a
//! Service ClusterIP, which would follow the API server's default route).

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::{Duration, Instant};

use ecp_harness::diag::{self, ClusterInput};
use ecp_harness::fault::{Outage, classify};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_support::{apply, namespace, network, start};

const WEBHOOK: &str = "namespace.sidecar-injector.ecp.test";

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/none:1"}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_fail_closed_injector_rejects_pods_only_in_labelled_namespaces() {
    let run = start(&["hooks"]).await;
    let cluster = &run.clusters()[0];
    let client = cluster.client().await.unwrap();

    let net = network(&run).await;
    assert!(net.internal, "the webhook target must sit on an --internal network");
    let target = net.free_address();
    assert!(net.subnet.contains(&target) && target != net.gateway && !net.used.contains(&target));
    eprintln!("webhook target https://{target}:443/inject on {} ({})", net.name, net.subnet);

    namespace(&client, "hooks", "injected", "istio-injection: enabled").await;
    namespace(&client, "hooks", "plain", "").await;
    let hook =
        kube_support::injector_webhook(WEBHOOK, &format!("https://{target}:443/inject"), None);
    apply(&client, "hooks", &hook, "injector.yaml").await;

    // An unlabelled namespace still accepts pods.
    let plain: Api<Pod> = Api::namespaced(client.clone(), "plain");
    plain.create(&PostParams::default(), &pod("accepted")).await.unwrap();

    // A labelled one rejects them with the webhook's error...
    let injected: Api<Pod> = Api::namespaced(client.clone(), "injected");
    let started = Instant::now();
    let err = injected.create(&PostParams::default(), &pod("rejected")).await.unwrap_err();
    let took = started.elapsed();
    let kube::Error::Api(status) = &err else {
        panic!("expected the API server's refusal, got {err}")
    };
    assert!(
        status.message.contains(&format!("failed calling webhook \"{WEBHOOK}\"")),
        "{}",
        status.message
    );
    assert!(status.message.contains(&target.to_string()), "{}", status.message);
    assert!(
        took < Duration::from_secs(10),
        "the webhook timeout (3 s) bounds the refusal: {took:?}"
    );
    eprintln!("refused after {took:?} (HTTP {}): {}", status.code, status.message);

    // ...which the harness classifies as injection unavailable.
    let outage = classify(&err);
    assert!(
        matches!(&outage, Outage::InjectionUnavailable { webhook, .. } if webhook == WEBHOOK),
        "{outage:?}"
    );
    assert!(injected.get_opt("rejected").await.unwrap().is_none());

    // The diagnostics bundle shows the webhook configuration and both namespaces.
    let out = tempfile::tempdir().unwrap();
    let input = ClusterInput {
        name: "hooks".into(),
        client: client.clone(),
        namespaces: vec!["injected".into(), "plain".into()],
        container_logs: vec![(cluster.container_name().to_string(), cluster.logs().await.unwrap())],
    };
    let bundle = diag::collect(&[input], out.path(), Duration::from_secs(5)).await.unwrap();
    assert!(bundle.problems.is_empty(), "{:?}", bundle.problems);
    let hooks = std::fs::read_to_string(out.path().join("hooks/webhooks.yaml")).unwrap();
    assert!(
        hooks.contains(WEBHOOK) && hooks.contains(&format!("https://{target}:443/inject")),
        "{hooks}"
    );
    let plain = std::fs::read_to_string(out.path().join("hooks/namespaces/plain.yaml")).unwrap();
    assert!(plain.contains("name: accepted"), "{plain}");
    let injected =
        std::fs::read_to_string(out.path().join("hooks/namespaces/injected.yaml")).unwrap();
    assert!(
        injected.contains("istio-injection: enabled") && !injected.contains("name: rejected"),
        "{injected}"
    );
}
