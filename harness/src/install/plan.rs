//! The install plan: the procedure of procedure.md as data. [`super::plan()`] builds it
//! from [`PlanOptions`] without touching any cluster; `cargo xtask plan` prints and
//! writes it; the executor runs its [`Step`]s in order against real clusters.
//!
//! How the executor reads a plan:
//! - Steps run in the order of [`Plan::steps`]; each step's [`Action`]s run in order
//!   against the cluster named by [`Step::cluster`] (a [`ClusterSpec::name`]).
//! - File names in actions are relative to the directory the plan was written to
//!   ([`Plan::write`]); [`Action::Run`] commands run with that directory as their
//!   working directory.
//! - [`Action::Run`] arguments may hold two placeholders the executor substitutes
//!   ([`resolve_placeholders`]): [`KUBECONFIG_PLACEHOLDER`] for the kubeconfig of the
//!   step's cluster (`{kubeconfig:<cluster>}`), and [`RELEASE_DIR_PLACEHOLDER`] for
//!   the unpacked Istio release (`{istio-release}`, only for charts that exist nowhere
//!   else, e.g. 1.22's `istiod-remote`).
//! - A plan is rendered for one external address ([`PlanOptions::external_addr`]).
//!   `EXTERNAL_ISTIOD_ADDR` is the external gateway's LoadBalancer IP, known only
//!   after the [`WaitCondition::LoadBalancerIp`] of the step that
//!   [`Step::publishes_external_address`] (in step 1): when it differs, the executor
//!   plans again with the observed address (planning is pure and fast) and continues
//!   with the next step of the new plan.
//! - [`Step::phase`] says which steps install and which clean up (step 9).
//!
//! [`ClusterSpec::name`]: crate::topology::ClusterSpec::name

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::remote_secret::{RemoteSecretError, SecretType};
use crate::tls::TlsError;
use crate::topology::{NetworkMode, Topology, TopologyError};
use crate::version::{IstioVersion, IstiodAddressObject, VersionError};

/// Replaced by the kubeconfig path of the cluster named after the colon:
/// `{kubeconfig:external}`.
pub const KUBECONFIG_PLACEHOLDER: &str = "{kubeconfig:";
/// Stands for a cluster's API server as the external cluster reaches it, in remote
/// secret templates: `https://{api-server:<cluster>}`.
pub const API_SERVER_PLACEHOLDER: &str = "{api-server:";
/// Replaced by the directory of the unpacked Istio release (`istio-<v>/`).
pub const RELEASE_DIR_PLACEHOLDER: &str = "{istio-release}";
/// The name of the plan file [`Plan::write`] writes beside the manifests.
pub const PLAN_JSON: &str = "plan.json";

pub use super::backend::Installer;
use super::backend::Revision;
use super::overrides::{OverrideError, Overrides};

/// How the external cluster's gateway carries 15012 and 15017 (procedure.md step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayTls {
    /// TLS passed through to istiod (the doc test's and Sail's variant).
    #[default]
    Passthrough,
    /// TLS terminated at the gateway with a certificate for the external address.
    Simple,
}

/// A program a [`Action::Run`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Program {
    Istioctl,
    Helm,
}

/// Everything a plan depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub istio: IstioVersion,
    pub installer: Installer,
    /// Remotes including the config cluster (1 = external + config).
    pub remotes: usize,
    pub network_mode: NetworkMode,
    pub gateway_tls: GatewayTls,
    /// `EXTERNAL_ISTIOD_ADDR`: always an IP (istio/istio#45014).
    pub external_addr: IpAddr,
    /// Image hub of Istio's images and samples; `None` is the release's default hub.
    pub hub: Option<String>,
    /// Image tag of Istio's images (`global.tag`); `None` is the release's own tag.
    pub tag: Option<String>,
    /// A distribution's values files, revision and chart repository (procedure.md
    /// "Distribution overrides").
    #[serde(default, skip_serializing_if = "Overrides::is_empty")]
    pub overrides: Overrides,
    /// Meshes the external cluster hosts, each with `remotes` remotes of its own
    /// (procedure.md "Several meshes on one external cluster"); written only when
    /// more than one.
    #[serde(default = "one_mesh", skip_serializing_if = "is_one_mesh")]
    pub meshes: usize,
    /// Sail: whether the plan installs the operator or finds it installed.
    #[serde(default)]
    pub operator: OperatorSource,
    /// Sail: an `IstioCNI` on every remote, and the external istiod injecting for it
    /// (`--cni`; always on OpenShift, procedure.md "Sail operator backend").
    #[serde(default)]
    pub cni: bool,
}

fn one_mesh() -> usize {
    1
}

fn is_one_mesh(n: &usize) -> bool {
    *n == 1
}

/// Where the Sail operator comes from (procedure.md "Sail operator backend").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorSource {
    /// The plan installs it from its Helm chart on every cluster and removes it in
    /// step 9 (clusters the harness owns: kind).
    #[default]
    Helm,
    /// It is already installed on every cluster (existing clusters): the plan neither
    /// installs nor removes it, and the preflight checks its CRDs.
    Preinstalled,
}

impl PlanOptions {
    /// `remotes` with `installer` for `istio`, everything else as by default: one
    /// network per remote, PASSTHROUGH at the gateway, the placeholder external address
    /// (planned again for the observed one), the release's own hub and tag.
    pub fn new(istio: IstioVersion, installer: Installer, remotes: usize) -> Self {
        Self {
            istio,
            installer,
            remotes,
            network_mode: NetworkMode::MultiNetwork,
            gateway_tls: GatewayTls::Passthrough,
            external_addr: crate::topology::PLACEHOLDER_EXTERNAL_ADDR,
            hub: None,
            tag: None,
            overrides: Overrides::default(),
            meshes: 1,
            operator: OperatorSource::Helm,
            cni: false,
        }
    }

    /// The revision the external istiod and the remote profiles are installed as:
    /// `--revision`, else the backend's own ([`InstallerBackend::revision`]).
    ///
    /// [`InstallerBackend::revision`]: super::InstallerBackend::revision
    pub fn revision(&self) -> Revision<'_> {
        match &self.overrides.revision {
            Some(r) => Revision(Some(r.as_str())),
            None => Revision(self.installer.backend().revision()),
        }
    }

    /// The chart repository of the backend's own charts: `--helm-repo`, else
    /// `default` (Istio's or the Sail operator's).
    pub fn helm_repo<'a>(&'a self, default: &'a str) -> &'a str {
        self.overrides.helm_repo.as_deref().unwrap_or(default)
    }
}

/// The whole procedure for one set of options: steps in order and every file they use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub options: PlanOptions,
    pub topology: Topology,
    pub steps: Vec<Step>,
    pub files: Vec<PlanFile>,
}

/// One step of the procedure on one cluster. A step of procedure.md that touches
/// several clusters (8, 9) is several `Step`s with the same number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The step of procedure.md, 1 to 9.
    pub number: u8,
    /// A stable name, e.g. `install-external-gateway`.
    pub id: String,
    /// What the guide says, in its words.
    pub title: String,
    /// The cluster every action of this step runs against ([`ClusterSpec::name`]).
    ///
    /// [`ClusterSpec::name`]: crate::topology::ClusterSpec::name
    pub cluster: String,
    pub actions: Vec<Action>,
    /// Steps 1 to 8 install, step 9 cleans up: the executor runs one phase at a time.
    #[serde(default, skip_serializing_if = "StepPhase::is_install")]
    pub phase: StepPhase,
    /// Its [`WaitCondition::LoadBalancerIp`] observes `EXTERNAL_ISTIOD_ADDR` (the
    /// control-plane gateway's address, step 1): the executor plans again for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publishes_external_address: bool,
}

/// Which part of the procedure a [`Step`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepPhase {
    /// Steps 1 to 8: install and verify.
    #[default]
    Install,
    /// Step 9: remove what the install created, in reverse.
    Cleanup,
}

impl StepPhase {
    fn is_install(&self) -> bool {
        *self == StepPhase::Install
    }
}

/// A file the install applies or passes to an installer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    /// Relative to the plan directory, e.g. `external/istiod.yaml`.
    pub path: String,
    pub contents: String,
    /// Holds a private key or a credential template: written with mode 0600 and
    /// never printed.
    pub private: bool,
}

/// A private file's contents are left out, so that `{:?}` of a plan (a test's failure
/// message, a debug log) never prints a key.
impl std::fmt::Debug for PlanFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("PlanFile");
        d.field("path", &self.path);
        if self.private {
            d.field("contents", &format_args!("<{} bytes, private>", self.contents.len()));
        } else {
            d.field("contents", &self.contents);
        }
        d.field("private", &self.private).finish()
    }
}

/// One thing the executor does, in order. Serialized with an `action` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create (or keep) a namespace with these labels and annotations.
    CreateNamespace {
        name: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
    },
    /// Server-side apply every document of a plan file, in order; documents without
    /// a namespace go to `namespace` (like `kubectl apply -n`).
    Apply {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// Run an installer. `args` may hold placeholders (see the module docs).
    /// With `stdout_file`, standard output is written to that plan-relative file
    /// (a manifest generated at run time, applied by a later action).
    Run {
        program: Program,
        args: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdout_file: Option<String>,
    },
    /// Create a remote secret (procedure.md "The remote secret, natively"): in
    /// `source_cluster`, apply `token_file` (a service-account token Secret for
    /// `service_account`) and wait for its token and CA; then fill `file` (a Secret
    /// whose kubeconfig names `source_cluster`'s API server, with placeholders for
    /// token and CA) and apply it in `target_cluster`.
    CreateRemoteSecret {
        source_cluster: String,
        target_cluster: String,
        /// The cluster ID istiod knows the source cluster by.
        cluster_id: String,
        secret_type: SecretType,
        service_account: String,
        namespace: String,
        token_file: String,
        file: String,
    },
    /// Wait, watch-based, until the condition holds or the timeout passes.
    WaitFor { condition: WaitCondition, timeout_secs: u64 },
    /// Check a fact the guide checks; failing it fails the step.
    Verify { check: Check },
    /// Delete every object of a plan file (or of a generated manifest), last first,
    /// and wait until they are gone; `namespace` as for [`Action::Apply`]. Objects
    /// already gone are fine.
    Delete {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// Delete a namespace and wait until it is gone.
    DeleteNamespace { name: String },
}

/// What a [`Action::WaitFor`] waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "condition", rename_all = "kebab-case")]
pub enum WaitCondition {
    /// A LoadBalancer Service has an ingress IP. In the step that
    /// [`Step::publishes_external_address`] this IP is `EXTERNAL_ISTIOD_ADDR`.
    LoadBalancerIp { namespace: String, service: String },
    /// A Deployment reports the `Available` condition.
    DeploymentAvailable { namespace: String, name: String },
    /// At least one pod matches `selector` and every matching pod is Running with
    /// `containers` ready containers, one of them `istio-proxy` when `sidecar` is set
    /// (in `spec.containers` or, for native sidecars, `spec.initContainers`).
    PodsReady { namespace: String, selector: String, containers: u32, sidecar: bool },
    /// A ConfigMap exists (e.g. `istio-ca-root-cert`, written by istiod).
    ConfigMapExists { namespace: String, name: String },
    /// A custom resource reports the condition `Ready` with status `True` (the Sail
    /// operator's `Istio` and `IstioCNI`, procedure.md "Sail operator backend").
    /// `namespace` is `None` for a cluster-scoped kind.
    ResourceReady {
        group: String,
        version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
    },
}

/// The kind of an admission webhook configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookKind {
    Mutating,
    Validating,
}

/// What a [`Action::Verify`] checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Check {
    /// The webhook configuration exists with at least `min_webhooks` webhooks.
    WebhookConfigurationExists { kind: WebhookKind, name: String, min_webhooks: u32 },
    /// The ConfigMap exists.
    ConfigMapExists { namespace: String, name: String },
    /// The istiod Service's (`service`: `istiod`, or `istiod-<revision>`) address
    /// object points at `address` with ports `ports` (xDS and webhooks: 15012 and
    /// 15017, a later mesh's own pair); `object` is the version's
    /// ([`IstioVersion::istiod_address_object`]).
    IstiodAddress {
        namespace: String,
        service: String,
        object: IstiodAddressObject,
        address: IpAddr,
        #[serde(default = "guide_istiod_ports", skip_serializing_if = "is_guide_istiod_ports")]
        ports: [u16; 2],
    },
    /// No webhook configuration of the cluster mentions `text` (istio/istio#37674).
    WebhooksDoNotMention { text: String },
    /// From a pod matching `selector` (container `container`), `curl -sS url`
    /// answers `Hello version: <v>, instance: ...` for every version in `versions`
    /// within `requests` requests.
    ExecGreeting {
        namespace: String,
        selector: String,
        container: String,
        url: String,
        versions: Vec<String>,
        requests: u32,
    },
    /// Through the LoadBalancer IP of `service`, `GET http://<ip>:<port><path>`
    /// answers the greeting of every version in `versions` within `requests` requests.
    IngressGreeting {
        namespace: String,
        service: String,
        port: u16,
        path: String,
        versions: Vec<String>,
        requests: u32,
    },
}

/// The guide's istiod ports, 15012 and 15017: the first mesh's.
pub const GUIDE_ISTIOD_PORTS: [u16; 2] = [15012, 15017];

fn guide_istiod_ports() -> [u16; 2] {
    GUIDE_ISTIOD_PORTS
}

fn is_guide_istiod_ports(ports: &[u16; 2]) -> bool {
    *ports == GUIDE_ISTIOD_PORTS
}

/// Why a plan cannot be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The error is part of the message (not a `source`), so that a report of the
    /// cause chain stays one line without repeating it.
    #[error("step {step}: {error}")]
    Tls { step: &'static str, error: TlsError },
    #[error(transparent)]
    RemoteSecret(#[from] RemoteSecretError),
    #[error("step {step}: rendering {file}: {message}")]
    Render { step: String, file: String, message: String },
    #[error(
        "Istio {istio} cannot use the IPv6 address {addr} as EXTERNAL_ISTIOD_ADDR: up to \
         1.29 the remote profile renders an ExternalName Service for it, which no webhook \
         client can call; use an IPv4 address, or Istio 1.30 or later"
    )]
    Ipv6ExternalAddr { istio: IstioVersion, addr: IpAddr },
    /// The chosen backend installs no release of this Istio version (the Sail
    /// operator installs 1.24.0 to 1.30.3, procedure.md "Sail operator backend").
    #[error(
        "Istio {istio} cannot be installed with --installer {installer}: it installs Istio {range}"
    )]
    NotInstallable { istio: IstioVersion, installer: Installer, range: String },
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// Several meshes are planned for istioctl and Helm with TLS passthrough only
    /// (procedure.md "Several meshes on one external cluster").
    #[error(
        "--meshes {meshes} is not built for {what}: several meshes are planned for --installer istioctl or helm with --gateway-tls passthrough"
    )]
    MeshesNotSupported { meshes: usize, what: String },
    #[error("cannot write the plan to {}: {error}", dir.display())]
    Write { dir: PathBuf, error: std::io::Error },
}

impl FromStr for GatewayTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "passthrough" => Ok(Self::Passthrough),
            "simple" => Ok(Self::Simple),
            _ => Err(format!("unknown gateway TLS mode `{s}`: expected passthrough or simple")),
        }
    }
}

impl Program {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Istioctl => "istioctl",
            Self::Helm => "helm",
        }
    }
}

/// The `--kubeconfig` argument value for `cluster`, substituted by the executor.
pub fn kubeconfig_placeholder(cluster: &str) -> String {
    format!("{KUBECONFIG_PLACEHOLDER}{cluster}}}")
}

/// The API server of `cluster` in a planned remote secret; the executor builds the
/// real secret with the address it knows.
pub fn api_server_placeholder(cluster: &str) -> String {
    format!("https://{API_SERVER_PLACEHOLDER}{cluster}}}")
}

/// Substitutes the placeholders of a [`Action::Run`] argument: `{kubeconfig:<c>}`
/// through `kubeconfig`, `{istio-release}` with `release_dir`. `None` when a
/// kubeconfig is unknown.
pub fn resolve_placeholders(
    arg: &str,
    kubeconfig: impl Fn(&str) -> Option<PathBuf>,
    release_dir: &Path,
) -> Option<String> {
    let mut out = arg.replace(RELEASE_DIR_PLACEHOLDER, &release_dir.to_string_lossy());
    while let Some(start) = out.find(KUBECONFIG_PLACEHOLDER) {
        let rest = &out[start + KUBECONFIG_PLACEHOLDER.len()..];
        let end = rest.find('}')?;
        let path = kubeconfig(&rest[..end])?;
        out = format!("{}{}{}", &out[..start], path.to_string_lossy(), &rest[end + 1..]);
    }
    Some(out)
}

impl Plan {
    /// The file at `path`, if the plan has one.
    pub fn file(&self, path: &str) -> Option<&PlanFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Steps from procedure.md step `number` on (for continuing after step 1 with a
    /// plan made for the observed external address).
    pub fn steps_from(&self, number: u8) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.number >= number)
    }
}
