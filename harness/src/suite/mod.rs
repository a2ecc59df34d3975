//! The suite: one run of the conformance suite, whatever gives the clusters.
//!
//! Per Istio version: preflight (nothing is created until everything a run needs is
//! there), clusters from the [`crate::cluster::Provider`], the install plan
//! executed (procedure.md steps 1 to 8), the scenarios run by nextest with the
//! [`topology_file`], diagnostics from every cluster when something failed, the
//! report, and teardown (the install's cleanup phase on clusters the harness does not
//! own; removing the clusters on those it does). `cargo xtask e2e` parses its
//! arguments into [`SuiteOptions`] and calls [`run`]; everything else is here.

mod diagnostics;
pub mod nextest;
pub mod options;
pub mod preflight;
pub mod scenarios;
pub mod topology_file;

pub use options::{
    OptionsError, ProviderFacts, Requested, ScenarioRunner, SuiteOptions, select_scenarios,
};
pub use preflight::Prepared;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::{Cleanup, Provided, Provider, Run};
use crate::conformance;
use crate::execute::{self, ClusterAccess, Clusters, ExecOptions, Phase, StepRecord};
use crate::install::Plan;
use crate::preflight::Problem;
use crate::report::{self, OutageReport, ScenarioStatus, VersionReport};
use crate::topology::Topology;
use crate::version::IstioVersion;

/// Where the suite's progress lines go (the xtask prints them).
pub type Say = fn(&str);

/// Why a suite run did not pass.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(
        "the suite cannot run on this machine (checked in {:.1} s; nothing was created):\n{}",
        elapsed.as_secs_f64(),
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Preflight { problems: Vec<Problem>, elapsed: Duration },
    #[error("conformance failed for {}: see {}", failed.join(", "), index.display())]
    Failed { failed: Vec<String>, index: PathBuf },
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

/// What a passing run wrote.
#[derive(Debug)]
pub struct Passed {
    pub index: PathBuf,
    pub elapsed: Duration,
}

/// Runs the suite: `providers` gives the cluster provider for each version (kind
/// picks the node image per version; existing clusters are the same for all).
pub async fn run<P, F>(s: &SuiteOptions, providers: F, say: Say) -> Result<Passed, SuiteError>
where
    P: Provider + Sync,
    F: Fn(IstioVersion) -> Result<P, Problem>,
{
    let started = Instant::now();
    say("==> preflight (nothing is created yet)");
    let prepared = match preflight::preflight_all(s, providers).await {
        Ok(p) => p,
        Err(problems) => {
            write_setup_failure_reports(s, &problems);
            return Err(SuiteError::Preflight { problems, elapsed: started.elapsed() });
        }
    };
    say(&format!("==> preflight passed in {:.1} s", started.elapsed().as_secs_f64()));
    if let Some(helm) = prepared.iter().find_map(|p| p.programs.helm_version) {
        say(&format!(
            "    helm {helm} (known to work: {})",
            crate::istio::tools::HELM_KNOWN_TO_WORK
        ));
    }

    let reports = if s.parallel > 1 {
        run_parallel(s, &prepared, say).await
    } else {
        run_one_after_another(s, &prepared, say).await
    };
    let index = report::write_index(&reports, &s.report_dir)?;
    say(&format!("==> summary: {}", index.display()));
    let failed: Vec<String> =
        reports.iter().filter(|r| !r.passed()).map(|r| r.dir_name()).collect();
    if failed.is_empty() {
        Ok(Passed { index, elapsed: started.elapsed() })
    } else {
        Err(SuiteError::Failed { failed, index })
    }
}

/// Every version in turn, handing the clusters on with `reuse`.
async fn run_one_after_another<P: Provider + Sync>(
    s: &SuiteOptions,
    prepared: &[Prepared<P>],
    say: Say,
) -> Vec<VersionReport> {
    let mut reports = Vec::new();
    let mut reused: Option<P::Handle> = None;
    for (i, p) in prepared.iter().enumerate() {
        let last = i + 1 == prepared.len();
        let report = run_version(s, p, &mut reused, last, say).await;
        write_version_report(s, p, &report, say);
        reports.push(report);
    }
    if let Some(handle) = reused.take() {
        finish_run(s, handle.into_run(), say).await;
    }
    reports
}

/// Up to `parallel` versions at once, each in clusters of its own; the reports come
/// back in version order for the index.
async fn run_parallel<P: Provider + Sync>(
    s: &SuiteOptions,
    prepared: &[Prepared<P>],
    say: Say,
) -> Vec<VersionReport> {
    use futures::StreamExt;
    futures::stream::iter(prepared)
        .map(|p| async move {
            let report = run_version(s, p, &mut None, true, say).await;
            write_version_report(s, p, &report, say);
            report
        })
        .buffered(s.parallel)
        .collect()
        .await
}

fn write_version_report<P>(s: &SuiteOptions, p: &Prepared<P>, report: &VersionReport, say: Say) {
    // The run is over: its keys leave the report (CI uploads it as an artefact).
    let plan_dir = s.report_dir.join(report.dir_name()).join("plan");
    if let Err(e) = p.plan.remove_private_files(&plan_dir) {
        say(&format!("warning: private plan files could not be removed from the report: {e}"));
    }
    match report.write(&s.report_dir) {
        Ok(w) => say(&format!("==> report for Istio {}: {}", p.version, w.markdown.display())),
        Err(e) => say(&format!("warning: {e}")),
    }
}

/// With the preflight failed, each version's report says so (no clusters were made).
fn write_setup_failure_reports(s: &SuiteOptions, problems: &[Problem]) {
    let Ok(topology) = Topology::with_meshes(s.meshes, s.remotes, s.network_mode) else {
        return;
    };
    let problems: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let reports: Vec<VersionReport> = s
        .versions
        .iter()
        .map(|v| VersionReport {
            setup_error: Some(format!("preflight failed: {}", problems.join("; "))),
            not_run: s.not_run_all("the preflight failed"),
            overrides: s.overrides(*v),
            run: s.run_info.clone(),
            plan_options: Some(s.plan_options(*v, ProviderFacts::default())),
            ..VersionReport::new(*v, s.installer, topology.clone())
        })
        .collect();
    for r in &reports {
        if let Err(e) = r.write(&s.report_dir) {
            tracing::warn!("the Istio {} report was not written: {e}", r.istio);
        }
    }
    if let Err(e) = report::write_index(&reports, &s.report_dir) {
        tracing::warn!("the report index was not written: {e}");
    }
}

/// One version: clusters (fresh, or reused), install, scenarios, diagnostics, report,
/// teardown.
async fn run_version<P: Provider + Sync>(
    s: &SuiteOptions,
    p: &Prepared<P>,
    reused: &mut Option<P::Handle>,
    last: bool,
    say: Say,
) -> VersionReport {
    let started = Instant::now();
    let topology = p.plan.topology.clone();
    let mut report = VersionReport {
        helm_version: p.programs.helm_version.map(|v| v.to_string()),
        not_run: s.not_run.clone(),
        overrides: s.overrides(p.version),
        run: s.run_info.clone(),
        plan_options: Some(p.plan.options.clone()),
        platform: p.provider.platform(),
        ..VersionReport::new(p.version, s.installer, topology.clone())
    };
    let dir = s.report_dir.join(report.dir_name());

    say(&format!(
        "==> Istio {} with {}: clusters from {}",
        p.version,
        s.installer,
        p.provider.name()
    ));
    let handle = match reused.take() {
        Some(handle) => Ok(handle),
        None => start_clusters(s, p, &topology).await,
    };
    let handle = match handle {
        Ok(handle) => handle,
        Err(e) => {
            report.setup_error = Some(e);
            report.not_run = s.not_run_all("the clusters did not start");
            report.elapsed = started.elapsed();
            return report;
        }
    };
    say(&format!("    run {} ({})", handle.run().id(), handle.run().dir().display()));
    report.notices.extend(
        handle.capabilities().missing().into_iter().map(|m| format!("{}: {m}", p.provider.name())),
    );

    let clusters = match cluster_access(&handle).await {
        Ok(c) => c,
        Err(e) => {
            report.setup_error = Some(e);
            report.not_run = s.not_run_all("the clusters could not be reached");
            finish_or_keep(s, handle, reused, last, say).await;
            report.elapsed = started.elapsed();
            return report;
        }
    };

    say(&format!("==> Istio {}: install (procedure steps 1 to 8)", p.version));
    let mut exec_opts = ExecOptions::new(dir.join("plan"), p.programs.clone());
    exec_opts.given_external_addr = p.provider.external_address().is_some();
    let execution = execute::execute(p.plan.clone(), &clusters, Phase::Install, &exec_opts).await;
    report.steps = execution.steps.clone();
    report.plan_options = Some(execution.plan.options.clone());
    if exec_opts.given_external_addr || address_published(&execution) {
        report.external_addr = Some(execution.plan.options.external_addr);
    }
    let plan = execution.plan.clone();

    let failed;
    if let Some(error) = &execution.error {
        failed = true;
        report.setup_error = Some(format!("install failed: {error}"));
        report.not_run = s.not_run_all("the install failed");
    } else {
        say(&format!("==> Istio {}: scenarios", p.version));
        // Node faults only where the provider can make them; the rest is reported.
        let mut skip = Vec::new();
        if !handle.capabilities().network_faults {
            for (scenario, test) in scenarios::NODE_FAULT_TESTS {
                if s.scenarios.iter().any(|sc| sc.name == *scenario) {
                    skip.push(*test);
                    report.not_run.push(report::NotRun {
                        what: format!("{scenario}: {test}"),
                        why: format!("the {} provider cannot pause nodes", p.provider.name()),
                    });
                }
            }
        }
        match nextest::run_scenarios(s, p, &plan, &handle, &dir, &skip, say).await {
            Ok(results) => {
                failed = results.iter().any(|r| matches!(r.status, ScenarioStatus::Failed { .. }));
                report.scenarios = results;
            }
            Err(e) => {
                failed = true;
                report.setup_error = Some(format!("running the scenarios: {e}"));
                report.not_run = s.not_run_all("nextest did not report");
            }
        }
        // What the outage scenario wrote; a variant without a file is "not measured".
        report.outages = OutageReport::read(&topology_file::figures_dir_in(&dir));
    }
    observe(&mut report, &clusters, &plan, say).await;

    if failed {
        say(&format!("==> Istio {}: collecting diagnostics from every cluster", p.version));
        let out = dir.join("diagnostics");
        match diagnostics::collect(&handle, &clusters, &topology, &out, say).await {
            Ok(()) => {
                report.diagnostics = Some(PathBuf::from(report.dir_name()).join("diagnostics"))
            }
            Err(e) => say(&format!("warning: diagnostics: {e}")),
        }
    }

    // Istio is removed (step 9) where the clusters stay: between versions with
    // `reuse`, and always on clusters the harness does not own, unless kept.
    let owned = handle.run().cleanup() != Cleanup::Nothing;
    let hand_on = s.reuse && !last;
    if hand_on || (!owned && !s.keep) {
        say(&format!("==> Istio {}: removing what the install created (step 9)", p.version));
        let cleanup = execute::execute(plan, &clusters, Phase::Cleanup, &exec_opts).await;
        report.steps.extend(cleanup.steps);
        if let Some(e) = cleanup.error {
            report.setup_error.get_or_insert(format!("cleanup failed: {e}"));
            if hand_on {
                // Istio could not be removed: the next version gets fresh clusters.
                finish_run(s, handle.into_run(), say).await;
                report.elapsed = started.elapsed();
                return report;
            }
        }
    }
    finish_or_keep(s, handle, reused, last, say).await;
    report.elapsed = started.elapsed();
    report
}

/// What the clusters are and which images ran, read before anything is removed.
async fn observe(report: &mut VersionReport, clusters: &Clusters, plan: &Plan, say: Say) {
    report.clusters = conformance::observe::clusters(clusters).await;
    let (images, errors) = conformance::observe::images(clusters, plan).await;
    report.images = images;
    for e in errors {
        say(&format!("warning: the images that ran: {e}"));
        report.notices.push(format!("the images that ran are incomplete: {e}"));
    }
}

/// The step that publishes the external address ran and succeeded on every cluster
/// it touched: the plan in force holds the observed address.
fn address_published(execution: &execute::Execution) -> bool {
    let publishing: Vec<&str> = execution
        .plan
        .steps
        .iter()
        .filter(|st| st.publishes_external_address)
        .map(|st| st.id.as_str())
        .collect();
    let ran: Vec<&StepRecord> =
        execution.steps.iter().filter(|r| publishing.contains(&r.id.as_str())).collect();
    !ran.is_empty() && ran.iter().all(|r| r.error.is_none())
}

/// Starts the clusters, loads the images and installs a LoadBalancer where the
/// provider can.
async fn start_clusters<P: Provider>(
    s: &SuiteOptions,
    p: &Prepared<P>,
    topology: &Topology,
) -> Result<P::Handle, String> {
    let handle = p
        .provider
        .start(topology)
        .await
        .map_err(|e| format!("starting the {} clusters: {e}", p.provider.name()))?;
    let capabilities = handle.capabilities();
    if capabilities.load_images {
        let images = preflight::images_for(s, p.version);
        handle.load_images(&images).await.map_err(|e| format!("loading images: {e}"))?;
    }
    if capabilities.install_load_balancer {
        handle
            .install_load_balancer()
            .await
            .map_err(|e| format!("installing a LoadBalancer: {e}"))?;
    }
    Ok(handle)
}

/// A client per cluster, from the provider's kubeconfigs.
async fn cluster_access<H: Provided>(handle: &H) -> Result<Clusters, String> {
    let mut clusters = Clusters::new();
    for c in handle.clusters() {
        let access =
            ClusterAccess::connect(&c).await.map_err(|e| format!("cluster {}: {e}", c.name))?;
        clusters.insert(c.name.clone(), access);
    }
    Ok(clusters)
}

/// Keeps the clusters on the last version with `keep`, else removes them (or hands
/// them on with `reuse`).
async fn finish_or_keep<H: Provided>(
    s: &SuiteOptions,
    handle: H,
    reused: &mut Option<H>,
    last: bool,
    say: Say,
) {
    if s.reuse && !last {
        *reused = Some(handle);
    } else {
        finish_run(s, handle.into_run(), say).await;
    }
}

async fn finish_run(s: &SuiteOptions, run: Run, say: Say) {
    let id = run.id().clone();
    let owned = run.cleanup() != Cleanup::Nothing;
    if s.keep {
        match run.keep() {
            Ok(dir) if owned => say(&format!(
                "==> kept run {id}: kubeconfigs in {}; remove with `cargo xtask down --run-id {id}`",
                dir.display()
            )),
            Ok(_) => say(&format!("==> kept the install of run {id} on the existing clusters")),
            Err(e) => say(&format!("warning: keeping run {id}: {e}")),
        }
    } else if let Err(e) = run.down().await {
        say(&format!(
            "warning: removing run {id}: {e}; `cargo xtask down --run-id {id}` removes the rest"
        ));
    } else if owned {
        say(&format!("==> removed run {id}"));
    }
}
