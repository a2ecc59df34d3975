//! `cargo xtask report verify DIR`: checks a report directory as a reader would
//! (docs/report.md "Verifying a report"). Every problem is one line; none means the
//! report holds together:
//!
//! - `report.json` parses and its `schema` is [`SCHEMA`];
//! - every profile it claims passed is passed by its own scenario results and run
//!   properties (every scenario of the profile present, run and passed);
//! - Istio's images that ran (`pilot`, `proxyv2`) carry the claimed version (or the
//!   plan's `tag`) and come from the claimed hub (the plan's `hub`, or the release's);
//! - `summary.md` and `junit.xml` are the files the run wrote (their SHA-256 is the
//!   one `report.json` recorded), and `junit.xml`'s scenario results are
//!   `report.json`'s.

use std::path::{Path, PathBuf};

use quick_junit::{Report, TestCaseStatus};

use super::profiles::{self, RunFacts};
use super::{ConformanceReport, REPORT_JSON, RanImage, SCHEMA, TestResult, sha256};
use crate::install::GatewayTls;

/// Istio's own images, by the last part of their repository.
pub const ISTIO_IMAGES: [&str; 2] = ["pilot", "proxyv2"];

/// What was checked in one version's directory.
#[derive(Debug, Clone)]
pub struct Checked {
    pub dir: PathBuf,
    /// The report, if it could be read.
    pub report: Option<ConformanceReport>,
    pub problems: Vec<String>,
}

/// Checks `dir`: a version's directory (holding `report.json`) or a run's report
/// directory (each directory under it holding `report.json` is checked). A directory
/// with neither is one problem.
pub fn verify(dir: &Path) -> Result<Vec<Checked>, String> {
    if dir.join(REPORT_JSON).is_file() {
        return Ok(vec![verify_version(dir)]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut dirs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join(REPORT_JSON).is_file()).collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!(
            "no {REPORT_JSON} in {} nor in a directory under it: not the report directory of a \
             run of this suite (cargo xtask e2e --report DIR)",
            dir.display()
        ));
    }
    Ok(dirs.iter().map(|d| verify_version(d)).collect())
}

/// Checks one version's directory.
pub fn verify_version(dir: &Path) -> Checked {
    let mut checked = Checked { dir: dir.into(), report: None, problems: Vec::new() };
    match read(dir) {
        Ok(report) => {
            checked.problems.extend(profile_problems(&report));
            checked.problems.extend(image_problems(&report));
            checked.problems.extend(file_problems(dir, &report));
            checked.report = Some(report);
        }
        Err(problem) => checked.problems.push(problem),
    }
    checked
}

/// `report.json`, its schema checked before its shape.
fn read(dir: &Path) -> Result<ConformanceReport, String> {
    let path = dir.join(REPORT_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {REPORT_JSON}: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{REPORT_JSON} is not JSON: {e}"))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "{REPORT_JSON}: schema `{other}` is not known (this suite reads {SCHEMA})"
            ));
        }
        None => return Err(format!("{REPORT_JSON} has no `schema` field")),
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{REPORT_JSON} does not follow the schema {SCHEMA}: {e}"))
}

/// The plan options `verify` reads (the rest of `plan_options` is only reported).
#[derive(Debug, Default, serde::Deserialize)]
struct PlannedImages {
    #[serde(default)]
    hub: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    gateway_tls: GatewayTls,
}

fn planned(r: &ConformanceReport) -> PlannedImages {
    serde_json::from_value(r.plan_options.clone()).unwrap_or_default()
}

/// Each claimed profile judged again on the report's own results.
fn profile_problems(r: &ConformanceReport) -> Vec<String> {
    let facts = RunFacts {
        installer: r.installer,
        gateway_tls: planned(r).gateway_tls,
        install_passed: r.setup_error.is_none() && r.steps.iter().all(|s| s.passed),
        tests: r.scenarios.iter().map(|s| (s.name.clone(), s.result.outcome())).collect(),
    };
    let mut problems = Vec::new();
    for claimed in r.claimed() {
        for p in profiles::judge(claimed, &facts).problems {
            problems.push(format!("profile {claimed} is claimed passed, but {p}"));
        }
    }
    problems
}

/// `registry/path/name`, `tag` of an image reference (digest dropped); Docker Hub's
/// short forms (`istio/pilot`) written out as `docker.io/istio/pilot`.
fn split_image(image: &str) -> (String, Option<String>) {
    let image = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], Some(image[i + 1..].to_string())),
        _ => (image, None),
    };
    (normalize(repo), tag)
}

fn normalize(repo: &str) -> String {
    let first = repo.split('/').next().unwrap_or_default();
    let registry = first.contains('.') || first.contains(':') || first == "localhost";
    if registry || repo.is_empty() { repo.to_string() } else { format!("docker.io/{repo}") }
}

/// The claimed version and hub against Istio's images that ran.
fn image_problems(r: &ConformanceReport) -> Vec<String> {
    let planned = planned(r);
    let hub = normalize(planned.hub.as_deref().unwrap_or(r.istio.default_hub()));
    let (tag, tag_from) = match &planned.tag {
        Some(t) => (t.clone(), format!("the plan's tag {t}")),
        None => (r.istio.to_string(), format!("the claimed Istio {}", r.istio)),
    };
    let istio_images: Vec<&RanImage> = r
        .images
        .iter()
        .filter(|i| {
            let (repo, _) = split_image(&i.image);
            ISTIO_IMAGES.contains(&repo.rsplit('/').next().unwrap_or_default())
        })
        .collect();
    let mut problems = Vec::new();
    if istio_images.is_empty() && !r.claimed().is_empty() {
        problems.push(format!(
            "no Istio image ({}) is among the images that ran: the claimed Istio {} cannot be \
             checked",
            ISTIO_IMAGES.join(", "),
            r.istio
        ));
    }
    for i in istio_images {
        let (repo, image_tag) = split_image(&i.image);
        let at = format!("{} (cluster {}, pod {}/{})", i.image, i.cluster, i.namespace, i.pod);
        let agrees = image_tag.as_deref().is_some_and(|t| {
            t == tag || t.strip_prefix(tag.as_str()).is_some_and(|v| v.starts_with('-'))
        });
        if !agrees {
            problems.push(format!("image {at} disagrees with {tag_from}"));
        }
        if !repo.starts_with(&format!("{hub}/")) {
            problems.push(format!("image {at} is not from the claimed hub {hub}"));
        }
    }
    problems
}

/// `summary.md` and `junit.xml` as written, and junit's results as report.json's.
fn file_problems(dir: &Path, r: &ConformanceReport) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, recorded) in [("summary.md", &r.files.summary_md), ("junit.xml", &r.files.junit_xml)]
    {
        match std::fs::read(dir.join(file)) {
            Ok(bytes) if sha256(&bytes) == *recorded => {}
            Ok(bytes) => problems.push(format!(
                "{file} is not the file this run wrote (its SHA-256 is {}, {REPORT_JSON} recorded \
                 {recorded}): it was changed after the run",
                sha256(&bytes)
            )),
            Err(e) => problems.push(format!("reading {file}: {e}")),
        }
    }
    if let Ok(xml) = std::fs::read_to_string(dir.join("junit.xml")) {
        problems.extend(junit_problems(&xml, r));
    }
    problems
}

fn junit_problems(xml: &str, r: &ConformanceReport) -> Vec<String> {
    let junit = match Report::deserialize_from_str(xml) {
        Ok(j) => j,
        Err(e) => return vec![format!("junit.xml cannot be read: {e}")],
    };
    let cases: Vec<(String, TestResult)> = junit
        .test_suites
        .iter()
        .filter(|s| s.name.as_str().ends_with("::scenarios"))
        .flat_map(|s| s.test_cases.iter())
        .map(|c| {
            let result = match &c.status {
                TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
                    TestResult::Passed
                }
                TestCaseStatus::Success { .. } => TestResult::Flaky,
                TestCaseStatus::NonSuccess { .. } => TestResult::Failed,
                TestCaseStatus::Skipped { .. } => TestResult::NotRun,
            };
            (c.name.as_str().to_string(), result)
        })
        .collect();
    let mut problems = Vec::new();
    for s in &r.scenarios {
        match cases.iter().find(|(name, _)| *name == s.name) {
            None => problems.push(format!("junit.xml has no result for {}", s.name)),
            Some((_, result)) if *result != s.result => problems.push(format!(
                "junit.xml says {} {}, {REPORT_JSON} says {}",
                s.name,
                label(*result),
                label(s.result)
            )),
            Some(_) => {}
        }
    }
    for (name, result) in &cases {
        let known = r.scenarios.iter().any(|s| s.name == *name)
            || r.not_run.iter().any(|n| n.what == *name)
            || name == "outage figures";
        if !known && *result != TestResult::NotRun {
            problems
                .push(format!("junit.xml has {name} ({}), {REPORT_JSON} does not", label(*result)));
        }
    }
    problems
}

fn label(r: TestResult) -> &'static str {
    match r {
        TestResult::Passed => "passed",
        TestResult::Flaky => "flaky",
        TestResult::Failed => "failed",
        TestResult::NotRun => "not run",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::Profile;
    use crate::install::{Installer, PlanOptions};
    use crate::report::{ScenarioResult, ScenarioStatus, VersionReport};
    use crate::topology::{NetworkMode, Topology};
    use crate::version::IstioVersion;
    use std::time::Duration;

    /// A run of Istio 1.30.3 whose every core scenario passed, with istiod's image.
    fn passing() -> VersionReport {
        let istio = IstioVersion::new(1, 30, 3);
        let topology = Topology::new(1, NetworkMode::MultiNetwork).unwrap();
        let mut r = VersionReport::new(istio, Installer::Istioctl, topology);
        r.plan_options = Some(PlanOptions::new(istio, Installer::Istioctl, 1));
        r.scenarios = Profile::Core
            .scenarios()
            .iter()
            .map(|s| ScenarioResult {
                name: format!("{s}::t"),
                status: ScenarioStatus::Passed,
                duration: Duration::from_secs(1),
            })
            .collect();
        r.images = vec![RanImage {
            cluster: "external".into(),
            namespace: "external-istiod".into(),
            pod: "istiod-1".into(),
            container: "discovery".into(),
            image: "registry.istio.io/release/pilot:1.30.3".into(),
            image_id: "registry.istio.io/release/pilot@sha256:00".into(),
        }];
        r
    }

    /// Writes `r` into a fresh directory; the version's directory.
    fn written(r: &VersionReport) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let w = r.write(dir.path()).unwrap();
        let version = w.json.parent().unwrap().to_path_buf();
        (dir, version)
    }

    fn edit_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(REPORT_JSON);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    fn problems(dir: &Path) -> Vec<String> {
        verify_version(dir).problems
    }

    #[test]
    fn a_genuine_report_passes_from_its_own_or_the_run_directory() {
        let (run, version) = written(&passing());
        let checked = verify_version(&version);
        assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
        assert_eq!(checked.report.unwrap().claimed(), [Profile::Core]);
        let all = verify(run.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].problems.is_empty());
    }

    #[test]
    fn a_directory_without_a_report_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = verify(dir.path()).unwrap_err();
        assert!(e.starts_with("no report.json in "), "{e}");
        assert!(verify(&dir.path().join("nope")).unwrap_err().contains("reading "));
    }

    #[test]
    fn an_unknown_schema_or_shape_is_named() {
        let (_run, dir) = written(&passing());
        edit_json(&dir, |v| v["schema"] = "ecp-conformance-report/v9".into());
        assert_eq!(
            problems(&dir),
            ["report.json: schema `ecp-conformance-report/v9` is not known (this suite reads \
              ecp-conformance-report/v1)"]
        );
        edit_json(&dir, |v| {
            v["schema"] = SCHEMA.into();
            v["scenarios"] = 3.into();
        });
        let p = problems(&dir);
        assert!(p[0].starts_with("report.json does not follow the schema"), "{p:?}");
    }

    #[test]
    fn a_failed_scenario_under_a_claimed_profile_is_named() {
        let (_run, dir) = written(&passing());
        edit_json(&dir, |v| v["scenarios"][2]["result"] = "failed".into());
        let p = problems(&dir);
        assert!(
            p.contains(&"profile core is claimed passed, but in_mesh_traffic::t failed".into()),
            "{p:#?}"
        );
        assert!(
            p.contains(&"junit.xml says in_mesh_traffic::t passed, report.json says failed".into()),
            "{p:#?}"
        );
    }

    #[test]
    fn a_missing_scenario_of_a_claimed_profile_is_named() {
        let mut r = passing();
        r.scenarios.retain(|s| !s.name.starts_with("validation::"));
        let (_run, dir) = written(&r);
        assert!(problems(&dir).is_empty(), "core is not claimed: nothing to contradict");
        edit_json(&dir, |v| v["profiles"][0]["passed"] = true.into());
        assert_eq!(
            problems(&dir),
            ["profile core is claimed passed, but scenario validation is missing"]
        );
    }

    #[test]
    fn a_version_or_hub_the_images_disagree_with_is_named() {
        let (_run, dir) = written(&passing());
        edit_json(&dir, |v| v["istio"] = "1.30.2".into());
        assert_eq!(
            problems(&dir),
            ["image registry.istio.io/release/pilot:1.30.3 (cluster external, pod \
              external-istiod/istiod-1) disagrees with the claimed Istio 1.30.2"]
        );
        edit_json(&dir, |v| {
            v["istio"] = "1.30.3".into();
            v["plan_options"]["hub"] = "quay.io/vendor".into();
        });
        assert_eq!(
            problems(&dir),
            ["image registry.istio.io/release/pilot:1.30.3 (cluster external, pod \
              external-istiod/istiod-1) is not from the claimed hub quay.io/vendor"]
        );
        edit_json(&dir, |v| v["images"] = serde_json::json!([]));
        let p = problems(&dir);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("no Istio image (pilot, proxyv2) is among the images"), "{p:?}");
    }

    #[test]
    fn a_tag_override_is_what_the_images_must_carry() {
        let mut r = passing();
        r.plan_options.as_mut().unwrap().tag = Some("1.30.3-vendor.2".into());
        r.images[0].image = "registry.istio.io/release/pilot:1.30.3-vendor.2-distroless".into();
        let (_run, dir) = written(&r);
        assert!(problems(&dir).is_empty(), "{:?}", problems(&dir));
    }

    #[test]
    fn a_hand_edited_summary_or_junit_is_named() {
        let (_run, dir) = written(&passing());
        let summary = dir.join("summary.md");
        let text = std::fs::read_to_string(&summary).unwrap();
        std::fs::write(&summary, text.replace("PASSED", "PASSED!")).unwrap();
        let p = problems(&dir);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("summary.md is not the file this run wrote"), "{p:?}");
        std::fs::write(&summary, text).unwrap();
        assert!(problems(&dir).is_empty());
        std::fs::remove_file(dir.join("junit.xml")).unwrap();
        assert!(problems(&dir)[0].starts_with("reading junit.xml: "));
    }

    #[test]
    fn image_references_split_into_repository_and_tag() {
        assert_eq!(
            split_image("registry.istio.io/release/pilot:1.30.3"),
            ("registry.istio.io/release/pilot".into(), Some("1.30.3".into()))
        );
        assert_eq!(
            split_image("istio/proxyv2:1.29.0-distroless@sha256:ab"),
            ("docker.io/istio/proxyv2".into(), Some("1.29.0-distroless".into()))
        );
        assert_eq!(
            split_image("localhost:5000/istio/pilot"),
            ("localhost:5000/istio/pilot".into(), None)
        );
    }
}
