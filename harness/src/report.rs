//! The conformance report of one Istio version: a JUnit file (install steps and
//! scenarios as test cases) and a Markdown summary (version, installer, topology,
//! per scenario passed / flaky / failed / not run with durations, step timings, and
//! what was not run and why). Scenario results come from nextest's JUnit output; the
//! outage figures from the files the `outage` scenario writes ([`OutageReport`]).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::conformance::{ConformanceReport, ObservedCluster, REPORT_JSON, RanImage, RunInfo};
use crate::execute::StepRecord;
use crate::install::{Installer, PlanOptions};
use crate::outage::{self, OutageFigures};
use crate::topology::Topology;
use crate::version::IstioVersion;

/// How a scenario (one test of the `ecp-scenarios` crate) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioStatus {
    Passed,
    /// Passed after `failed_attempts` failed attempts.
    Flaky {
        failed_attempts: usize,
        message: Option<String>,
    },
    Failed {
        message: String,
    },
    NotRun {
        reason: String,
    },
}

/// One scenario's result: `name` is `<scenario file>::<test>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioResult {
    pub name: String,
    pub status: ScenarioStatus,
    pub duration: Duration,
}

/// Something the run did not do, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRun {
    pub what: String,
    pub why: String,
}

/// The outage figures of one version, read from the figures directory after the
/// scenarios ran. A variant without figures (the scenario was not selected, or failed
/// before writing them) is reported as "not measured", never as zeros.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutageReport {
    /// The figures found, by variant name.
    pub figures: Vec<OutageFigures>,
    /// Each figures file that could not be read, naming the file.
    pub errors: Vec<String>,
}

impl OutageReport {
    /// Reads every `outage-*.json` of `dir`; a missing `dir` means nothing measured.
    pub fn read(dir: &Path) -> Self {
        let (figures, errors) = OutageFigures::read_each(dir);
        Self { figures, errors: errors.iter().map(ToString::to_string).collect() }
    }

    /// The known variants in their order, then any other variant found.
    fn variants(&self) -> Vec<&str> {
        let mut names: Vec<&str> = outage::VARIANTS.to_vec();
        for f in &self.figures {
            if !names.contains(&f.variant.as_str()) {
                names.push(&f.variant);
            }
        }
        names
    }

    fn of(&self, variant: &str) -> Option<&OutageFigures> {
        self.figures.iter().find(|f| f.variant == variant)
    }
}

const NOT_MEASURED: &str = "not measured";

fn recovery_value(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format!("{s:.1}"),
        None => "did not recover within the timeout".into(),
    }
}

/// Everything reported for one Istio version.
#[derive(Debug, Clone)]
pub struct VersionReport {
    pub istio: IstioVersion,
    pub installer: Installer,
    /// The helm binary's version (`helm version --short`), for the Helm backend.
    pub helm_version: Option<String>,
    /// What a reader must know about how the run was made, e.g. that the Istio
    /// version is newer than the suite knows and which rules were used.
    pub notices: Vec<String>,
    /// The distribution's overrides as (name, value): hub, tag, revision, chart
    /// repository, values files with their keys, istioctl
    /// ([`crate::install::PlanOptions::overrides`]).
    pub overrides: Vec<(String, String)>,
    pub topology: Topology,
    /// `EXTERNAL_ISTIOD_ADDR` as observed, once known.
    pub external_addr: Option<IpAddr>,
    pub steps: Vec<StepRecord>,
    /// Why the run stopped before the scenarios (preflight, cluster start, install).
    pub setup_error: Option<String>,
    pub scenarios: Vec<ScenarioResult>,
    /// The figures of the outage scenario's variants.
    pub outages: OutageReport,
    pub not_run: Vec<NotRun>,
    /// The diagnostics bundle, relative to the report directory, if one was written.
    pub diagnostics: Option<PathBuf>,
    pub elapsed: Duration,
    /// The command line, the suite's build and the implementation under test.
    pub run: RunInfo,
    /// The plan's options as the install used them, once planned.
    pub plan_options: Option<PlanOptions>,
    /// Where the clusters came from ([`crate::cluster::Provider::platform`]).
    pub platform: String,
    /// Each cluster's Kubernetes version and nodes, as observed.
    pub clusters: Vec<ObservedCluster>,
    /// The images that ran in the plan's namespaces, as the pods report them.
    pub images: Vec<RanImage>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading nextest's JUnit report {}: {reason}", path.display())]
    ReadJunit { path: PathBuf, reason: String },
    #[error("writing the report file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serializing the JUnit report: {0}")]
    Serialize(String),
    #[error("serializing {REPORT_JSON}: {0}")]
    Json(String),
}

/// The files written for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub junit: PathBuf,
    pub markdown: PathBuf,
    pub json: PathBuf,
}

/// Reads nextest's JUnit output into scenario results. nextest names a suite after
/// the test binary (`ecp-scenarios::<file>`) and a case after the test function;
/// flaky tests are successes with `flakyFailure` reruns.
pub fn scenarios_from_junit(xml: &str) -> Result<Vec<ScenarioResult>, String> {
    let report = Report::deserialize_from_str(xml).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for suite in &report.test_suites {
        let scenario = suite.name.as_str().rsplit("::").next().unwrap_or(suite.name.as_str());
        for case in &suite.test_cases {
            let name = format!("{scenario}::{}", case.name.as_str());
            let message = |m: &Option<quick_junit::XmlString>,
                           d: &Option<quick_junit::XmlString>| {
                m.as_ref().or(d.as_ref()).map(|s| first_lines(s.as_str(), 20)).unwrap_or_default()
            };
            let status = match &case.status {
                TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
                    ScenarioStatus::Passed
                }
                TestCaseStatus::Success { flaky_runs } => ScenarioStatus::Flaky {
                    failed_attempts: flaky_runs.len(),
                    message: flaky_runs
                        .last()
                        .map(|r| message(&r.message, &r.description))
                        .filter(|m| !m.is_empty()),
                },
                TestCaseStatus::NonSuccess { message: m, description, .. } => {
                    ScenarioStatus::Failed { message: message(m, description) }
                }
                TestCaseStatus::Skipped { message: m, .. } => ScenarioStatus::NotRun {
                    reason: m.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(),
                },
            };
            results.push(ScenarioResult { name, status, duration: case.time.unwrap_or_default() });
        }
    }
    Ok(results)
}

/// Reads nextest's JUnit file.
pub fn read_junit(path: &Path) -> Result<Vec<ScenarioResult>, ReportError> {
    let xml = std::fs::read_to_string(path)
        .map_err(|e| ReportError::ReadJunit { path: path.to_path_buf(), reason: e.to_string() })?;
    scenarios_from_junit(&xml)
        .map_err(|reason| ReportError::ReadJunit { path: path.to_path_buf(), reason })
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

impl VersionReport {
    /// A report of nothing done yet for `istio` with `installer` on `topology`; its
    /// notices are the version's ([`IstioVersion::notice`]).
    pub fn new(istio: IstioVersion, installer: Installer, topology: Topology) -> Self {
        Self {
            istio,
            installer,
            helm_version: None,
            notices: istio.notice().into_iter().collect(),
            overrides: Vec::new(),
            topology,
            external_addr: None,
            steps: Vec::new(),
            setup_error: None,
            scenarios: Vec::new(),
            outages: OutageReport::default(),
            not_run: Vec::new(),
            diagnostics: None,
            elapsed: Duration::ZERO,
            run: RunInfo::default(),
            plan_options: None,
            platform: String::new(),
            clusters: Vec::new(),
            images: Vec::new(),
        }
    }

    /// Every step succeeded, at least one scenario ran, none failed, and every outage
    /// figures file was readable (the report would otherwise lose what was measured).
    pub fn passed(&self) -> bool {
        self.setup_error.is_none()
            && self.steps.iter().all(|s| s.error.is_none())
            && self.scenarios.iter().any(|s| !matches!(s.status, ScenarioStatus::NotRun { .. }))
            && !self.scenarios.iter().any(|s| matches!(s.status, ScenarioStatus::Failed { .. }))
            && self.outages.errors.is_empty()
    }

    /// `istio-1.30.3-istioctl`: this version's directory in the report directory.
    pub fn dir_name(&self) -> String {
        format!("istio-{}-{}", self.istio, self.installer.name())
    }

    /// The JUnit report: suite `install` (one case per step), suite `scenarios`.
    pub fn junit(&self) -> Report {
        let mut report = Report::new(format!("ecp conformance {}", self.dir_name()));
        report.set_time(self.elapsed);

        let mut install = TestSuite::new(format!("{}::install", self.dir_name()));
        install.add_property(("istio", self.istio.to_string().as_str()));
        install.add_property(("installer", self.installer.name()));
        if let Some(helm) = &self.helm_version {
            install.add_property(("helm", helm.as_str()));
        }
        for notice in &self.notices {
            install.add_property(("notice", notice.as_str()));
        }
        for (name, value) in &self.overrides {
            install.add_property((format!("override.{name}"), value.clone()));
        }
        for step in &self.steps {
            let status = match &step.error {
                None => TestCaseStatus::success(),
                Some(e) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(first_lines(e, 1)).set_description(e.as_str());
                    s
                }
            };
            let mut case = TestCase::new(
                format!("step {} {} on {}", step.number, step.id, step.cluster),
                status,
            );
            case.set_classname(format!("{}::install", self.dir_name())).set_time(step.elapsed);
            install.add_test_case(case);
        }
        if let Some(error) = &self.setup_error {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(first_lines(error, 1)).set_description(error.as_str());
            install.add_test_case(TestCase::new("setup", s));
        }
        report.add_test_suite(install);

        let mut scenarios = TestSuite::new(format!("{}::scenarios", self.dir_name()));
        for scenario in &self.scenarios {
            let status = match &scenario.status {
                ScenarioStatus::Passed => TestCaseStatus::success(),
                ScenarioStatus::Flaky { failed_attempts, message } => {
                    let mut s = TestCaseStatus::success();
                    for _ in 0..*failed_attempts {
                        let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                        if let Some(m) = message {
                            rerun.set_message(first_lines(m, 1));
                        }
                        s.add_rerun(rerun);
                    }
                    s
                }
                ScenarioStatus::Failed { message } => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(first_lines(message, 1)).set_description(message.as_str());
                    s
                }
                ScenarioStatus::NotRun { reason } => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(reason.as_str());
                    s
                }
            };
            let mut case = TestCase::new(scenario.name.as_str(), status);
            case.set_classname(format!("{}::scenarios", self.dir_name()))
                .set_time(scenario.duration);
            scenarios.add_test_case(case);
        }
        for item in &self.not_run {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("not run: {}", item.why));
            scenarios.add_test_case(TestCase::new(item.what.as_str(), s));
        }
        self.outage_junit(&mut scenarios);
        report.add_test_suite(scenarios);
        report
    }

    /// The outage figures as properties of the scenarios suite
    /// (`outage.<variant>.sent.<stream>`, `...failed.<stream>`, `...probe.<probe>`,
    /// `...recovery_seconds.<what>`), `outage.<variant>` = `not measured` for a variant
    /// without figures, and an error case per unreadable figures file.
    fn outage_junit(&self, suite: &mut TestSuite) {
        for variant in self.outages.variants() {
            let key = format!("outage.{variant}");
            let Some(f) = self.outages.of(variant) else {
                suite.add_property((key.as_str(), NOT_MEASURED));
                continue;
            };
            suite.add_property((key.as_str(), "measured"));
            for s in &f.streams {
                suite.add_property((format!("{key}.sent.{}", s.stream), s.sent.to_string()));
                suite.add_property((format!("{key}.failed.{}", s.stream), s.failed.to_string()));
            }
            for p in &f.probes {
                suite.add_property((format!("{key}.probe.{}", p.probe), p.outcome.clone()));
            }
            for r in &f.recoveries {
                let name = format!("{key}.recovery_seconds.{}", r.what);
                suite.add_property((name, recovery_value(r.seconds)));
            }
        }
        for error in &self.outages.errors {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(error.as_str());
            suite.add_test_case(TestCase::new("outage figures", s));
        }
    }

    /// Why the outage variants were not measured, if the run knows: not run, or an
    /// outage scenario that failed (before writing its figures).
    fn not_measured(&self) -> String {
        let failed = self.scenarios.iter().any(|s| {
            s.name.starts_with("outage::") && matches!(s.status, ScenarioStatus::Failed { .. })
        });
        match self.not_run.iter().find(|n| n.what == "outage") {
            Some(n) => format!("{NOT_MEASURED} (outage not run: {})", one_line(&n.why)),
            None if failed => format!("{NOT_MEASURED} (an outage scenario failed: see Scenarios)"),
            None => NOT_MEASURED.to_string(),
        }
    }

    fn outage_markdown(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Outage figures\n");
        let _ = writeln!(
            md,
            "Requests sent and failed during each outage, the admission outcome of each \
             probe, and how long after the restore each recovery took (measured, not \
             asserted).\n"
        );
        for error in &self.outages.errors {
            let _ = writeln!(md, "- Unreadable figures: {}", one_line(error));
        }
        if !self.outages.errors.is_empty() {
            md.push('\n');
        }
        let _ = writeln!(md, "| outage | figure | value |");
        let _ = writeln!(md, "|---|---|---|");
        for variant in self.outages.variants() {
            let Some(f) = self.outages.of(variant) else {
                let _ = writeln!(md, "| {variant} | - | {} |", cell(&self.not_measured()));
                continue;
            };
            let mut rows = Vec::new();
            for s in &f.streams {
                let value = format!("{} sent, {} failed", s.sent, s.failed);
                rows.push((format!("requests {}", s.stream), value));
            }
            for p in &f.probes {
                rows.push((format!("probe: {}", p.probe), p.outcome.clone()));
            }
            for r in &f.recoveries {
                let value = match r.seconds {
                    Some(s) => format!("{s:.1} s after the restore"),
                    None => recovery_value(None),
                };
                rows.push((format!("recovery: {}", r.what), value));
            }
            if rows.is_empty() {
                rows.push(("-".into(), "no figure recorded".into()));
            }
            for (figure, value) in rows {
                let _ = writeln!(md, "| {variant} | {} | {} |", cell(&figure), cell(&value));
            }
        }
    }

    /// The Markdown summary.
    /// The topology table of the clusters `keep` selects.
    fn clusters_markdown(
        &self,
        md: &mut String,
        keep: impl Fn(&crate::topology::ClusterSpec) -> bool,
    ) {
        let _ = writeln!(md, "| cluster | istiod's name | role | network | pods | services |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for c in self.topology.clusters.iter().filter(|c| keep(c)) {
            let role = serde_json::to_value(c.role)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {role} | {} | {} | {} |",
                c.name,
                c.cluster_id,
                c.network.as_deref().unwrap_or("-"),
                c.pod_subnet,
                c.service_subnet
            );
        }
    }

    /// Several meshes: the external cluster, then one section per mesh (its ports on
    /// the control-plane gateway, its istiod's namespace, its clusters).
    fn meshes_markdown(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Topology\n");
        let external = crate::topology::Role::External;
        self.clusters_markdown(md, |c| c.role == external);
        for mesh in self.topology.mesh_list() {
            let _ = writeln!(md, "\n## Mesh {}\n", mesh.id());
            let _ = writeln!(
                md,
                "- istiod: namespace {} of the external cluster\n- Gateway ports: {} (xDS and CA), {} (webhooks)\n",
                mesh.namespace(),
                mesh.xds_port(),
                mesh.webhook_port()
            );
            self.clusters_markdown(md, |c| c.role != external && c.mesh == mesh);
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        let _ = writeln!(md, "# Istio {} with {}: {verdict}\n", self.istio, self.installer.name());
        self.reproduce_markdown(&mut md);
        let _ = writeln!(md, "\n## Run\n");
        let _ = writeln!(md, "- Istio version: {}", self.istio);
        let _ = writeln!(md, "- Installer: {}", self.installer.name());
        if let Some(helm) = &self.helm_version {
            let _ = writeln!(md, "- Helm: {helm}");
        }
        for notice in &self.notices {
            let _ = writeln!(md, "- Note: {notice}");
        }
        for (name, value) in &self.overrides {
            let _ = writeln!(md, "- Override {name}: {}", one_line(value));
        }
        let _ = writeln!(
            md,
            "- External control plane address: {}",
            self.external_addr.map(|a| a.to_string()).unwrap_or_else(|| "not known".into())
        );
        let _ = writeln!(md, "- Total time: {}", seconds(self.elapsed));
        if let Some(error) = &self.setup_error {
            let _ = writeln!(md, "- Stopped before the scenarios: {}", one_line(error));
        }

        if self.topology.meshes > 1 {
            self.meshes_markdown(&mut md);
        } else {
            let _ = writeln!(md, "\n## Topology\n");
            self.clusters_markdown(&mut md, |_| true);
        }

        let _ = writeln!(md, "\n## Scenarios\n");
        if self.scenarios.is_empty() {
            let _ = writeln!(md, "No scenario ran.");
        } else {
            let _ = writeln!(md, "| scenario | result | time |");
            let _ = writeln!(md, "|---|---|---|");
            for s in &self.scenarios {
                let result = match &s.status {
                    ScenarioStatus::Passed => "passed".to_string(),
                    ScenarioStatus::Flaky { failed_attempts, .. } => {
                        format!("FLAKY (passed after {failed_attempts} failed attempt(s))")
                    }
                    ScenarioStatus::Failed { message } => format!("FAILED: {}", one_line(message)),
                    ScenarioStatus::NotRun { reason } => format!("not run: {}", one_line(reason)),
                };
                let _ =
                    writeln!(md, "| {} | {} | {} |", s.name, cell(&result), seconds(s.duration));
            }
        }

        self.outage_markdown(&mut md);

        let _ = writeln!(md, "\n## Install steps\n");
        if self.steps.is_empty() {
            let _ = writeln!(md, "No step ran.");
        } else {
            let _ = writeln!(md, "| step | cluster | what | result | time |");
            let _ = writeln!(md, "|---|---|---|---|---|");
            for s in &self.steps {
                let result = match &s.error {
                    None => "ok".to_string(),
                    Some(e) => format!("FAILED: {}", one_line(e)),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    s.number,
                    s.cluster,
                    cell(&s.title),
                    cell(&result),
                    seconds(s.elapsed)
                );
            }
        }

        let _ = writeln!(md, "\n## Not run\n");
        if self.not_run.is_empty() {
            let _ = writeln!(md, "Everything planned ran.");
        } else {
            for item in &self.not_run {
                let _ = writeln!(md, "- {}: {}", item.what, one_line(&item.why));
            }
        }
        if let Some(dir) = &self.diagnostics {
            let _ = writeln!(
                md,
                "\n## Diagnostics\n\nCollected from every cluster in `{}`.",
                dir.display()
            );
        }
        md
    }

    /// "Reproduce": the command and every version a reader needs to run it again.
    fn reproduce_markdown(&self, md: &mut String) {
        let _ = writeln!(md, "## Reproduce\n");
        if self.run.command.is_empty() {
            let _ = writeln!(md, "Command line: not recorded.\n");
        } else {
            let _ = writeln!(md, "```sh\n{}\n```\n", shell_words(&self.run.command));
        }
        let suite = &self.run.suite;
        let dirty = if suite.dirty { ", with uncommitted changes" } else { "" };
        let _ = writeln!(
            md,
            "- Suite: ecp-harness {} at git revision {}{dirty}",
            suite.version, suite.revision
        );
        let (hub, tag) = match &self.plan_options {
            Some(o) => (o.hub.clone(), o.tag.clone()),
            None => (None, None),
        };
        let _ = writeln!(
            md,
            "- Istio: {} with {} (hub {}, tag {})",
            self.istio,
            self.installer.name(),
            hub.as_deref().unwrap_or(self.istio.default_hub()),
            tag.unwrap_or_else(|| self.istio.to_string())
        );
        let platform = if self.platform.is_empty() { "not known" } else { &self.platform };
        let _ = writeln!(md, "- Clusters from: {platform}");
        for c in &self.clusters {
            let version = c.server_version.as_deref().unwrap_or("not observed");
            let nodes: Vec<String> = c
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} ({}, {})",
                        n.os_image, n.kubelet_version, n.container_runtime_version
                    )
                })
                .collect();
            let nodes = if nodes.is_empty() { "no nodes".to_string() } else { nodes.join("; ") };
            let _ = writeln!(md, "- Kubernetes on {}: {version}, {nodes}", c.name);
        }
        let implementation = match &self.run.implementation {
            Some(i) => format!(
                "{} {} {} ({}, contact {})",
                i.organization, i.product, i.version, i.url, i.contact
            ),
            None => "not given (no --implementation: upstream Istio)".into(),
        };
        let _ = writeln!(md, "- Implementation: {implementation}");
        let facts = ConformanceReport::of(self, "", "").profiles;
        let profiles: Vec<String> = facts
            .iter()
            .map(|p| {
                let verdict = match (p.run, p.passed) {
                    (_, true) => "passed",
                    (true, false) => "run, not passed",
                    (false, false) => "not run",
                };
                format!("{} {verdict}", p.profile)
            })
            .collect();
        let _ = writeln!(md, "- Profiles: {}", profiles.join("; "));
        let _ = writeln!(
            md,
            "- Check this report: `cargo xtask report verify <this directory>` ({REPORT_JSON})"
        );
    }

    /// Writes `<dir>/<dir_name>/junit.xml`, `summary.md`, then `report.json` with
    /// their digests.
    pub fn write(&self, dir: &Path) -> Result<Written, ReportError> {
        let out = dir.join(self.dir_name());
        std::fs::create_dir_all(&out)
            .map_err(|source| ReportError::Write { path: out.clone(), source })?;
        let junit = out.join("junit.xml");
        let xml = self.junit().to_string().map_err(|e| ReportError::Serialize(e.to_string()))?;
        std::fs::write(&junit, &xml)
            .map_err(|source| ReportError::Write { path: junit.clone(), source })?;
        let markdown = out.join("summary.md");
        let summary = self.markdown();
        std::fs::write(&markdown, &summary)
            .map_err(|source| ReportError::Write { path: markdown.clone(), source })?;
        let json = out.join(REPORT_JSON);
        let report = ConformanceReport::of(self, &summary, &xml);
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| ReportError::Json(e.to_string()))?;
        std::fs::write(&json, text + "\n")
            .map_err(|source| ReportError::Write { path: json.clone(), source })?;
        Ok(Written { junit, markdown, json })
    }
}

/// `<dir>/summary.md`: one line per version, linking each version's summary.
pub fn write_index(reports: &[VersionReport], dir: &Path) -> Result<PathBuf, ReportError> {
    let mut md = String::from("# External control plane conformance\n\n");
    md.push_str(
        "| Istio | installer | result | scenarios passed | time |\n|---|---|---|---|---|\n",
    );
    for r in reports {
        let ran = r.scenarios.iter().filter(|s| !matches!(s.status, ScenarioStatus::NotRun { .. }));
        let passed = ran.clone().filter(|s| !matches!(s.status, ScenarioStatus::Failed { .. }));
        let _ = writeln!(
            md,
            "| [{}]({}/summary.md) | {} | {} | {}/{} | {} |",
            r.istio,
            r.dir_name(),
            r.installer.name(),
            if r.passed() { "passed" } else { "FAILED" },
            passed.count(),
            ran.count(),
            seconds(r.elapsed)
        );
    }
    std::fs::create_dir_all(dir)
        .map_err(|source| ReportError::Write { path: dir.into(), source })?;
    let path = dir.join("summary.md");
    std::fs::write(&path, md)
        .map_err(|source| ReportError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// `args` as one shell command line, quoting what the shell would split or expand.
pub fn shell_words(args: &[String]) -> String {
    let plain = |a: &str| {
        !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    };
    args.iter()
        .map(|a| if plain(a) { a.clone() } else { format!("'{}'", a.replace('\'', "'\\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if text.lines().nth(1).is_some() { format!("{line} ...") } else { line.to_string() }
}

/// A Markdown table cell: no pipes, no newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::NetworkMode;

    fn step(number: u8, id: &str, cluster: &str, secs: u64, error: Option<&str>) -> StepRecord {
        StepRecord {
            number,
            id: id.into(),
            title: format!("the {id} step"),
            cluster: cluster.into(),
            elapsed: Duration::from_secs(secs),
            error: error.map(String::from),
        }
    }

    fn report() -> VersionReport {
        VersionReport {
            istio: IstioVersion::new(1, 30, 3),
            installer: Installer::Helm,
            helm_version: Some("v3.18.6".into()),
            notices: Vec::new(),
            overrides: Vec::new(),
            topology: Topology::new(2, NetworkMode::MultiNetwork).unwrap(),
            external_addr: Some("172.18.6.66".parse().unwrap()),
            steps: vec![
                step(1, "install-external-gateway", "external", 42, None),
                step(2, "install-remote-profile", "config", 17, None),
            ],
            setup_error: None,
            scenarios: vec![
                ScenarioResult {
                    name: "control_plane_install::webhooks_point_at_the_external_istiod".into(),
                    status: ScenarioStatus::Passed,
                    duration: Duration::from_millis(850),
                },
                ScenarioResult {
                    name: "in_mesh_traffic::sleep_reaches_helloworld_v1".into(),
                    status: ScenarioStatus::Flaky {
                        failed_attempts: 1,
                        message: Some("upstream connect error".into()),
                    },
                    duration: Duration::from_millis(3200),
                },
                ScenarioResult {
                    name: "multi_remote::both_versions_answer".into(),
                    status: ScenarioStatus::Failed {
                        message: "cluster config: ingress answers v1 and v2: only v1 | seen\nmore"
                            .into(),
                    },
                    duration: Duration::from_secs(120),
                },
            ],
            outages: OutageReport::default(),
            not_run: vec![NotRun {
                what: "outage scenarios".into(),
                why: "not selected with --scenario".into(),
            }],
            diagnostics: Some("istio-1.30.3-helm/diagnostics".into()),
            elapsed: Duration::from_secs(600),
            run: RunInfo {
                command: ["cargo", "xtask", "e2e", "--installer", "helm", "--hub", "my hub"]
                    .map(String::from)
                    .to_vec(),
                suite: crate::conformance::SuiteBuild {
                    version: "0.1.0".into(),
                    revision: "0123abcd".into(),
                    dirty: true,
                },
                implementation: None,
            },
            plan_options: Some(PlanOptions::new(IstioVersion::new(1, 30, 3), Installer::Helm, 2)),
            platform: "kind, node image kindest/node:v1.34.0".into(),
            clusters: vec![ObservedCluster {
                name: "config".into(),
                server_version: Some("v1.34.0".into()),
                server_platform: Some("linux/amd64".into()),
                nodes: vec![crate::conformance::ObservedNode {
                    name: "config-control-plane".into(),
                    os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                    kubelet_version: "v1.34.0".into(),
                    container_runtime_version: "containerd://2.1.3".into(),
                }],
                error: None,
            }],
            ..VersionReport::new(
                IstioVersion::new(1, 30, 3),
                Installer::Helm,
                Topology::new(2, NetworkMode::MultiNetwork).unwrap(),
            )
        }
    }

    #[test]
    fn several_meshes_get_a_section_each() {
        let mut r = report();
        r.topology = Topology::with_meshes(2, 1, NetworkMode::MultiNetwork).unwrap();
        let md = r.markdown();
        for text in [
            "## Mesh mesh1",
            "## Mesh mesh2",
            "namespace external-istiod-mesh2",
            "16022 (xDS and CA), 16027 (webhooks)",
            "| mesh2-config | mesh2-remote1 | config |",
        ] {
            assert!(md.contains(text), "{text} missing:\n{md}");
        }
        let mesh2 = &md[md.find("## Mesh mesh2").unwrap()..];
        assert!(!mesh2.contains("| config | remote1 |"), "mesh1's cluster in mesh2's section");
        assert!(!report().markdown().contains("## Mesh"), "one mesh: the topology table as before");
    }

    #[test]
    fn markdown_summary() {
        insta::assert_snapshot!(report().markdown());
    }

    /// The istiod outage measured, the gateway outage missing (its test failed before
    /// writing), the external-cluster outage with a recovery that did not happen.
    fn outages() -> OutageReport {
        let mut cluster = crate::outage::tests::sample("external-cluster");
        cluster.streams[0].failed = 3;
        OutageReport {
            figures: vec![cluster, crate::outage::tests::sample("istiod")],
            errors: Vec::new(),
        }
    }

    #[test]
    fn outage_figures_reach_the_summary_as_a_table() {
        let mut r = report();
        r.outages = outages();
        let md = r.markdown();
        insta::assert_snapshot!(md);
        assert!(md.contains("| gateway | - | not measured |"), "{md}");
        assert!(md.contains("| istiod | requests client -> helloworld | 60 sent, 0 failed |"));
        assert!(
            md.contains("| external-cluster | requests client -> helloworld | 60 sent, 3 failed |")
        );
    }

    #[test]
    fn outage_figures_are_junit_properties_and_missing_ones_are_not_measured() {
        let mut r = report();
        r.outages = outages();
        let back = Report::deserialize_from_str(&r.junit().to_string().unwrap()).unwrap();
        let props: Vec<(&str, &str)> = back.test_suites[1]
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        for expected in [
            ("outage.istiod", "measured"),
            ("outage.istiod.sent.client -> helloworld", "60"),
            ("outage.istiod.failed.client -> helloworld", "0"),
            ("outage.istiod.probe.pod in sample", "injection unavailable"),
            ("outage.istiod.recovery_seconds.injection", "2.5"),
            ("outage.istiod.recovery_seconds.routing", "did not recover within the timeout"),
            ("outage.gateway", "not measured"),
            ("outage.external-cluster.failed.client -> helloworld", "3"),
        ] {
            assert!(props.contains(&expected), "{expected:?} not in {props:#?}");
        }
        assert!(
            !props.iter().any(|(name, _)| name.starts_with("outage.gateway.")),
            "no figure, not even a zero, for an outage without figures: {props:#?}"
        );
    }

    #[test]
    fn without_figures_every_outage_is_not_measured_never_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = report();
        r.outages = OutageReport::read(&dir.path().join("figures"));
        assert_eq!(r.outages, OutageReport::default());
        r.not_run =
            vec![NotRun { what: "outage".into(), why: "not selected with --scenario".into() }];
        let md = r.markdown();
        for variant in crate::outage::VARIANTS {
            let row = format!(
                "| {variant} | - | not measured (outage not run: not selected with --scenario) |"
            );
            assert!(md.contains(&row), "{md}");
        }
        assert!(!md.contains("sent,"), "{md}");
    }

    /// An outage scenario that failed before writing its figures is named as the
    /// reason, so "not measured" is not read as "not selected".
    #[test]
    fn a_failed_outage_scenario_is_the_reason_figures_are_missing() {
        let mut r = report();
        r.not_run.clear();
        r.scenarios.push(ScenarioResult {
            name: "outage::istiod_scaled_to_zero".into(),
            status: ScenarioStatus::Failed { message: "restore: timed out".into() },
            duration: Duration::from_secs(300),
        });
        let md = r.markdown();
        let row = "| gateway | - | not measured (an outage scenario failed: see Scenarios) |";
        assert!(md.contains(row), "{md}");
        r.scenarios.pop();
        assert!(!r.markdown().contains("an outage scenario failed"));
    }

    #[test]
    fn a_malformed_figures_file_is_named_and_fails_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let figures = dir.path().join("figures");
        crate::outage::tests::sample("istiod").write(&figures).unwrap();
        std::fs::write(figures.join("outage-gateway.json"), "{\"variant\": \"gateway\"").unwrap();
        let read = OutageReport::read(&figures);
        assert_eq!(read.figures.len(), 1, "the readable file is kept");
        assert_eq!(read.errors.len(), 1);
        assert!(read.errors[0].contains("outage-gateway.json"), "{:?}", read.errors);

        let mut r = report();
        r.scenarios.pop();
        assert!(r.passed());
        r.outages = read;
        assert!(!r.passed(), "figures that cannot be read are a failed report");
        let md = r.markdown();
        assert!(md.contains("- Unreadable figures: reading outage figures "), "{md}");
        assert!(md.contains("outage-gateway.json"), "{md}");
        assert!(md.contains("| gateway | - | not measured |"), "{md}");
        assert!(md.contains("| istiod | requests client -> helloworld | 60 sent, 0 failed |"));
        let back = Report::deserialize_from_str(&r.junit().to_string().unwrap()).unwrap();
        assert_eq!(back.test_suites[1].errors, 1);
        let case =
            back.test_suites[1].test_cases.iter().find(|c| c.name.as_str() == "outage figures");
        assert!(case.is_some(), "an error case names the unreadable file");
    }

    /// A version newer than the suite knows is run with the newest known rules; the
    /// summary and the JUnit properties say so.
    #[test]
    fn overrides_reach_the_summary_and_junit() {
        let r = VersionReport {
            overrides: vec![
                ("revision".into(), "canary".into()),
                ("values (external)".into(), "/tmp/x.yaml: pilot.replicaCount".into()),
            ],
            ..report()
        };
        let md = r.markdown();
        assert!(md.contains("- Override revision: canary\n"), "{md}");
        assert!(
            md.contains("- Override values (external): /tmp/x.yaml: pilot.replicaCount"),
            "{md}"
        );
        let xml = r.junit().to_string().unwrap();
        assert!(xml.contains(r#"name="override.revision" value="canary""#), "{xml}");
        assert!(xml.contains(r#"name="override.values (external)""#), "{xml}");
    }

    #[test]
    fn notices_reach_the_summary_and_junit() {
        let mut r = report();
        r.istio = "1.32.0-rc.1".parse().unwrap();
        r.notices = r.istio.notice().into_iter().collect();
        let md = r.markdown();
        assert!(
            md.contains(
                "- Note: Istio 1.32.0-rc.1 is newer than this suite knows; using 1.31's rules"
            ),
            "{md}"
        );
        let fresh = VersionReport::new(r.istio, r.installer, r.topology.clone());
        assert_eq!(fresh.notices, r.notices, "a new report carries the version's notice");
        assert!(
            VersionReport::new(crate::version::NEWEST, r.installer, r.topology.clone())
                .notices
                .is_empty()
        );
        let xml = r.junit().to_string().unwrap();
        assert!(xml.contains("name=\"notice\""), "{xml}");
        assert!(xml.contains("newer than this suite knows"), "{xml}");
    }

    #[test]
    fn a_failed_scenario_fails_the_version_and_a_flaky_one_does_not() {
        let mut r = report();
        assert!(!r.passed());
        r.scenarios.pop();
        assert!(r.passed(), "flaky counts as passed, reported as flaky");
        r.steps[1].error = Some("boom".into());
        assert!(!r.passed());
        let mut nothing_ran = report();
        nothing_ran.scenarios.clear();
        assert!(!nothing_ran.passed(), "a run with no scenario does not pass");
    }

    #[test]
    fn junit_round_trips_with_steps_scenarios_and_not_run() {
        let r = report();
        let xml = r.junit().to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 2);
        let install = &back.test_suites[0];
        assert_eq!(install.name.as_str(), "istio-1.30.3-helm::install");
        assert_eq!(install.test_cases.len(), 2);
        assert_eq!(
            install.test_cases[0].name.as_str(),
            "step 1 install-external-gateway on external"
        );
        assert_eq!(install.test_cases[0].time, Some(Duration::from_secs(42)));
        let properties: Vec<(&str, &str)> =
            install.properties.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert_eq!(properties, [("istio", "1.30.3"), ("installer", "helm"), ("helm", "v3.18.6")]);
        let scenarios = &back.test_suites[1];
        assert_eq!(scenarios.tests, 4);
        assert_eq!(scenarios.failures, 1);
        assert_eq!(scenarios.skipped, 1);
        let results = scenarios_from_junit(&xml).unwrap();
        let flaky =
            results.iter().find(|s| s.name.ends_with("sleep_reaches_helloworld_v1")).unwrap();
        assert!(
            matches!(flaky.status, ScenarioStatus::Flaky { failed_attempts: 1, .. }),
            "{flaky:?}"
        );
    }

    #[test]
    fn setup_errors_are_junit_errors() {
        let mut r = report();
        r.steps.clear();
        r.scenarios.clear();
        r.setup_error = Some("preflight: Docker is not reachable".into());
        let xml = r.junit().to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites[0].errors, 1);
        assert!(
            r.markdown()
                .contains("Stopped before the scenarios: preflight: Docker is not reachable")
        );
    }

    /// The shape nextest writes: a suite per test binary, flaky tests as successes
    /// with flakyFailure children.
    const NEXTEST_JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0" uuid="45c50a5b-e8b4-4bd8-8a49-0c2e7f2c5a65" timestamp="2026-11-22T01:00:00.000+00:00" time="12.5">
    <testsuite name="ecp-scenarios::sidecar_injection" tests="2" disabled="0" errors="0" failures="1">
        <testcase name="helloworld_is_2_of_2_with_istio_proxy" classname="ecp-scenarios::sidecar_injection" timestamp="2026-11-22T01:00:00.000+00:00" time="1.25">
            <flakyFailure type="test failure" message="code=101">
                <system-out>first try</system-out>
            </flakyFailure>
        </testcase>
        <testcase name="sleep_is_2_of_2" classname="ecp-scenarios::sidecar_injection" timestamp="2026-11-22T01:00:00.000+00:00" time="2.5">
            <failure type="test failure" message="code=101">thread panicked: pod sleep is 1/2</failure>
        </testcase>
    </testsuite>
    <testsuite name="ecp-scenarios::in_mesh_traffic" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="sleep_reaches_helloworld_v1" classname="ecp-scenarios::in_mesh_traffic" timestamp="2026-11-22T01:00:00.000+00:00" time="8.75">
        </testcase>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn nextest_junit_is_read_into_scenarios() {
        let results = scenarios_from_junit(NEXTEST_JUNIT).unwrap();
        let got: Vec<_> = results.iter().map(|r| (r.name.as_str(), r.duration)).collect();
        assert_eq!(
            got,
            [
                (
                    "sidecar_injection::helloworld_is_2_of_2_with_istio_proxy",
                    Duration::from_millis(1250)
                ),
                ("sidecar_injection::sleep_is_2_of_2", Duration::from_millis(2500)),
                ("in_mesh_traffic::sleep_reaches_helloworld_v1", Duration::from_millis(8750)),
            ]
        );
        assert!(matches!(results[0].status, ScenarioStatus::Flaky { failed_attempts: 1, .. }));
        assert_eq!(results[1].status, ScenarioStatus::Failed { message: "code=101".into() });
        assert_eq!(results[2].status, ScenarioStatus::Passed);
        assert!(scenarios_from_junit("<not junit").is_err());
    }

    #[test]
    fn files_are_written_per_version_with_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let r = report();
        let written = r.write(dir.path()).unwrap();
        assert_eq!(written.junit, dir.path().join("istio-1.30.3-helm/junit.xml"));
        assert!(
            std::fs::read_to_string(&written.markdown)
                .unwrap()
                .starts_with("# Istio 1.30.3 with helm: FAILED")
        );
        let index = write_index(&[r], dir.path()).unwrap();
        let text = std::fs::read_to_string(index).unwrap();
        assert!(
            text.contains(
                "| [1.30.3](istio-1.30.3-helm/summary.md) | helm | FAILED | 2/3 | 600.0 s |"
            ),
            "{text}"
        );
    }
}
