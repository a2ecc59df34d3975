//! Cluster providers, each behind the seam of [`provider`] and owning its clusters
//! through a [`Run`]: [`apiserver`], control-plane-only clusters for the harness's own
//! tests (tier 2 of architecture.md): real `etcd`, `kube-apiserver` and
//! `kube-controller-manager` in one container per cluster, built locally from
//! [`assets`] into a `FROM scratch` [`image`], on an internal Docker network; and
//! [`kind`], real clusters for `cargo xtask e2e`.
//!
//! # Why bollard and not testcontainers
//!
//! testcontainers 0.28 connects with bollard's fixed client API version (1.53) and
//! never negotiates; Docker Engine 20.10 (API 1.41 at most) answers every such call
//! with "client version 1.53 is too new". So this provider talks to Docker through
//! bollard directly, after `negotiate_version()`. What testcontainers would give us
//! (removal when the handle drops) is done by the `Drop` of each run's [`Run`], and by
//! the run-id labels that `cargo xtask down` uses after a killed run.
//!
//! # Networking and the safety rule
//!
//! Each run creates one Docker network with `--internal` (no route off the machine:
//! Docker drops forwarded traffic from it) and attaches every cluster container to it
//! and to nothing else. Docker publishes no ports of containers that are only on
//! internal networks, but Engine 20.10 still gives the host an address on the
//! network's bridge, so the host reaches `container-ip:6443` directly. Hence both
//! kubeconfigs of a cluster name the same address: the one for the host (tests,
//! `cargo xtask up`) and the one for peers on the network (remote secrets). Mapping a
//! port would need a second, non-internal network on the container, which would give
//! the API server a default route off the machine; we do not do that.

pub mod apiserver;
pub mod assets;
pub mod docker;
pub mod existing;
pub mod image;
pub mod kind;
pub mod kubeconfig;
pub mod pki;
pub mod provider;
pub mod run;

pub use apiserver::{ApiCluster, ApiserverOptions, ApiserverProvider, ApiserverRun};
pub use assets::Assets;
pub use provider::{Capabilities, Provided, ProvidedCluster, Provider};
pub use run::{Cleanup, Run};

use std::fmt;

/// Label on every container and network a run creates; its value is the [`RunId`].
pub const RUN_ID_LABEL: &str = "ecp-harness.run-id";
/// Label naming the cluster a container belongs to.
pub const CLUSTER_LABEL: &str = "ecp-harness.cluster";
/// Label naming the provider that created a container or network.
pub const PROVIDER_LABEL: &str = "ecp-harness.provider";
/// Label grouping the runs of one `cargo xtask test` invocation (value of
/// [`SESSION_ENV`]), so the xtask can check that the tests left nothing behind.
pub const SESSION_LABEL: &str = "ecp-harness.session";
/// Environment variable whose value, when set, every run copies into [`SESSION_LABEL`].
pub const SESSION_ENV: &str = "ECP_HARNESS_SESSION";

/// Identifies one run: the value of [`RUN_ID_LABEL`] and part of every resource name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// A new run id: 10 hex digits from the time, the process id and a counter.
    pub fn new() -> Self {
        use sha2::{Digest, Sha256};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        Self(hex::encode(&h.finalize()[..5]))
    }

    /// An existing run id, e.g. given to `cargo xtask down --run-id`.
    pub fn from_existing(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What can go wrong while providing clusters. Every variant names what it was doing.
/// `Debug` prints the message too, so a test's `unwrap()` says what to do (e.g. run
/// through `cargo xtask test`) and shows a failed cluster's log tail readably.
#[derive(thiserror::Error)]
pub enum ClusterError {
    #[error("docker: {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "cannot reach the Docker daemon ({source}): start it, or set DOCKER_HOST to its \
         socket"
    )]
    DockerUnavailable {
        #[source]
        source: bollard::errors::Error,
    },
    #[error("kubernetes binaries: {0} (`cargo xtask test` obtains and caches them)")]
    Assets(String),
    #[error("asset step `{step}` failed: {detail}")]
    AssetStep { step: String, detail: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image build failed: {0}")]
    ImageBuild(String),
    #[error("certificates for cluster {cluster}: {source}")]
    Pki {
        cluster: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("kubeconfig for cluster {cluster}: {detail}")]
    Kubeconfig { cluster: String, detail: String },
    #[error("cluster {cluster}: container has no address on network {network}")]
    NoAddress { cluster: String, network: String },
    #[error(
        "cluster {cluster}: not ready after {waited:?}: {last}\n--- container log (tail) ---\n{log_tail}"
    )]
    NotReady { cluster: String, waited: std::time::Duration, last: String, log_tail: String },
    #[error(
        "cluster {cluster}: container exited ({status}) while starting\n--- container log (tail) ---\n{log_tail}"
    )]
    Exited { cluster: String, status: String, log_tail: String },
    #[error("cluster {cluster}: kube client: {source}")]
    Kube {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "exec `{command}` in container {container}: no result within {timeout:?} (the \
         command may still be running there)"
    )]
    ExecTimeout { container: String, command: String, timeout: std::time::Duration },
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cleanup of run {run}: {detail}")]
    Cleanup { run: String, detail: String },
    #[error("this provider does not support {capability}")]
    Unsupported { capability: &'static str },
    /// What the kind provider found, through the provider seam (the kind-specific
    /// errors stay typed inside).
    #[error(transparent)]
    Kind(Box<kind::KindError>),
}

impl fmt::Debug for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every message already includes its source.
        fmt::Display::fmt(self, f)
    }
}

impl ClusterError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ClusterError::Io { action, path, source }
    }
}

/// Directory where the harness caches what survives between runs (binaries, source
/// builds, kubeconfigs of `cargo xtask up`): `$ECP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ecp-harness`, else `~/.cache/ecp-harness`.
pub fn cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(d) = std::env::var_os("ECP_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("ecp-harness");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("ecp-harness")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_differ_and_are_short_hex() {
        let a = RunId::new();
        let b = RunId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 10);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
