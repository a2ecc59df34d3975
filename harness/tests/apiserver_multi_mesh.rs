//! Several meshes kept apart, on control-plane-only clusters with TEST STAND-INS on
//! the run's `--internal` network: two config clusters, one per mesh, whose injection
//! webhooks (named as each mesh's remote profile names them) call two stand-in
//! injectors, each patching pods with its own mesh's proxy image. Stopping mesh A's
//! injector refuses pods only in A's config cluster (as injection unavailable); B's
//! keeps admitting with B's patch. After A's restart, A injects with A's patch again.
//!
//! Safety: every webhook target is an address on the run's `--internal` network.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::Duration;

use base64::Engine;
use ecp_harness::cluster::docker;
use ecp_harness::mesh::Mesh;
use ecp_harness::outage::Admission;
use ecp_harness::outage::recovery;
use ecp_harness::tls::GatewayCerts;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_support::{apply, namespace, network, stand_in, start};

/// A pod created in `sample`: admitted (with whose proxy image), or refused.
async fn create(api: &Api<Pod>) -> (Admission, Option<String>) {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"generateName": "probe-"},
        "spec": {"containers": [{"name": "app", "image": "ecp.test/none:1"}]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await;
    let image = created.as_ref().ok().and_then(|p| {
        let containers = &p.spec.as_ref()?.containers;
        containers.iter().find(|c| c.name == "istio-proxy").and_then(|c| c.image.clone())
    });
    (Admission::of_pod(created.as_ref()), image)
}

fn proxy_image(mesh: Mesh) -> String {
    format!("ecp.test/stand-in-proxy-{}:1", mesh.id())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_meshs_injector_down_refuses_pods_only_in_its_own_config_cluster() {
    let meshes = [Mesh::FIRST, Mesh::new(2).unwrap()];
    let names: Vec<String> = meshes.iter().map(|m| m.cluster_name(1)).collect();
    let run = start(&names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let net = network(&run).await;
    assert!(net.internal, "the stand-ins must sit on an --internal network");
    let d = docker::connect().await.unwrap();

    let mut injectors = Vec::new();
    let mut samples = Vec::new();
    for (mesh, cluster) in meshes.iter().zip(run.clusters()) {
        let name = cluster.name.clone();
        let mesh_id = mesh.id();
        let (injector, ip) = stand_in::start(
            &d,
            &run,
            &format!("injector-{mesh_id}"),
            &["/stand-in-injector", &mesh_id],
        )
        .await;
        assert!(net.contains(ip), "{ip} is on {}", net.subnet);
        let certs = GatewayCerts::generate(ip).unwrap();
        stand_in::upload_certificate(&d, &injector, &certs.server_cert_pem, certs.server_key_pem())
            .await;
        let client = cluster.client().await.unwrap();
        namespace(&client, &name, "sample", "istio-injection: enabled").await;
        let bundle = base64::engine::general_purpose::STANDARD.encode(&certs.ca_cert_pem);
        let url = format!(
            "https://{ip}:443/inject/cluster/{}/net/{}",
            mesh.cluster_id(1),
            mesh.network(1)
        );
        let hook = kube_support::injector_webhook(
            &format!("namespace.sidecar-injector.{mesh_id}.ecp.test"),
            &url,
            Some(&bundle),
        )
        .replace(
            "name: ecp-test-sidecar-injector",
            &format!("name: {}", mesh.injection_webhook_config()),
        );
        apply(&client, &name, &hook, "injector.yaml").await;
        injectors.push(injector);
        samples.push(Api::<Pod>::namespaced(client, "sample"));
    }
    // Distinct configuration names, as the meshes' remote profiles render them.
    assert_ne!(meshes[0].injection_webhook_config(), meshes[1].injection_webhook_config());

    // Both up: each config cluster's pods carry their own mesh's patch.
    for (mesh, sample) in meshes.iter().zip(&samples) {
        let up = recovery::poll(Duration::from_millis(250), 80, || async {
            match create(sample).await {
                (Admission::Admitted { sidecar: true }, Some(image))
                    if image == proxy_image(*mesh) =>
                {
                    Ok(())
                }
                other => Err(format!("{mesh}: {other:?}")),
            }
        })
        .await;
        assert_eq!(up, Ok(()), "{mesh}'s stand-in injector never served its patch");
    }

    // Mesh A's injector down: refused in A's config cluster only; B keeps injecting
    // with B's own patch.
    docker::kill(&d, &injectors[0]).await.unwrap();
    let (in_a, _) = create(&samples[0]).await;
    assert_eq!(in_a, Admission::InjectionUnavailable, "mesh1's pods while its injector is down");
    for _ in 0..3 {
        let (in_b, image) = create(&samples[1]).await;
        assert_eq!(in_b, Admission::Admitted { sidecar: true }, "mesh2 during mesh1's outage");
        assert_eq!(image, Some(proxy_image(meshes[1])), "mesh2's own patch");
    }

    // A restarted: A injects with its own patch again.
    docker::start(&d, &injectors[0]).await.unwrap();
    let back = recovery::poll(Duration::from_millis(250), 240, || async {
        match create(&samples[0]).await {
            (Admission::Admitted { sidecar: true }, Some(image))
                if image == proxy_image(meshes[0]) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(back, Ok(()), "mesh1 after its injector's restart");
}
