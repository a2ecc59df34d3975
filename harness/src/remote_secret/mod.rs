//! The remote secret, built natively (procedure.md "The remote secret, natively"):
//! what `istioctl create-remote-secret` produces, as pure functions. A Secret in the
//! external cluster's `external-istiod` namespace carries a kubeconfig that lets the
//! external istiod read a remote cluster with a service account's token.
//!
//! The pieces: [`RemoteSecret::token_secret_manifest`] asks the source cluster's token
//! controller for a token (Kubernetes 1.24+ no longer creates one per service
//! account); [`RemoteSecret::kubeconfig`] wraps that token and the cluster's CA;
//! [`RemoteSecret::secret_manifest`] is what the external cluster gets.

pub mod create;

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// The label istiod's secret controller selects remote secrets by.
pub const LABEL_MULTICLUSTER: (&str, &str) = ("istio/multiCluster", "true");
/// The annotation naming the cluster a remote secret points at.
pub const ANNOTATION_CLUSTER: &str = "networking.istio.io/cluster";
/// The annotation binding a token Secret to its service account.
pub const ANNOTATION_SERVICE_ACCOUNT: &str = "kubernetes.io/service-account.name";

/// Stands for the token in a planned (offline) manifest.
pub const TOKEN_PLACEHOLDER: &str = "<token of the service account, filled at run time>";
/// Stands for the cluster's CA bundle in a planned (offline) manifest.
pub const CA_PLACEHOLDER: &str = "<base64 CA bundle of the cluster, filled at run time>";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteSecretError {
    #[error(
        "remote secret for cluster `{cluster}`: API server `{server}` is a loopback address; \
         a remote secret must name the API server by its address on the shared network \
         (node IP:6443), never 127.0.0.1"
    )]
    Loopback { cluster: String, server: String },
    #[error("remote secret for cluster `{cluster}`: API server `{server}` is not usable: {reason}")]
    BadServer { cluster: String, server: String, reason: &'static str },
    #[error(
        "remote secret: {what} `{value}` is not a valid name (lowercase letters, digits and \
         `-`, starting and ending with a letter or digit, at most 63 characters)"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
}

/// `istioctl create-remote-secret --type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretType {
    /// The config cluster's secret, read by the external istiod's local secret
    /// watcher (`LOCAL_CLUSTER_SECRET_WATCHER=true`).
    Config,
    /// A further remote's secret, for endpoint discovery.
    Remote,
}

impl SecretType {
    /// `istio-kubeconfig` (config) or `istio-remote-secret-<cluster>` (remote).
    pub fn secret_name(self, cluster_id: &str) -> String {
        match self {
            SecretType::Config => "istio-kubeconfig".to_string(),
            SecretType::Remote => format!("istio-remote-secret-{cluster_id}"),
        }
    }

    /// The data key holding the kubeconfig: `config` or the cluster's name.
    pub fn data_key(self, cluster_id: &str) -> String {
        match self {
            SecretType::Config => "config".to_string(),
            SecretType::Remote => cluster_id.to_string(),
        }
    }

    /// The service account whose token the kubeconfig carries, unless told otherwise
    /// (Sail uses `istiod-<revision>` for the config type).
    pub fn default_service_account(self) -> &'static str {
        match self {
            SecretType::Config => "istiod",
            SecretType::Remote => "istio-reader-service-account",
        }
    }
}

/// A remote secret to create in the external cluster for one source cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSecret {
    /// The source cluster's name in istiod's eyes.
    pub cluster_id: String,
    pub secret_type: SecretType,
    /// The source cluster's API server as the external cluster reaches it,
    /// `https://<node IP>:6443`.
    pub server: String,
    /// A TLS server name to verify instead of the address, if any.
    pub tls_server_name: Option<String>,
    /// Where the Secret goes in the external cluster (`external-istiod`).
    pub namespace: String,
}

impl RemoteSecret {
    /// Checks the names and the server: `https://`, a host, and never a loopback
    /// address (kind-node.md: "a remote secret must never carry 127.0.0.1").
    pub fn new(
        cluster_id: &str,
        secret_type: SecretType,
        server: &str,
        namespace: &str,
    ) -> Result<Self, RemoteSecretError> {
        check_name("cluster id", cluster_id)?;
        check_name("namespace", namespace)?;
        check_server(cluster_id, server)?;
        Ok(Self {
            cluster_id: cluster_id.to_string(),
            secret_type,
            server: server.to_string(),
            tls_server_name: None,
            namespace: namespace.to_string(),
        })
    }

    /// Verifies the API server's certificate for `name` rather than the address.
    pub fn with_tls_server_name(self, name: &str) -> Self {
        Self { tls_server_name: Some(name.to_string()), ..self }
    }

    /// The kubeconfig: one cluster and one user named after the cluster, one context
    /// joining them, set as current. It holds a credential: never log it.
    pub fn kubeconfig(&self, ca_crt_pem: &[u8], token: &str) -> String {
        self.kubeconfig_with(&BASE64.encode(ca_crt_pem), token)
    }

    /// The kubeconfig with [`CA_PLACEHOLDER`] and [`TOKEN_PLACEHOLDER`], for plans.
    pub fn kubeconfig_template(&self) -> String {
        self.kubeconfig_with(CA_PLACEHOLDER, TOKEN_PLACEHOLDER)
    }

    fn kubeconfig_with(&self, ca_data: &str, token: &str) -> String {
        let name = quoted(&self.cluster_id);
        let tls_server_name = match &self.tls_server_name {
            Some(n) => format!("\n      tls-server-name: {}", quoted(n)),
            None => String::new(),
        };
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: {name}
    cluster:
      certificate-authority-data: {ca}
      server: {server}{tls_server_name}
users:
  - name: {name}
    user:
      token: {token}
contexts:
  - name: {name}
    context:
      cluster: {name}
      user: {name}
current-context: {name}
",
            ca = quoted(ca_data),
            server = quoted(&self.server),
            token = quoted(token),
        )
    }

    /// The Secret for the external cluster, with the kubeconfig base64-encoded under
    /// the type's data key: exactly what apply sends. It holds a credential.
    pub fn secret_manifest(&self, kubeconfig: &str) -> String {
        self.secret_with(&format!(
            "data:\n  {}: {}\n",
            quoted(&self.secret_type.data_key(&self.cluster_id)),
            BASE64.encode(kubeconfig)
        ))
    }

    /// The Secret as a plan shows it: the kubeconfig template in clear under
    /// `stringData`, with placeholders for what only the run knows.
    pub fn secret_manifest_template(&self) -> String {
        let kubeconfig = self.kubeconfig_template();
        let indented: String = kubeconfig.lines().map(|l| format!("    {l}\n")).collect();
        self.secret_with(&format!(
            "stringData:\n  {}: |\n{indented}",
            quoted(&self.secret_type.data_key(&self.cluster_id))
        ))
    }

    fn secret_with(&self, data: &str) -> String {
        format!(
            "apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    {label}: {label_value}
  annotations:
    {annotation}: {cluster}
{data}",
            name = quoted(&self.secret_type.secret_name(&self.cluster_id)),
            namespace = quoted(&self.namespace),
            label = quoted(LABEL_MULTICLUSTER.0),
            label_value = quoted(LABEL_MULTICLUSTER.1),
            annotation = quoted(ANNOTATION_CLUSTER),
            cluster = quoted(&self.cluster_id),
        )
    }

    /// The name of the token Secret made for `service_account`.
    pub fn token_secret_name(service_account: &str) -> String {
        format!("{service_account}-remote-secret-token")
    }

    /// A `kubernetes.io/service-account-token` Secret for `service_account` in the
    /// source cluster: the token controller fills `token` and `ca.crt` into it.
    pub fn token_secret_manifest(service_account: &str, namespace: &str) -> String {
        format!(
            "apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    {annotation}: {service_account}
type: kubernetes.io/service-account-token
",
            name = quoted(&Self::token_secret_name(service_account)),
            namespace = quoted(namespace),
            annotation = quoted(ANNOTATION_SERVICE_ACCOUNT),
            service_account = quoted(service_account),
        )
    }
}

/// The server of a kubeconfig's current context (or of its only cluster).
pub fn parse_kubeconfig_server(kubeconfig: &str) -> Result<String, RemoteSecretError> {
    let config: KubeconfigDoc = crate::yaml::from_str(kubeconfig)
        .map_err(|e| RemoteSecretError::Kubeconfig(e.to_string()))?;
    let cluster_name = match (&config.current_context, config.clusters.as_slice()) {
        (Some(current), _) => {
            let context = config.contexts.iter().find(|c| &c.name == current).ok_or_else(|| {
                RemoteSecretError::Kubeconfig(format!("current context `{current}` is not defined"))
            })?;
            context.context.cluster.clone()
        }
        (None, [only]) => only.name.clone(),
        (None, _) => {
            return Err(RemoteSecretError::Kubeconfig(
                "no current context and not exactly one cluster".to_string(),
            ));
        }
    };
    let cluster = config.clusters.iter().find(|c| c.name == cluster_name).ok_or_else(|| {
        RemoteSecretError::Kubeconfig(format!("cluster `{cluster_name}` is not defined"))
    })?;
    Ok(cluster.cluster.server.clone())
}

/// The part of a kubeconfig this module reads back.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct KubeconfigDoc {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterDoc,
}

#[derive(Debug, Deserialize)]
struct ClusterDoc {
    server: String,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: ContextDoc,
}

#[derive(Debug, Deserialize)]
struct ContextDoc {
    cluster: String,
}

/// A DNS-1123 label: what both a Secret name suffix and a namespace accept.
fn check_name(what: &'static str, value: &str) -> Result<(), RemoteSecretError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok { Ok(()) } else { Err(RemoteSecretError::InvalidName { what, value: value.to_string() }) }
}

fn check_server(cluster: &str, server: &str) -> Result<(), RemoteSecretError> {
    let bad = |reason| RemoteSecretError::BadServer {
        cluster: cluster.to_string(),
        server: server.to_string(),
        reason,
    };
    let rest = server.strip_prefix("https://").ok_or_else(|| bad("it must start with https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _port)| host),
    };
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    let loopback = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => return Err(bad("0.0.0.0 and :: are not addresses")),
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if loopback {
        return Err(RemoteSecretError::Loopback {
            cluster: cluster.to_string(),
            server: server.to_string(),
        });
    }
    Ok(())
}

/// A YAML double-quoted scalar (a JSON string is one).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests;
