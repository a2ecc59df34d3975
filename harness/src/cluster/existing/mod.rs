//! The existing-cluster provider: clusters a vendor already has (OpenShift, managed
//! clusters), named in a topology file (docs/existing-clusters.md), for
//! `cargo xtask e2e --provider existing --topology FILE`.
//!
//! - [`topology_file`]: the file's format, checked against the suite's topology.
//! - [`kubeconfig`]: each cluster's context cut out into a kubeconfig of its own.
//! - [`access`]: the permissions the install plan needs, per cluster.
//! - [`installed`]: an Istio, or the plan's namespaces, already there.
//! - [`platform`]: the Sail operator already installed, and whether it is OpenShift.
//! - [`preflight`]: the checks before anything is created.
//!
//! A bad file, a missing kubeconfig or an unknown context fails at once, in
//! [`ExistingProvider::from_file`], contacting no cluster; an unreachable server
//! fails the preflight (and [`Provider::start`]) naming cluster and URL. The clusters
//! are never deleted ([`Cleanup::Nothing`]): what the harness created in them is
//! removed by the install's cleanup phase, unless the run is kept. Nothing is loaded
//! into them and nothing is installed besides the plan: [`Capabilities`] are all
//! false.

pub mod access;
pub mod installed;
pub mod kubeconfig;
pub mod platform;
pub mod preflight;
pub mod topology_file;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::install::Plan;
use crate::preflight::{Problem, ProblemKind};
use crate::topology::Topology;
use crate::version::IstioVersion;

use super::provider::{Capabilities, Provided, ProvidedCluster, Provider};
use super::run::{Cleanup, Run};
use super::{ClusterError, RunId};
pub use kubeconfig::{ClusterCredentials, KubeconfigError};
pub use preflight::Preflight;
pub use topology_file::{ClusterEntry, FileError, TopologyFile};

/// The provider's name in messages, reports and `--provider`.
pub const PROVIDER: &str = "existing";

/// How the existing clusters are checked and used.
#[derive(Debug, Clone)]
pub struct ExistingOptions {
    /// The Istio version to be installed: its Kubernetes range is checked.
    pub istio: IstioVersion,
    /// Install even where Istio, or the plan's namespaces, are already there
    /// (`--force`); the preflight then warns instead.
    pub force: bool,
    /// The Kubernetes minors accepted, `(low, high)` of 1.x; by default the Istio
    /// version's ([`IstioVersion::kubernetes_minors`]).
    pub kubernetes_minors: (u32, u32),
    /// Where the run's directory (the clusters' kubeconfigs) goes: `<state_dir>/<run
    /// id>/`, kept after the run; `None` for a temporary directory.
    pub state_dir: Option<PathBuf>,
    /// The run id; `None` for a new one.
    pub run_id: Option<RunId>,
    /// Longest one request may take (connect included): `/version`, discovery, each
    /// access review.
    pub request_timeout: Duration,
    /// Longest all checks of one cluster may take together.
    pub cluster_timeout: Duration,
}

impl ExistingOptions {
    pub fn new(istio: IstioVersion) -> Self {
        Self {
            istio,
            force: false,
            kubernetes_minors: istio.kubernetes_minors(),
            state_dir: None,
            run_id: None,
            request_timeout: Duration::from_secs(10),
            cluster_timeout: Duration::from_secs(120),
        }
    }
}

/// Why the topology file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExistingError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
}

impl ExistingError {
    /// The error as a preflight problem: the file ([`ProblemKind::TopologyFile`]) or a
    /// cluster's kubeconfig or context ([`ProblemKind::Unreachable`]).
    pub fn problem(&self) -> Problem {
        match self {
            Self::File(_) => Problem::new(
                ProblemKind::TopologyFile,
                self.to_string(),
                "see docs/existing-clusters.md for the format",
            ),
            Self::Kubeconfig(_) => Problem::new(ProblemKind::Unreachable, self.to_string(), ""),
        }
    }
}

/// Existing clusters, named by a topology file.
#[derive(Debug, Clone)]
pub struct ExistingProvider {
    file: TopologyFile,
    credentials: Vec<ClusterCredentials>,
    opts: ExistingOptions,
}

impl ExistingProvider {
    /// Reads the topology file and every cluster's kubeconfig and context; contacts no
    /// cluster. Fails at once on a bad file, a missing kubeconfig or an unknown context,
    /// naming which.
    pub fn from_file(path: &Path, opts: &ExistingOptions) -> Result<Self, ExistingError> {
        let file = TopologyFile::read(path)?;
        let credentials =
            file.clusters.iter().map(ClusterCredentials::load).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { file, credentials, opts: opts.clone() })
    }

    /// The same clusters checked and used with other options (another Istio
    /// version's Kubernetes range): the file and kubeconfigs are not read again.
    pub fn with_options(&self, opts: &ExistingOptions) -> Self {
        Self { opts: opts.clone(), ..self.clone() }
    }

    /// The topology the file describes; the run's plan is made for it.
    pub fn topology(&self) -> &Topology {
        &self.file.topology
    }

    pub fn file(&self) -> &TopologyFile {
        &self.file
    }

    /// Each cluster's context, in topology order.
    pub fn credentials(&self) -> &[ClusterCredentials] {
        &self.credentials
    }

    /// `EXTERNAL_ISTIOD_ADDR` when given in the file (no LoadBalancer).
    pub fn external_address(&self) -> Option<IpAddr> {
        self.file.external_address()
    }

    /// Every check of the clusters for `plan` (made for [`Self::topology`]), with the
    /// warnings the trait's [`Provider::preflight`] only logs.
    pub async fn check(&self, plan: &Plan) -> Preflight {
        let mut out = Preflight::default();
        if let Some(p) = self.topology_mismatch(&plan.topology) {
            out.problems.push(p);
        }
        let settings = preflight::Settings {
            istio: self.opts.istio,
            kubernetes_minors: self.opts.kubernetes_minors,
            force: self.opts.force,
            request_timeout: self.opts.request_timeout,
            cluster_timeout: self.opts.cluster_timeout,
            plan,
        };
        let checked = preflight::clusters(&self.credentials, &settings).await;
        out.problems.extend(checked.problems);
        out.warnings.extend(checked.warnings);
        out.warnings.extend(preflight::warnings(
            &self.credentials,
            &self.file.topology.external().name,
            self.external_address(),
            plan,
        ));
        out
    }

    fn topology_mismatch(&self, topology: &Topology) -> Option<Problem> {
        (*topology != self.file.topology).then(|| {
            let t = topology;
            Problem::new(
                ProblemKind::TopologyFile,
                format!(
                    "topology file {} describes {} remote(s) ({:?}), the run asks for {} ({:?})",
                    self.file.path.display(),
                    self.file.topology.remotes().count(),
                    self.file.topology.network_mode,
                    t.remotes().count(),
                    t.network_mode
                ),
                "run with the topology of the file (its remotes and networks)",
            )
        })
    }

    async fn start_clusters(&self, topology: &Topology) -> Result<ExistingClusters, ClusterError> {
        if let Some(p) = self.topology_mismatch(topology) {
            return Err(ClusterError::Options(p.to_string()));
        }
        let id = self.opts.run_id.clone().unwrap_or_default();
        let run = Run::new(id, self.opts.state_dir.as_deref(), "ecp-existing-", Cleanup::Nothing)?;
        let timeout = self.opts.request_timeout;
        let mut clusters = Vec::new();
        for c in &self.credentials {
            let kubeconfig_error = |e: KubeconfigError| ClusterError::Kubeconfig {
                cluster: c.name.clone(),
                detail: e.to_string(),
            };
            let path = run.dir().join(format!("{}.kubeconfig", c.name));
            c.write(&path).map_err(kubeconfig_error)?;
            let client = c.client(timeout).await.map_err(kubeconfig_error)?;
            let unreachable = |why: String| ClusterError::Kubeconfig {
                cluster: c.name.clone(),
                detail: format!(
                    "the API server {} (context `{}` of {}) {why}",
                    c.server,
                    c.context,
                    c.source.display()
                ),
            };
            match tokio::time::timeout(timeout, client.apiserver_version()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(unreachable(format!(
                        "cannot be reached: {}",
                        crate::kube::error_chain(&e)
                    )));
                }
                Err(_) => return Err(unreachable(format!("did not answer within {timeout:?}"))),
            }
            clusters.push(ProvidedCluster {
                name: c.name.clone(),
                server: c.server.clone(),
                // The other clusters (the external istiod) reach this API server at the
                // same URL as this machine does.
                peer_server: c.server.clone(),
                kubeconfig: path,
            });
        }
        tracing::info!(run_id = %run.id(), clusters = clusters.len(), "existing clusters ready");
        Ok(ExistingClusters { run, clusters, external_address: self.external_address() })
    }
}

impl Provider for ExistingProvider {
    type Handle = ExistingClusters;

    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn platform(&self) -> String {
        "existing clusters (named in the topology file)".into()
    }

    /// None: nothing is loaded into or installed in clusters the harness does not own.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// OpenShift when any cluster serves [`platform::OPENSHIFT_GROUP`].
    async fn openshift(&self) -> bool {
        let timeout = self.opts.request_timeout;
        let asks = self.credentials.iter().map(|c| async move {
            match c.client(timeout).await {
                Ok(client) => platform::is_openshift(&client, timeout).await,
                Err(_) => false,
            }
        });
        futures::future::join_all(asks).await.into_iter().any(|o| o)
    }

    /// Every problem; the warnings (see [`ExistingProvider::check`]) are logged.
    async fn preflight(&self, plan: &Plan) -> Vec<Problem> {
        let checked = self.check(plan).await;
        for w in &checked.warnings {
            tracing::warn!("{w}");
        }
        checked.problems
    }

    async fn start(&self, topology: &Topology) -> Result<Self::Handle, ClusterError> {
        self.start_clusters(topology).await
    }
}

/// The existing clusters of one run, with their kubeconfigs in the run's directory.
#[derive(Debug)]
pub struct ExistingClusters {
    run: Run,
    clusters: Vec<ProvidedCluster>,
    external_address: Option<IpAddr>,
}

impl ExistingClusters {
    /// `EXTERNAL_ISTIOD_ADDR` when given in the topology file.
    pub fn external_address(&self) -> Option<IpAddr> {
        self.external_address
    }
}

impl Provided for ExistingClusters {
    fn run(&self) -> &Run {
        &self.run
    }

    fn into_run(self) -> Run {
        self.run
    }

    fn clusters(&self) -> Vec<ProvidedCluster> {
        self.clusters.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}
