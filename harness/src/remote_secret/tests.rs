use std::collections::BTreeMap;

use super::*;

const SERVER: &str = "https://172.18.0.3:6443";
const FAKE_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.fake-payload.fake-signature";
const FAKE_CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nZmFrZSBjYQ==\n-----END CERTIFICATE-----\n";

fn secret(secret_type: SecretType, cluster: &str) -> RemoteSecret {
    RemoteSecret::new(cluster, secret_type, SERVER, "external-istiod").unwrap()
}

/// Every field of the kubeconfig, read back with serde-saphyr.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<Named<ClusterEntry>>,
    users: Vec<Named<UserEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    current_context: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ClusterEntry {
    certificate_authority_data: String,
    server: String,
    tls_server_name: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    token: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[test]
fn secret_names_and_keys_follow_istioctl() {
    assert_eq!(SecretType::Config.secret_name("remote1"), "istio-kubeconfig");
    assert_eq!(SecretType::Config.data_key("remote1"), "config");
    assert_eq!(SecretType::Config.default_service_account(), "istiod");
    assert_eq!(SecretType::Remote.secret_name("remote2"), "istio-remote-secret-remote2");
    assert_eq!(SecretType::Remote.data_key("remote2"), "remote2");
    assert_eq!(SecretType::Remote.default_service_account(), "istio-reader-service-account");
    assert_eq!(serde_json::to_string(&SecretType::Config).unwrap(), "\"config\"");
    assert_eq!(serde_json::from_str::<SecretType>("\"remote\"").unwrap(), SecretType::Remote);
}

#[test]
fn kubeconfig_has_one_cluster_user_and_context() {
    let yaml = secret(SecretType::Config, "remote1").kubeconfig(FAKE_CA, FAKE_TOKEN);
    let config: Kubeconfig = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(
        config,
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![Named {
                name: "remote1".into(),
                value: ClusterEntry {
                    certificate_authority_data: BASE64.encode(FAKE_CA),
                    server: SERVER.into(),
                    tls_server_name: None,
                },
            }],
            users: vec![Named {
                name: "remote1".into(),
                value: UserEntry { token: FAKE_TOKEN.into() }
            }],
            contexts: vec![Named {
                name: "remote1".into(),
                value: ContextEntry { cluster: "remote1".into(), user: "remote1".into() },
            }],
            current_context: "remote1".into(),
        }
    );
    assert_eq!(parse_kubeconfig_server(&yaml).unwrap(), SERVER);
}

#[test]
fn kubeconfig_carries_the_tls_server_name_when_set() {
    let yaml = secret(SecretType::Remote, "remote2")
        .with_tls_server_name("remote2-control-plane")
        .kubeconfig(FAKE_CA, FAKE_TOKEN);
    let config: Kubeconfig = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(config.clusters[0].value.tls_server_name.as_deref(), Some("remote2-control-plane"));
}

#[test]
fn kube_reads_the_kubeconfig_as_we_mean_it() {
    let yaml = secret(SecretType::Config, "remote1")
        .with_tls_server_name("remote1-control-plane")
        .kubeconfig(FAKE_CA, FAKE_TOKEN);
    let config = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    assert_eq!(config.current_context.as_deref(), Some("remote1"));
    let cluster = config.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(SERVER));
    assert_eq!(
        cluster.certificate_authority_data.as_deref(),
        Some(BASE64.encode(FAKE_CA).as_str())
    );
    assert_eq!(cluster.tls_server_name.as_deref(), Some("remote1-control-plane"));
    assert_eq!(cluster.insecure_skip_tls_verify, None);
    let user = config.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.token.is_some());
    assert_eq!(config.auth_infos[0].name, "remote1");
    assert_eq!(config.contexts[0].context.as_ref().unwrap().user.as_deref(), Some("remote1"));
}

#[test]
fn loopback_and_malformed_servers_are_refused() {
    for server in [
        "https://127.0.0.1:6443",
        "https://127.0.0.1:39221",
        "https://localhost:6443",
        "https://[::1]:6443",
        "https://127.1.2.3",
    ] {
        let err = RemoteSecret::new("remote1", SecretType::Config, server, "external-istiod")
            .unwrap_err();
        assert!(matches!(err, RemoteSecretError::Loopback { .. }), "{server}: {err:?}");
        assert!(err.to_string().contains("never 127.0.0.1"), "{err}");
    }
    for server in ["http://172.18.0.3:6443", "https://:6443", "https://0.0.0.0:6443", "172.18.0.3"]
    {
        let err = RemoteSecret::new("remote1", SecretType::Config, server, "external-istiod")
            .unwrap_err();
        assert!(matches!(err, RemoteSecretError::BadServer { .. }), "{server}: {err:?}");
    }
    for server in
        ["https://172.18.0.3:6443", "https://[fd00::3]:6443", "https://remote1-control-plane:6443"]
    {
        RemoteSecret::new("remote1", SecretType::Config, server, "external-istiod").unwrap();
    }
}

#[test]
fn names_must_be_kubernetes_labels() {
    for bad in ["", "Remote1", "remote_1", "-remote", "remote-", "a\"b", &"x".repeat(64)] {
        let err =
            RemoteSecret::new(bad, SecretType::Remote, SERVER, "external-istiod").unwrap_err();
        assert!(
            matches!(err, RemoteSecretError::InvalidName { what: "cluster id", .. }),
            "{bad:?}"
        );
    }
    let err = RemoteSecret::new("remote1", SecretType::Remote, SERVER, "External").unwrap_err();
    assert!(matches!(err, RemoteSecretError::InvalidName { what: "namespace", .. }));
}

/// The parts of a Secret manifest the tests check.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    api_version: String,
    kind: String,
    metadata: Metadata,
    #[serde(rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[test]
fn secret_manifest_per_type() {
    for (secret_type, cluster, name, key) in [
        (SecretType::Config, "remote1", "istio-kubeconfig", "config"),
        (SecretType::Remote, "remote2", "istio-remote-secret-remote2", "remote2"),
    ] {
        let rs = secret(secret_type, cluster);
        let kubeconfig = rs.kubeconfig(FAKE_CA, FAKE_TOKEN);
        let s: Secret = serde_saphyr::from_str(&rs.secret_manifest(&kubeconfig)).unwrap();
        assert_eq!((s.api_version.as_str(), s.kind.as_str()), ("v1", "Secret"));
        assert_eq!(s.metadata.name, name);
        assert_eq!(s.metadata.namespace, "external-istiod");
        assert_eq!(
            s.metadata.labels,
            BTreeMap::from([("istio/multiCluster".into(), "true".into())])
        );
        assert_eq!(
            s.metadata.annotations,
            BTreeMap::from([("networking.istio.io/cluster".into(), cluster.into())])
        );
        assert_eq!(s.type_, None);
        assert_eq!(s.data.keys().collect::<Vec<_>>(), [key]);
        let decoded = String::from_utf8(BASE64.decode(&s.data[key]).unwrap()).unwrap();
        assert_eq!(decoded, kubeconfig);
        assert!(s.string_data.is_empty());
    }
}

#[test]
fn planned_secret_shows_the_kubeconfig_with_placeholders() {
    let rs = secret(SecretType::Remote, "remote2");
    let s: Secret = serde_saphyr::from_str(&rs.secret_manifest_template()).unwrap();
    assert!(s.data.is_empty());
    let kubeconfig = &s.string_data["remote2"];
    assert_eq!(kubeconfig, &rs.kubeconfig_template());
    let config: Kubeconfig = serde_saphyr::from_str(kubeconfig).unwrap();
    assert_eq!(config.users[0].value.token, TOKEN_PLACEHOLDER);
    assert_eq!(config.clusters[0].value.certificate_authority_data, CA_PLACEHOLDER);
    assert_eq!(parse_kubeconfig_server(kubeconfig).unwrap(), SERVER);
}

#[test]
fn token_secret_is_bound_to_its_service_account() {
    let yaml =
        RemoteSecret::token_secret_manifest("istio-reader-service-account", "external-istiod");
    let s: Secret = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(s.metadata.name, "istio-reader-service-account-remote-secret-token");
    assert_eq!(s.metadata.name, RemoteSecret::token_secret_name("istio-reader-service-account"));
    assert_eq!(s.metadata.namespace, "external-istiod");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/service-account-token"));
    assert_eq!(
        s.metadata.annotations,
        BTreeMap::from([(
            "kubernetes.io/service-account.name".into(),
            "istio-reader-service-account".into()
        )])
    );
    assert!(s.data.is_empty());
}

#[test]
fn parse_kubeconfig_server_follows_the_current_context() {
    let two = "apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster: {server: 'https://10.0.0.1:6443'}
  - name: b
    cluster: {server: 'https://10.0.0.2:6443'}
contexts:
  - name: ctx-b
    context: {cluster: b, user: u}
current-context: ctx-b
";
    assert_eq!(parse_kubeconfig_server(two).unwrap(), "https://10.0.0.2:6443");
    let dangling = two.replace("current-context: ctx-b", "current-context: nope");
    assert!(matches!(parse_kubeconfig_server(&dangling), Err(RemoteSecretError::Kubeconfig(_))));
    let ambiguous = two.replace("current-context: ctx-b\n", "");
    assert!(matches!(parse_kubeconfig_server(&ambiguous), Err(RemoteSecretError::Kubeconfig(_))));
    assert!(parse_kubeconfig_server("clusters: [").is_err());
    let leaky = "users:\n- name: u\n  user: {token: hunter2-secret-token, x: [}\n";
    let err = parse_kubeconfig_server(leaky).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "the error quotes the kubeconfig: {err}");
}

#[test]
fn snapshots() {
    for (secret_type, cluster) in [(SecretType::Config, "remote1"), (SecretType::Remote, "remote2")]
    {
        let rs = secret(secret_type, cluster);
        let kubeconfig = rs.kubeconfig(FAKE_CA, FAKE_TOKEN);
        let kind = serde_json::to_value(secret_type).unwrap();
        let kind = kind.as_str().unwrap();
        insta::assert_snapshot!(format!("kubeconfig_{kind}"), kubeconfig);
        insta::assert_snapshot!(format!("secret_{kind}"), rs.secret_manifest(&kubeconfig));
        insta::assert_snapshot!(format!("secret_{kind}_planned"), rs.secret_manifest_template());
    }
    insta::assert_snapshot!(
        "token_secret",
        RemoteSecret::token_secret_manifest("istiod", "external-istiod")
    );
}
