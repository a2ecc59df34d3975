//! The credentials of one existing cluster: the context the topology file names,
//! cut out of its kubeconfig into a kubeconfig of its own (one cluster, one user, one
//! context, all named after the topology's cluster), so that installers and the
//! scenarios need no `--context` and never see the vendor's other clusters.
//!
//! Kubeconfigs hold tokens and private keys: they are parsed without quoting the
//! source in errors ([`crate::yaml`]), written with mode 0600 ([`crate::files`]),
//! and never printed (`Debug` shows the server and context only).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};

use super::topology_file::ClusterEntry;

/// Why a cluster's kubeconfig cannot be used; each names the cluster and the file.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("cluster {cluster}: cannot read kubeconfig {}: {source}", path.display())]
    Read {
        cluster: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The message names line and column; it never quotes the file.
    #[error("cluster {cluster}: kubeconfig {} is not a kubeconfig: {message}", path.display())]
    Parse { cluster: String, path: PathBuf, message: String },
    #[error(
        "cluster {cluster}: kubeconfig {} has no current context; name one with `context:` in \
         the topology file (it has: {})", path.display(), list(known)
    )]
    NoCurrentContext { cluster: String, path: PathBuf, known: Vec<String> },
    #[error(
        "cluster {cluster}: context `{context}` is not in kubeconfig {} (it has: {})",
        path.display(), list(known)
    )]
    UnknownContext { cluster: String, context: String, path: PathBuf, known: Vec<String> },
    #[error("cluster {cluster}: context `{context}` of kubeconfig {}: {detail}", path.display())]
    Incomplete { cluster: String, context: String, path: PathBuf, detail: String },
    #[error("cluster {cluster}: writing kubeconfig {}: {source}", path.display())]
    Write {
        cluster: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster {cluster}: a client for context `{context}` of {}: {detail}", path.display())]
    Client { cluster: String, context: String, path: PathBuf, detail: String },
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "no contexts".to_string() } else { names.join(", ") }
}

/// One cluster's context, ready to be written and used.
#[derive(Clone)]
pub struct ClusterCredentials {
    /// The topology's cluster name.
    pub name: String,
    /// The kubeconfig the context came from.
    pub source: PathBuf,
    /// The context's name there.
    pub context: String,
    /// The API server URL of the context's cluster.
    pub server: String,
    /// The single-context kubeconfig, named after [`Self::name`].
    kubeconfig: Kubeconfig,
}

impl std::fmt::Debug for ClusterCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCredentials")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("context", &self.context)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ClusterCredentials {
    /// Reads the entry's kubeconfig and cuts out its context (the current one when the
    /// entry names none). Contacts no cluster.
    pub fn load(entry: &ClusterEntry) -> Result<Self, KubeconfigError> {
        let path = &entry.kubeconfig;
        let text = std::fs::read_to_string(path).map_err(|source| KubeconfigError::Read {
            cluster: entry.name.clone(),
            path: path.clone(),
            source,
        })?;
        let full = parse(&entry.name, path, &text)?;
        Self::from_kubeconfig(entry, full)
    }

    fn from_kubeconfig(entry: &ClusterEntry, full: Kubeconfig) -> Result<Self, KubeconfigError> {
        let path = &entry.kubeconfig;
        let cluster = entry.name.clone();
        let known: Vec<String> = full.contexts.iter().map(|c| c.name.clone()).collect();
        let context_name = match (&entry.context, &full.current_context) {
            (Some(c), _) => c.clone(),
            (None, Some(c)) if !c.is_empty() => c.clone(),
            (None, _) => {
                return Err(KubeconfigError::NoCurrentContext {
                    cluster,
                    path: path.clone(),
                    known,
                });
            }
        };
        let incomplete = |detail: String| KubeconfigError::Incomplete {
            cluster: entry.name.clone(),
            context: context_name.clone(),
            path: path.clone(),
            detail,
        };
        let Some(named) = full.contexts.iter().find(|c| c.name == context_name) else {
            return Err(KubeconfigError::UnknownContext {
                cluster,
                context: context_name,
                path: path.clone(),
                known,
            });
        };
        let context = named.context.clone().ok_or_else(|| incomplete("it is empty".into()))?;
        let cluster_entry = full
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| incomplete(format!("its cluster `{}` is not there", context.cluster)))?;
        let server =
            cluster_entry.server.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                incomplete(format!("cluster `{}` has no server", context.cluster))
            })?;
        let uri: http::Uri =
            server.parse().map_err(|e| incomplete(format!("server `{server}`: {e}")))?;
        if uri.host().is_none() || uri.scheme().is_none() {
            return Err(incomplete(format!("server `{server}` is not a URL with a host")));
        }
        let user = match &context.user {
            Some(u) if !u.is_empty() => Some(
                full.auth_infos
                    .iter()
                    .find(|a| &a.name == u)
                    .and_then(|a| a.auth_info.clone())
                    .ok_or_else(|| incomplete(format!("its user `{u}` is not there")))?,
            ),
            _ => None,
        };

        let name = entry.name.clone();
        let kubeconfig = Kubeconfig {
            clusters: vec![NamedCluster {
                name: name.clone(),
                cluster: Some(cluster_entry),
                other: Default::default(),
            }],
            auth_infos: user
                .map(|auth_info| NamedAuthInfo {
                    name: name.clone(),
                    auth_info: Some(auth_info),
                    other: Default::default(),
                })
                .into_iter()
                .collect(),
            contexts: vec![NamedContext {
                name: name.clone(),
                context: Some(kube::config::Context {
                    cluster: name.clone(),
                    user: context.user.as_ref().map(|_| name.clone()),
                    namespace: context.namespace.clone(),
                    extensions: None,
                    other: Default::default(),
                }),
                other: Default::default(),
            }],
            current_context: Some(name.clone()),
            kind: Some("Config".into()),
            api_version: Some("v1".into()),
            ..Default::default()
        };
        Ok(Self { name, source: path.clone(), context: context_name, server, kubeconfig })
    }

    /// Writes the single-context kubeconfig to `path` with mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), KubeconfigError> {
        let write_error = |source| KubeconfigError::Write {
            cluster: self.name.clone(),
            path: path.to_path_buf(),
            source,
        };
        // The kubeconfig holds only strings, lists and maps, which always serialize.
        let text = serde_saphyr::to_string(&self.kubeconfig)
            .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        crate::files::write_new(path, text.as_bytes(), 0o600).map_err(write_error)
    }

    /// A client for the context; connections give up after `connect_timeout`.
    pub async fn client(&self, connect_timeout: Duration) -> Result<kube::Client, KubeconfigError> {
        let fail = |detail: String| KubeconfigError::Client {
            cluster: self.name.clone(),
            context: self.context.clone(),
            path: self.source.clone(),
            detail,
        };
        crate::install_crypto_provider();
        let mut config = kube::Config::from_custom_kubeconfig(
            self.kubeconfig.clone(),
            &KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| fail(crate::kube::error_chain(&e)))?;
        config.connect_timeout = Some(connect_timeout);
        kube::Client::try_from(config).map_err(|e| fail(crate::kube::error_chain(&e)))
    }
}

/// Parses a kubeconfig (several documents are merged, as kubectl does) and makes the
/// file paths in it absolute, relative to its directory, as kubectl reads them: the
/// written copy lives elsewhere.
fn parse(cluster: &str, path: &Path, text: &str) -> Result<Kubeconfig, KubeconfigError> {
    let parse_error = |message: String| KubeconfigError::Parse {
        cluster: cluster.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let docs: Vec<Kubeconfig> =
        crate::yaml::from_multiple(text).map_err(|e| parse_error(e.to_string()))?;
    let mut merged: Option<Kubeconfig> = None;
    for doc in docs {
        merged = Some(match merged {
            None => doc,
            Some(m) => m.merge(doc).map_err(|e| parse_error(e.to_string()))?,
        });
    }
    let mut config = merged.unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let absolute = |p: &mut Option<String>| {
        if let Some(v) = p.as_mut().filter(|v| Path::new(v.as_str()).is_relative()) {
            *v = dir.join(v.as_str()).to_string_lossy().into_owned();
        }
    };
    for c in config.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        absolute(&mut c.certificate_authority);
    }
    for a in config.auth_infos.iter_mut().filter_map(|a| a.auth_info.as_mut()) {
        absolute(&mut a.client_certificate);
        absolute(&mut a.client_key);
        absolute(&mut a.token_file);
        // A bare command (`oc`, `gke-gcloud-auth-plugin`) is looked up on PATH; only a
        // command with a directory is relative to the kubeconfig (as client-go does).
        if let Some(exec) = a.exec.as_mut()
            && exec.command.as_deref().is_some_and(|c| c.contains('/'))
        {
            absolute(&mut exec.command);
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Role;

    const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
current-context: admin@a
clusters:
  - name: a
    cluster: {server: 'https://a.example:6443', certificate-authority: certs/ca.crt}
  - name: b
    cluster: {server: 'https://192.0.2.7:6443', certificate-authority-data: Q0E=}
users:
  - name: admin-a
    user: {token: s3cr3t-a}
  - name: admin-b
    user: {client-certificate: b.crt, client-key: /abs/b.key, exec: {command: ./bin/auth, apiVersion: client.authentication.k8s.io/v1}}
contexts:
  - name: admin@a
    context: {cluster: a, user: admin-a}
  - name: admin@b
    context: {cluster: b, user: admin-b, namespace: team-b}
  - name: broken
    context: {cluster: nowhere, user: admin-a}
";

    fn entry(context: Option<&str>) -> ClusterEntry {
        ClusterEntry {
            name: "config".into(),
            role: Role::Config,
            kubeconfig: PathBuf::from("/home/v/kube/config"),
            context: context.map(str::to_string),
            network: Some("network1".into()),
            external_address: None,
            line: 7,
        }
    }

    fn load(context: Option<&str>, text: &str) -> Result<ClusterCredentials, KubeconfigError> {
        let e = entry(context);
        let full = parse(&e.name, &e.kubeconfig, text)?;
        ClusterCredentials::from_kubeconfig(&e, full)
    }

    #[test]
    fn the_current_context_is_the_default() {
        let c = load(None, KUBECONFIG).unwrap();
        assert_eq!(c.context, "admin@a");
        assert_eq!(c.server, "https://a.example:6443");
        let kc = &c.kubeconfig;
        assert_eq!(kc.current_context.as_deref(), Some("config"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/home/v/kube/certs/ca.crt"));
        assert_eq!(kc.auth_infos.len(), 1, "only the context's user");
    }

    #[test]
    fn a_named_context_is_cut_out_with_its_namespace_and_absolute_paths() {
        let c = load(Some("admin@b"), KUBECONFIG).unwrap();
        assert_eq!(c.server, "https://192.0.2.7:6443");
        let kc = &c.kubeconfig;
        let ctx = kc.contexts[0].context.as_ref().unwrap();
        assert_eq!((ctx.cluster.as_str(), ctx.user.as_deref()), ("config", Some("config")));
        assert_eq!(ctx.namespace.as_deref(), Some("team-b"));
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.client_certificate.as_deref(), Some("/home/v/kube/b.crt"));
        assert_eq!(user.client_key.as_deref(), Some("/abs/b.key"));
        let exec = user.exec.as_ref().unwrap();
        assert_eq!(exec.command.as_deref(), Some("/home/v/kube/./bin/auth"));
    }

    #[test]
    fn an_unknown_context_is_named_with_the_kubeconfig() {
        let e = load(Some("admin@c"), KUBECONFIG).unwrap_err().to_string();
        assert_eq!(
            e,
            "cluster config: context `admin@c` is not in kubeconfig /home/v/kube/config (it has: \
             admin@a, admin@b, broken)"
        );
    }

    #[test]
    fn a_context_whose_cluster_is_missing_says_so() {
        let e = load(Some("broken"), KUBECONFIG).unwrap_err().to_string();
        assert!(e.contains("context `broken`") && e.contains("`nowhere` is not there"), "{e}");
    }

    #[test]
    fn without_a_current_context_one_must_be_named() {
        let text = KUBECONFIG.replace("current-context: admin@a\n", "");
        let e = load(None, &text).unwrap_err().to_string();
        assert!(e.contains("has no current context") && e.contains("admin@b"), "{e}");
    }

    #[test]
    fn a_server_must_be_a_url() {
        let text = KUBECONFIG.replace("'https://a.example:6443'", "'a.example'");
        let e = load(None, &text).unwrap_err().to_string();
        assert!(e.contains("server `a.example` is not a URL with a host"), "{e}");
    }

    #[test]
    fn parse_errors_never_quote_credentials() {
        let text = KUBECONFIG.replace("{token: s3cr3t-a}", "{token: s3cr3t-a");
        let e = load(None, &text).unwrap_err().to_string();
        assert!(e.contains("is not a kubeconfig") && !e.contains("s3cr3t"), "{e}");
        let c = load(None, KUBECONFIG).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_written_kubeconfig_is_private_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.kubeconfig");
        let c = load(None, KUBECONFIG).unwrap();
        c.write(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let back = Kubeconfig::read_from(&p).unwrap();
        assert_eq!(back.current_context.as_deref(), Some("config"));
        assert_eq!(back.contexts.len(), 1);
        assert!(back.auth_infos[0].auth_info.as_ref().unwrap().token.is_some());
        assert!(std::fs::read_to_string(&p).unwrap().contains("s3cr3t-a"));
    }
}
