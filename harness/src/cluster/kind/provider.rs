//! kind clusters through the provider seam ([`crate::cluster::provider`]): the
//! preflight's findings as typed problems, [`KindRun`] as the handle, with every
//! optional capability (images loaded into the nodes, MetalLB, node logs, Docker
//! faults).

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::Instrument;

use super::{
    KindError, KindOptions, KindRun, MetalLbManifest, NodeImagePull, metallb, preflight_with,
};
use crate::cluster::provider::{Capabilities, Provided, ProvidedCluster, Provider};
use crate::cluster::run::Run;
use crate::cluster::{ClusterError, docker};
use crate::execute::preflight::{REACH_TIMEOUT, host_reachable, registry_host};
use crate::preflight::{Problem, ProblemKind};
use crate::topology::Topology;

/// Gives the topology as kind clusters started with [`KindProvider::options`].
#[derive(Debug, Clone)]
pub struct KindProvider {
    pub options: KindOptions,
    /// Whether the preflight may use the network, and how long pulling a node image
    /// missing locally may take: `Some` pulls it when its registry answers and checks
    /// that MetalLB's images and manifest can be had (`cargo xtask e2e`); `None` tries
    /// no network at all (the project's tests: nothing outside the machine).
    pub pull_node_image: Option<Duration>,
}

impl KindProvider {
    /// A provider whose preflight never pulls.
    pub fn new(options: KindOptions) -> Self {
        Self { options, pull_node_image: None }
    }

    /// How the preflight treats a missing node image: pull it only where its registry
    /// answers, else say which registry did not.
    async fn node_image_pull(&self) -> NodeImagePull {
        let Some(timeout) = self.pull_node_image else {
            return NodeImagePull::Skip("not tried".to_string());
        };
        let host = registry_host(&self.options.node_image);
        match host_reachable(&host, 443, REACH_TIMEOUT).await {
            Ok(()) => NodeImagePull::Try(timeout),
            Err(why) => NodeImagePull::Skip(format!("registry {host} unreachable: {why}")),
        }
    }
}

/// kind loads images into its nodes, installs MetalLB, reads the node containers'
/// logs, and pauses nodes and cuts networks through Docker.
const CAPABILITIES: Capabilities = Capabilities {
    load_images: true,
    install_load_balancer: true,
    node_logs: true,
    network_faults: true,
    install_operators: true,
};

impl Provider for KindProvider {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    type Handle = KindRun;

    fn name(&self) -> &'static str {
        super::node::PROVIDER
    }

    fn platform(&self) -> String {
        format!("kind, node image {}", self.options.node_image)
    }

    /// Docker, the host, the node image and privileged containers ([`super::preflight`]);
    /// its warnings are logged. Then MetalLB's manifest and images.
    async fn preflight(&self, _plan: &crate::install::Plan) -> Vec<Problem> {
        let pull = self.node_image_pull().await;
        let mut problems = match preflight_with(&self.options, &pull).await {
            Ok(report) => {
                for warning in &report.warnings {
                    tracing::warn!("{warning}");
                }
                Vec::new()
            }
            Err(KindError::Preflight { problems }) => problems,
            Err(other) => vec![Problem::new(ProblemKind::Docker, other.to_string(), "")],
        };
        // MetalLB's images and manifest may need their hosts: only where the network
        // may be tried at all (never in the project's own tests).
        if self.pull_node_image.is_some() {
            if !problems.iter().any(|p| p.kind == ProblemKind::Docker) {
                problems.extend(crate::suite::preflight::image_problems(&metallb::images()).await);
            }
            problems.extend(metallb_manifest_problem().await);
        }
        problems
    }

    async fn start(&self, topology: &Topology) -> Result<KindRun, ClusterError> {
        Ok(KindRun::start(topology, &self.options).await?)
    }
}

impl Provided for KindRun {
    fn run(&self) -> &Run {
        &self.run
    }

    fn into_run(self) -> Run {
        self.run
    }

    /// The host reaches a cluster on its published port on 127.0.0.1, the peers at
    /// the node's address on the shared network.
    fn clusters(&self) -> Vec<ProvidedCluster> {
        self.clusters
            .iter()
            .map(|c| ProvidedCluster {
                name: c.spec.name.clone(),
                server: c.server(),
                peer_server: c.peer_server(),
                kubeconfig: c.host_kubeconfig.clone(),
            })
            .collect()
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn load_images(&self, images: &[String]) -> Result<(), ClusterError> {
        // The inherent method, which reports what it pulled and loaded.
        let report = KindRun::load_images(self, images).await?;
        tracing::info!(?report, "images loaded");
        Ok(())
    }

    /// MetalLB from its verified upstream manifest, one pool per cluster, its images
    /// loaded first.
    async fn install_load_balancer(&self) -> Result<(), ClusterError> {
        KindRun::load_images(self, &metallb::images()).await?;
        let pools = self
            .install_metallb(&MetalLbManifest::default())
            .instrument(tracing::info_span!("load balancer", run_id = %self.run_id()))
            .await?;
        tracing::info!(?pools, "MetalLB installed");
        Ok(())
    }

    /// The node container's log tail (systemd, containerd, kubelet), under the node's
    /// name.
    async fn node_logs(
        &self,
        cluster: &str,
        lines: usize,
    ) -> Result<BTreeMap<String, String>, ClusterError> {
        let c = self.cluster(cluster).ok_or_else(|| {
            ClusterError::Options(format!("no cluster `{cluster}` in run {}", self.run_id()))
        })?;
        let log = docker::logs(&self.docker, &c.container_id, Some(lines)).await?;
        Ok(BTreeMap::from([(c.node.clone(), log)]))
    }
}

/// MetalLB's manifest: cached with its published SHA-256, or its host reachable.
async fn metallb_manifest_problem() -> Option<Problem> {
    let cached = metallb::cached_manifest_path();
    if let Ok(text) = std::fs::read_to_string(&cached) {
        return metallb::verify_native_manifest(&text).err().map(|e| {
            Problem::new(
                ProblemKind::Images,
                e.to_string(),
                format!("remove {} to fetch it again", cached.display()),
            )
        });
    }
    let url = metallb::native_manifest_url();
    let host = url.split('/').nth(2).unwrap_or_default();
    host_reachable(host, 443, REACH_TIMEOUT).await.err().map(|why| {
        Problem::new(
            ProblemKind::Repository,
            format!("MetalLB's manifest is not cached and {url} cannot be fetched ({why})"),
            format!("download it where the network allows and put it at {}", cached.display()),
        )
    })
}
