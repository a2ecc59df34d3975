//! The diagnostics bundle and the process's own logs never hold a token or a private
//! key: the real service-account token of a remote secret, a TLS key, and both planted
//! where a careless dump would copy them (a ConfigMap, a container log).

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use ecp_harness::diag::{self, ClusterInput};
use ecp_harness::remote_secret::create::{Endpoint, Request, create};
use ecp_harness::remote_secret::{RemoteSecret, SecretType};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube_support::{Captured, apply, start};

const SOURCE_SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: istio-reader-service-account, namespace: istio-system}
"#;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_private_key_reaches_the_bundle_or_the_logs() {
    let captured = Captured::install();
    let run = start(&["external", "remote1"]).await;
    let (external, remote1) = (run.cluster("external").unwrap(), run.cluster("remote1").unwrap());
    let (ext_client, src_client) =
        (external.client().await.unwrap(), remote1.client().await.unwrap());
    apply(&src_client, "remote1", SOURCE_SETUP, "setup.yaml").await;
    apply(
        &ext_client,
        "external",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: external-istiod}\n",
        "ns.yaml",
    )
    .await;

    let remote =
        RemoteSecret::new("remote1", SecretType::Remote, &remote1.server_url(), "external-istiod")
            .unwrap();
    let created = create(&Request {
        remote: &remote,
        source: Endpoint { cluster: "remote1", client: &src_client },
        service_account: "istio-reader-service-account",
        service_account_namespace: "istio-system",
        target: Endpoint { cluster: "external", client: &ext_client },
        timeout: Duration::from_secs(60),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let token = String::from_utf8(
        Api::<Secret>::namespaced(src_client.clone(), "istio-system")
            .get(&created.token_secret)
            .await
            .unwrap()
            .data
            .unwrap()["token"]
            .0
            .clone(),
    )
    .unwrap();
    let kubeconfig = remote.kubeconfig(remote1.ca_pem.as_bytes(), &token);

    // A TLS Secret with a real key, and the same key and the kubeconfig planted in a
    // ConfigMap, where only text redaction can catch them.
    let key = rcgen::KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    let cert = rcgen::CertificateParams::new(vec!["gw.ecp.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let planted = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: gateway-cert, namespace: istio-system}}
type: kubernetes.io/tls
data:
  tls.crt: {crt}
  tls.key: {key}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: careless, namespace: istio-system}}
data:
  kubeconfig: {kubeconfig}
  key.pem: {key_json}
  note: "not a secret"
"#,
        crt = b64(&cert.pem()),
        key = b64(&key_pem),
        kubeconfig = serde_json::Value::from(kubeconfig.as_str()),
        key_json = serde_json::Value::from(key_pem.as_str()),
    );
    apply(&src_client, "remote1", &planted, "planted.yaml").await;

    let mut inputs = Vec::new();
    for (c, client, namespaces) in [
        (external, &ext_client, vec!["external-istiod".to_string()]),
        (remote1, &src_client, vec!["istio-system".to_string()]),
    ] {
        let mut logs = vec![(c.container_name().to_string(), c.logs().await.unwrap())];
        if c.name == "remote1" {
            logs.push((
                "careless-app".to_string(),
                format!(
                    "GET /api Authorization: Bearer {token}\nloaded key:\n{key_pem}\nconfig={}\n",
                    b64(&kubeconfig)
                ),
            ));
        }
        inputs.push(ClusterInput {
            name: c.name.clone(),
            client: client.clone(),
            namespaces,
            container_logs: logs,
        });
    }
    let out = tempfile::tempdir().unwrap();
    let bundle = diag::collect(&inputs, out.path(), Duration::from_secs(5)).await.unwrap();
    assert!(bundle.problems.is_empty(), "{:?}", bundle.problems);

    // What must never appear, in clear or base64.
    let key_body = key_pem.lines().nth(1).unwrap().to_string();
    let token_signature = token.rsplit('.').next().unwrap().to_string();
    let forbidden = [
        ("token", token.clone()),
        ("token signature", token_signature),
        ("token, base64", b64(&token)),
        ("private key body", key_body),
        ("private key, base64", b64(&key_pem)),
        ("kubeconfig, base64", b64(&kubeconfig)),
    ];
    let files = files_under(out.path());
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (what, secret) in &forbidden {
            assert!(!text.contains(secret.as_str()), "{what} found in {}", file.display());
        }
    }
    let logs = captured.text();
    assert!(logs.contains("remote secret created"), "the capture works");
    for (what, secret) in &forbidden {
        assert!(!logs.contains(secret.as_str()), "{what} found in the process's own logs");
    }

    // The bundle is not empty of meaning: the objects are there, redacted.
    let istio_system =
        std::fs::read_to_string(out.path().join("remote1/namespaces/istio-system.yaml")).unwrap();
    for expected in [
        "name: careless",
        "name: gateway-cert",
        "not a secret",
        "<redacted",
        "name: istio-reader-service-account",
    ] {
        assert!(istio_system.contains(expected), "{expected} missing from istio-system.yaml");
    }
    assert!(istio_system.contains("tls.crt:"), "the Secret's keys are listed");
    let external_ns =
        std::fs::read_to_string(out.path().join("external/namespaces/external-istiod.yaml"))
            .unwrap();
    assert!(external_ns.contains("istio-remote-secret-remote1"), "{external_ns}");
    assert!(external_ns.contains("networking.istio.io/cluster"), "{external_ns}");
    let careless =
        std::fs::read_to_string(out.path().join("remote1/logs/careless-app.log")).unwrap();
    assert!(
        careless.contains("Bearer <redacted") && careless.contains("<redacted private key>"),
        "{careless}"
    );
    eprintln!("bundle: {} files, {} bytes of captured logs checked", files.len(), logs.len());
}
