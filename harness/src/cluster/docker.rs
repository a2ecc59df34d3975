//! The Docker calls the providers need, through bollard with a negotiated API version
//! (Engine 20.10 speaks API 1.41 at most). Everything created carries the run's
//! labels ([`labels`]) so that leftovers can be found and removed by label, also after
//! a killed run ([`remove_labelled`], `cargo xtask down`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures::StreamExt;

use super::{ClusterError, PROVIDER_LABEL, RUN_ID_LABEL, RunId, SESSION_ENV, SESSION_LABEL};
use crate::preflight::{Problem, ProblemKind};

fn docker_err(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Docker { action, source }
}

/// Connects to the local Docker daemon (`DOCKER_HOST` or the default socket) and
/// negotiates the API version down to what the daemon speaks.
pub async fn connect() -> Result<Docker, ClusterError> {
    let docker = Docker::connect_with_local_defaults()
        .map_err(|source| ClusterError::DockerUnavailable { source })?;
    docker.negotiate_version().await.map_err(|source| ClusterError::DockerUnavailable { source })
}

/// How long a preflight waits for the Docker daemon to answer.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// [`connect`] within [`PREFLIGHT_TIMEOUT`], for a preflight: the daemon, or what is
/// wrong with it as a [`Problem`] of kind [`ProblemKind::Docker`]. One wording for
/// every Docker provider.
pub async fn reachable() -> Result<Docker, Problem> {
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, connect()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(ClusterError::DockerUnavailable { source })) => Err(Problem::new(
            ProblemKind::Docker,
            format!("Docker is not reachable ({source})"),
            "start the daemon, or set DOCKER_HOST to its socket",
        )),
        Ok(Err(e)) => Err(Problem::new(ProblemKind::Docker, format!("Docker: {e}"), "")),
        Err(_) => Err(Problem::new(
            ProblemKind::Docker,
            format!("Docker did not answer within {PREFLIGHT_TIMEOUT:?}"),
            "check that the daemon runs and that DOCKER_HOST (if set) names its socket",
        )),
    }
}

/// The labels of everything a run creates: run id, provider, and the session of
/// `cargo xtask test` when [`SESSION_ENV`] is set.
pub fn labels(run: &RunId, provider: &str) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (RUN_ID_LABEL.to_string(), run.as_str().to_string()),
        (PROVIDER_LABEL.to_string(), provider.to_string()),
    ]);
    if let Some(session) = std::env::var(SESSION_ENV).ok().filter(|s| !s.is_empty()) {
        l.insert(SESSION_LABEL.to_string(), session);
    }
    l
}

/// Creates a labelled bridge network; `internal` (`--internal`) gives it no route off
/// the machine, as the self-tests need; `options` are driver options (`-o`, e.g. the
/// MTU). Returns its id.
pub async fn create_network(
    docker: &Docker,
    name: &str,
    internal: bool,
    labels: &HashMap<String, String>,
    options: &HashMap<String, String>,
) -> Result<String, ClusterError> {
    let req = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        internal: Some(internal),
        labels: Some(labels.clone()),
        options: Some(options.clone()),
        ..Default::default()
    };
    let what = if internal { "internal network" } else { "network" };
    let resp =
        docker.create_network(req).await.map_err(docker_err(format!("create {what} {name}")))?;
    Ok(resp.id)
}

/// A container to create on one network only.
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub network: &'a str,
    pub labels: HashMap<String, String>,
    /// Paths mounted as tmpfs (e.g. etcd's data directory: no fsync to disk).
    pub tmpfs: &'a [&'a str],
    /// The command, if not the image's.
    pub cmd: &'a [&'a str],
}

fn endpoint(ipv4: Option<Ipv4Addr>) -> EndpointSettings {
    EndpointSettings {
        ipam_config: ipv4.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates and starts the container; returns its id.
pub async fn create_and_start(
    docker: &Docker,
    spec: ContainerSpec<'_>,
) -> Result<String, ClusterError> {
    let body = ContainerCreateBody {
        image: Some(spec.image.to_string()),
        labels: Some(spec.labels),
        cmd: (!spec.cmd.is_empty()).then(|| spec.cmd.iter().map(|c| c.to_string()).collect()),
        host_config: Some(HostConfig {
            network_mode: Some(spec.network.to_string()),
            tmpfs: Some(spec.tmpfs.iter().map(|p| (p.to_string(), String::new())).collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::new().name(spec.name).build();
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(docker_err(format!("create container {}", spec.name)))?;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(docker_err(format!("start container {}", spec.name)))?;
    Ok(created.id)
}

/// The container's IPv4 address on `network`, if it is attached there.
pub async fn container_ip(
    docker: &Docker,
    id: &str,
    network: &str,
) -> Result<Option<IpAddr>, ClusterError> {
    let info = docker
        .inspect_container(id, None)
        .await
        .map_err(docker_err(format!("inspect container {id}")))?;
    let ip = info
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|e| e.ip_address)
        .and_then(|a| a.parse().ok());
    Ok(ip)
}

/// Whether the container runs, and a short description of its state otherwise.
pub async fn container_state(docker: &Docker, id: &str) -> Result<(bool, String), ClusterError> {
    let info = docker
        .inspect_container(id, None)
        .await
        .map_err(docker_err(format!("inspect container {id}")))?;
    let state = info.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let status = match (state.status, state.exit_code) {
        (Some(s), Some(code)) if !running => format!("{s}, exit code {code}"),
        (Some(s), _) => s.to_string(),
        (None, _) => "unknown".to_string(),
    };
    Ok((running, status))
}

/// Extracts a tar archive into `dir` inside the container.
pub async fn upload_tar(
    docker: &Docker,
    id: &str,
    dir: &str,
    tar: Vec<u8>,
) -> Result<(), ClusterError> {
    let opts = UploadToContainerOptionsBuilder::new().path(dir).build();
    docker
        .upload_to_container(id, Some(opts), bollard::body_full(tar.into()))
        .await
        .map_err(docker_err(format!("upload files to {dir} in container {id}")))
}

/// The container's stdout and stderr; the last `tail` lines when given.
pub async fn logs(docker: &Docker, id: &str, tail: Option<usize>) -> Result<String, ClusterError> {
    let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
    let opts = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&tail).build();
    let mut stream = docker.logs(id, Some(opts));
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(docker_err(format!("read logs of container {id}")))?;
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    Ok(out)
}

/// How long [`exec`] callers without their own bound wait for a command
/// ([`super::ApiCluster::exec`]): the checks run this way (a `wget`, an `nc`) take
/// seconds.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a command in the running container (id or name); returns its exit code and
/// combined output. For checks from inside the run's network (e.g. a peer's
/// reachability). Gives up after `timeout` ([`ClusterError::ExecTimeout`]); Docker
/// cannot stop an exec, so the command may go on running in the container.
pub async fn exec(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
    timeout: Duration,
) -> Result<(i64, String), ClusterError> {
    use bollard::exec::StartExecResults;
    use bollard::models::ExecConfig;
    let what = || format!("exec `{}` in container {container}", cmd.join(" "));
    let run = async {
        let config = ExecConfig {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = docker.create_exec(container, config).await.map_err(docker_err(what()))?;
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&created.id, None).await.map_err(docker_err(what()))?
        {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(docker_err(what()))?;
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        let inspected = docker.inspect_exec(&created.id).await.map_err(docker_err(what()))?;
        Ok((inspected.exit_code.unwrap_or(-1), out))
    };
    tokio::time::timeout(timeout, run).await.map_err(|_| ClusterError::ExecTimeout {
        container: container.to_string(),
        command: cmd.join(" "),
        timeout,
    })?
}

/// Sends SIGKILL to the container (an abrupt outage: nothing shuts down cleanly).
pub async fn kill(docker: &Docker, id: &str) -> Result<(), ClusterError> {
    let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    docker.kill_container(id, Some(opts)).await.map_err(docker_err(format!("kill container {id}")))
}

/// Starts a stopped (e.g. killed) container again: the end of an outage.
pub async fn start(docker: &Docker, id: &str) -> Result<(), ClusterError> {
    docker.start_container(id, None).await.map_err(docker_err(format!("start container {id}")))
}

/// Freezes every process of the container (it accepts connections at the kernel
/// level but never answers) until [`unpause`]: a whole cluster gone, same address.
pub async fn pause(docker: &Docker, id: &str) -> Result<(), ClusterError> {
    docker.pause_container(id).await.map_err(docker_err(format!("pause container {id}")))
}

pub async fn unpause(docker: &Docker, id: &str) -> Result<(), ClusterError> {
    docker.unpause_container(id).await.map_err(docker_err(format!("unpause container {id}")))
}

/// Disconnects the container from `network` (a network partition).
pub async fn disconnect(docker: &Docker, network: &str, id: &str) -> Result<(), ClusterError> {
    let req = NetworkDisconnectRequest { container: id.to_string(), force: Some(true) };
    docker
        .disconnect_network(network, req)
        .await
        .map_err(docker_err(format!("disconnect container {id} from network {network}")))
}

/// Connects the container to `network` again (the end of a partition). With
/// `ipv4`, at that address: peers find it where it was. Docker honours a fixed
/// address only on networks created with a subnet (the kind networks); elsewhere
/// pass `None` and read the new address.
pub async fn reconnect(
    docker: &Docker,
    network: &str,
    id: &str,
    ipv4: Option<Ipv4Addr>,
) -> Result<(), ClusterError> {
    let req =
        NetworkConnectRequest { container: id.to_string(), endpoint_config: Some(endpoint(ipv4)) };
    docker
        .connect_network(network, req)
        .await
        .map_err(docker_err(format!("connect container {id} to network {network}")))
}

/// A container found by label.
#[derive(Debug, Clone)]
pub struct LabelledContainer {
    pub id: String,
    pub name: String,
    pub status: String,
    pub labels: HashMap<String, String>,
}

/// A network found by label.
#[derive(Debug, Clone)]
pub struct LabelledNetwork {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// What carries a label. `filter` is `key` (any value) or `key=value`.
#[derive(Debug, Clone, Default)]
pub struct Labelled {
    pub containers: Vec<LabelledContainer>,
    pub networks: Vec<LabelledNetwork>,
}

impl Labelled {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty()
    }
}

/// Lists every container (running or not) and network matching the label filter.
pub async fn list_labelled(docker: &Docker, filter: &str) -> Result<Labelled, ClusterError> {
    let filters = HashMap::from([("label", vec![filter])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new().all(true).filters(&filters).build(),
        ))
        .await
        .map_err(docker_err(format!("list containers labelled {filter}")))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(docker_err(format!("list networks labelled {filter}")))?;
    Ok(Labelled {
        containers: containers
            .into_iter()
            .map(|c| LabelledContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
            })
            .collect(),
        networks: networks
            .into_iter()
            .map(|n| LabelledNetwork {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect(),
    })
}

/// Force-removes every container (with its anonymous volumes), then every network,
/// matching the label filter; returns what was removed. Something already gone is
/// not an error. A container whose creation was still in flight when the caller gave
/// up (a cancelled start) appears late and keeps its network busy, so this repeats
/// until nothing matches, a bounded number of times.
pub async fn remove_labelled(docker: &Docker, filter: &str) -> Result<Labelled, ClusterError> {
    const ATTEMPTS: usize = 10;
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
    let mut removed = Labelled::default();
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let found = list_labelled(docker, filter).await?;
        if found.is_empty() {
            return Ok(removed);
        }
        last_error = None;
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        for c in found.containers {
            match docker.remove_container(&c.id, Some(opts.clone())).await {
                Ok(()) => removed.containers.push(c),
                Err(e) if is_gone(&e) => {}
                Err(e) => last_error = Some(docker_err(format!("remove container {}", c.name))(e)),
            }
        }
        for n in found.networks {
            match docker.remove_network(&n.id).await {
                Ok(()) => removed.networks.push(n),
                Err(e) if is_gone(&e) => {}
                Err(e) => last_error = Some(docker_err(format!("remove network {}", n.name))(e)),
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    Err(last_error.unwrap_or_else(|| ClusterError::Cleanup {
        run: filter.to_string(),
        detail: format!("resources still appear after {ATTEMPTS} removal rounds"),
    }))
}

/// Already removed, or being removed by someone else.
fn is_gone(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
        || matches!(
            e,
            bollard::errors::Error::DockerResponseServerError { status_code: 409, message }
                if message.contains("already in progress")
        )
}

/// The label filter selecting one run's resources.
pub fn run_filter(run: &RunId) -> String {
    format!("{RUN_ID_LABEL}={}", run.as_str())
}

/// [`remove_labelled`] for one run, callable from synchronous code such as `Drop`
/// (also inside an async runtime, even a single-threaded one): it runs on its own
/// thread with its own small runtime and blocks until done.
pub fn remove_run_blocking(run: &RunId) -> Result<Labelled, ClusterError> {
    let filter = run_filter(run);
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClusterError::io("start a cleanup runtime", "(thread)"))?;
        rt.block_on(async {
            let docker = connect().await?;
            remove_labelled(&docker, &filter).await
        })
    });
    match worker.join() {
        Ok(result) => result,
        Err(_) => Err(ClusterError::Cleanup {
            run: run.as_str().to_string(),
            detail: "the cleanup thread panicked".to_string(),
        }),
    }
}
