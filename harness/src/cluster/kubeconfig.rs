//! Kubeconfig files for the clusters a provider starts: one cluster, one user with
//! an embedded client certificate, one context, all named after the cluster. Files
//! are written with mode 0600 since they hold credentials; their content is never
//! logged.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::ClusterError;

/// What a kubeconfig for one cluster says.
pub struct KubeconfigSpec<'a> {
    /// Cluster, user and context name.
    pub name: &'a str,
    /// `https://host:port`.
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub client_cert_pem: &'a str,
    pub client_key_pem: &'a str,
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: [Named<'a, ClusterEntry<'a>>; 1],
    users: [Named<'a, UserEntry>; 1],
    contexts: [Named<'a, ContextEntry<'a>>; 1],
    #[serde(rename = "current-context")]
    current_context: &'a str,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct ClusterEntry<'a> {
    cluster: ClusterFields<'a>,
}

#[derive(Serialize)]
struct ClusterFields<'a> {
    server: &'a str,
    #[serde(rename = "certificate-authority-data")]
    ca_data: String,
}

#[derive(Serialize)]
struct UserEntry {
    user: UserFields,
}

#[derive(Serialize)]
struct UserFields {
    #[serde(rename = "client-certificate-data")]
    cert_data: String,
    #[serde(rename = "client-key-data")]
    key_data: String,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: ContextFields<'a>,
}

#[derive(Serialize)]
struct ContextFields<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// Renders the kubeconfig as YAML.
pub fn render(spec: &KubeconfigSpec<'_>) -> Result<String, ClusterError> {
    let file = File {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: spec.name,
            value: ClusterEntry {
                cluster: ClusterFields {
                    server: spec.server,
                    ca_data: STANDARD.encode(spec.ca_pem),
                },
            },
        }],
        users: [Named {
            name: spec.name,
            value: UserEntry {
                user: UserFields {
                    cert_data: STANDARD.encode(spec.client_cert_pem),
                    key_data: STANDARD.encode(spec.client_key_pem),
                },
            },
        }],
        contexts: [Named {
            name: spec.name,
            value: ContextEntry { context: ContextFields { cluster: spec.name, user: spec.name } },
        }],
        current_context: spec.name,
    };
    serde_saphyr::to_string(&file).map_err(|e| ClusterError::Kubeconfig {
        cluster: spec.name.to_string(),
        detail: e.to_string(),
    })
}

/// Writes the kubeconfig to `path` with mode 0600 (it holds a private key). A file
/// already there is removed first: opening it would keep its mode, maybe a wider one.
pub fn write(path: &Path, spec: &KubeconfigSpec<'_>) -> Result<(), ClusterError> {
    let text = render(spec)?;
    crate::files::write_new(path, text.as_bytes(), 0o600)
        .map_err(ClusterError::io("write kubeconfig", path))
}

/// A kube client for the kubeconfig at `path` (its current context).
pub async fn client(cluster: &str, path: &Path) -> Result<kube::Client, ClusterError> {
    let kerr = |source| ClusterError::Kube { cluster: cluster.to_string(), source };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
        cluster: cluster.to_string(),
        detail: format!("read {}: {e}", path.display()),
    })?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| ClusterError::Kubeconfig {
                cluster: cluster.to_string(),
                detail: e.to_string(),
            })?;
    kube::Client::try_from(config).map_err(kerr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KubeconfigSpec<'static> {
        KubeconfigSpec {
            name: "c1",
            server: "https://172.18.0.2:6443",
            ca_pem: "CA",
            client_cert_pem: "CERT",
            client_key_pem: "KEY",
        }
    }

    #[test]
    fn kubeconfig_names_one_cluster_user_and_context() {
        let spec = spec();
        let yaml = render(&spec).unwrap();
        insta::assert_snapshot!(yaml);
        let parsed: kube::config::Kubeconfig = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("c1"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://172.18.0.2:6443"));
        assert_eq!(cluster.insecure_skip_tls_verify, None);
    }

    #[test]
    fn kubeconfig_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        let spec = spec();
        write(&p, &spec).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn rewriting_a_wider_file_leaves_it_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let spec = spec();
        write(&p, &spec).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&p).unwrap().contains("client-key-data"));
    }
}
