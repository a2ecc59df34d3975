//! Installer backends behind one small trait. The procedure (`steps.rs`) asks
//! for [`Component`]s, each carrying its neutral values (one description that every
//! backend turns into its own form); an [`InstallerBackend`] turns a component into
//! files, actions and undo actions, and declares what it [`Needs`] on the machine, so
//! that a preflight reads that declaration instead of the plan's command lines.
//!
//! Adding a backend: one file implementing [`InstallerBackend`] (`istioctl.rs` is the short
//! example, `helm.rs` the one with charts), one variant of [`Installer`] with its
//! name in [`Installer::name`], [`Installer::ALL`] and [`Installer::backend`].

use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{Action, PlanError, PlanFile, PlanOptions, Program};
use super::values::{self, GatewayValues, InstallValues};
use super::{helm, istioctl, sail};
use crate::mesh::Mesh;
use crate::topology::{ClusterSpec, EXTERNAL_ISTIOD_NAMESPACE, Role};
use crate::version::IstioVersion;

/// The program that installs Istio's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Installer {
    /// `istioctl install` with IstioOperator files (the guide's form).
    #[default]
    Istioctl,
    /// `helm upgrade --install` of Istio's charts with values files.
    Helm,
    /// The Sail operator's `Istio` and `IstioCNI` resources (procedure.md "Sail
    /// operator backend").
    Sail,
}

impl Installer {
    /// Every backend, in the order help texts list them.
    pub const ALL: [Installer; 3] = [Installer::Istioctl, Installer::Helm, Installer::Sail];

    /// The name users type (`--installer istioctl`) and reports show: the one
    /// mapping between a backend and its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Istioctl => "istioctl",
            Self::Helm => "helm",
            Self::Sail => "sail",
        }
    }

    /// What plans this backend's steps: the one mapping from the enum to an
    /// implementation.
    pub fn backend(self) -> &'static dyn InstallerBackend {
        match self {
            Self::Istioctl => &istioctl::Istioctl,
            Self::Helm => &helm::Helm,
            Self::Sail => &sail::Sail,
        }
    }

    /// Every name, `istioctl|helm|sail`: the value name of `--installer` in help texts.
    pub fn value_name() -> &'static str {
        static NAMES: LazyLock<String> =
            LazyLock::new(|| Installer::ALL.map(Installer::name).join("|"));
        &NAMES
    }
}

impl std::fmt::Display for Installer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Installer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|i| i.name()).collect();
            let (last, rest) = names.split_last().unwrap_or((&"", &[]));
            format!("unknown installer `{s}`: expected {} or {last}", rest.join(", "))
        })
    }
}

/// One installer backend: how components become files and actions, and what that
/// needs on the machine. Planning is pure: a backend touches no cluster and runs
/// nothing; the executor runs the actions it returns.
pub trait InstallerBackend: Sync {
    /// Plans `component` on [`Target::cluster`]: adds its files and the actions that
    /// undo it to `target`, and returns the actions that install it, in order. The
    /// undo actions run in reverse in step 9.
    fn install(
        &self,
        component: &Component,
        target: &mut Target<'_>,
    ) -> Result<Vec<Action>, PlanError>;

    /// What plans made with this backend for `opts` need before anything is created:
    /// declared here, read by the preflight.
    fn needs(&self, opts: &PlanOptions) -> Needs;

    /// Refuses, at plan time, an Istio version this backend installs no release of
    /// ([`PlanError::NotInstallable`]). Every version by default.
    fn check_version(&self, _istio: IstioVersion) -> Result<(), PlanError> {
        Ok(())
    }

    /// The revision the external istiod and the remote profiles are installed as.
    /// `None` (istioctl, Helm) is the default revision, whose objects carry no
    /// revision in their names (`istiod`, `istio-sidecar-injector-external-istiod`);
    /// with a revision `R` the charts name them `istiod-R`,
    /// `istio-sidecar-injector-R-external-istiod`, and the procedure follows
    /// ([`Revision`]).
    fn revision(&self) -> Option<&'static str> {
        None
    }
}

/// The names the charts give the external istiod's objects for a revision (`None`:
/// the default revision): the chart appends `-<revision>` to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revision<'a>(pub Option<&'a str>);

impl Revision<'_> {
    /// `name` as the chart names it for this revision: `name-<revision>`.
    pub fn name(self, name: &str) -> String {
        match self.0 {
            Some(r) => format!("{name}-{r}"),
            None => name.to_string(),
        }
    }

    /// istiod's Deployment, Service and service account: `istiod[-<revision>]` (the
    /// remote profile's Service and its Endpoints or EndpointSlice too:
    /// `remote-istiod-service.yaml` of `istio-discovery`, 1.24.0 and 1.30.3).
    pub fn istiod(self) -> String {
        self.name("istiod")
    }

    /// A webhook configuration of the remote profile in `external-istiod`:
    /// `<base>[-<revision>]-external-istiod` (`base` is `istio-sidecar-injector` or
    /// `istio-validator`).
    pub fn webhook_config(self, base: &str) -> String {
        self.webhook_config_in(base, EXTERNAL_ISTIOD_NAMESPACE)
    }

    /// The same in a mesh's `namespace` (the chart appends the release namespace):
    /// `<base>[-<revision>]-<namespace>`.
    pub fn webhook_config_in(self, base: &str, namespace: &str) -> String {
        format!("{}-{namespace}", self.name(base))
    }
}

/// What the procedure asks an installer for, with its neutral values.
#[derive(Debug, Clone, PartialEq)]
pub enum Component {
    /// Step 1: the external cluster's ingress gateway in `istio-system` carrying 15012
    /// and 15017, with the small istiod of its own that configures only it.
    ControlPlaneGateway(GatewayValues),
    /// Steps 2 and 8: the remote profile on a remote cluster; `config` on the config
    /// cluster (the first remote), which also serves the mesh config.
    RemoteProfile { config: bool, values: InstallValues },
    /// Step 4: the external istiod in `external-istiod` of the external cluster.
    ExternalIstiod(InstallValues),
    /// Step 7: the config cluster's ingress gateway, injected by the external istiod.
    IngressGateway(GatewayValues),
    /// Step 8: the east-west gateway of a network ([`GatewayValues::network`]).
    EastWestGateway(GatewayValues),
}

impl Component {
    /// Step 1's gateway.
    pub fn control_plane_gateway(meshes: usize) -> Self {
        Self::ControlPlaneGateway(values::control_plane_gateway_for(meshes))
    }

    /// The remote profile for `cluster` ([`values::remote_profile`]).
    pub fn remote_profile(opts: &PlanOptions, cluster: &ClusterSpec, config: bool) -> Self {
        let values = values::remote_profile(
            cluster,
            config,
            opts.external_addr,
            opts.gateway_tls,
            opts.revision(),
        );
        // The one place the remote profile's values meet the distribution's files.
        let values = opts.overrides.apply(cluster.role, values);
        Self::RemoteProfile { config, values }
    }

    /// The external istiod configuring the mesh of `config` (the config cluster), with
    /// the images of `--hub` / `--tag`.
    pub fn external_istiod(opts: &PlanOptions, config: &ClusterSpec) -> Self {
        let mut v = values::external_istiod(
            opts.istio,
            config,
            opts.external_addr,
            opts.gateway_tls,
            opts.revision(),
        );
        v.values = values::with_images(v.values, opts.hub.as_deref(), opts.tag.as_deref());
        // The one place istiod's values meet the distribution's files.
        Self::ExternalIstiod(opts.overrides.apply(Role::External, v))
    }

    /// Step 7's gateway.
    pub fn ingress_gateway(mesh: Mesh) -> Self {
        Self::IngressGateway(values::remote_ingress_gateway_of(mesh))
    }

    /// The east-west gateway of `network` of `mesh`.
    pub fn eastwest_gateway(mesh: Mesh, network: &str) -> Self {
        Self::EastWestGateway(values::eastwest_gateway_of(mesh, network))
    }

    /// The namespace it is installed in: a gateway's own, else the mesh's namespace
    /// its values name (`global.istioNamespace`).
    pub fn namespace(&self) -> &str {
        match self {
            Self::ControlPlaneGateway(g) | Self::IngressGateway(g) | Self::EastWestGateway(g) => {
                &g.namespace
            }
            Self::RemoteProfile { values, .. } | Self::ExternalIstiod(values) => {
                values.values["global"]["istioNamespace"]
                    .as_str()
                    .unwrap_or(EXTERNAL_ISTIOD_NAMESPACE)
            }
        }
    }

    /// The start of the names of its files in its cluster's directory
    /// (`<cluster>/<stem>.yaml`, `<cluster>/<stem>-values.yaml`).
    pub fn file_stem(&self) -> &'static str {
        match self {
            Self::ControlPlaneGateway(_) => "controlplane-gateway",
            Self::RemoteProfile { .. } => "remote-config-cluster",
            Self::ExternalIstiod(_) => "istiod",
            Self::IngressGateway(_) => "istio-ingressgateway",
            Self::EastWestGateway(_) => "eastwest-gateway",
        }
    }
}

/// Where a backend plans one component, and the only part of the plan it can add
/// to: files in the cluster's directory and undo actions on that cluster.
pub struct Target<'a> {
    /// The cluster ([`ClusterSpec::name`]) every action runs against.
    pub cluster: &'a str,
    pub opts: &'a PlanOptions,
    /// The id of the step, for errors.
    step: &'a str,
    /// The plan directory of its files: the cluster's, or a mesh's within it.
    dir: String,
    files: Vec<PlanFile>,
    undo: Vec<Action>,
}

impl<'a> Target<'a> {
    pub(super) fn new(cluster: &'a str, opts: &'a PlanOptions, step: &'a str) -> Self {
        Self { cluster, opts, step, dir: cluster.to_string(), files: Vec::new(), undo: Vec::new() }
    }

    /// Its files go to `dir` instead of the cluster's directory (a mesh after the
    /// first on the external cluster: `external/mesh2`).
    pub(super) fn in_dir(mut self, dir: String) -> Self {
        self.dir = dir;
        self
    }

    /// The plan-relative path of `name` in the cluster's (or mesh's) directory.
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// Adds the YAML file `<cluster>/<name>` of `docs` (one document each) and returns
    /// its path for actions.
    pub fn yaml(&mut self, name: &str, docs: &[Value]) -> Result<String, PlanError> {
        let file = PlanFile::yaml(self.step, self.path(name), docs)?;
        let path = file.path.clone();
        self.files.push(file);
        Ok(path)
    }

    /// Records an action that undoes what this component's actions create.
    pub fn undo(&mut self, action: Action) {
        self.undo.push(action);
    }

    /// The files and undo actions added, in order.
    pub(super) fn finish(self) -> (Vec<PlanFile>, Vec<Action>) {
        (self.files, self.undo)
    }
}

impl PlanOptions {
    /// What plans for these options need: the chosen backend's declaration.
    pub fn needs(&self) -> Needs {
        self.installer.backend().needs(self)
    }
}

/// What a backend's plans need on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The programs its actions run.
    pub programs: Vec<Program>,
    /// Where it fetches from while installing: must be reachable.
    pub repositories: Vec<Repository>,
    /// Files of the unpacked Istio release (`{istio-release}`), e.g. 1.22's
    /// `istiod-remote` chart, published nowhere else.
    pub release: bool,
}

impl Needs {
    /// Whether the plans run `program`.
    pub fn runs(&self, program: Program) -> bool {
        self.programs.contains(&program)
    }
}

/// A repository a backend installs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The host a preflight checks, on port 443.
    pub host: String,
    pub url: String,
    /// What comes from it, for messages: `Istio's Helm charts`.
    pub what: String,
}

impl Repository {
    /// A repository at the HTTPS `url`; its host is read from the URL.
    pub fn https(url: &str, what: &str) -> Self {
        let authority = url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or("");
        let host = authority.split(':').next().unwrap_or(authority);
        Self { host: host.to_string(), url: url.to_string(), what: what.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_host_is_read_from_its_url() {
        let r = Repository::https("https://charts.example:8443/istio/charts", "charts");
        assert_eq!(r.host, "charts.example");
        assert_eq!(r.url, "https://charts.example:8443/istio/charts");
        assert_eq!(
            Repository::https(helm::REPOSITORY, "x").host,
            "istio-release.storage.googleapis.com"
        );
    }

    #[test]
    fn each_installer_runs_its_own_program() {
        let opts = PlanOptions::new(crate::version::NEWEST, Installer::Istioctl, 1);
        for installer in Installer::ALL {
            let needs = installer.backend().needs(&PlanOptions { installer, ..opts.clone() });
            let names: Vec<&str> = needs.programs.iter().map(|p| p.as_str()).collect();
            // Sail's operator is installed from its Helm chart.
            let program = if installer == Installer::Sail { "helm" } else { installer.name() };
            assert_eq!(names, [program]);
        }
        assert_eq!(Installer::value_name(), "istioctl|helm|sail");
    }
}
