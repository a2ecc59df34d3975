//! The `kind` provider: one `kindest/node` container per cluster of the topology,
//! bootstrapped the way kind does it but without the kind CLI (kind-node.md), all on
//! one user-defined Docker network; MetalLB for LoadBalancer addresses
//! ([`metallb`]); images pulled once on the host and loaded into every node
//! ([`images`]); an optional registry mirror for the nodes' containerd ([`mirror`]).
//!
//! Tier 3 of architecture.md: it needs node images and registry access, which this
//! project's build machines do not have. Everything that decides something is pure
//! and unit-tested (container options, kubeadm config, bootstrap order, CNI
//! templating, pools, manifests, command lines); the Docker plumbing ([`exec`]) is
//! exercised against a local `FROM scratch` busybox image. [`preflight`] says within
//! seconds what a machine lacks.
//!
//! # Docker access
//!
//! kind allocates a TTY for its nodes (systemd's readiness line reaches the log only
//! then) and runs privileged execs fed from stdin; testcontainers can do neither, and
//! its fixed client API version is refused by Engine 20.10 (see [`super`]). So nodes,
//! execs and the network go through bollard after version negotiation, with the run-id
//! labels of [`super::docker`]; the `Drop` of [`KindRun`]'s [`Run`] and `cargo xtask
//! down` remove everything by label, anonymous `/var` volumes included.
//!
//! [`KindProvider`] gives these clusters through the provider seam
//! ([`super::provider`]).
//!
//! # Networking
//!
//! Real e2e needs the nodes to pull Istio's images, so the shared network is a normal
//! user-defined bridge network (`--internal` only for the project's self-tests, see
//! [`KindOptions::internal_network`]). The host reaches each API server on
//! `127.0.0.1:<published port>`; peers reach it at `<node IP>:6443`.

pub mod bootstrap;
pub mod exec;
pub mod host;
pub mod images;
pub mod kubeadm;
pub mod metallb;
pub mod mirror;
pub mod node;
pub mod node_image;
pub mod provider;
pub mod proxy;
pub mod routes;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bollard::Docker;
use ipnet::Ipv4Net;
use tracing::Instrument;

use super::kubeconfig::{self, KubeconfigSpec};
use super::run::{Cleanup, Run};
use super::{ClusterError, RunId, docker};
use crate::preflight::{Problem, ProblemKind};
use crate::topology::{ClusterSpec, RuntimeAddrs, Topology};
use crate::version::IstioVersion;

pub use bootstrap::{Step, plan};
pub use host::HostSettings;
pub use images::LoadReport;
pub use metallb::{AddressRange, MetalLbManifest};
pub use mirror::RegistryMirror;
pub use node::NodeContainerSpec;
pub use node_image::{KNOWN_NODE_IMAGES, KnownNodeImage, node_image_for};
pub use provider::KindProvider;

/// What to start and how.
#[derive(Debug, Clone)]
pub struct KindOptions {
    /// The run's id: label of everything created, part of the network's name.
    pub run_id: RunId,
    /// The node image, e.g. `kindest/node:v1.35.0` (a digest may be appended).
    pub node_image: String,
    /// The shared network's name (created by [`KindRun::start`]).
    pub network: String,
    /// Create the network with `--internal` (no route off the machine): only for
    /// self-tests; real Istio must pull its images through the network.
    pub internal_network: bool,
    /// Bind the host's `/lib/modules` read-only, as kind does (some hosts have none).
    pub mount_lib_modules: bool,
    /// Privileged node containers and execs, as kind's. Only the plumbing self-tests
    /// turn it off, on Docker hosts that cannot grant every capability (a daemon that
    /// itself runs with a reduced capability set: runc then fails "unable to apply
    /// caps"); no real node boots without it.
    pub privileged: bool,
    pub registry_mirrors: Vec<RegistryMirror>,
    /// Further names or addresses for the API server certificates.
    pub extra_cert_sans: Vec<String>,
    pub systemd_timeout: Duration,
    pub node_ready_timeout: Duration,
    /// How long pulling one image on the host may take in [`KindRun::load_images`]
    /// before the run gives up ([`KindError::ImagePullTimeout`]); a stalled registry
    /// otherwise hangs the run.
    pub image_pull_timeout: Duration,
    /// Where kubeconfigs go: `<state_dir>/<run id>/`; `None` for a temporary
    /// directory removed with the run.
    pub state_dir: Option<PathBuf>,
}

impl KindOptions {
    /// Kind's defaults for `node_image`, on a normal network named `ecp-kind-<run id>`.
    pub fn new(node_image: impl Into<String>, run_id: RunId) -> Self {
        Self {
            network: format!("ecp-kind-{run_id}"),
            run_id,
            node_image: node_image.into(),
            internal_network: false,
            mount_lib_modules: true,
            privileged: true,
            registry_mirrors: Vec::new(),
            extra_cert_sans: Vec::new(),
            systemd_timeout: bootstrap::SYSTEMD_TIMEOUT,
            node_ready_timeout: bootstrap::NODE_READY_TIMEOUT,
            image_pull_timeout: images::PULL_TIMEOUT,
            state_dir: None,
        }
    }

    /// The newest known node image for the Istio release ([`node_image_for`]).
    pub fn for_istio(istio: IstioVersion, run_id: RunId) -> Result<Self, KindError> {
        Ok(Self::new(node_image_for(istio)?.reference(), run_id))
    }
}

/// What can go wrong; every variant names the cluster and step where it applies.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    NoNodeImage(#[from] node_image::NoNodeImage),
    #[error("the kind provider cannot run on this machine:\n{}", bullet(.problems))]
    Preflight { problems: Vec<Problem> },
    #[error("cluster {cluster}: step `{step}`: {source}")]
    Exec {
        cluster: String,
        step: &'static str,
        #[source]
        source: exec::ExecError,
    },
    #[error("cluster {cluster}: step `{step}`: {detail}")]
    Step { cluster: String, step: &'static str, detail: String },
    #[error("cluster {cluster}: node not Ready: {source}")]
    NodeNotReady {
        cluster: String,
        #[source]
        source: Box<crate::kube::wait::WaitError>,
    },
    #[error("cluster {cluster}: MetalLB: {detail}")]
    MetalLb { cluster: String, detail: String },
    #[error(
        "cluster {cluster}: MetalLB address pool {pool}: {}: {source}",
        metallb::pool_failure(*attempts, source)
    )]
    MetalLbPool {
        cluster: String,
        pool: AddressRange,
        attempts: u32,
        #[source]
        source: Box<crate::kube::apply::ApplyError>,
    },
    #[error(transparent)]
    Pool(#[from] metallb::PoolError),
    #[error("image {image}: {detail}")]
    Image { image: String, detail: String },
    #[error(
        "image {image}: pulling it on the host did not finish within {timeout:?}: check that \
         its registry is reachable from this machine, or pull it beforehand (`docker pull \
         {image}`, or `docker load` an archive of it)"
    )]
    ImagePullTimeout { image: String, timeout: Duration },
}

fn bullet(items: &[Problem]) -> String {
    items.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl KindError {
    pub(crate) fn exec(cluster: &str, step: &Step, source: exec::ExecError) -> Self {
        Self::Exec { cluster: cluster.to_string(), step: step.name(), source }
    }

    pub(crate) fn failed(
        cluster: &str,
        step: &Step,
        argv: &[String],
        out: &exec::ExecOutput,
    ) -> Self {
        Self::Step {
            cluster: cluster.to_string(),
            step: step.name(),
            detail: bootstrap::describe_failure(argv, out),
        }
    }

    fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |source| Self::Cluster(ClusterError::Docker { action, source })
    }
}

/// Through the provider seam a kind error is a [`ClusterError`]: its own when it wraps
/// one, else [`ClusterError::Kind`].
impl From<KindError> for ClusterError {
    fn from(e: KindError) -> Self {
        match e {
            KindError::Cluster(c) => c,
            other => ClusterError::Kind(Box::new(other)),
        }
    }
}

/// One running kind cluster.
#[derive(Debug, Clone)]
pub struct KindCluster {
    pub spec: ClusterSpec,
    /// The node container's (and node's) name, `ecp-<run id>-<cluster>-control-plane`.
    pub node: String,
    pub container_id: String,
    /// The node's address on the shared network.
    pub ip: Ipv4Addr,
    /// The host port published for 6443 on 127.0.0.1.
    pub host_port: u16,
    pub kubernetes_version: kubeadm::KubeVersion,
    /// Names `https://127.0.0.1:<host port>`.
    pub host_kubeconfig: PathBuf,
    /// Names `https://<node IP>:6443` (for remote secrets: never 127.0.0.1).
    pub peer_kubeconfig: PathBuf,
}

impl KindCluster {
    /// An admin client through the host kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, KindError> {
        Ok(kubeconfig::client(&self.spec.name, &self.host_kubeconfig).await?)
    }

    /// The API server as peers on the network reach it.
    pub fn peer_address(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), node::API_SERVER_PORT)
    }

    /// The API server as peers on the network reach it, a URL (`https://<node IP>:6443`).
    pub fn peer_server(&self) -> String {
        format!("https://{}", self.peer_address())
    }

    /// The API server as the host reaches it, a URL (what the host kubeconfig names).
    pub fn server(&self) -> String {
        host_url(self.ip, self.host_port)
    }
}

/// The clusters of one run. Dropping it removes every container, volume and the
/// network carrying the run's label (its [`Run`]'s `Drop`), unless [`KindRun::keep`]
/// disarmed that.
pub struct KindRun {
    docker: Docker,
    network: String,
    subnet: Ipv4Net,
    clusters: Vec<KindCluster>,
    privileged: bool,
    pull_timeout: Duration,
    run: Run,
}

impl std::fmt::Debug for KindRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindRun")
            .field("run_id", self.run.id())
            .field("network", &self.network)
            .field("subnet", &self.subnet)
            .field("clusters", &self.clusters.iter().map(|c| &c.node).collect::<Vec<_>>())
            .finish()
    }
}

impl KindRun {
    /// Creates the shared network and one node per cluster, bootstraps the clusters in
    /// parallel, writes their kubeconfigs and, for clusters sharing an Istio network,
    /// routes between their pod and service ranges. On failure everything created is
    /// removed.
    pub async fn start(topology: &Topology, opts: &KindOptions) -> Result<Self, KindError> {
        crate::install_crypto_provider();
        let docker = docker::connect().await?;
        let labels = docker::labels(&opts.run_id, node::PROVIDER);
        // From here on, dropping `run` removes whatever carries the run's label.
        let mut run = Self {
            docker: docker.clone(),
            network: opts.network.clone(),
            subnet: Ipv4Net::default(),
            clusters: Vec::new(),
            privileged: opts.privileged,
            pull_timeout: opts.image_pull_timeout,
            run: Run::new(
                opts.run_id.clone(),
                opts.state_dir.as_deref(),
                "ecp-kind-",
                Cleanup::DockerLabelled,
            )?,
        };
        let host = HostSettings::detect(&docker).await.map_err(KindError::docker("docker info"))?;
        tracing::debug!(?host, "host settings for the nodes");
        run.subnet = create_network(
            &docker,
            &opts.network,
            opts.internal_network,
            &labels,
            &host.network_options(),
        )
        .await?;

        let proxy_env = host
            .proxy
            .as_ref()
            .map(|p| {
                p.node_env(&no_proxy_subnets(run.subnet, topology), &node_names(topology, opts))
            })
            .unwrap_or_default();
        let mut nodes = Vec::new();
        for spec in &topology.clusters {
            nodes.push(start_node(&docker, spec, opts, &host, &proxy_env).await?);
        }
        let boots = nodes.iter().map(|n| {
            let span =
                tracing::info_span!("kind cluster", run_id = %opts.run_id, cluster = n.spec.name);
            bootstrap_cluster(&docker, n, opts, run.dir()).instrument(span)
        });
        run.clusters = futures::future::try_join_all(boots).await?;
        run.add_routes(topology).await?;
        Ok(run)
    }

    pub fn run_id(&self) -> &RunId {
        self.run.id()
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    /// The shared network's IPv4 subnet (MetalLB pools come from its tail).
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn clusters(&self) -> &[KindCluster] {
        &self.clusters
    }

    pub fn cluster(&self, name: &str) -> Option<&KindCluster> {
        self.clusters.iter().find(|c| c.spec.name == name)
    }

    /// Directory holding the kubeconfigs.
    pub fn dir(&self) -> &Path {
        self.run.dir()
    }

    /// API servers and kubeconfigs by cluster name, for the topology file.
    pub fn runtime_addrs(&self) -> RuntimeAddrs {
        let mut addrs = RuntimeAddrs::default();
        for c in &self.clusters {
            let name = c.spec.name.clone();
            addrs.api_servers.insert(name.clone(), c.peer_server());
            addrs.host_kubeconfigs.insert(name.clone(), c.host_kubeconfig.clone());
            addrs.peer_kubeconfigs.insert(name, c.peer_kubeconfig.clone());
        }
        addrs
    }

    /// Installs MetalLB cluster by cluster, each with its own pool from the tail of
    /// the network's subnet; returns the pools by cluster name.
    pub async fn install_metallb(
        &self,
        manifest: &MetalLbManifest,
    ) -> Result<BTreeMap<String, AddressRange>, KindError> {
        let native = manifest.load().await?;
        let mut pools = BTreeMap::new();
        for (k, c) in self.clusters.iter().enumerate() {
            let pool = metallb::pool(self.subnet, k)?;
            let client = c.client().await?;
            metallb::install(&client, &c.spec.name, &native, pool)
                .instrument(tracing::info_span!("metallb", cluster = c.spec.name))
                .await?;
            pools.insert(c.spec.name.clone(), pool);
        }
        Ok(pools)
    }

    /// Pulls each image once on the host (where missing, each within
    /// [`KindOptions::image_pull_timeout`]) and loads it into every node in parallel,
    /// skipping nodes that already have it.
    pub async fn load_images(&self, images: &[String]) -> Result<LoadReport, KindError> {
        let nodes: Vec<(String, String)> =
            self.clusters.iter().map(|c| (c.spec.name.clone(), c.node.clone())).collect();
        images::load(&self.docker, &nodes, images, self.dir(), self.privileged, self.pull_timeout)
            .await
    }

    /// Removes the run's containers (with their volumes) and network now.
    pub async fn down(self) -> Result<(), KindError> {
        Ok(self.run.down().await?)
    }

    /// Keeps the clusters after this process ends (`cargo xtask down` removes them).
    /// Needs [`KindOptions::state_dir`] so the kubeconfigs survive; returns their
    /// directory. Without one the run is refused and removed.
    pub fn keep(self) -> Result<PathBuf, KindError> {
        Ok(self.run.keep()?)
    }

    async fn add_routes(&self, topology: &Topology) -> Result<(), KindError> {
        let ips: BTreeMap<String, Ipv4Addr> =
            self.clusters.iter().map(|c| (c.spec.name.clone(), c.ip)).collect();
        for route in routes::same_network_routes(topology, &ips) {
            let Some(c) = self.cluster(&route.cluster) else { continue };
            let argv = route.argv();
            let out = exec::exec(&self.docker, &c.node, &argv, exec::Stdin::None, self.privileged)
                .await
                .map_err(|source| KindError::Exec {
                    cluster: route.cluster.clone(),
                    step: "add route",
                    source,
                })?;
            if out.exit_code != 0 {
                return Err(KindError::Step {
                    cluster: route.cluster.clone(),
                    step: "add route",
                    detail: bootstrap::describe_failure(&argv, &out),
                });
            }
        }
        Ok(())
    }
}

/// The subnets that must not go through a proxy: the run network's and every
/// cluster's pod and service ranges.
fn no_proxy_subnets(network: Ipv4Net, topology: &Topology) -> Vec<Ipv4Net> {
    std::iter::once(network)
        .chain(topology.clusters.iter().flat_map(|c| [c.pod_subnet, c.service_subnet]))
        .collect()
}

/// The node names of the run, in topology order.
fn node_names(topology: &Topology, opts: &KindOptions) -> Vec<String> {
    topology.clusters.iter().map(|c| node::node_name(&opts.run_id, &c.name)).collect()
}

/// Creates the run's user-defined bridge network with the driver `options` (the
/// host's MTU, [`HostSettings::network_options`]) and returns its IPv4 subnet.
pub async fn create_network(
    docker: &Docker,
    name: &str,
    internal: bool,
    labels: &HashMap<String, String>,
    options: &HashMap<String, String>,
) -> Result<Ipv4Net, KindError> {
    docker::create_network(docker, name, internal, labels, options).await?;
    let info = docker
        .inspect_network(name, None)
        .await
        .map_err(KindError::docker(format!("inspect network {name}")))?;
    info.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.subnet.as_deref())
        .find_map(|s| s.parse::<Ipv4Net>().ok())
        .ok_or_else(|| {
            KindError::Cluster(ClusterError::Options(format!("network {name} has no IPv4 subnet")))
        })
}

/// A started node container, before its bootstrap.
#[cfg_attr(test, derive(Clone))]
struct StartedNode {
    spec: ClusterSpec,
    name: String,
    id: String,
    ip: Ipv4Addr,
    host_port: u16,
}

/// Creates and starts the node container; reads its address and published port.
async fn start_node(
    docker: &Docker,
    spec: &ClusterSpec,
    opts: &KindOptions,
    host: &HostSettings,
    proxy_env: &[String],
) -> Result<StartedNode, KindError> {
    let node = NodeContainerSpec::for_cluster(spec, opts).on_host(host, proxy_env);
    let created = docker
        .create_container(Some(node.create_options()), node.body.clone())
        .await
        .map_err(KindError::docker(format!("create node container {}", node.name)))?;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(KindError::docker(format!("start node container {}", node.name)))?;
    let info = docker
        .inspect_container(&created.id, None)
        .await
        .map_err(KindError::docker(format!("inspect node container {}", node.name)))?;
    let settings = info.network_settings.unwrap_or_default();
    let ip = settings
        .networks
        .as_ref()
        .and_then(|n| n.get(&opts.network))
        .and_then(|e| e.ip_address.as_deref())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ClusterError::NoAddress {
            cluster: spec.name.clone(),
            network: opts.network.clone(),
        })?;
    // Docker publishes no ports for containers only on internal networks.
    let host_port = settings
        .ports
        .as_ref()
        .and_then(|p| p.get(&format!("{}/tcp", node::API_SERVER_PORT)))
        .and_then(|b| b.as_ref())
        .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse().ok()))
        .unwrap_or(0);
    Ok(StartedNode { spec: spec.clone(), name: node.name, id: created.id, ip, host_port })
}

async fn bootstrap_cluster(
    docker: &Docker,
    n: &StartedNode,
    opts: &KindOptions,
    dir: &Path,
) -> Result<KindCluster, KindError> {
    let cluster = n.spec.name.clone();
    let host_path = dir.join(format!("{cluster}.kubeconfig"));
    let peer_path = dir.join(format!("{cluster}.peer.kubeconfig"));
    let host_server = host_server(n);
    let target = bootstrap::NodeTarget { cluster: &n.spec, container: &n.name, ip: n.ip };
    let booted = bootstrap::run(docker, &target, opts, |admin| {
        let (host_path, cluster) = (host_path.clone(), cluster.clone());
        let host_server = host_server.clone();
        async move {
            write_kubeconfig(&cluster, &admin, &host_server, &host_path)?;
            Ok(kubeconfig::client(&cluster, &host_path).await?)
        }
    })
    .await?;
    let peer_server = format!("https://{}:{}", n.ip, node::API_SERVER_PORT);
    write_kubeconfig(&cluster, &booted.admin_kubeconfig, &peer_server, &peer_path)?;
    Ok(KindCluster {
        spec: n.spec.clone(),
        node: n.name.clone(),
        container_id: n.id.clone(),
        ip: n.ip,
        host_port: n.host_port,
        kubernetes_version: booted.kubernetes_version,
        host_kubeconfig: host_path,
        peer_kubeconfig: peer_path,
    })
}

fn host_server(n: &StartedNode) -> String {
    host_url(n.ip, n.host_port)
}

/// The host reaches the API server on the published port; without one (internal
/// network, self-tests) on the node's address, which the host's bridge can reach.
fn host_url(ip: Ipv4Addr, host_port: u16) -> String {
    if host_port == 0 {
        format!("https://{ip}:{}", node::API_SERVER_PORT)
    } else {
        format!("https://127.0.0.1:{host_port}")
    }
}

/// The credentials of kubeadm's `admin.conf`, PEM-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCredentials { .. }")
    }
}

/// Reads the CA and the client certificate and key out of `admin.conf`.
pub fn admin_credentials(cluster: &str, admin: &str) -> Result<AdminCredentials, KindError> {
    let bad = |detail: String| {
        KindError::Cluster(ClusterError::Kubeconfig { cluster: cluster.to_string(), detail })
    };
    let kc: serde_json::Value =
        crate::yaml::from_str(admin).map_err(|e| bad(format!("admin.conf is not YAML: {e}")))?;
    let decode = |what: &str, data: &serde_json::Value| -> Result<String, KindError> {
        let data = data.as_str().ok_or_else(|| bad(format!("admin.conf has no {what}")))?;
        let bytes = STANDARD
            .decode(data.trim())
            .map_err(|e| bad(format!("admin.conf {what} is not base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| bad(format!("admin.conf {what} is not PEM text")))
    };
    let cluster_entry = &kc["clusters"][0]["cluster"];
    let user = &kc["users"][0]["user"];
    Ok(AdminCredentials {
        ca_pem: decode("certificate-authority-data", &cluster_entry["certificate-authority-data"])?,
        client_cert_pem: decode("client-certificate-data", &user["client-certificate-data"])?,
        client_key_pem: decode("client-key-data", &user["client-key-data"])?,
    })
}

/// Writes a kubeconfig naming `server` with admin.conf's credentials (mode 0600).
fn write_kubeconfig(
    cluster: &str,
    admin: &str,
    server: &str,
    path: &Path,
) -> Result<(), KindError> {
    let creds = admin_credentials(cluster, admin)?;
    kubeconfig::write(
        path,
        &KubeconfigSpec {
            name: cluster,
            server,
            ca_pem: &creds.ca_pem,
            client_cert_pem: &creds.client_cert_pem,
            client_key_pem: &creds.client_key_pem,
        },
    )?;
    Ok(())
}

/// What [`preflight`] found that does not stop a run but may matter.
#[derive(Debug, Clone, Default)]
pub struct PreflightReport {
    pub warnings: Vec<String>,
}

/// Whether the preflight pulls a node image missing locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeImagePull {
    /// Pull it, within this long.
    Try(Duration),
    /// Do not; the reason goes into the problem ("not tried", "registry ... unreachable").
    Skip(String),
}

/// Checks within seconds what a kind run needs: Docker reachable, the node image
/// present locally (or, when `try_pull` is set, pullable within `pull_timeout`),
/// `/lib/modules` when it is to be mounted. Says what is missing and how to provide
/// it, as typed [`Problem`]s in [`KindError::Preflight`]. Never called by tests with
/// `try_pull` (no registry is reachable there).
pub async fn preflight(
    opts: &KindOptions,
    try_pull: bool,
    pull_timeout: Duration,
) -> Result<PreflightReport, KindError> {
    let pull = if try_pull {
        NodeImagePull::Try(pull_timeout)
    } else {
        NodeImagePull::Skip("not tried".to_string())
    };
    preflight_with(opts, &pull).await
}

/// [`preflight`], saying why a missing node image was not pulled.
pub async fn preflight_with(
    opts: &KindOptions,
    pull: &NodeImagePull,
) -> Result<PreflightReport, KindError> {
    let mut problems = Vec::new();
    let mut report = PreflightReport::default();
    if opts.mount_lib_modules && !Path::new("/lib/modules").is_dir() {
        problems.push(Problem::new(
            ProblemKind::Host,
            "/lib/modules does not exist on this host: kind nodes mount it read-only to load \
             kernel modules (overlay, br_netfilter, ip_tables)",
            "install this kernel's modules, or create the directory (`sudo mkdir \
             /lib/modules`) on a host whose kernel has them built in or already loaded",
        ));
    }
    let docker = match docker::reachable().await {
        Ok(d) => d,
        Err(problem) => {
            problems.push(problem);
            return Err(KindError::Preflight { problems });
        }
    };
    if let Ok(info) = docker.info().await {
        report.warnings.extend(images::host_warnings(&info));
        let version = docker.version().await.ok();
        if let Some(problem) = host::rootless_problem(&info, version.as_ref()) {
            problems.push(problem);
            return Err(KindError::Preflight { problems });
        }
    }
    report.warnings.extend(inotify_warnings());
    if docker.inspect_image(&opts.node_image).await.is_err() {
        let pulled = match pull {
            NodeImagePull::Try(timeout) => {
                tokio::time::timeout(*timeout, images::pull(&docker, &opts.node_image))
                    .await
                    .map_err(|_| format!("no answer within {timeout:?}"))
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            NodeImagePull::Skip(why) => Err(why.clone()),
        };
        if let Err(why) = &pulled {
            let image = &opts.node_image;
            problems.push(Problem::new(
                ProblemKind::NodeImage,
                format!(
                    "node image {image} is not present locally and could not be pulled ({why})"
                ),
                format!(
                    "run `docker pull {image}` where a registry is reachable (then `docker save` \
                     / `docker load` it here), or choose another image with --node-image"
                ),
            ));
        }
    }
    if problems.is_empty() {
        match privileged_containers_work(&docker, &opts.node_image, &opts.run_id).await {
            Ok(true) => {}
            Ok(false) if opts.privileged => problems.push(Problem::new(
                ProblemKind::Docker,
                "this Docker daemon cannot start privileged containers (\"unable to apply \
                 caps\": it runs without every capability, e.g. inside an unprivileged \
                 container): kind nodes need them",
                "use a host where `docker run --privileged` works",
            )),
            Ok(false) => report
                .warnings
                .push("privileged containers do not work here (privileged: false)".to_string()),
            Err(e) => problems.push(Problem::new(
                ProblemKind::Docker,
                format!("probing privileged containers failed: {e}"),
                "",
            )),
        }
    }
    if problems.is_empty() { Ok(report) } else { Err(KindError::Preflight { problems }) }
}

/// Whether this Docker daemon can start a privileged container from `image` (kind
/// nodes must be privileged). A daemon that runs with a reduced capability set itself
/// cannot: runc fails with "unable to apply caps". Other failures are errors.
pub async fn privileged_containers_work(
    docker: &Docker,
    image: &str,
    run_id: &RunId,
) -> Result<bool, KindError> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    let name = format!("ecp-kind-probe-{run_id}");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(["/bin/sh", "-c", "exit 0"].map(String::from).to_vec()),
        labels: Some(docker::labels(run_id, node::PROVIDER)),
        host_config: Some(HostConfig {
            privileged: Some(true),
            network_mode: Some("none".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = bollard::query_parameters::CreateContainerOptionsBuilder::new().name(&name).build();
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(KindError::docker(format!("create probe container {name}")))?;
    let started = docker.start_container(&created.id, None).await;
    let remove =
        bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(&created.id, Some(remove)).await;
    match started {
        Ok(()) => Ok(true),
        Err(e) if e.to_string().contains("apply caps") => Ok(false),
        Err(e) => Err(KindError::docker(format!("start probe container {name}"))(e)),
    }
}

/// kind's advice on inotify limits (many kubelets on one host exhaust the defaults).
fn inotify_warnings() -> Vec<String> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}")).ok()?.trim().parse().ok()
    };
    let mut w = Vec::new();
    for (name, want) in [("max_user_watches", 524_288), ("max_user_instances", 512)] {
        if let Some(have) = read(name)
            && have < want
        {
            w.push(format!(
                "fs.inotify.{name} is {have}; kind recommends {want} (sysctl fs.inotify.{name}={want})"
            ));
        }
    }
    w
}

#[cfg(test)]
mod tests;
