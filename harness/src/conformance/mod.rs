//! The conformance report a reader can check: `report.json` beside each version's
//! `summary.md` and `junit.xml`, in the versioned schema [`SCHEMA`] (every field
//! is described in docs/report.md), the [`profiles`] it claims, what was observed on
//! the clusters ([`observe`]), and [`verify`], which checks a report directory.

pub mod observe;
pub mod profiles;
pub mod verify;

pub use observe::{ObservedCluster, ObservedNode, RanImage};
pub use profiles::{Profile, ProfileResult};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::install::Installer;
use crate::outage::OutageFigures;
use crate::report::{ScenarioStatus, VersionReport};
use crate::version::IstioVersion;

/// The schema of `report.json`; [`verify`] knows only this one.
pub const SCHEMA: &str = "ecp-conformance-report/v1";
/// The report's file name in each version's directory.
pub const REPORT_JSON: &str = "report.json";

#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("--implementation {}: {reason}", path.display())]
    Implementation { path: PathBuf, reason: String },
}

/// Who certifies: the distribution under test (`--implementation FILE`, YAML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Implementation {
    pub organization: String,
    pub product: String,
    pub version: String,
    pub url: String,
    pub contact: String,
}

impl Implementation {
    /// Reads and checks the file: every field present and not empty.
    pub fn read(path: &Path) -> Result<Self, ConformanceError> {
        let fail = |reason: String| ConformanceError::Implementation { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let i: Self = serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for (key, value) in [
            ("organization", &i.organization),
            ("product", &i.product),
            ("version", &i.version),
            ("url", &i.url),
            ("contact", &i.contact),
        ] {
            if value.trim().is_empty() {
                return Err(fail(format!("`{key}` is empty")));
            }
        }
        Ok(i)
    }
}

/// This suite's build: the crate version and the git revision of the checkout it
/// ran from (`unknown` outside a git checkout; `dirty` with uncommitted changes to
/// tracked files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteBuild {
    pub version: String,
    pub revision: String,
    pub dirty: bool,
}

impl Default for SuiteBuild {
    fn default() -> Self {
        Self { version: env!("CARGO_PKG_VERSION").into(), revision: "unknown".into(), dirty: false }
    }
}

/// How the run was made: what `cargo xtask e2e` knows and the library does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// The exact command line (`cargo xtask e2e --istio 1.30.3 ...`).
    pub command: Vec<String>,
    pub suite: SuiteBuild,
    /// `None`: no `--implementation` given (upstream Istio's releases, unless the
    /// hub, tag or programs say otherwise).
    pub implementation: Option<Implementation>,
}

/// A scenario test's result in `report.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestResult {
    Passed,
    /// Passed on a retry.
    Flaky,
    Failed,
    NotRun,
}

impl TestResult {
    pub fn outcome(self) -> profiles::Outcome {
        match self {
            Self::Passed | Self::Flaky => profiles::Outcome::Passed,
            Self::Failed => profiles::Outcome::Failed,
            Self::NotRun => profiles::Outcome::NotRun,
        }
    }
}

/// One distribution override, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideEntry {
    pub name: String,
    pub value: String,
}

/// One install step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEntry {
    pub number: u8,
    pub id: String,
    pub title: String,
    pub cluster: String,
    pub passed: bool,
    pub duration_seconds: f64,
    pub reason: Option<String>,
}

/// One scenario test (`<scenario>::<test>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioEntry {
    pub name: String,
    /// The profile of its scenario; `None` for a test of no known scenario.
    pub profile: Option<Profile>,
    pub result: TestResult,
    pub duration_seconds: f64,
    /// Failed attempts before a flaky pass.
    pub failed_attempts: usize,
    /// Why it failed or did not run.
    pub reason: Option<String>,
}

/// Something not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRunEntry {
    pub what: String,
    pub why: String,
}

/// The outage figures (docs/report.md), as the outage scenario wrote them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outages {
    pub figures: Vec<OutageFigures>,
    pub errors: Vec<String>,
}

/// The SHA-256 of the files written beside `report.json`, so a later edit of either
/// shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigests {
    pub summary_md: String,
    pub junit_xml: String,
}

/// `report.json`: one Istio version's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformanceReport {
    pub schema: String,
    pub implementation: Option<Implementation>,
    pub suite: SuiteBuild,
    pub command: Vec<String>,
    pub istio: IstioVersion,
    pub installer: Installer,
    /// The plan's options as the install used them (`PlanOptions`, whole).
    pub plan_options: serde_json::Value,
    /// The distribution's overrides (hub, tag, revision, chart repository, values
    /// files), as the summary lists them.
    pub overrides: Vec<OverrideEntry>,
    /// Where the clusters came from (kind and its node image, control-plane-only,
    /// existing).
    pub platform: String,
    pub clusters: Vec<ObservedCluster>,
    pub images: Vec<RanImage>,
    pub notices: Vec<String>,
    pub setup_error: Option<String>,
    pub steps: Vec<StepEntry>,
    pub scenarios: Vec<ScenarioEntry>,
    pub not_run: Vec<NotRunEntry>,
    pub outages: Outages,
    pub profiles: Vec<ProfileResult>,
    pub passed: bool,
    pub duration_seconds: f64,
    pub files: FileDigests,
}

/// The hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ConformanceReport {
    /// The report of `r`, whose summary and JUnit texts are `summary` and `junit`.
    pub fn of(r: &VersionReport, summary: &str, junit: &str) -> Self {
        let profiles = profiles::judge_all(&facts(r));
        let scenarios = r.scenarios.iter().map(scenario_entry).collect();
        Self {
            schema: SCHEMA.into(),
            implementation: r.run.implementation.clone(),
            suite: r.run.suite.clone(),
            command: r.run.command.clone(),
            istio: r.istio,
            installer: r.installer,
            plan_options: r
                .plan_options
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok())
                .unwrap_or_default(),
            overrides: r
                .overrides
                .iter()
                .map(|(name, value)| OverrideEntry { name: name.clone(), value: value.clone() })
                .collect(),
            platform: r.platform.clone(),
            clusters: r.clusters.clone(),
            images: r.images.clone(),
            notices: r.notices.clone(),
            setup_error: r.setup_error.clone(),
            steps: r
                .steps
                .iter()
                .map(|s| StepEntry {
                    number: s.number,
                    id: s.id.clone(),
                    title: s.title.clone(),
                    cluster: s.cluster.clone(),
                    passed: s.error.is_none(),
                    duration_seconds: s.elapsed.as_secs_f64(),
                    reason: s.error.clone(),
                })
                .collect(),
            scenarios,
            not_run: r
                .not_run
                .iter()
                .map(|n| NotRunEntry { what: n.what.clone(), why: n.why.clone() })
                .collect(),
            outages: Outages {
                figures: r.outages.figures.clone(),
                errors: r.outages.errors.clone(),
            },
            profiles,
            passed: r.passed(),
            duration_seconds: r.elapsed.as_secs_f64(),
            files: FileDigests {
                summary_md: sha256(summary.as_bytes()),
                junit_xml: sha256(junit.as_bytes()),
            },
        }
    }

    /// The profiles this report claims passed.
    pub fn claimed(&self) -> Vec<Profile> {
        self.profiles.iter().filter(|p| p.passed).map(|p| p.profile).collect()
    }
}

/// The facts profiles are judged on, from a version's report.
fn facts(r: &VersionReport) -> profiles::RunFacts {
    let tests = r.scenarios.iter().map(|s| (s.name.clone(), result(&s.status).outcome())).collect();
    let (installer, gateway_tls) = match &r.plan_options {
        Some(o) => (o.installer, o.gateway_tls),
        None => (r.installer, Default::default()),
    };
    profiles::RunFacts {
        installer,
        gateway_tls,
        install_passed: r.setup_error.is_none() && r.steps.iter().all(|s| s.error.is_none()),
        tests,
    }
}

fn result(status: &ScenarioStatus) -> TestResult {
    match status {
        ScenarioStatus::Passed => TestResult::Passed,
        ScenarioStatus::Flaky { .. } => TestResult::Flaky,
        ScenarioStatus::Failed { .. } => TestResult::Failed,
        ScenarioStatus::NotRun { .. } => TestResult::NotRun,
    }
}

fn scenario_entry(s: &crate::report::ScenarioResult) -> ScenarioEntry {
    let scenario = s.name.split("::").next().unwrap_or_default();
    let (failed_attempts, reason) = match &s.status {
        ScenarioStatus::Passed => (0, None),
        ScenarioStatus::Flaky { failed_attempts, message } => (*failed_attempts, message.clone()),
        ScenarioStatus::Failed { message } => (0, Some(message.clone())),
        ScenarioStatus::NotRun { reason } => (0, Some(reason.clone())),
    };
    ScenarioEntry {
        name: s.name.clone(),
        profile: crate::suite::scenarios::scenario(scenario).map(|sc| sc.profile),
        result: result(&s.status),
        duration_seconds: s.duration.as_secs_f64(),
        failed_attempts,
        reason,
    }
}
