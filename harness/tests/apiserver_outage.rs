//! The outage scenario's machinery, for real on control-plane-only clusters, with
//! TEST STAND-INS on the run's `--internal` network:
//! - a fail-closed injection webhook (the suite's small HTTPS server serving a
//!   JSONPatch) is stopped and restarted with the fault machinery: pods in the
//!   injected namespace are refused while it is down, classified as "injection
//!   unavailable", pods elsewhere admitted; after the restart pods are admitted
//!   with the patch, and the recovery timer measures it (reported, not asserted);
//! - a busybox httpd is cut from the network and reconnected at its address while
//!   the host sends traffic to it; the accounting sees exactly the failures of the
//!   requests sent during the cut.
//!
//! Safety: every target is an address on the run's `--internal` network.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::{Duration, Instant};

use base64::Engine;
use ecp_harness::checks;
use ecp_harness::cluster::docker;
use ecp_harness::outage::recovery::{self, all_recovered};
use ecp_harness::outage::{Admission, Tally};
use ecp_harness::tls::GatewayCerts;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_support::{apply, namespace, network, stand_in, start};

const WEBHOOK: &str = "namespace.sidecar-injector.ecp.test";

fn pod(prefix: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"generateName": format!("{prefix}-")},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/none:1"}]}
    }))
    .unwrap()
}

async fn create(api: &Api<Pod>, prefix: &str) -> Admission {
    let created = api.create(&PostParams::default(), &pod(prefix)).await;
    Admission::of_pod(created.as_ref())
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_are_refused_while_the_injector_is_down_and_injected_after_its_restart() {
    let run = start(&["mesh"]).await;
    let client = run.clusters()[0].client().await.unwrap();
    let net = network(&run).await;
    assert!(net.internal, "the stand-in must sit on an --internal network");
    let d = docker::connect().await.unwrap();
    let (injector, ip) = stand_in::start(&d, &run, "injector", &["/stand-in-injector"]).await;
    assert!(net.contains(ip), "{ip} is on {}", net.subnet);
    let certs = GatewayCerts::generate(ip).unwrap();
    stand_in::upload_certificate(&d, &injector, &certs.server_cert_pem, certs.server_key_pem())
        .await;

    namespace(&client, "mesh", "injected", "istio-injection: enabled").await;
    namespace(&client, "mesh", "plain", "").await;
    let bundle = base64::engine::general_purpose::STANDARD.encode(&certs.ca_cert_pem);
    let hook =
        kube_support::injector_webhook(WEBHOOK, &format!("https://{ip}:443/inject"), Some(&bundle));
    apply(&client, "mesh", &hook, "injector.yaml").await;
    let injected: Api<Pod> = Api::namespaced(client.clone(), "injected");
    let plain: Api<Pod> = Api::namespaced(client.clone(), "plain");

    // Up: pods in the injected namespace get the stand-in's patch (bounded retries
    // while the server starts listening).
    let up = recovery::poll(Duration::from_millis(250), 80, || async {
        create(&injected, "before").await.expect_injected()
    })
    .await;
    assert_eq!(up, Ok(()), "the stand-in injector never served the patch");

    // Down (SIGKILL): refused and classified, never admitted without a sidecar.
    docker::kill(&d, &injector).await.unwrap();
    let during = create(&injected, "during").await;
    eprintln!("injected namespace while the injector is down: {during}");
    assert_eq!(during, Admission::InjectionUnavailable);
    assert_eq!(during.expect_injection_unavailable(), Ok(()));
    let elsewhere = create(&plain, "during").await;
    assert_eq!(elsewhere, Admission::Admitted { sidecar: false });

    // Restarted: the recovery is measured from the restart until a pod is injected.
    let restored = Instant::now();
    docker::start(&d, &injector).await.unwrap();
    let recovered = recovery::measure(
        "injection",
        restored,
        Duration::from_secs(60),
        recovery::poll(Duration::from_millis(250), 240, || async {
            create(&injected, "after").await.expect_injected()
        }),
    )
    .await;
    eprintln!("injection recovered after {:?}", recovered.after);
    assert_eq!(all_recovered(std::slice::from_ref(&recovered)), Ok(()));
    let after = injected.list(&Default::default()).await.unwrap();
    let names: Vec<String> = after.items.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert!(names.iter().any(|n| n.starts_with("after-")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("during-")), "{names:?}");
    let proxied = after.items.iter().filter(|p| checks::sidecar_placement(p).is_some()).count();
    assert_eq!(proxied, after.items.len(), "every admitted pod carries the patch");
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_accounting_sees_exactly_the_requests_sent_during_a_cut() {
    let run = start(&["web"]).await;
    let net = network(&run).await;
    assert!(net.internal);
    let d = docker::connect().await.unwrap();
    let cmd = ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
    let (httpd, ip) = stand_in::start(&d, &run, "httpd", &cmd).await;
    assert!(net.contains(ip), "{ip} is on {}", net.subnet);
    let at = std::sync::Mutex::new(ip);
    let get = || async {
        let ip = *at.lock().unwrap();
        let request = checks::http_get(ip, 80, "/hello");
        let body = tokio::time::timeout(Duration::from_secs(1), request)
            .await
            .map_err(|_| "no answer within 1s".to_string())??;
        if body == "hello\n" { Ok(()) } else { Err(format!("unexpected body {body:?}")) }
    };
    assert_eq!(recovery::poll(Duration::from_millis(200), 50, get).await, Ok(()));

    let mut tally = Tally::new("host -> httpd");
    for _ in 0..10 {
        tally.record(get().await);
    }
    docker::disconnect(&d, run.network(), &httpd).await.unwrap();
    for _ in 0..10 {
        tally.record(get().await);
    }
    let restored = Instant::now();
    // This network has no user-configured subnet, so Docker cannot be asked for
    // the former address: the traffic follows the one it gives.
    docker::reconnect(&d, run.network(), &httpd, None).await.unwrap();
    let now = stand_in::address(&d, &run, &httpd).await;
    assert!(net.contains(now), "{now} is on {}", net.subnet);
    *at.lock().unwrap() = now;
    let back = recovery::measure(
        "httpd",
        restored,
        Duration::from_secs(30),
        recovery::poll(Duration::from_millis(200), 100, get),
    )
    .await;
    eprintln!("httpd reachable again after {:?}", back.after);
    assert!(back.after.is_some(), "{back:?}");
    for _ in 0..10 {
        tally.record(get().await);
    }

    eprintln!("{tally:?}");
    assert_eq!(tally.sent, 30);
    assert_eq!(tally.failed, (10..20).collect::<Vec<u32>>(), "exactly the requests of the cut");
    let verdict = tally.all_succeeded(30).unwrap_err();
    assert!(verdict.contains("10 of 30 requests failed"), "{verdict}");
}
