//! Control-plane-only clusters: one container per cluster running etcd,
//! kube-apiserver and kube-controller-manager, all clusters of a run on one internal
//! Docker network, started in parallel.
//!
//! Start of one cluster: create and start the container (its entry script waits for
//! certificates), read its address on the network, make its CA, serving certificate
//! (valid for that address), admin client certificate and service-account key,
//! upload them, write the two kubeconfigs, then wait until the API server answers
//! `/readyz` (`/healthz` on servers without it) through a client that verifies the
//! cluster's CA, and until the controller manager has created the `default`
//! ServiceAccount (a watch, so the cluster is usable for tests that need it).
//!
//! [`ApiserverRun`] owns the network and containers through its [`Run`]: dropping it
//! (also while unwinding from a panic) removes everything labelled with its run id,
//! unless [`ApiserverRun::keep`] disarmed it for manual use.
//!
//! [`ApiserverProvider`] gives these clusters through the provider seam
//! ([`super::provider`]): the project's own tests of what the suite does with any
//! provider.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use serde::Serialize;
use tracing::Instrument;

use super::image::PKI_DIR;
use super::kubeconfig::{self, KubeconfigSpec};
use super::pki::ClusterPki;
use super::provider::{Capabilities, Provided, ProvidedCluster, Provider};
use super::run::{Cleanup, Run};
use super::{Assets, CLUSTER_LABEL, ClusterError, RunId, docker, image};
use crate::preflight::{Problem, ProblemKind};
use crate::topology::Topology;

/// The API server's port inside the container (and on the network).
pub const API_PORT: u16 = 6443;
/// Provider name in labels and messages.
pub const PROVIDER: &str = "apiserver";
/// At most this many clusters per run (service ranges are 10.255.<10(i+1)>.0/24).
pub const MAX_CLUSTERS: usize = 24;

/// What to start.
#[derive(Debug, Clone)]
pub struct ApiserverOptions {
    /// Cluster names, in order; cluster `i` gets the service range 10.255.<10(i+1)>.0/24
    /// (the ranges of [`crate::topology::Topology`] for the same order).
    pub names: Vec<String>,
    /// How long each cluster may take to become ready.
    pub ready_timeout: Duration,
    /// Where kubeconfigs go: `<state_dir>/<run id>/`, kept after the run; `None` for a
    /// temporary directory removed with the run.
    pub state_dir: Option<PathBuf>,
    /// The run id to use; `None` for a new one. Knowing it beforehand lets a caller
    /// find the run's resources even when [`ApiserverRun::start`] fails.
    pub run_id: Option<RunId>,
}

impl ApiserverOptions {
    /// `n` clusters named `c1` ... `cn`.
    pub fn numbered(n: usize) -> Self {
        Self::named((1..=n).map(|i| format!("c{i}")))
    }

    pub fn named(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            names: names.into_iter().map(Into::into).collect(),
            ready_timeout: Duration::from_secs(120),
            state_dir: None,
            run_id: None,
        }
    }

    /// One cluster per cluster of the topology, same names and service ranges.
    pub fn for_topology(topology: &Topology) -> Self {
        Self::named(topology.clusters.iter().map(|c| c.name.clone()))
    }

    /// These options with the clusters of `topology` (same names and service ranges).
    fn with_topology(&self, topology: &Topology) -> Self {
        Self { names: Self::for_topology(topology).names, ..self.clone() }
    }

    fn validate(&self) -> Result<(), ClusterError> {
        if self.names.is_empty() || self.names.len() > MAX_CLUSTERS {
            return Err(ClusterError::Options(format!(
                "between 1 and {MAX_CLUSTERS} clusters, got {}",
                self.names.len()
            )));
        }
        for (i, n) in self.names.iter().enumerate() {
            let valid = !n.is_empty()
                && n.len() <= 40
                && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !n.starts_with('-')
                && !n.ends_with('-');
            if !valid {
                return Err(ClusterError::Options(format!(
                    "cluster name `{n}`: lowercase letters, digits and inner dashes, at most 40"
                )));
            }
            if self.names[..i].contains(n) {
                return Err(ClusterError::Options(format!("cluster name `{n}` given twice")));
            }
        }
        Ok(())
    }
}

/// The service range of cluster `index`.
pub fn service_cidr(index: usize) -> Ipv4Net {
    let octet = u8::try_from(10 * (index + 1)).unwrap_or(u8::MAX);
    // A /24 at a valid prefix length never fails.
    Ipv4Net::new(Ipv4Addr::new(10, 255, octet, 0), 24).unwrap_or_default()
}

/// One running cluster.
#[derive(Debug, Clone)]
pub struct ApiCluster {
    pub name: String,
    /// The API server on the internal network: container IP and port 6443.
    pub address: SocketAddr,
    pub service_cidr: Ipv4Net,
    /// Kubeconfig for this machine (see the module docs of [`super`]: the same
    /// address as the peers', since the host sits on the internal bridge).
    pub host_kubeconfig: PathBuf,
    /// Kubeconfig for containers on the run's network.
    pub peer_kubeconfig: PathBuf,
    /// The cluster's CA certificate (public).
    pub ca_pem: String,
    /// Wall time from the start of the run until this cluster was ready.
    pub ready_after: Duration,
    container_id: String,
    container_name: String,
    network: String,
    docker: Docker,
}

impl ApiCluster {
    /// An admin client (group `system:masters`) through the host kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        kubeconfig::client(&self.name, &self.host_kubeconfig).await
    }

    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    pub fn container_name(&self) -> &str {
        &self.container_name
    }

    /// `https://<address>`.
    pub fn server_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Fault: SIGKILL the cluster's container (etcd, API server and controller
    /// manager die at once). The container stays (stopped) until the run ends.
    pub async fn kill(&self) -> Result<(), ClusterError> {
        docker::kill(&self.docker, &self.container_id).await
    }

    /// Fault: disconnect the container from the run's network (a partition).
    pub async fn disconnect(&self) -> Result<(), ClusterError> {
        docker::disconnect(&self.docker, &self.network, &self.container_id).await
    }

    /// Fault: freeze every process of the cluster (it accepts connections at the
    /// kernel level but never answers), until [`ApiCluster::unpause`].
    pub async fn pause(&self) -> Result<(), ClusterError> {
        docker::pause(&self.docker, &self.container_id).await
    }

    pub async fn unpause(&self) -> Result<(), ClusterError> {
        docker::unpause(&self.docker, &self.container_id).await
    }

    /// Runs a command (busybox applets: `sh`, `nc`, `wget`, ...) in the cluster's
    /// container, on the run's network; returns exit code and output. Gives up after
    /// [`docker::EXEC_TIMEOUT`] ([`ClusterError::ExecTimeout`] names the container and
    /// the command).
    pub async fn exec(&self, cmd: &[&str]) -> Result<(i64, String), ClusterError> {
        docker::exec(&self.docker, &self.container_name, cmd, docker::EXEC_TIMEOUT).await
    }

    /// The container's output (entry script, etcd, API server, controller manager).
    /// Holds no credentials: keys are only in files.
    pub async fn logs(&self) -> Result<String, ClusterError> {
        docker::logs(&self.docker, &self.container_id, None).await
    }
}

/// The clusters of one run. Dropping it removes them (its [`Run`]'s `Drop`).
pub struct ApiserverRun {
    network: String,
    clusters: Vec<ApiCluster>,
    ready_after: Duration,
    run: Run,
}

impl std::fmt::Debug for ApiserverRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiserverRun")
            .field("run_id", self.run.id())
            .field("network", &self.network)
            .field("clusters", &self.clusters.iter().map(|c| &c.name).collect::<Vec<_>>())
            .finish()
    }
}

/// What `run.json` in the run's directory records (no credentials).
#[derive(Serialize)]
struct RunRecord<'a> {
    run_id: &'a str,
    network: &'a str,
    clusters: Vec<ClusterRecord<'a>>,
}

#[derive(Serialize)]
struct ClusterRecord<'a> {
    name: &'a str,
    address: String,
    container: &'a str,
    host_kubeconfig: &'a Path,
    peer_kubeconfig: &'a Path,
}

impl ApiserverRun {
    /// Starts the clusters in parallel on a new internal network and waits until
    /// every one is ready. On any failure everything already created is removed.
    pub async fn start(opts: ApiserverOptions) -> Result<Self, ClusterError> {
        let t0 = Instant::now();
        crate::install_crypto_provider();
        opts.validate()?;
        let assets = Assets::locate()?;
        let docker = docker::connect().await?;
        let image = image::ensure_image(&docker, &assets).await?;

        let run_id = opts.run_id.clone().unwrap_or_default();
        let network = format!("ecp-{run_id}");
        // From here on, dropping `run` (an error below, a panic, a cancelled future)
        // removes whatever carries the run's label.
        let mut run = Self {
            network,
            clusters: Vec::new(),
            ready_after: Duration::ZERO,
            run: Run::new(run_id, opts.state_dir.as_deref(), "ecp-", Cleanup::DockerLabelled)?,
        };
        let labels = docker::labels(run.run_id(), PROVIDER);
        docker::create_network(&docker, &run.network, true, &labels, &Default::default()).await?;

        let starts = opts.names.iter().enumerate().map(|(index, name)| {
            let span = tracing::info_span!("cluster", run_id = %run.run_id(), name = name.as_str());
            start_cluster(ClusterStart {
                docker: &docker,
                image: &image,
                run: &run,
                labels: &labels,
                name,
                index,
                t0,
                timeout: opts.ready_timeout,
            })
            .instrument(span)
        });
        let clusters = futures::future::try_join_all(starts).await?;
        run.clusters = clusters;
        run.ready_after = t0.elapsed();
        run.write_record()?;
        tracing::info!(ready_after = ?run.ready_after, "clusters ready");
        Ok(run)
    }

    pub fn run_id(&self) -> &RunId {
        self.run.id()
    }

    /// Name of the run's internal network.
    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn clusters(&self) -> &[ApiCluster] {
        &self.clusters
    }

    pub fn cluster(&self, name: &str) -> Option<&ApiCluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Directory holding the kubeconfigs and `run.json`.
    pub fn dir(&self) -> &Path {
        self.run.dir()
    }

    /// Wall time from [`ApiserverRun::start`] until every cluster was ready.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Removes the run's containers and network now (what `Drop` would do), reporting
    /// errors instead of logging them.
    pub async fn down(self) -> Result<(), ClusterError> {
        self.run.down().await
    }

    /// Disarms the cleanup and keeps the clusters running after this process ends
    /// (`cargo xtask up`); `cargo xtask down` removes them. Needs a `state_dir`, so the
    /// kubeconfigs survive too; returns their directory.
    pub fn keep(self) -> Result<PathBuf, ClusterError> {
        self.run.keep()
    }

    fn write_record(&self) -> Result<(), ClusterError> {
        let record = RunRecord {
            run_id: self.run_id().as_str(),
            network: &self.network,
            clusters: self
                .clusters
                .iter()
                .map(|c| ClusterRecord {
                    name: &c.name,
                    address: c.address.to_string(),
                    container: &c.container_name,
                    host_kubeconfig: &c.host_kubeconfig,
                    peer_kubeconfig: &c.peer_kubeconfig,
                })
                .collect(),
        };
        let path = self.dir().join("run.json");
        let text = serde_json::to_string_pretty(&record).unwrap_or_default();
        std::fs::write(&path, text).map_err(ClusterError::io("write", path))
    }
}

struct ClusterStart<'a> {
    docker: &'a Docker,
    image: &'a str,
    run: &'a ApiserverRun,
    labels: &'a std::collections::HashMap<String, String>,
    name: &'a str,
    index: usize,
    t0: Instant,
    timeout: Duration,
}

async fn start_cluster(s: ClusterStart<'_>) -> Result<ApiCluster, ClusterError> {
    let container_name = format!("ecp-{}-{}", s.run.run_id(), s.name);
    let mut labels = s.labels.clone();
    labels.insert(CLUSTER_LABEL.to_string(), s.name.to_string());
    let id = docker::create_and_start(
        s.docker,
        docker::ContainerSpec {
            name: &container_name,
            image: s.image,
            network: &s.run.network,
            labels,
            tmpfs: &["/var/lib/etcd"],
            cmd: &[],
        },
    )
    .await?;
    let ip = docker::container_ip(s.docker, &id, &s.run.network).await?.ok_or_else(|| {
        ClusterError::NoAddress { cluster: s.name.to_string(), network: s.run.network.clone() }
    })?;
    let address = SocketAddr::new(ip, API_PORT);
    let cidr = service_cidr(s.index);
    let service_ip = IpAddr::V4(cidr.hosts().next().unwrap_or(cidr.network()));
    let pki = ClusterPki::generate(s.name, ip, service_ip)
        .map_err(|source| ClusterError::Pki { cluster: s.name.to_string(), source })?;
    docker::upload_tar(s.docker, &id, PKI_DIR, pki_tar(s.name, &pki, ip, cidr)?).await?;

    let server = format!("https://{address}");
    let spec = KubeconfigSpec {
        name: s.name,
        server: &server,
        ca_pem: &pki.ca_cert_pem,
        client_cert_pem: &pki.admin_cert_pem,
        client_key_pem: &pki.admin_key_pem,
    };
    let host_kubeconfig = s.run.dir().join(format!("{}.kubeconfig", s.name));
    let peer_kubeconfig = s.run.dir().join(format!("{}-peer.kubeconfig", s.name));
    kubeconfig::write(&host_kubeconfig, &spec)?;
    kubeconfig::write(&peer_kubeconfig, &spec)?;

    let deadline = Instant::now() + s.timeout;
    let probe = ReadinessProbe::new(s.name, address, &pki.ca_cert_pem)?;
    wait_api_ready(s.docker, &id, s.name, &probe, deadline, s.timeout).await?;
    let api_ready = s.t0.elapsed();
    let client = kubeconfig::client(s.name, &host_kubeconfig).await?;
    wait_controller_manager(s.docker, &id, s.name, client, deadline, s.timeout).await?;
    let ready_after = s.t0.elapsed();
    tracing::info!(%address, ?api_ready, ?ready_after, "cluster ready");
    Ok(ApiCluster {
        name: s.name.to_string(),
        address,
        service_cidr: cidr,
        host_kubeconfig,
        peer_kubeconfig,
        ca_pem: pki.ca_cert_pem.clone(),
        ready_after,
        container_id: id,
        container_name,
        network: s.run.network.clone(),
        docker: s.docker.clone(),
    })
}

/// The files the entry script waits for; `ready` comes last in the archive, so it
/// exists only once everything before it was extracted.
fn pki_tar(
    name: &str,
    pki: &ClusterPki,
    ip: IpAddr,
    cidr: Ipv4Net,
) -> Result<Vec<u8>, ClusterError> {
    let in_container = KubeconfigSpec {
        name,
        server: "https://127.0.0.1:6443",
        ca_pem: &pki.ca_cert_pem,
        client_cert_pem: &pki.admin_cert_pem,
        client_key_pem: &pki.admin_key_pem,
    };
    let kcm_kubeconfig = kubeconfig::render(&in_container)?;
    let env = format!("ADVERTISE_ADDRESS={ip}\nSERVICE_CIDR={cidr}\n");
    let files: [(&str, &[u8], u32); 8] = [
        ("ca.crt", pki.ca_cert_pem.as_bytes(), 0o644),
        ("apiserver.crt", pki.serving_cert_pem.as_bytes(), 0o644),
        ("apiserver.key", pki.serving_key_pem.as_bytes(), 0o600),
        ("sa.key", pki.service_account_key_pem.as_bytes(), 0o600),
        ("sa.pub", pki.service_account_pub_pem.as_bytes(), 0o644),
        ("controller-manager.kubeconfig", kcm_kubeconfig.as_bytes(), 0o600),
        ("env", env.as_bytes(), 0o644),
        ("ready", b"", 0o644),
    ];
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, data).map_err(|e| ClusterError::Kubeconfig {
            cluster: name.to_string(),
            detail: e.to_string(),
        })?;
    }
    b.into_inner()
        .map_err(|e| ClusterError::Kubeconfig { cluster: name.to_string(), detail: e.to_string() })
}

/// Polls `/readyz` (then `/healthz` for servers without it) until it answers `ok`.
/// Polling is the only way here: there is nothing to watch before the API answers.
/// The probe is anonymous (the `system:public-info-viewer` role allows it) over TLS
/// that trusts only the cluster's CA. Fails early, with the log tail, when the
/// container exits.
async fn wait_api_ready(
    docker: &Docker,
    id: &str,
    name: &str,
    probe: &ReadinessProbe,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ClusterError> {
    const INTERVAL: Duration = Duration::from_millis(100);
    let mut path = "/readyz";
    let mut last;
    loop {
        match probe.get(path).await {
            Ok((200, body)) if body.trim() == "ok" => return Ok(()),
            Ok((404, _)) if path == "/readyz" => {
                path = "/healthz";
                continue;
            }
            Ok((status, body)) => last = format!("{path}: {status} {}", first_line(&body)),
            Err(e) => last = format!("{path}: {e}"),
        }
        let (running, status) = docker::container_state(docker, id).await?;
        if !running {
            return Err(ClusterError::Exited {
                cluster: name.to_string(),
                status,
                log_tail: docker::logs(docker, id, Some(40)).await.unwrap_or_default(),
            });
        }
        if Instant::now() + INTERVAL > deadline {
            return Err(ClusterError::NotReady {
                cluster: name.to_string(),
                waited: timeout,
                last,
                log_tail: docker::logs(docker, id, Some(40)).await.unwrap_or_default(),
            });
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// An HTTPS client for one API server that trusts only that cluster's CA.
struct ReadinessProbe {
    client: reqwest::Client,
    base: String,
}

impl ReadinessProbe {
    fn new(name: &str, address: SocketAddr, ca_pem: &str) -> Result<Self, ClusterError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let fail = |detail: String| ClusterError::Kubeconfig { cluster: name.to_string(), detail };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| fail(format!("CA certificate: {e}")))?;
            roots.add(cert).map_err(|e| fail(format!("CA certificate: {e}")))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| fail(format!("HTTP client: {e}")))?;
        Ok(Self { client, base: format!("https://{address}") })
    }

    async fn get(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let resp = self.client.get(format!("{}{path}", self.base)).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }
}

/// Watches for the `default` ServiceAccount of namespace `default`, which the
/// controller manager's serviceaccount controller creates: proof that it runs.
async fn wait_controller_manager(
    docker: &Docker,
    id: &str,
    name: &str,
    client: kube::Client,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let api: Api<ServiceAccount> = Api::namespaced(client, "default");
    let cond =
        kube::runtime::wait::await_condition(api, "default", |sa: Option<&ServiceAccount>| {
            sa.is_some()
        });
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, cond).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::NotReady {
            cluster: name.to_string(),
            waited: timeout,
            last: format!("watching for the default ServiceAccount: {e}"),
            log_tail: docker::logs(docker, id, Some(40)).await.unwrap_or_default(),
        }),
        Err(_) => Err(ClusterError::NotReady {
            cluster: name.to_string(),
            waited: timeout,
            last: "the controller manager created no `default` ServiceAccount".to_string(),
            log_tail: docker::logs(docker, id, Some(40)).await.unwrap_or_default(),
        }),
    }
}

/// Control-plane-only clusters through the provider seam: one per cluster of the
/// topology, with its names and service ranges; the rest of [`ApiserverOptions`]
/// (timeout, state directory, run id) as held here.
#[derive(Debug, Clone)]
pub struct ApiserverProvider {
    pub options: ApiserverOptions,
}

impl ApiserverProvider {
    pub fn new(options: ApiserverOptions) -> Self {
        Self { options }
    }
}

impl Default for ApiserverProvider {
    fn default() -> Self {
        Self::new(ApiserverOptions::named(Vec::<String>::new()))
    }
}

/// Containers can be paused, killed and cut from the network; there are no nodes to
/// load images into (no kubelet) and no LoadBalancer.
const CAPABILITIES: Capabilities = Capabilities {
    node_logs: true,
    network_faults: true,
    load_images: false,
    install_load_balancer: false,
    install_operators: true,
};

impl Provider for ApiserverProvider {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    type Handle = ApiserverRun;

    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn platform(&self) -> String {
        "control-plane-only (API server, etcd and controller manager; no nodes)".into()
    }

    /// The topology fits (names, count), the Kubernetes binaries are found without
    /// downloading anything, Docker answers.
    async fn preflight(&self, plan: &crate::install::Plan) -> Vec<Problem> {
        let topology = &plan.topology;
        let mut problems = Vec::new();
        if let Err(e) = self.options.with_topology(topology).validate() {
            problems.push(Problem::new(
                ProblemKind::Planning,
                format!("the topology cannot be given as control-plane-only clusters: {e}"),
                "",
            ));
        }
        if let Err(e) = Assets::locate() {
            let message = match e {
                ClusterError::Assets(detail) => format!("Kubernetes binaries: {detail}"),
                other => other.to_string(),
            };
            problems.push(Problem::new(
                ProblemKind::Program,
                message,
                format!(
                    "set {} to a directory holding {}, or run `cargo xtask test` once (it \
                     obtains and caches them)",
                    super::assets::ASSETS_ENV,
                    super::assets::BINARIES.join(", ")
                ),
            ));
        }
        if let Err(problem) = docker::reachable().await {
            problems.push(problem);
        }
        problems
    }

    async fn start(&self, topology: &Topology) -> Result<ApiserverRun, ClusterError> {
        ApiserverRun::start(self.options.with_topology(topology)).await
    }
}

impl Provided for ApiserverRun {
    fn run(&self) -> &Run {
        &self.run
    }

    fn into_run(self) -> Run {
        self.run
    }

    /// The host and the peers reach a cluster at the same address (module docs of
    /// [`super`]).
    fn clusters(&self) -> Vec<ProvidedCluster> {
        self.clusters
            .iter()
            .map(|c| ProvidedCluster {
                name: c.name.clone(),
                server: c.server_url(),
                peer_server: c.server_url(),
                kubeconfig: c.host_kubeconfig.clone(),
            })
            .collect()
    }

    /// Containers can be paused, killed and cut from the network; there are no nodes
    /// to load images into (no kubelet) and no LoadBalancer.
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// The cluster container's log tail, under the container's name.
    async fn node_logs(
        &self,
        cluster: &str,
        lines: usize,
    ) -> Result<BTreeMap<String, String>, ClusterError> {
        let c = self.cluster(cluster).ok_or_else(|| {
            ClusterError::Options(format!("no cluster `{cluster}` in run {}", self.run_id()))
        })?;
        let log = docker::logs(&c.docker, &c.container_id, Some(lines)).await?;
        Ok(BTreeMap::from([(c.container_name.clone(), log)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_reject_bad_names_and_counts() {
        assert!(ApiserverOptions::numbered(3).validate().is_ok());
        assert_eq!(ApiserverOptions::numbered(2).names, ["c1", "c2"]);
        assert!(ApiserverOptions::numbered(0).validate().is_err());
        assert!(ApiserverOptions::numbered(MAX_CLUSTERS + 1).validate().is_err());
        assert!(ApiserverOptions::named(["Bad_Name"]).validate().is_err());
        assert!(ApiserverOptions::named(["a", "a"]).validate().is_err());
        assert!(ApiserverOptions::named(["-a"]).validate().is_err());
    }

    #[test]
    fn service_ranges_match_the_topology_and_are_never_routed() {
        let t = crate::topology::Topology::new(3, Default::default()).unwrap();
        let opts = ApiserverOptions::for_topology(&t);
        for (i, c) in t.clusters.iter().enumerate() {
            assert_eq!(opts.names[i], c.name);
            assert_eq!(service_cidr(i), c.service_subnet);
        }
        assert_eq!(service_cidr(MAX_CLUSTERS - 1).to_string(), "10.255.240.0/24");
    }
}
