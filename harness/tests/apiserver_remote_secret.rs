//! The native remote secret (procedure.md) between two real clusters.
//!
//! "From inside the internal network": the clusters sit only on the run's `--internal`
//! network, and the host has that network's gateway address on its bridge. A client
//! on the host using the peer kubeconfig connects to the source's container address
//! over that bridge, which the test checks by the local address of such a connection.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use std::time::Duration;

use base64::Engine as _;
use ecp_harness::remote_secret::create::{CreateError, Endpoint, Request, create};
use ecp_harness::remote_secret::{
    ANNOTATION_CLUSTER, LABEL_MULTICLUSTER, RemoteSecret, SecretType,
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_support::{apply, network, start};

/// What the charts create in the source cluster for the reader account: the account
/// and read-only access.
const READER: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: istio-reader-service-account, namespace: istio-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: istio-reader-clusterrole-istio-system}
rules:
  - apiGroups: [""]
    resources: [pods, services, endpoints, namespaces, nodes, secrets, configmaps]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: istio-reader-clusterrole-istio-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: istio-reader-clusterrole-istio-system}
subjects:
  - {kind: ServiceAccount, name: istio-reader-service-account, namespace: istio-system}
"#;

const EXTERNAL_NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: external-istiod}\n";

async fn client_from(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_secret_gives_read_only_access_over_the_internal_network() {
    let run = start(&["external", "remote1"]).await;
    let (external, remote1) = (run.cluster("external").unwrap(), run.cluster("remote1").unwrap());
    let (ext_client, src_client) =
        (external.client().await.unwrap(), remote1.client().await.unwrap());
    apply(&src_client, "remote1", READER, "reader.yaml").await;
    apply(&ext_client, "external", EXTERNAL_NS, "ns.yaml").await;

    // The address the external cluster (and istiod in it) reaches remote1 by.
    let server = remote1.server_url();
    let peer = std::fs::read_to_string(&remote1.peer_kubeconfig).unwrap();
    assert!(peer.contains(&format!("server: {server}")), "the peer kubeconfig names {server}");
    let remote =
        RemoteSecret::new("remote1", SecretType::Remote, &server, "external-istiod").unwrap();
    let started = std::time::Instant::now();
    let created = create(&Request {
        remote: &remote,
        source: Endpoint { cluster: "remote1", client: &src_client },
        service_account: SecretType::Remote.default_service_account(),
        service_account_namespace: "istio-system",
        target: Endpoint { cluster: "external", client: &ext_client },
        timeout: Duration::from_secs(60),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("remote secret created in {:?}", started.elapsed());
    assert_eq!(created.name, "istio-remote-secret-remote1");
    assert_eq!(created.data_key, "remote1");

    // Source cluster: the explicit token Secret, bound to the account and filled.
    let token_secret = Api::<Secret>::namespaced(src_client.clone(), "istio-system")
        .get(&created.token_secret)
        .await
        .unwrap();
    assert_eq!(token_secret.type_.as_deref(), Some("kubernetes.io/service-account-token"));
    let annotations = token_secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["kubernetes.io/service-account.name"], "istio-reader-service-account");
    let token_data = token_secret.data.unwrap();
    let token = String::from_utf8(token_data["token"].0.clone()).unwrap();
    assert!(token.starts_with("eyJ"), "a JWT");

    // Target cluster: name, label, annotation, data key, kubeconfig with the peer address.
    let secret = Api::<Secret>::namespaced(ext_client.clone(), "external-istiod")
        .get("istio-remote-secret-remote1")
        .await
        .unwrap();
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_MULTICLUSTER.0).map(String::as_str), Some(LABEL_MULTICLUSTER.1));
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get(ANNOTATION_CLUSTER).map(String::as_str), Some("remote1"));
    let data = secret.data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["remote1"]);
    let kubeconfig = String::from_utf8(data["remote1"].0.clone()).unwrap();
    let kc = Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(server.as_str()));
    assert!(!server.contains("127.0.0.1"));
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster.certificate_authority_data.unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(ca).unwrap().trim(),
        remote1.ca_pem.trim(),
        "the kubeconfig trusts remote1's CA"
    );
    let parsed: serde_json::Value = serde_saphyr::from_str(&kubeconfig).unwrap();
    assert_eq!(
        parsed["users"][0]["user"]["token"],
        token.as_str(),
        "the kubeconfig carries the reader's token"
    );

    // The connection goes over the internal network: from the host's address on it.
    let net = network(&run).await;
    assert!(net.internal, "the run's network is --internal");
    assert!(net.contains(remote1.address.ip()), "{} is on {}", remote1.address, net.subnet);
    let socket = tokio::net::TcpStream::connect(remote1.address).await.unwrap();
    assert_eq!(socket.local_addr().unwrap().ip(), std::net::IpAddr::V4(net.gateway));
    drop(socket);

    // The reader can list pods in the source cluster...
    let reader = client_from(&kubeconfig).await;
    let pods = Api::<Pod>::all(reader.clone()).list(&ListParams::default()).await.unwrap();
    assert!(pods.items.is_empty(), "no kubelet, no pods; the list itself is what counts");
    // ...and cannot create Secrets.
    let forged: Secret =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "forged"}})).unwrap();
    let err = Api::<Secret>::namespaced(reader, "istio-system")
        .create(&PostParams::default(), &forged)
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");

    // A token of another cluster is refused by the source cluster.
    apply(&ext_client, "external", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: istio-reader-service-account, namespace: external-istiod}\n", "sa.yaml").await;
    let foreign = RemoteSecret::new(
        "external",
        SecretType::Remote,
        &external.server_url(),
        "external-istiod",
    )
    .unwrap();
    create(&Request {
        remote: &foreign,
        source: Endpoint { cluster: "external", client: &ext_client },
        service_account: "istio-reader-service-account",
        service_account_namespace: "external-istiod",
        target: Endpoint { cluster: "external", client: &ext_client },
        timeout: Duration::from_secs(60),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let foreign_token = Api::<Secret>::namespaced(ext_client.clone(), "external-istiod")
        .get(&RemoteSecret::token_secret_name("istio-reader-service-account"))
        .await
        .unwrap()
        .data
        .unwrap()["token"]
        .0
        .clone();
    let forged_kubeconfig =
        remote.kubeconfig(remote1.ca_pem.as_bytes(), &String::from_utf8(foreign_token).unwrap());
    let intruder = client_from(&forged_kubeconfig).await;
    let err = Api::<Pod>::all(intruder).list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status_code(&err), Some(401), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_type_secret_and_no_secret_before_the_service_account() {
    let run = start(&["external", "config"]).await;
    let (external, config) = (run.cluster("external").unwrap(), run.cluster("config").unwrap());
    let (ext_client, cfg_client) =
        (external.client().await.unwrap(), config.client().await.unwrap());
    apply(&ext_client, "external", EXTERNAL_NS, "ns.yaml").await;
    apply(&cfg_client, "config", EXTERNAL_NS, "ns.yaml").await;
    let remote =
        RemoteSecret::new("config", SecretType::Config, &config.server_url(), "external-istiod")
            .unwrap();
    let request = Request {
        remote: &remote,
        source: Endpoint { cluster: "config", client: &cfg_client },
        service_account: SecretType::Config.default_service_account(),
        service_account_namespace: "external-istiod",
        target: Endpoint { cluster: "external", client: &ext_client },
        timeout: Duration::from_secs(3),
    };

    // Without the service account nothing is created (--create-service-account=false).
    let err = create(&request).await.unwrap_err();
    assert!(matches!(err, CreateError::NoServiceAccount { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("service account external-istiod/istiod is not there"), "{text}");
    assert!(text.contains("timed out after 3.0s"), "{text}");
    let secrets = Api::<Secret>::namespaced(ext_client.clone(), "external-istiod");
    assert!(secrets.get_opt("istio-kubeconfig").await.unwrap().is_none());

    // Once the chart has made it, the config-type secret appears.
    apply(&cfg_client, "config", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: istiod, namespace: external-istiod}\n", "sa.yaml").await;
    let created = create(&Request { timeout: Duration::from_secs(60), ..request })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((created.name.as_str(), created.data_key.as_str()), ("istio-kubeconfig", "config"));
    let secret = secrets.get("istio-kubeconfig").await.unwrap();
    let kubeconfig = String::from_utf8(secret.data.unwrap()["config"].0.clone()).unwrap();
    // The config cluster's istiod account has no RBAC here: authenticated, not authorised.
    let istiod = client_from(&kubeconfig).await;
    let err = Api::<Pod>::all(istiod).list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status_code(&err), Some(403), "{err}");

    // Creating it again is idempotent.
    create(&Request { timeout: Duration::from_secs(60), ..request })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
