//! The cluster provider seam: what the suite asks of whatever gives it clusters.
//!
//! A provider checks, before anything exists, that it can give the topology
//! ([`Provider::preflight`]), then gives it ([`Provider::start`]) as a handle
//! ([`Provided`]) that owns the run ([`Run`]): its id, its directory and what removes
//! it. The suite reaches every cluster by URL and kubeconfig ([`ProvidedCluster`]),
//! never by a socket address: an OpenShift API server is `https://api.<domain>:6443`.
//!
//! What only some providers can do is optional ([`Capabilities`]): loading images
//! into the nodes, a LoadBalancer implementation, node logs, network faults. The suite
//! asks, and says in the report what it skipped without them.
//!
//! The providers: [`super::apiserver`] (control-plane-only clusters, the project's own
//! tests), [`super::kind`] (`cargo xtask e2e`), `existing` (clusters a vendor
//! already has, named in a topology file). Adding one is one file implementing these
//! two traits plus one variant of the xtask's `--provider`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use crate::install::Plan;
use crate::preflight::Problem;
use crate::topology::Topology;

use super::ClusterError;
pub use super::run::{Cleanup, Run};

/// Where a cluster comes from.
pub trait Provider {
    /// The running clusters this provider hands back.
    type Handle: Provided;

    /// A short name for messages and reports (`kind`, `existing`, `apiserver`).
    fn name(&self) -> &'static str;

    /// What the clusters run on, for the report (`kind, node image ...`,
    /// `control-plane-only`, `existing clusters`): the provider's own name for it.
    fn platform(&self) -> String {
        self.name().to_string()
    }

    /// What this provider can do beyond giving clusters (known before it starts any).
    fn capabilities(&self) -> Capabilities;

    /// `EXTERNAL_ISTIOD_ADDR` when it is known beforehand (clusters without a
    /// LoadBalancer, whose address is given); `None`: the control-plane gateway's
    /// LoadBalancer IP, observed after step 1.
    fn external_address(&self) -> Option<std::net::IpAddr> {
        None
    }

    /// Whether the clusters are OpenShift, where sidecars need the Istio CNI (its
    /// restricted security context constraints refuse `istio-init`). Asked before
    /// planning, only for `--installer sail`; `false` for clusters the harness starts.
    fn openshift(&self) -> impl Future<Output = bool> + Send {
        async { false }
    }

    /// Checks, creating nothing, that [`Provider::start`] can give the plan's topology
    /// and that the plan can be installed there (a provider of clusters it does not own
    /// checks permissions and earlier installs); every problem at once, each with its
    /// remedy.
    fn preflight(&self, plan: &Plan) -> impl Future<Output = Vec<Problem>> + Send;

    /// Gives the clusters of `topology`. On failure whatever was created is removed.
    fn start(
        &self,
        topology: &Topology,
    ) -> impl Future<Output = Result<Self::Handle, ClusterError>> + Send;
}

/// Running clusters and the run that owns them.
pub trait Provided: Send + Sync {
    /// The run: id, directory, keep/down.
    fn run(&self) -> &Run;

    /// Takes the run out of the handle, to keep or remove it.
    fn into_run(self) -> Run;

    /// Every cluster, in topology order.
    fn clusters(&self) -> Vec<ProvidedCluster>;

    /// What this provider can do beyond giving clusters.
    fn capabilities(&self) -> Capabilities;

    /// Loads images into every node. Only where [`Capabilities::load_images`].
    fn load_images(
        &self,
        images: &[String],
    ) -> impl Future<Output = Result<(), ClusterError>> + Send {
        let _ = images;
        async { Err(ClusterError::Unsupported { capability: "loading images into nodes" }) }
    }

    /// Gives the clusters a LoadBalancer implementation. Only where
    /// [`Capabilities::install_load_balancer`].
    fn install_load_balancer(&self) -> impl Future<Output = Result<(), ClusterError>> + Send {
        async { Err(ClusterError::Unsupported { capability: "installing a LoadBalancer" }) }
    }

    /// The last lines of each node's log, by node name. Only where
    /// [`Capabilities::node_logs`].
    fn node_logs(
        &self,
        cluster: &str,
        lines: usize,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, ClusterError>> + Send {
        let _ = (cluster, lines);
        async { Err(ClusterError::Unsupported { capability: "node logs" }) }
    }
}

/// One cluster as the suite reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedCluster {
    /// The topology's cluster name (`external`, `config`, `remote2`, ...).
    pub name: String,
    /// The API server as the host reaches it, a URL.
    pub server: String,
    /// The API server as the other clusters reach it (for remote secrets), a URL.
    pub peer_server: String,
    /// A kubeconfig for the host whose current context is this cluster (mode 0600).
    pub kubeconfig: PathBuf,
}

/// What a provider can do beyond giving clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Images can be loaded into the nodes (kind); otherwise the clusters pull them.
    pub load_images: bool,
    /// The provider installs a LoadBalancer implementation (MetalLB on kind).
    pub install_load_balancer: bool,
    /// Node logs can be read (the node containers' logs on kind).
    pub node_logs: bool,
    /// Nodes can be paused and networks cut (Docker on kind): the node-pause outage
    /// variant needs it.
    pub network_faults: bool,
    /// The clusters are the harness's own, so it installs cluster-wide operators (the
    /// Sail operator) itself; otherwise they must already be installed.
    pub install_operators: bool,
}

impl Capabilities {
    /// The capabilities missing here, by what the suite skips without them.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.load_images {
            out.push("images are not loaded into the nodes: the clusters must pull them");
        }
        if !self.install_load_balancer {
            out.push("no LoadBalancer is installed: the clusters must have one, or an external address is given");
        }
        if !self.node_logs {
            out.push("node logs are not collected into the diagnostics");
        }
        if !self.network_faults {
            out.push("outage variants that pause a node are not run");
        }
        if !self.install_operators {
            out.push("operators are not installed: --installer sail needs the Sail operator on every cluster already");
        }
        out
    }
}
