//! Runs an install [`Plan`] against real clusters: each [`Step`]'s actions in order
//! on the step's cluster, one tracing span per step and cluster, each step timed,
//! progress shown as it goes ([`progress`]).
//!
//! - `Apply` and `CreateNamespace`: server-side apply through [`crate::kube::apply`].
//! - `Run`: the installer ([`command`]) with the plan directory as working directory.
//! - `CreateRemoteSecret`: [`crate::remote_secret::create`], the source cluster named
//!   by its API server URL as the other clusters reach it.
//! - `WaitFor`: [`WaitCondition::wait`], watch-based with the step's timeout.
//! - `Verify`: [`Check::run`], the checks of [`crate::checks`].
//! - `Delete` / `DeleteNamespace`: delete and wait until gone
//!   ([`crate::kube::delete`]).
//!
//! After the wait for the control-plane gateway's LoadBalancer IP (in the step that
//! [`Step::publishes_external_address`], step 1), the observed IP is
//! `EXTERNAL_ISTIOD_ADDR`: when the plan was made for another address, it is planned
//! again for the observed one, written again, and execution continues with the next
//! step of the new plan.
//!
//! [`WaitCondition::wait`]: crate::install::WaitCondition::wait
//! [`Check::run`]: crate::install::Check::run

pub mod command;
pub mod preflight;
pub mod progress;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ::kube::Client;
use ::kube::api::{Api, DeleteParams};
use k8s_openapi::api::core::v1::Namespace;
use serde_json::json;
use tracing::Instrument as _;

use crate::checks::{CheckFailed, Retry};
use crate::cluster::{ClusterError, ProvidedCluster};
use crate::install::{self, Action, Plan, PlanError, Step, WaitCondition};
use crate::kube::apply::{ApplyError, ApplyOptions, apply_yaml};
use crate::kube::delete::{DeleteError, delete_and_wait, delete_manifest};
use crate::kube::wait::WaitError;
use crate::remote_secret::{self, RemoteSecret, RemoteSecretError};
use command::{CommandError, Programs, RunError};
use progress::{Progress, ProgressMode, StepOutcome};

/// The field manager of everything the executor applies.
pub const FIELD_MANAGER: &str = "ecp-harness";

/// One cluster as the executor reaches it.
#[derive(Clone)]
pub struct ClusterAccess {
    pub client: Client,
    /// The kubeconfig the host uses (passed to installers).
    pub kubeconfig: PathBuf,
    /// The API server as the other clusters reach it, a URL (`https://10.1.0.3:6443`,
    /// `https://api.example.com:6443`), for remote secrets.
    pub api_server: Option<String>,
}

impl ClusterAccess {
    /// Access to a cluster any provider gave: a client from its host kubeconfig, its
    /// peer URL for remote secrets.
    pub async fn connect(cluster: &ProvidedCluster) -> Result<Self, ClusterError> {
        Ok(Self {
            client: crate::cluster::kubeconfig::client(&cluster.name, &cluster.kubeconfig).await?,
            kubeconfig: cluster.kubeconfig.clone(),
            api_server: Some(cluster.peer_server.clone()),
        })
    }
}

/// Every cluster of the topology, by [`ClusterSpec::name`].
///
/// [`ClusterSpec::name`]: crate::topology::ClusterSpec::name
pub type Clusters = BTreeMap<String, ClusterAccess>;

/// Which steps to run: those whose [`Step::phase`] it is.
pub use crate::install::StepPhase as Phase;

/// The indices of the steps of `phase`, in order.
fn selected(plan: &Plan, phase: Phase) -> Vec<usize> {
    (0..plan.steps.len()).filter(|&i| plan.steps[i].phase == phase).collect()
}

/// How to execute.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Where the plan's files are written and installers run.
    pub plan_dir: PathBuf,
    pub programs: Programs,
    pub progress: ProgressMode,
    /// Longest an installer command may run.
    pub run_timeout: Duration,
    /// Longest one `Apply` may take.
    pub apply_timeout: Duration,
    /// Longest one remote secret creation may take.
    pub remote_secret_timeout: Duration,
    /// How greeting checks retry.
    pub greeting_retry: Retry,
    /// The external address is given, not observed (clusters without a LoadBalancer
    /// implementation): the step that publishes it does not wait for the gateway's
    /// LoadBalancer IP, and the plan, made for this address, is not made again.
    pub given_external_addr: bool,
}

impl ExecOptions {
    pub fn new(plan_dir: PathBuf, programs: Programs) -> Self {
        Self {
            plan_dir,
            programs,
            progress: ProgressMode::detect(),
            run_timeout: Duration::from_secs(15 * 60),
            apply_timeout: Duration::from_secs(180),
            remote_secret_timeout: Duration::from_secs(180),
            greeting_retry: Retry::default(),
            given_external_addr: false,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub number: u8,
    pub id: String,
    pub title: String,
    pub cluster: String,
    pub elapsed: Duration,
    /// `None` when the step succeeded.
    pub error: Option<String>,
}

impl StepRecord {
    pub fn label(&self) -> String {
        format!("step {} on {}: {}", self.number, self.cluster, self.title)
    }
}

/// The outcome of an execution: the steps run (in order), the plan in force at the
/// end (re-planned for the observed address), and the error that stopped it.
#[derive(Debug)]
pub struct Execution {
    pub plan: Plan,
    pub steps: Vec<StepRecord>,
    pub error: Option<ExecError>,
}

impl Execution {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("step {number} ({id}) on cluster {cluster}: {source}")]
    Step {
        number: u8,
        id: String,
        cluster: String,
        #[source]
        source: Box<ActionError>,
    },
    #[error("planning again for the observed external address {addr}: {source}")]
    Replan {
        addr: IpAddr,
        #[source]
        source: PlanError,
    },
    #[error("the plan made for the observed address {addr} differs in shape at step {index}")]
    ReplanShape { addr: IpAddr, index: usize },
    #[error("writing the plan to {}: {source}", dir.display())]
    WritePlan {
        dir: PathBuf,
        #[source]
        source: PlanError,
    },
}

/// Why one action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no cluster named {0} is running")]
    UnknownCluster(String),
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no API server URL as the other clusters reach it is known for cluster {0}")]
    NoApiServer(String),
    #[error(transparent)]
    RemoteSecretSpec(#[from] RemoteSecretError),
    #[error(transparent)]
    RemoteSecret(#[from] remote_secret::create::CreateError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Check(#[from] CheckFailed),
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

/// Runs the steps of `phase`: writes the plan into the plan directory, then each
/// step in order, stopping at the first failure.
pub async fn execute(
    plan: Plan,
    clusters: &Clusters,
    phase: Phase,
    opts: &ExecOptions,
) -> Execution {
    let mut plan = plan;
    let mut records = Vec::new();
    if let Err(source) = plan.write(&opts.plan_dir) {
        let error = ExecError::WritePlan { dir: opts.plan_dir.clone(), source };
        return Execution { plan, steps: records, error: Some(error) };
    }
    let selected = selected(&plan, phase);
    let progress = Progress::new(opts.progress, selected.len());
    for (position, &index) in selected.iter().enumerate() {
        let step = plan.steps[index].clone();
        let label = format!("step {} on {}: {}", step.number, step.cluster, step.title);
        progress.started(position, &label);
        let span = tracing::info_span!("step", number = step.number, id = %step.id, cluster = %step.cluster);
        let started = Instant::now();
        let result = run_step(&step, clusters, opts).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = if result.is_ok() { StepOutcome::Ok } else { StepOutcome::Failed };
        progress.finished(position, &label, outcome, elapsed);
        span.in_scope(|| tracing::info!(elapsed = ?elapsed, ok = result.is_ok(), "step finished"));
        records.push(StepRecord {
            number: step.number,
            id: step.id.clone(),
            title: step.title.clone(),
            cluster: step.cluster.clone(),
            elapsed,
            error: result.as_ref().err().map(|e| e.to_string()),
        });
        match result {
            Err(source) => {
                let error = ExecError::Step {
                    number: step.number,
                    id: step.id,
                    cluster: step.cluster,
                    source: Box::new(source),
                };
                return Execution { plan, steps: records, error: Some(error) };
            }
            Ok(Some(observed)) if observed != plan.options.external_addr => {
                match replan(&plan, observed, index, opts) {
                    Ok(new_plan) => plan = new_plan,
                    Err(error) => return Execution { plan, steps: records, error: Some(error) },
                }
            }
            Ok(_) => {}
        }
    }
    progress.finish();
    Execution { plan, steps: records, error: None }
}

/// Plans again for the observed external address; the new plan must have the same
/// steps (only addresses differ).
fn replan(plan: &Plan, addr: IpAddr, index: usize, opts: &ExecOptions) -> Result<Plan, ExecError> {
    tracing::info!(%addr, planned = %plan.options.external_addr, "planning again for the observed external address");
    let mut options = plan.options.clone();
    options.external_addr = addr;
    let new_plan = install::plan(&options).map_err(|source| ExecError::Replan { addr, source })?;
    let same_shape = new_plan.steps.len() == plan.steps.len()
        && new_plan
            .steps
            .iter()
            .zip(&plan.steps)
            .all(|(a, b)| a.id == b.id && a.cluster == b.cluster);
    if !same_shape {
        return Err(ExecError::ReplanShape { addr, index });
    }
    new_plan
        .write(&opts.plan_dir)
        .map_err(|source| ExecError::WritePlan { dir: opts.plan_dir.clone(), source })?;
    Ok(new_plan)
}

/// Runs one step's actions; returns the LoadBalancer IP its wait observed when the
/// step publishes the external address.
async fn run_step(
    step: &Step,
    clusters: &Clusters,
    opts: &ExecOptions,
) -> Result<Option<IpAddr>, ActionError> {
    let access = cluster(clusters, &step.cluster)?;
    let mut observed = None;
    for action in &step.actions {
        if opts.given_external_addr
            && step.publishes_external_address
            && matches!(
                action,
                Action::WaitFor { condition: WaitCondition::LoadBalancerIp { .. }, .. }
            )
        {
            tracing::info!("the external address is given: not waiting for a LoadBalancer IP");
            continue;
        }
        tracing::debug!(?action, "action");
        let ip = run_action(&step.cluster, access, action, clusters, opts).await?;
        if step.publishes_external_address {
            observed = observed.or(ip);
        }
    }
    Ok(observed)
}

fn cluster<'a>(clusters: &'a Clusters, name: &str) -> Result<&'a ClusterAccess, ActionError> {
    clusters.get(name).ok_or_else(|| ActionError::UnknownCluster(name.to_string()))
}

fn read_plan_file(opts: &ExecOptions, file: &str) -> Result<String, ActionError> {
    let path = opts.plan_dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| ActionError::ReadFile { path, source })
}

async fn run_action(
    name: &str,
    access: &ClusterAccess,
    action: &Action,
    clusters: &Clusters,
    opts: &ExecOptions,
) -> Result<Option<IpAddr>, ActionError> {
    let client = &access.client;
    match action {
        Action::CreateNamespace { name: ns, labels, annotations } => {
            let yaml = namespace_manifest(ns, labels, annotations);
            let apply_opts = ApplyOptions::new(name, FIELD_MANAGER).timeout(opts.apply_timeout);
            apply_yaml(client, &yaml, &format!("namespace {ns}"), &apply_opts).await?;
        }
        Action::Apply { file, namespace } => {
            let yaml = read_plan_file(opts, file)?;
            let mut apply_opts = ApplyOptions::new(name, FIELD_MANAGER).timeout(opts.apply_timeout);
            if let Some(ns) = namespace {
                apply_opts = apply_opts.namespace(ns);
            }
            let report = apply_yaml(client, &yaml, file, &apply_opts).await?;
            tracing::info!(
                file,
                objects = report.objects.len(),
                modified = report.modified().count(),
                "applied"
            );
        }
        Action::Run { program, args, stdout_file } => {
            let kubeconfig = |c: &str| clusters.get(c).map(|a| a.kubeconfig.clone());
            let mut invocation = command::invocation(
                *program,
                args,
                stdout_file.as_deref(),
                &opts.programs,
                &opts.plan_dir,
                kubeconfig,
            )?;
            invocation.kubeconfig = Some(access.kubeconfig.clone());
            tracing::info!(command = %invocation.display(), "running");
            invocation.run(opts.run_timeout).await?;
        }
        Action::CreateRemoteSecret {
            source_cluster,
            target_cluster,
            cluster_id,
            secret_type,
            service_account,
            namespace,
            ..
        } => {
            let source = cluster(clusters, source_cluster)?;
            let target = cluster(clusters, target_cluster)?;
            let server = source
                .api_server
                .as_deref()
                .ok_or_else(|| ActionError::NoApiServer(source_cluster.clone()))?;
            let remote = RemoteSecret::new(cluster_id, *secret_type, server, namespace)?;
            let request = remote_secret::create::Request {
                remote: &remote,
                source: remote_secret::create::Endpoint {
                    cluster: source_cluster,
                    client: &source.client,
                },
                service_account,
                service_account_namespace: namespace,
                target: remote_secret::create::Endpoint {
                    cluster: target_cluster,
                    client: &target.client,
                },
                timeout: opts.remote_secret_timeout,
            };
            remote_secret::create::create(&request).await?;
        }
        Action::WaitFor { condition, timeout_secs } => {
            return Ok(condition.wait(name, client, Duration::from_secs(*timeout_secs)).await?);
        }
        Action::Verify { check } => check.run(name, client, opts.greeting_retry).await?,
        Action::Delete { file, namespace } => {
            let yaml = read_plan_file(opts, file)?;
            let ns = namespace.as_deref();
            delete_manifest(name, client, &yaml, file, ns, opts.apply_timeout).await?;
        }
        Action::DeleteNamespace { name: ns } => {
            let api = Api::<Namespace>::all(client.clone());
            let params = DeleteParams::background();
            delete_and_wait(name, &api, ns, &params, opts.apply_timeout).await?;
        }
    }
    Ok(None)
}

/// A Namespace manifest (JSON is YAML).
pub fn namespace_manifest(
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let mut metadata = json!({ "name": name });
    if !labels.is_empty() {
        metadata["labels"] = json!(labels);
    }
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": metadata }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_carry_labels_and_annotations() {
        let labels = BTreeMap::from([("istio-injection".to_string(), "enabled".to_string())]);
        let annotations = BTreeMap::from([(
            "topology.istio.io/controlPlaneClusters".to_string(),
            "remote1".to_string(),
        )]);
        let yaml = namespace_manifest("sample", &labels, &annotations);
        let v: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(v["kind"], "Namespace");
        assert_eq!(v["metadata"]["name"], "sample");
        assert_eq!(v["metadata"]["labels"]["istio-injection"], "enabled");
        assert_eq!(
            v["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"],
            "remote1"
        );
        let bare = namespace_manifest("external-istiod", &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(
            bare,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"external-istiod"}}"#
        );
    }

    /// The executor continues a re-planned plan at the same index: plans for two
    /// external addresses must have the same steps on the same clusters.
    #[test]
    fn plans_for_another_address_keep_their_shape() {
        use crate::install::{Installer, PlanOptions};
        for (version, installer, remotes) in [
            ("1.22.8", Installer::Helm, 2),
            ("1.23.6", Installer::Istioctl, 1),
            ("1.30.3", Installer::Istioctl, 2),
            ("1.30.3", Installer::Helm, 1),
        ] {
            let mut opts = PlanOptions::new(version.parse().unwrap(), installer, remotes);
            let planned = install::plan(&opts).unwrap();
            opts.external_addr = "172.18.6.66".parse().unwrap();
            let observed = install::plan(&opts).unwrap();
            let shape = |p: &Plan| -> Vec<(u8, String, String)> {
                p.steps.iter().map(|s| (s.number, s.id.clone(), s.cluster.clone())).collect()
            };
            assert_eq!(shape(&planned), shape(&observed), "{version} {installer:?}");
            assert_ne!(planned.files, observed.files, "the address is in the files");
            let first_wait = planned.steps.iter().position(|s| {
                s.actions.iter().any(|a| {
                    matches!(
                        a,
                        Action::WaitFor { condition: WaitCondition::LoadBalancerIp { .. }, .. }
                    )
                })
            });
            let first_wait = first_wait.expect("a wait for the gateway's IP");
            let publishing: Vec<usize> = (0..planned.steps.len())
                .filter(|&i| planned.steps[i].publishes_external_address)
                .collect();
            assert_eq!(publishing, [first_wait], "the address is learned at the first wait");
            assert_eq!(planned.steps[first_wait].number, 1, "the address is learned in step 1");
        }
    }

    /// The install phase runs steps 1 to 8, the cleanup step 9, by the steps' own
    /// phase.
    #[test]
    fn phases_split_install_from_cleanup() {
        use crate::install::{Installer, PlanOptions};
        let plan =
            install::plan(&PlanOptions::new(crate::version::NEWEST, Installer::Helm, 2)).unwrap();
        let numbers = |phase| -> Vec<u8> {
            selected(&plan, phase).into_iter().map(|i| plan.steps[i].number).collect()
        };
        let install = numbers(Phase::Install);
        let cleanup = numbers(Phase::Cleanup);
        assert_eq!(install.len() + cleanup.len(), plan.steps.len());
        assert!(install.iter().all(|&n| n < 9) && install.contains(&8), "{install:?}");
        assert!(!cleanup.is_empty() && cleanup.iter().all(|&n| n == 9), "{cleanup:?}");
    }
}
