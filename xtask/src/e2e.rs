//! `cargo xtask e2e`: the conformance suite end to end on kind clusters, per Istio
//! version: preflight, clusters up, images loaded, MetalLB, the install plan executed
//! (procedure.md steps 1 to 8), `cargo nextest run -p ecp-scenarios` with the
//! topology file, diagnostics from every cluster when something failed, the report,
//! and teardown. Several versions run one after another, each in fresh clusters
//! unless `--reuse`, or up to `--parallel N` at once, each in clusters of its own.
//!
//! Nothing is created before the preflight passed: where e2e cannot run (no Docker,
//! no registry, images or release missing), it stops within seconds saying what is
//! missing and how to provide it, and leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ecp_harness::cluster::kind::{self, KindOptions, KindRun, MetalLbManifest, RegistryMirror};
use ecp_harness::cluster::{RunId, cache_dir, docker};
use ecp_harness::diag::{self, ClusterInput};
use ecp_harness::execute::command::Programs;
use ecp_harness::execute::{
    self, ClusterAccess, Clusters, ExecOptions, Phase, StepRecord, checks, preflight,
};
use ecp_harness::install::{self, GatewayTls, Installer, Plan, PlanOptions};
use ecp_harness::istio::release::ReleaseSource;
use ecp_harness::istio::tools;
use ecp_harness::preflight::ProblemKind;
use ecp_harness::report::{
    self, NotRun, OutageReport, ScenarioResult, ScenarioStatus, VersionReport,
};
use ecp_harness::samples::SampleImages;
use ecp_harness::topology::{NetworkMode, PLACEHOLDER_EXTERNAL_ADDR, Topology};
use ecp_harness::version::{IstioVersion, NEWEST};
use ecp_scenarios::{SCENARIOS, Scenario, TOPOLOGY_ENV, TopologyFile};

/// How long pulling a missing node image may take in the preflight (only tried when
/// its registry answers).
const NODE_IMAGE_PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// Held while nextest runs the scenarios (see [`run_scenarios`]).
static SCENARIO_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Namespaces dumped into the diagnostics bundle.
const DIAG_NAMESPACES: [&str; 5] =
    ["istio-system", "external-istiod", "sample", "metallb-system", "kube-system"];
/// At most this many Envoy config dumps per cluster.
const MAX_CONFIG_DUMPS: usize = 20;

#[derive(clap::Args, Debug)]
#[command(after_help = "Per Istio version: \
        start an external cluster and remotes, install Istio's external control plane with \
        istioctl or Helm as procedure.md describes, run the scenarios \
        (`cargo nextest run -p ecp-scenarios`), collect diagnostics from every cluster for \
        failures, write the report, and tear down.\n\n\
        Needs Docker with registry access (kind node image, Istio images, the Istio release). \
        Where that is missing it stops within seconds, saying what is missing and how to \
        provide it, and creates nothing.\n\n\
        Scenarios: control_plane_install, sidecar_injection, in_mesh_traffic, \
        ingress_traffic, validation, outage (the external control plane goes away while \
        workloads run, and comes back), multi_remote (needs --remotes 2). Environment: \
        ECP_ISTIO_RELEASE_URL (a mirror of the Istio release downloads), ECP_CACHE_DIR \
        (where releases are cached), ECP_OFFLINE (try no network: fail at once where \
        something is missing), CI (plain progress lines).")]
pub struct Args {
    /// Istio versions to test, comma-separated, one after another (e.g. 1.22.8,1.31.0).
    /// Every version from 1.22.0 on, pre-releases included (1.31.0-rc.0); a minor
    /// newer than the suite knows runs with the newest known rules. A build of Istio's
    /// main branch: `--istio 1.32.0-dev --hub H --tag T --istioctl PATH`.
    #[arg(long = "istio", value_name = "V1,V2,...", value_delimiter = ',', default_values_t = [NEWEST.to_string()])]
    pub istio: Vec<String>,
    /// Installer backend: `istioctl` (IstioOperator files, the guide's form) or `helm`
    /// (Istio's charts with values files).
    #[arg(long, value_name = Installer::value_name(), default_value_t = Installer::default())]
    pub installer: Installer,
    /// Number of remote clusters, the config cluster included (1 = external + config;
    /// 2 adds remote2 running helloworld v2, needed by the multi_remote scenario).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub remotes: usize,
    /// Put every remote on network1 (no east-west gateways) instead of one network per
    /// remote.
    #[arg(long)]
    pub same_network: bool,
    /// How the external gateway carries 15012/15017: `passthrough` (TLS to istiod) or
    /// `simple` (TLS terminated at the gateway with a certificate for its address).
    #[arg(long, value_name = "passthrough|simple", default_value = "passthrough")]
    pub gateway_tls: GatewayTls,
    /// Keep the clusters (and Istio) after the run; `cargo xtask down` removes them.
    #[arg(long)]
    pub keep: bool,
    /// Reuse the clusters from one version to the next (Istio is removed in between,
    /// procedure step 9) instead of fresh clusters per version.
    #[arg(long)]
    pub reuse: bool,
    /// Run up to N Istio versions at once, each in clusters of its own (needs a host
    /// with room for N times the clusters); the report's index covers all of them.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "reuse")]
    pub parallel: usize,
    /// Run only this scenario; repeat for several (default: every scenario the
    /// topology allows).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Directory for the report: per version a JUnit file, a Markdown summary, the
    /// plan, the topology file and diagnostics; plus an index summary.md.
    #[arg(long, value_name = "DIR", default_value = "target/ecp-report")]
    pub report: PathBuf,
    /// Use this istioctl binary instead of the one in the downloaded release.
    #[arg(long, value_name = "PATH")]
    pub istioctl: Option<PathBuf>,
    /// Use this helm binary (default: `helm` on PATH) for `--installer helm`.
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
    /// kind node image (default: the kindest/node, pinned by digest, of the newest
    /// Kubernetes the Istio version supports; see `kind::KNOWN_NODE_IMAGES`).
    #[arg(long, value_name = "IMAGE")]
    pub node_image: Option<String>,
    /// Image hub of Istio's images and samples (default: the release's hub).
    #[arg(long, value_name = "HUB")]
    pub hub: Option<String>,
    /// Image tag of Istio's images (default: the Istio version).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Pull through a registry mirror inside the nodes (containerd `hosts.toml`);
    /// repeat for several registries, e.g. `docker.io=http://kind-registry:5000`.
    #[arg(long = "registry-mirror", value_name = "REGISTRY=ENDPOINT")]
    pub registry_mirrors: Vec<RegistryMirror>,
}

/// The arguments, checked: everything decided before touching the machine.
#[derive(Debug, Clone)]
struct Settings {
    versions: Vec<IstioVersion>,
    installer: Installer,
    remotes: usize,
    network_mode: NetworkMode,
    gateway_tls: GatewayTls,
    keep: bool,
    reuse: bool,
    parallel: usize,
    scenarios: Vec<&'static Scenario>,
    not_run: Vec<NotRun>,
    report_dir: PathBuf,
    istioctl: Option<PathBuf>,
    helm: Option<PathBuf>,
    node_image: Option<String>,
    hub: Option<String>,
    tag: Option<String>,
    registry_mirrors: Vec<RegistryMirror>,
}

fn settings(args: Args) -> anyhow::Result<Settings> {
    let mut versions = Vec::new();
    for v in &args.istio {
        let version = IstioVersion::parse_supported(v)?;
        if let Some(notice) = version.notice() {
            println!("note: {notice}");
        }
        versions.push(version);
    }
    if versions.is_empty() {
        bail!("--istio names no version");
    }
    if args.parallel == 0 {
        bail!("--parallel 0: run at least one version at a time");
    }
    let network_mode =
        if args.same_network { NetworkMode::SameNetwork } else { NetworkMode::MultiNetwork };
    Topology::new(args.remotes, network_mode)?;
    let (scenarios, not_run) = select_scenarios(&args.scenarios, args.remotes)?;
    if scenarios.is_empty() {
        bail!(
            "no scenario can run: {}",
            not_run
                .iter()
                .map(|n| format!("{} ({})", n.what, n.why))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Settings {
        versions,
        installer: args.installer,
        remotes: args.remotes,
        network_mode,
        gateway_tls: args.gateway_tls,
        keep: args.keep,
        reuse: args.reuse,
        parallel: args.parallel,
        scenarios,
        not_run,
        report_dir: args.report,
        istioctl: args.istioctl,
        helm: args.helm,
        node_image: args.node_image,
        hub: args.hub,
        tag: args.tag,
        registry_mirrors: args.registry_mirrors,
    })
}

/// The scenarios to run and those not run (with why).
fn select_scenarios(
    names: &[String],
    remotes: usize,
) -> anyhow::Result<(Vec<&'static Scenario>, Vec<NotRun>)> {
    for name in names {
        if ecp_scenarios::scenario(name).is_none() {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            bail!("unknown scenario `{name}`: the scenarios are {}", known.join(", "));
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
        } else {
            selected.push(s);
        }
    }
    Ok((selected, not_run))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = settings(args)?;
    crate::runtime()?.block_on(async {
        tokio::select! {
            result = run_all(&settings) => result,
            // Dropping the run removes its clusters (KindRun's Drop).
            _ = tokio::signal::ctrl_c() => bail!(
                "interrupted: the run's clusters were removed (`cargo xtask down` removes \
                 anything left behind)"
            ),
        }
    })
}

/// What the preflight established for one version.
struct Prepared {
    version: IstioVersion,
    plan: Plan,
    programs: Programs,
    node_image: String,
    images: Vec<String>,
}

async fn run_all(s: &Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("==> preflight: Docker, node image, istioctl, helm, images (nothing is created yet)");
    let prepared = match preflight_all(s).await {
        Ok(p) => p,
        Err(problems) => {
            let elapsed = started.elapsed();
            write_setup_failure_reports(s, &problems);
            bail!(
                "cargo xtask e2e cannot run on this machine (checked in {:.1} s; nothing was created):\n{}",
                elapsed.as_secs_f64(),
                problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
            );
        }
    };
    println!("==> preflight passed in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(helm) = prepared.iter().find_map(|p| p.programs.helm_version) {
        println!("    helm {helm} (known to work: {})", tools::HELM_KNOWN_TO_WORK);
    }

    let reports = if s.parallel > 1 {
        run_parallel(s, &prepared).await
    } else {
        run_one_after_another(s, &prepared).await
    };
    let index = report::write_index(&reports, &s.report_dir)?;
    println!("==> summary: {}", index.display());
    let failed: Vec<String> =
        reports.iter().filter(|r| !r.passed()).map(|r| r.dir_name()).collect();
    if failed.is_empty() {
        println!(
            "==> conformance passed for every version ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        bail!("conformance failed for {}: see {}", failed.join(", "), index.display())
    }
}

/// Every version in turn, handing the clusters on with `--reuse`.
async fn run_one_after_another(s: &Settings, prepared: &[Prepared]) -> Vec<VersionReport> {
    let mut reports = Vec::new();
    let mut reused: Option<KindRun> = None;
    let count = prepared.len();
    for (i, p) in prepared.iter().enumerate() {
        let last = i + 1 == count;
        let report = run_version(s, p, &mut reused, last).await;
        write_version_report(s, p, &report);
        reports.push(report);
    }
    if let Some(run) = reused.take() {
        finish_run(s, run).await;
    }
    reports
}

/// Up to `--parallel` versions at once, each in clusters of its own (their names carry
/// their run ids); the reports come back in version order for the index.
async fn run_parallel(s: &Settings, prepared: &[Prepared]) -> Vec<VersionReport> {
    use futures::StreamExt;
    futures::stream::iter(prepared)
        .map(|p| async move {
            let report = run_version(s, p, &mut None, true).await;
            write_version_report(s, p, &report);
            report
        })
        .buffered(s.parallel)
        .collect()
        .await
}

fn write_version_report(s: &Settings, p: &Prepared, report: &VersionReport) {
    // The run is over: its keys leave the report (CI uploads it as an artefact).
    let plan_dir = s.report_dir.join(report.dir_name()).join("plan");
    if let Err(e) = p.plan.remove_private_files(&plan_dir) {
        eprintln!("warning: private plan files could not be removed from the report: {e}");
    }
    match report.write(&s.report_dir) {
        Ok(w) => println!("==> report for Istio {}: {}", p.version, w.markdown.display()),
        Err(e) => eprintln!("warning: {e}"),
    }
}

/// Checks everything every version needs; all problems at once, in the order Docker,
/// node image, istioctl/release, helm, images, MetalLB manifest.
async fn preflight_all(s: &Settings) -> Result<Vec<Prepared>, Vec<String>> {
    let mut problems = Vec::new();
    let run_id = RunId::new();

    // Docker and the node images (kind's own preflight). One node image per version;
    // with --reuse every version runs on the first version's.
    let mut node_images: Vec<Option<String>> = Vec::new();
    for v in &s.versions {
        let first = node_images.first().cloned().flatten();
        let image = match (&s.node_image, s.reuse, first) {
            (Some(image), _, _) => Some(image.clone()),
            (None, true, Some(first)) => Some(first),
            (None, _, _) => match kind::node_image_for(*v) {
                Ok(known) => {
                    println!("    Istio {v}: node image {known}");
                    Some(known.reference())
                }
                Err(e) => {
                    problems.push(format!("Istio {v}: {e}"));
                    None
                }
            },
        };
        node_images.push(image);
    }
    let mut distinct: Vec<&String> = node_images.iter().flatten().collect();
    distinct.sort();
    distinct.dedup();
    let mut docker_ok = true;
    for image in distinct {
        let host = preflight::registry_host(image);
        let reachable = preflight::host_reachable(&host, 443, preflight::REACH_TIMEOUT).await;
        let opts = KindOptions::new(image.clone(), run_id.clone());
        match kind::preflight(&opts, reachable.is_ok(), NODE_IMAGE_PULL_TIMEOUT).await {
            Ok(report) => report.warnings.iter().for_each(|w| eprintln!("warning: {w}")),
            Err(kind::KindError::Preflight { problems: found }) => {
                docker_ok &= !found.iter().any(|p| p.kind == ProblemKind::Docker);
                for p in found {
                    match (&reachable, p.kind == ProblemKind::NodeImage) {
                        (Err(why), true) => {
                            problems.push(format!("{p} [registry {host} unreachable: {why}]"))
                        }
                        _ => problems.push(p.to_string()),
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        if !docker_ok {
            break;
        }
    }

    // Plans, programs and releases per version.
    let source = match ReleaseSource::from_env() {
        Ok(source) => Some(source),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let mut prepared = Vec::new();
    for (i, v) in s.versions.iter().enumerate() {
        let plan = match install::plan(&plan_options(s, *v)) {
            Ok(plan) => plan,
            Err(e) => {
                problems.push(format!("Istio {v}: planning: {e}"));
                continue;
            }
        };
        let needs = plan.options.needs();
        for repo in &needs.repositories {
            let host = &repo.host;
            if let Err(why) = preflight::host_reachable(host, 443, preflight::REACH_TIMEOUT).await {
                problems.push(format!(
                    "Istio {v}: {} installs {} from {} ({why}): run where it is reachable, or \
                     use --installer istioctl",
                    s.installer, repo.what, repo.url
                ));
            }
        }
        let Some(source) = &source else { continue };
        match preflight::programs(*v, &needs, s.istioctl.as_deref(), s.helm.as_deref(), source)
            .await
        {
            Ok((programs, _)) => {
                // A version without a node image has its problem recorded already.
                let Some(node_image) = node_images[i].clone() else { continue };
                prepared.push(Prepared {
                    version: *v,
                    images: images_for(s, *v),
                    plan,
                    programs,
                    node_image,
                })
            }
            Err(found) => problems.extend(found.iter().map(ToString::to_string)),
        }
    }

    // Images, when Docker answers.
    if docker_ok {
        let mut images: Vec<String> = s.versions.iter().flat_map(|v| images_for(s, *v)).collect();
        images.sort();
        images.dedup();
        problems.extend(image_problems(&images).await);
    }
    problems.extend(metallb_manifest_problem().await);

    if problems.is_empty() && prepared.len() == s.versions.len() {
        Ok(prepared)
    } else {
        // The same problem for several versions (e.g. helm missing) is said once.
        let mut seen = std::collections::BTreeSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        Err(problems)
    }
}

fn plan_options(s: &Settings, v: IstioVersion) -> PlanOptions {
    PlanOptions {
        istio: v,
        installer: s.installer,
        remotes: s.remotes,
        network_mode: s.network_mode,
        gateway_tls: s.gateway_tls,
        // Re-planned for the gateway's observed LoadBalancer IP after step 1.
        external_addr: PLACEHOLDER_EXTERNAL_ADDR,
        hub: s.hub.clone(),
        tag: s.tag.clone(),
    }
}

/// Every image a version's run loads into the nodes: Istio's, the samples', MetalLB's.
fn images_for(s: &Settings, v: IstioVersion) -> Vec<String> {
    let mut images = preflight::istio_images(v, s.hub.as_deref(), s.tag.as_deref());
    let mut samples = SampleImages::for_version(v);
    if let Some(hub) = &s.hub {
        samples = samples.with_hub(hub);
    }
    images.push(samples.helloworld_image("v1"));
    if s.remotes >= 2 {
        images.push(samples.helloworld_image("v2"));
    }
    images.push(samples.client_image.clone());
    images.extend(kind::metallb::images());
    images
}

/// Images missing locally whose registry does not answer, grouped by registry.
async fn image_problems(images: &[String]) -> Vec<String> {
    let docker = match docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            return vec![format!("Docker is not reachable: {e}")];
        }
    };
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for image in images {
        let reference = kind::images::with_default_tag(image);
        if docker.inspect_image(&reference).await.is_err() {
            missing.entry(preflight::registry_host(image)).or_default().push(image.clone());
        }
    }
    let mut problems = Vec::new();
    for (host, images) in missing {
        if let Err(why) = preflight::host_reachable(&host, 443, preflight::REACH_TIMEOUT).await {
            problems.push(preflight::missing_images_problem(&images, &host, &why));
        }
    }
    problems
}

/// MetalLB's manifest: cached with its published SHA-256, or its host reachable.
async fn metallb_manifest_problem() -> Option<String> {
    let cached = kind::metallb::cached_manifest_path();
    if let Ok(text) = std::fs::read_to_string(&cached) {
        return kind::metallb::verify_native_manifest(&text)
            .err()
            .map(|e| format!("{e}: remove {} to fetch it again", cached.display()));
    }
    let url = kind::metallb::native_manifest_url();
    let host = url.split('/').nth(2).unwrap_or_default();
    preflight::host_reachable(host, 443, preflight::REACH_TIMEOUT).await.err().map(|why| {
        format!(
            "MetalLB's manifest is not cached and {url} cannot be fetched ({why}): download it \
             where the network allows and put it at {}",
            cached.display()
        )
    })
}

/// With preflight failed, each version's report says so (no clusters were made).
fn write_setup_failure_reports(s: &Settings, problems: &[String]) {
    let mut reports = Vec::new();
    for v in &s.versions {
        let Ok(topology) = Topology::new(s.remotes, s.network_mode) else { return };
        let report = VersionReport {
            setup_error: Some(format!("preflight failed: {}", problems.join("; "))),
            not_run: not_run_all(s, "the preflight failed"),
            ..VersionReport::new(*v, s.installer, topology)
        };
        if let Err(e) = report.write(&s.report_dir) {
            eprintln!("warning: the Istio {v} report was not written: {e}");
        }
        reports.push(report);
    }
    if let Err(e) = report::write_index(&reports, &s.report_dir) {
        eprintln!("warning: the report index was not written: {e}");
    }
}

fn not_run_all(s: &Settings, why: &str) -> Vec<NotRun> {
    s.scenarios
        .iter()
        .map(|sc| NotRun { what: sc.name.into(), why: why.into() })
        .chain(s.not_run.iter().cloned())
        .collect()
}

/// One version: clusters (fresh, or reused), install, scenarios, diagnostics, report.
async fn run_version(
    s: &Settings,
    p: &Prepared,
    reused: &mut Option<KindRun>,
    last: bool,
) -> VersionReport {
    let started = Instant::now();
    let topology = p.plan.topology.clone();
    let mut report = VersionReport {
        helm_version: p.programs.helm_version.map(|v| v.to_string()),
        not_run: s.not_run.clone(),
        ..VersionReport::new(p.version, s.installer, topology.clone())
    };
    let dir = s.report_dir.join(report.dir_name());

    println!("==> Istio {} with {:?}: clusters", p.version, s.installer);
    let run = match reused.take() {
        Some(run) => Ok(run),
        None => start_clusters(s, p, &topology).await,
    };
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            report.setup_error = Some(format!("{e:#}"));
            report.not_run = not_run_all(s, "the clusters did not start");
            report.elapsed = started.elapsed();
            return report;
        }
    };

    let clusters = match cluster_access(&run).await {
        Ok(c) => c,
        Err(e) => {
            report.setup_error = Some(format!("{e:#}"));
            report.not_run = not_run_all(s, "the clusters could not be reached");
            finish_or_keep(s, run, reused, last).await;
            report.elapsed = started.elapsed();
            return report;
        }
    };

    println!("==> Istio {}: install (procedure steps 1 to 8)", p.version);
    let exec_opts = ExecOptions::new(dir.join("plan"), p.programs.clone());
    let execution = execute::execute(p.plan.clone(), &clusters, Phase::Install, &exec_opts).await;
    report.steps = execution.steps.clone();
    if first_step_done(&execution.steps) {
        report.external_addr = Some(execution.plan.options.external_addr);
    }
    let plan = execution.plan.clone();

    let failed;
    if let Some(error) = &execution.error {
        failed = true;
        report.setup_error = Some(format!("install failed: {error}"));
        report.not_run = not_run_all(s, "the install failed");
    } else {
        println!("==> Istio {}: scenarios", p.version);
        match run_scenarios(s, p, &plan, &run, &dir).await {
            Ok(results) => {
                failed = results.iter().any(|r| matches!(r.status, ScenarioStatus::Failed { .. }));
                report.scenarios = results;
            }
            Err(e) => {
                failed = true;
                report.setup_error = Some(format!("running the scenarios: {e:#}"));
                report.not_run = not_run_all(s, "nextest did not report");
            }
        }
        // What the outage scenario wrote; a variant without a file is "not measured".
        report.outages = OutageReport::read(&ecp_scenarios::figures_dir_in(&dir));
    }

    if failed {
        println!("==> Istio {}: collecting diagnostics from every cluster", p.version);
        let out = dir.join("diagnostics");
        match collect_diagnostics(&run, &clusters, &out).await {
            Ok(()) => {
                report.diagnostics = Some(PathBuf::from(report.dir_name()).join("diagnostics"))
            }
            Err(e) => eprintln!("warning: diagnostics: {e:#}"),
        }
    }

    if s.reuse && !last {
        println!("==> Istio {}: removing Istio for the next version (step 9)", p.version);
        let cleanup = execute::execute(plan, &clusters, Phase::Cleanup, &exec_opts).await;
        report.steps.extend(cleanup.steps);
        if let Some(e) = cleanup.error {
            report.setup_error.get_or_insert(format!("cleanup failed: {e}"));
            // Istio could not be removed: the next version gets fresh clusters.
            finish_run(s, run).await;
        } else {
            *reused = Some(run);
        }
    } else {
        finish_or_keep(s, run, reused, last).await;
    }
    report.elapsed = started.elapsed();
    report
}

fn first_step_done(steps: &[StepRecord]) -> bool {
    steps.iter().any(|st| st.number == 1)
        && steps.iter().filter(|st| st.number == 1).all(|st| st.error.is_none())
}

async fn start_clusters(
    s: &Settings,
    p: &Prepared,
    topology: &Topology,
) -> anyhow::Result<KindRun> {
    let run_id = RunId::new();
    // Recorded before anything exists, so `cargo xtask down` finds even a killed run.
    crate::runs::record(&run_id, "e2e")?;
    let mut opts = KindOptions::new(p.node_image.clone(), run_id);
    opts.registry_mirrors = s.registry_mirrors.clone();
    if s.keep {
        opts.state_dir = Some(cache_dir().join("runs"));
    }
    let run = KindRun::start(topology, &opts).await.context("starting the kind clusters")?;
    println!("    run {} on network {} ({})", run.run_id(), run.network(), run.subnet());
    let loaded = run.load_images(&p.images).await.context("loading images into the nodes")?;
    tracing::info!(?loaded, "images loaded");
    run.install_metallb(&MetalLbManifest::default()).await.context("installing MetalLB")?;
    Ok(run)
}

async fn cluster_access(run: &KindRun) -> anyhow::Result<Clusters> {
    let mut clusters = Clusters::new();
    for c in run.clusters() {
        let client = c.client().await.with_context(|| format!("cluster {}", c.spec.name))?;
        clusters.insert(
            c.spec.name.clone(),
            ClusterAccess {
                client,
                kubeconfig: c.host_kubeconfig.clone(),
                api_server: Some(c.peer_server()),
            },
        );
    }
    Ok(clusters)
}

/// Keeps the clusters with `--keep` on the last version, else removes them (or hands
/// them on with `--reuse`).
async fn finish_or_keep(s: &Settings, run: KindRun, reused: &mut Option<KindRun>, last: bool) {
    if s.reuse && !last {
        *reused = Some(run);
    } else {
        finish_run(s, run).await;
    }
}

async fn finish_run(s: &Settings, run: KindRun) {
    let id = run.run_id().clone();
    if s.keep {
        match run.keep() {
            Ok(dir) => println!(
                "==> kept run {id}: kubeconfigs in {}; remove with `cargo xtask down --run-id {id}`",
                dir.display()
            ),
            Err(e) => eprintln!("warning: keeping run {id}: {e}"),
        }
    } else if let Err(e) = run.down().await {
        eprintln!(
            "warning: removing run {id}: {e}; `cargo xtask down --run-id {id}` removes the rest"
        );
    } else {
        crate::runs::forget(&id);
        println!("==> removed run {id}");
    }
}

/// Writes the topology file and runs the selected scenarios with nextest.
async fn run_scenarios(
    s: &Settings,
    p: &Prepared,
    plan: &Plan,
    run: &KindRun,
    dir: &Path,
) -> anyhow::Result<Vec<ScenarioResult>> {
    std::fs::create_dir_all(dir)?;
    let topology_file = dir.join("topology.json");
    let file = TopologyFile {
        format: ecp_scenarios::FORMAT,
        run_id: run.run_id().to_string(),
        istio: p.version,
        installer: s.installer,
        topology: plan.topology.clone(),
        external_addr: plan.options.external_addr,
        kubeconfigs: run
            .clusters()
            .iter()
            .map(|c| (c.spec.name.clone(), c.host_kubeconfig.clone()))
            .collect(),
        istioctl: Some(p.programs.istioctl.clone()).filter(|p| p.is_absolute()),
    };
    file.write(&topology_file)?;
    let topology_file = std::path::absolute(&topology_file)?;
    // Figures of an earlier run in this report directory must not pass for this one's.
    let figures = ecp_scenarios::figures_dir_in(dir);
    match std::fs::remove_dir_all(&figures) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing old figures {}", figures.display()));
        }
        _ => {}
    }

    // nextest writes the e2e profile's JUnit to one fixed path: with --parallel, one
    // version's scenarios run at a time (clusters and installs still run in parallel).
    let _one_at_a_time = SCENARIO_RUNS.lock().await;
    let junit = target_dir().join("nextest").join("e2e").join("junit.xml");
    let _ = std::fs::remove_file(&junit);
    let names: Vec<&str> = s.scenarios.iter().map(|sc| sc.name).collect();
    let args = nextest_args(&names);
    println!("    cargo {}", args.join(" "));
    let status =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(&args)
            .env(TOPOLOGY_ENV, &topology_file)
            .current_dir(crate::workspace_root())
            .status()
            .await
            .context("starting cargo nextest")?;
    let results = report::read_junit(&junit)
        .with_context(|| format!("nextest exited with {status} and wrote no JUnit report"))?;
    let _ = std::fs::copy(&junit, dir.join("nextest-junit.xml"));
    Ok(results)
}

/// `cargo nextest run` of the selected scenario test binaries, in the `e2e` profile
/// (one retry, flaky results kept, JUnit written where the self-tests' `ci` profile
/// does not write).
fn nextest_args(scenarios: &[&str]) -> Vec<String> {
    let binaries =
        scenarios.iter().map(|name| format!("binary(={name})")).collect::<Vec<_>>().join(" | ");
    [
        "nextest",
        "run",
        "--package",
        "ecp-scenarios",
        "--features",
        "e2e",
        "--profile",
        "e2e",
        "--no-fail-fast",
        "-E",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("kind(test) & ({binaries})")])
    .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { crate::workspace_root().join(d) })
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// The diagnostics bundle from every cluster (the external cluster and
/// `external-istiod` included), plus Envoy config dumps of the mesh's proxies.
async fn collect_diagnostics(run: &KindRun, clusters: &Clusters, out: &Path) -> anyhow::Result<()> {
    let docker = docker::connect().await?;
    let mut inputs = Vec::new();
    for c in run.clusters() {
        let Some(access) = clusters.get(&c.spec.name) else { continue };
        let logs = docker::logs(&docker, &c.container_id, Some(2000)).await.unwrap_or_default();
        inputs.push(ClusterInput {
            name: c.spec.name.clone(),
            client: access.client.clone(),
            namespaces: DIAG_NAMESPACES.iter().map(|n| n.to_string()).collect(),
            container_logs: vec![(c.node.clone(), logs)],
        });
    }
    let bundle = diag::collect(&inputs, out, Duration::from_secs(10)).await?;
    for problem in &bundle.problems {
        eprintln!("    diagnostics: {problem}");
    }
    for (name, access) in clusters {
        config_dumps(name, access, &out.join(name).join("envoy")).await;
    }
    Ok(())
}

/// `pilot-agent request GET config_dump` in every proxy of the dumped namespaces
/// (sidecars and gateways), redacted, at most [`MAX_CONFIG_DUMPS`] per cluster.
async fn config_dumps(cluster: &str, access: &ClusterAccess, out: &Path) {
    let client = &access.client;
    let mut dumped = 0;
    for ns in DIAG_NAMESPACES {
        let Ok(pods) = checks::pods(cluster, client, ns, "").await else { continue };
        for pod in pods {
            if dumped >= MAX_CONFIG_DUMPS {
                return;
            }
            let has_proxy = checks::sidecar_placement(&pod).is_some()
                || pod
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.containers.iter().any(|c| c.name == checks::ISTIO_PROXY));
            let Some(name) = pod.metadata.name.clone() else { continue };
            if !has_proxy {
                continue;
            }
            let command = ["pilot-agent", "request", "GET", "config_dump"];
            let text = match checks::exec(client, ns, &name, checks::ISTIO_PROXY, &command).await {
                Ok(dump) => dump,
                Err(e) => format!("config dump failed: {e}\n"),
            };
            let path = out.join(format!("{ns}-{name}.json"));
            let _ = std::fs::create_dir_all(out);
            let _ = std::fs::write(&path, diag::redact_text(&text).as_bytes());
            dumped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_args("e2e", argv)
    }

    #[test]
    fn defaults_are_the_newest_release_with_istioctl_and_one_remote() {
        let s = settings(parse(&[]).unwrap()).unwrap();
        assert_eq!(s.versions, [NEWEST]);
        assert_eq!(s.installer, Installer::Istioctl);
        assert_eq!(s.remotes, 1);
        assert_eq!(s.network_mode, NetworkMode::MultiNetwork);
        assert_eq!(s.report_dir, PathBuf::from("target/ecp-report"));
        assert!(!s.keep && !s.reuse);
        assert_eq!(s.parallel, 1);
        let names: Vec<_> = s.scenarios.iter().map(|sc| sc.name).collect();
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
            s.not_run,
            [NotRun {
                what: "multi_remote".into(),
                why: "needs --remotes 2 (this run has 1)".into()
            }]
        );
    }

    #[test]
    fn every_option_parses() {
        let args = parse(&[
            "--istio",
            "1.22.8,1.30.3",
            "--installer",
            "helm",
            "--remotes",
            "2",
            "--keep",
            "--reuse",
            "--scenario",
            "multi_remote",
            "--scenario",
            "ingress_traffic",
            "--report",
            "out",
            "--istioctl",
            "/opt/istioctl",
            "--helm",
            "/opt/helm",
            "--node-image",
            "kindest/node:v1.30.0",
            "--hub",
            "quay.io/vendor",
            "--tag",
            "1.30.3-v1",
            "--gateway-tls",
            "simple",
            "--same-network",
        ])
        .unwrap();
        assert_eq!(parse(&["--parallel", "3"]).map(|a| a.parallel).unwrap(), 3);
        let s = settings(args).unwrap();
        assert_eq!(s.versions.len(), 2);
        assert_eq!(s.installer, Installer::Helm);
        assert_eq!(s.gateway_tls, GatewayTls::Simple);
        assert_eq!(s.network_mode, NetworkMode::SameNetwork);
        assert!(s.keep && s.reuse);
        let names: Vec<_> = s.scenarios.iter().map(|sc| sc.name).collect();
        assert_eq!(names, ["ingress_traffic", "multi_remote"]);
        assert_eq!(s.not_run.len(), SCENARIOS.len() - 2);
        assert!(s.not_run.iter().all(|n| n.why == "not selected with --scenario"));
        assert_eq!(s.istioctl.as_deref(), Some(Path::new("/opt/istioctl")));
        assert_eq!(s.node_image.as_deref(), Some("kindest/node:v1.30.0"));
        assert_eq!(s.hub.as_deref(), Some("quay.io/vendor"));
        assert_eq!(s.tag.as_deref(), Some("1.30.3-v1"));
    }

    /// `cargo xtask e2e --help` names every scenario there is.
    #[test]
    fn help_names_every_scenario() {
        let help = Cli::command().render_long_help().to_string();
        for s in SCENARIOS {
            assert!(help.contains(s.name), "{} missing from --help:\n{help}", s.name);
        }
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let err = settings(parse(&["--istio", "1.21.0"]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("1.22.0 and later"), "{err}");
        let err = settings(parse(&["--scenario", "nope"]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("unknown scenario `nope`") && err.contains("multi_remote"), "{err}");
        let err = settings(parse(&["--remotes", "0"]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("between 1 and 8"), "{err}");
        let err =
            settings(parse(&["--scenario", "multi_remote"]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("needs --remotes 2"), "{err}");
        assert!(parse(&["--installer", "kubectl"]).is_err());
        let err = settings(parse(&["--parallel", "0"]).unwrap()).unwrap_err().to_string();
        assert!(err.contains("--parallel 0"), "{err}");
        assert!(parse(&["--parallel", "2", "--reuse"]).is_err(), "reuse hands clusters on in turn");
    }

    #[test]
    fn help_documents_every_option() {
        let help = Cli::command().render_long_help().to_string();
        for option in [
            "--istio",
            "--installer",
            "--remotes",
            "--keep",
            "--reuse",
            "--scenario",
            "--report",
            "--istioctl",
            "--helm",
            "--node-image",
            "--hub",
            "--tag",
            "--gateway-tls",
            "--same-network",
            "--parallel",
        ] {
            assert!(help.contains(option), "{option} missing from:\n{help}");
        }
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            if arg.get_id() == "help" {
                continue;
            }
            assert!(arg.get_help().is_some(), "--{} has no doc comment", arg.get_id());
        }
    }

    #[test]
    fn nextest_runs_only_the_selected_scenario_binaries() {
        assert_eq!(
            nextest_args(&["control_plane_install", "multi_remote"]).join(" "),
            "nextest run --package ecp-scenarios --features e2e --profile e2e --no-fail-fast \
             -E kind(test) & (binary(=control_plane_install) | binary(=multi_remote))"
        );
    }

    #[test]
    fn images_cover_istio_samples_and_metallb() {
        let s = settings(parse(&["--istio", "1.29.6", "--remotes", "2"]).unwrap()).unwrap();
        let images = images_for(&s, s.versions[0]);
        assert_eq!(
            images,
            [
                "docker.io/istio/pilot:1.29.6",
                "docker.io/istio/proxyv2:1.29.6",
                "docker.io/istio/examples-helloworld-v1:1.0",
                "docker.io/istio/examples-helloworld-v2:1.0",
                "docker.io/curlimages/curl:8.16.0",
                "quay.io/metallb/controller:v0.14.3",
                "quay.io/metallb/speaker:v0.14.3",
            ]
        );
        let s = settings(parse(&["--istio", "1.23.6", "--hub", "my.reg/istio"]).unwrap()).unwrap();
        let images = images_for(&s, s.versions[0]);
        assert_eq!(images[0], "my.reg/istio/pilot:1.23.6");
        assert_eq!(images[2], "my.reg/istio/examples-helloworld-v1:1.0");
        assert_eq!(images[3], "curlimages/curl", "the client image keeps its own registry");
    }
}
