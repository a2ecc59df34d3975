//! What a suite run is asked to do, checked before anything touches the machine.

use std::path::PathBuf;

use super::scenarios::{SCENARIOS, Scenario, scenario};
use crate::conformance::RunInfo;
use crate::install::{
    GatewayTls, Installer, OperatorSource, OverrideError, Overrides, PlanOptions,
};
use crate::report::NotRun;
use crate::topology::{NetworkMode, PLACEHOLDER_EXTERNAL_ADDR, Topology, TopologyError};
use crate::version::{IstioVersion, VersionError};

/// Everything a run of the suite depends on. [`SuiteOptions::new`] checks it.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Run one after another (or up to `parallel` at once), each in fresh clusters
    /// unless `reuse`.
    pub versions: Vec<IstioVersion>,
    pub installer: Installer,
    /// Remotes including the config cluster (1 = external + config).
    pub remotes: usize,
    /// Meshes hosted by the external cluster, each with `remotes` remotes.
    pub meshes: usize,
    pub network_mode: NetworkMode,
    pub gateway_tls: GatewayTls,
    /// Image hub and tag of Istio's images (and the samples' hub).
    pub hub: Option<String>,
    pub tag: Option<String>,
    /// A distribution's values files, revision and chart repository.
    pub overrides: Overrides,
    /// Sail: an `IstioCNI` on every remote (`--cni`; on OpenShift always).
    pub cni: bool,
    /// Keep the clusters and the install after the run.
    pub keep: bool,
    /// Hand the clusters on from one version to the next (Istio removed in between).
    pub reuse: bool,
    /// Versions run at once, each in clusters of its own.
    pub parallel: usize,
    /// The scenarios to run, in the procedure's order.
    pub scenarios: Vec<&'static Scenario>,
    /// The scenarios not run, with why (reported).
    pub not_run: Vec<NotRun>,
    /// Where the report goes.
    pub report_dir: PathBuf,
    /// An istioctl or helm binary instead of the release's or PATH's.
    pub istioctl: Option<PathBuf>,
    pub helm: Option<PathBuf>,
    /// How the scenario tests are run.
    pub runner: ScenarioRunner,
    /// The command line, the suite's build and the implementation, for the report
    /// (the xtask fills it in; [`SuiteOptions::new`] leaves it empty).
    pub run_info: RunInfo,
}

/// What a provider says about its clusters before the plan is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderFacts {
    /// `EXTERNAL_ISTIOD_ADDR` when known beforehand ([`crate::cluster::Provider::external_address`]).
    pub external_addr: Option<std::net::IpAddr>,
    /// Whether the plan installs the Sail operator (clusters the provider owns) or
    /// finds it there ([`crate::cluster::Capabilities::install_operators`]).
    pub operator: OperatorSource,
    /// The clusters are OpenShift ([`crate::cluster::Provider::openshift`]).
    pub openshift: bool,
}

/// How the suite starts the scenario tests: `cargo nextest run -p ecp-scenarios` in
/// the workspace that holds them.
#[derive(Debug, Clone)]
pub struct ScenarioRunner {
    /// The `cargo` to run (`$CARGO` under cargo).
    pub cargo: PathBuf,
    /// The workspace holding the `ecp-scenarios` crate.
    pub workspace: PathBuf,
    /// Its target directory (`CARGO_TARGET_DIR` or `target`); nextest's JUnit is not
    /// under it but under the workspace's `target/nextest` ([`super::nextest::junit_path`]).
    pub target_dir: PathBuf,
}

/// Why the options cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("--istio names no version")]
    NoVersion,
    #[error("--parallel 0: run at least one version at a time")]
    NoParallelism,
    #[error("unknown scenario `{name}`: the scenarios are {known}")]
    UnknownScenario { name: String, known: String },
    #[error("no scenario can run: {0}")]
    NoScenario(String),
    #[error(transparent)]
    Override(#[from] OverrideError),
}

/// The options of a run as given, before checking (the xtask's arguments map onto it).
#[derive(Debug, Clone)]
pub struct Requested {
    pub versions: Vec<String>,
    pub installer: Installer,
    pub remotes: usize,
    pub meshes: usize,
    pub network_mode: NetworkMode,
    pub gateway_tls: GatewayTls,
    pub hub: Option<String>,
    pub tag: Option<String>,
    /// Values files (their text read by the caller), revision, chart repository.
    pub overrides: Overrides,
    pub cni: bool,
    pub keep: bool,
    pub reuse: bool,
    pub parallel: usize,
    /// Scenario names; empty means every scenario the topology allows.
    pub scenarios: Vec<String>,
    pub report_dir: PathBuf,
    pub istioctl: Option<PathBuf>,
    pub helm: Option<PathBuf>,
}

impl Requested {
    /// `versions` with every other option as `cargo xtask e2e` has it by default.
    pub fn new(versions: Vec<String>) -> Self {
        Self {
            versions,
            installer: Installer::Istioctl,
            remotes: 1,
            meshes: 1,
            network_mode: NetworkMode::MultiNetwork,
            gateway_tls: GatewayTls::Passthrough,
            hub: None,
            tag: None,
            overrides: Overrides::default(),
            cni: false,
            keep: false,
            reuse: false,
            parallel: 1,
            scenarios: Vec::new(),
            report_dir: PathBuf::from("target/ecp-report"),
            istioctl: None,
            helm: None,
        }
    }
}

impl SuiteOptions {
    /// Checks what was requested: versions supported, topology possible, scenarios
    /// known and runnable. Notices (a minor newer than the suite knows) come back to be
    /// shown.
    pub fn new(r: Requested, runner: ScenarioRunner) -> Result<(Self, Vec<String>), OptionsError> {
        let mut versions = Vec::new();
        let mut notices = Vec::new();
        for v in &r.versions {
            let version = IstioVersion::parse_supported(v)?;
            notices.extend(version.notice());
            versions.push(version);
        }
        if versions.is_empty() {
            return Err(OptionsError::NoVersion);
        }
        if r.parallel == 0 {
            return Err(OptionsError::NoParallelism);
        }
        Topology::with_meshes(r.meshes, r.remotes, r.network_mode)?;
        // Refused before anything runs, naming the file and the key.
        r.overrides.check(r.installer)?;
        let (scenarios, not_run) = select_scenarios(&r.scenarios, r.remotes, r.meshes)?;
        if scenarios.is_empty() {
            let why: Vec<String> =
                not_run.iter().map(|n| format!("{} ({})", n.what, n.why)).collect();
            return Err(OptionsError::NoScenario(why.join(", ")));
        }
        let options = Self {
            versions,
            installer: r.installer,
            remotes: r.remotes,
            meshes: r.meshes,
            network_mode: r.network_mode,
            gateway_tls: r.gateway_tls,
            hub: r.hub,
            tag: r.tag,
            overrides: r.overrides,
            cni: r.cni,
            keep: r.keep,
            reuse: r.reuse,
            parallel: r.parallel,
            scenarios,
            not_run,
            report_dir: r.report_dir,
            istioctl: r.istioctl,
            helm: r.helm,
            runner,
            run_info: RunInfo::default(),
        };
        Ok((options, notices))
    }

    /// The plan options for `version` on the provider's clusters: planned for a
    /// placeholder address (the executor plans again for the gateway's observed
    /// address after step 1) unless the provider knows the address; the Sail operator
    /// installed by the plan only where the provider installs operators; the CNI where
    /// asked or on OpenShift.
    pub fn plan_options(&self, version: IstioVersion, facts: ProviderFacts) -> PlanOptions {
        PlanOptions {
            istio: version,
            installer: self.installer,
            remotes: self.remotes,
            network_mode: self.network_mode,
            gateway_tls: self.gateway_tls,
            external_addr: facts.external_addr.unwrap_or(PLACEHOLDER_EXTERNAL_ADDR),
            hub: self.hub.clone(),
            tag: self.tag.clone(),
            overrides: self.overrides.clone(),
            meshes: self.meshes,
            operator: facts.operator,
            cni: self.cni || facts.openshift,
        }
    }

    /// The overrides the report shows for `version`: the plan's
    /// ([`PlanOptions::overrides`]) and the istioctl binary given.
    pub fn overrides(&self, version: IstioVersion) -> Vec<(String, String)> {
        let mut list = self.plan_options(version, ProviderFacts::default()).overrides();
        if let Some(istioctl) = &self.istioctl {
            list.push(("istioctl".to_string(), istioctl.display().to_string()));
        }
        list
    }

    /// Every selected scenario as not run, for `why`, plus those never selected.
    pub fn not_run_all(&self, why: &str) -> Vec<NotRun> {
        self.scenarios
            .iter()
            .map(|sc| NotRun { what: sc.name.into(), why: why.into() })
            .chain(self.not_run.iter().cloned())
            .collect()
    }
}

/// The scenarios to run and those not run (with why).
pub fn select_scenarios(
    names: &[String],
    remotes: usize,
    meshes: usize,
) -> Result<(Vec<&'static Scenario>, Vec<NotRun>), OptionsError> {
    for name in names {
        if scenario(name).is_none() {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            return Err(OptionsError::UnknownScenario {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    let mut selected = Vec::new();
    let mut not_run = Vec::new();
    for s in SCENARIOS {
        if !names.is_empty() && !names.iter().any(|n| n == s.name) {
            not_run
                .push(NotRun { what: s.name.into(), why: "not selected with --scenario".into() });
        } else if remotes < s.min_remotes {
            not_run.push(NotRun {
                what: s.name.into(),
                why: format!("needs --remotes {} (this run has {remotes})", s.min_remotes),
            });
        } else if meshes < s.min_meshes {
            not_run.push(NotRun {
                what: s.name.into(),
                why: format!("needs --meshes {} (this run has {meshes})", s.min_meshes),
            });
        } else {
            selected.push(s);
        }
    }
    Ok((selected, not_run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::NEWEST;

    fn requested() -> Requested {
        Requested::new(vec![NEWEST.to_string()])
    }

    fn runner() -> ScenarioRunner {
        ScenarioRunner { cargo: "cargo".into(), workspace: ".".into(), target_dir: "target".into() }
    }

    fn check(r: Requested) -> Result<SuiteOptions, OptionsError> {
        SuiteOptions::new(r, runner()).map(|(o, _)| o)
    }

    #[test]
    fn one_remote_runs_every_scenario_but_multi_remote() {
        let o = check(requested()).unwrap();
        let names: Vec<_> = o.scenarios.iter().map(|sc| sc.name).collect();
        assert_eq!(
            names,
            [
                "control_plane_install",
                "sidecar_injection",
                "in_mesh_traffic",
                "ingress_traffic",
                "validation",
                "outage"
            ]
        );
        assert_eq!(
            o.not_run,
            [
                NotRun {
                    what: "multi_remote".into(),
                    why: "needs --remotes 2 (this run has 1)".into()
                },
                NotRun {
                    what: "multi_mesh".into(),
                    why: "needs --meshes 2 (this run has 1)".into()
                }
            ]
        );
    }

    #[test]
    fn selected_scenarios_keep_the_procedure_order() {
        let r = Requested {
            remotes: 2,
            scenarios: vec!["multi_remote".into(), "ingress_traffic".into()],
            ..requested()
        };
        let o = check(r).unwrap();
        let names: Vec<_> = o.scenarios.iter().map(|sc| sc.name).collect();
        assert_eq!(names, ["ingress_traffic", "multi_remote"]);
        assert_eq!(o.not_run.len(), SCENARIOS.len() - 2);
        assert!(o.not_run.iter().all(|n| n.why == "not selected with --scenario"));
    }

    #[test]
    fn bad_requests_are_refused_naming_what_is_wrong() {
        let err = |r: Requested| check(r).unwrap_err().to_string();
        let e = err(Requested { versions: vec!["1.21.0".into()], ..requested() });
        assert!(e.contains("1.22.0 and later"), "{e}");
        let e = err(Requested { scenarios: vec!["nope".into()], ..requested() });
        assert!(e.contains("unknown scenario `nope`") && e.contains("multi_remote"), "{e}");
        let e = err(Requested { remotes: 0, ..requested() });
        assert!(e.contains("between 1 and 8"), "{e}");
        let e = err(Requested { scenarios: vec!["multi_remote".into()], ..requested() });
        assert!(e.contains("needs --remotes 2"), "{e}");
        let e = err(Requested { parallel: 0, ..requested() });
        assert!(e.contains("--parallel 0"), "{e}");
        let e = err(Requested { versions: Vec::new(), ..requested() });
        assert!(e.contains("no version"), "{e}");
    }

    #[test]
    fn multi_mesh_runs_with_two_meshes_and_counts_are_checked() {
        let r = Requested { meshes: 2, scenarios: vec!["multi_mesh".into()], ..requested() };
        let o = check(r).unwrap();
        assert_eq!(o.scenarios.iter().map(|sc| sc.name).collect::<Vec<_>>(), ["multi_mesh"]);
        assert_eq!(o.plan_options(NEWEST, ProviderFacts::default()).meshes, 2);
        let e = check(Requested { meshes: 0, ..requested() }).unwrap_err().to_string();
        assert!(e.contains("--meshes must be between 1 and 8"), "{e}");
        let e = check(Requested { meshes: 3, remotes: 3, ..requested() }).unwrap_err().to_string();
        assert!(e.contains("at most 8"), "{e}");
    }

    #[test]
    fn a_newer_minor_is_run_with_a_notice() {
        let r = Requested { versions: vec!["1.99.0".into()], ..requested() };
        let (o, notices) = SuiteOptions::new(r, runner()).unwrap();
        assert_eq!(o.versions[0].to_string(), "1.99.0");
        assert_eq!(notices.len(), 1, "{notices:?}");
    }

    #[test]
    fn plans_use_the_placeholder_unless_the_address_is_known() {
        let o = check(requested()).unwrap();
        let p = o.plan_options(NEWEST, ProviderFacts::default());
        assert_eq!(p.external_addr, PLACEHOLDER_EXTERNAL_ADDR);
        let known = "10.1.2.3".parse().unwrap();
        let facts = ProviderFacts { external_addr: Some(known), ..Default::default() };
        assert_eq!(o.plan_options(NEWEST, facts).external_addr, known);
    }

    /// The Sail operator is installed by the plan only where the provider installs
    /// operators; the CNI is on where asked, and always on OpenShift.
    #[test]
    fn plans_follow_what_the_provider_says_about_operators_and_openshift() {
        let o = check(Requested { installer: Installer::Sail, ..requested() }).unwrap();
        let p = o.plan_options(NEWEST, ProviderFacts::default());
        assert_eq!((p.operator, p.cni), (OperatorSource::Helm, false));
        let existing =
            ProviderFacts { operator: OperatorSource::Preinstalled, ..Default::default() };
        assert_eq!(o.plan_options(NEWEST, existing).operator, OperatorSource::Preinstalled);
        let openshift = ProviderFacts { openshift: true, ..existing };
        assert!(o.plan_options(NEWEST, openshift).cni);
        let asked = check(Requested { installer: Installer::Sail, cni: true, ..requested() });
        assert!(asked.unwrap().plan_options(NEWEST, ProviderFacts::default()).cni);
    }
}
