//! `cargo xtask e2e`: the conformance suite end to end, per Istio version. This file
//! is glue: it parses the arguments into [`SuiteOptions`], picks the cluster provider
//! (`kind`, or `existing` clusters named in a topology file), records the run ids it
//! creates (so that `cargo xtask down` finds a killed run), and prints. The run
//! itself is [`ecp_harness::suite::run`].

use std::path::PathBuf;

use ecp_harness::cluster::existing::{ExistingOptions, ExistingProvider};
use ecp_harness::cluster::kind::{self, KindOptions, KindProvider, RegistryMirror};
use ecp_harness::cluster::{RunId, cache_dir, docker};
use ecp_harness::conformance::{Implementation, RunInfo, SuiteBuild};
use ecp_harness::preflight::{Problem, ProblemKind};
use ecp_harness::suite::{self, Requested, ScenarioRunner, SuiteOptions};
use ecp_harness::topology::Topology;
use ecp_harness::version::IstioVersion;

use crate::args::InstallArgs;

/// How long pulling a missing node image may take in the preflight (only tried when
/// its registry answers).
const NODE_IMAGE_PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(clap::Args, Debug)]
#[command(after_help = "Per Istio version: \
        clusters from the provider (kind, or existing clusters), Istio's external control \
        plane installed with istioctl or Helm as docs/procedure.md describes, the scenarios \
        (`cargo nextest run -p ecp-scenarios`), diagnostics from every cluster for \
        failures, the report, and teardown.\n\n\
        With kind it needs Docker with registry access (kind node image, Istio images, the \
        Istio release). Where something is missing it stops within seconds, saying what is \
        missing and how to provide it, and creates nothing.\n\n\
        Scenarios: control_plane_install, sidecar_injection, in_mesh_traffic, \
        ingress_traffic, validation, outage (the external control plane goes away while \
        workloads run, and comes back), multi_remote (needs --remotes 2). Environment: \
        ECP_ISTIO_RELEASE_URL (a mirror of the Istio release downloads), ECP_CACHE_DIR \
        (where releases are cached), ECP_OFFLINE (try no network: fail at once where \
        something is missing), CI (plain progress lines).")]
pub struct Args {
    #[command(flatten)]
    pub install: InstallArgs,
    /// Where the clusters come from: `kind` (started and removed by the suite) or
    /// `existing` (clusters you have, named in --topology FILE; never deleted, only
    /// what the suite installed is removed; see docs/existing-clusters.md).
    #[arg(long, value_enum, default_value_t = ProviderArg::Kind)]
    pub provider: ProviderArg,
    /// With `--provider existing`: the topology file naming each cluster's kubeconfig,
    /// context and network.
    #[arg(long, value_name = "FILE", required_if_eq("provider", "existing"))]
    pub topology: Option<PathBuf>,
    /// With `--provider existing`: install even where Istio is already installed in a
    /// namespace the plan uses.
    #[arg(long)]
    pub force: bool,
    /// Keep the clusters (and Istio) after the run; `cargo xtask down` removes kind
    /// clusters.
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
    /// Pull through a registry mirror inside the kind nodes (containerd `hosts.toml`);
    /// repeat for several registries, e.g. `docker.io=http://kind-registry:5000`.
    #[arg(long = "registry-mirror", value_name = "REGISTRY=ENDPOINT")]
    pub registry_mirrors: Vec<RegistryMirror>,
    /// The distribution under test, for report.json and the summary: a YAML file
    /// with organization, product, version, url and contact (docs/report.md).
    /// Without it the report says "not given" (upstream Istio).
    #[arg(long, value_name = "FILE")]
    pub implementation: Option<PathBuf>,
}

/// Where the clusters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    Kind,
    Existing,
}

/// The suite's options from the arguments; notices (a version newer than the suite
/// knows) are printed. With existing clusters, the topology is the file's.
fn options(args: &Args, existing: Option<&Topology>) -> anyhow::Result<SuiteOptions> {
    let a = &args.install;
    let (remotes, network_mode) = match existing {
        Some(t) => (t.remotes().count(), t.network_mode),
        None => (a.remotes, a.network_mode()),
    };
    let requested = Requested {
        versions: a.istio.clone(),
        installer: a.installer,
        remotes,
        meshes: a.meshes,
        network_mode,
        gateway_tls: a.gateway_tls,
        hub: a.hub.clone(),
        tag: a.tag.clone(),
        overrides: a.overrides()?,
        cni: a.cni()?,
        keep: args.keep,
        reuse: args.reuse,
        parallel: args.parallel,
        scenarios: args.scenarios.clone(),
        report_dir: args.report.clone(),
        istioctl: args.istioctl.clone(),
        helm: args.helm.clone(),
    };
    let runner = ScenarioRunner {
        cargo: std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| "cargo".into()),
        workspace: crate::workspace_root(),
        target_dir: target_dir(),
    };
    let (mut options, notices) = SuiteOptions::new(requested, runner)?;
    for notice in notices {
        println!("note: {notice}");
    }
    options.run_info = RunInfo {
        command: command_line(),
        suite: suite_build(&crate::workspace_root()),
        implementation: args.implementation.as_deref().map(Implementation::read).transpose()?,
    };
    Ok(options)
}

/// This invocation as the user typed it through the cargo alias:
/// `cargo xtask <arguments>`.
fn command_line() -> Vec<String> {
    ["cargo", "xtask"].into_iter().map(String::from).chain(std::env::args().skip(1)).collect()
}

/// The suite's version and the git revision of `checkout` (`git rev-parse HEAD`;
/// dirty when tracked files have uncommitted changes); `unknown` where git or the
/// checkout is not there.
fn suite_build(checkout: &std::path::Path) -> SuiteBuild {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(checkout)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut build = SuiteBuild::default();
    if let Some(revision) = git(&["rev-parse", "HEAD"]) {
        build.revision = revision;
        build.dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_none_or(|changes| !changes.is_empty());
    }
    build
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // A bad topology file, a missing kubeconfig or an unknown context fails here,
    // before anything else.
    let existing = match (args.provider, &args.topology) {
        (ProviderArg::Existing, Some(file)) => {
            let first = args.install.istio.first().map(String::as_str).unwrap_or_default();
            let istio = IstioVersion::parse_supported(first)?;
            let provider = ExistingProvider::from_file(file, &existing_options(&args, istio))
                .map_err(|e| anyhow::anyhow!("--topology {}: {e}", file.display()))?;
            Some(provider)
        }
        _ => None,
    };
    let options = options(&args, existing.as_ref().map(ExistingProvider::topology))?;
    if existing.is_some() && args.install.meshes > 1 {
        anyhow::bail!(
            "--meshes {} with --provider existing: a topology file names the clusters of one \
             mesh (several meshes run on kind only)",
            args.install.meshes
        );
    }
    if existing.is_some() {
        if args.parallel > 1 {
            anyhow::bail!("--parallel: existing clusters hold one install at a time");
        }
        if args.keep && options.versions.len() > 1 {
            anyhow::bail!(
                "--keep with several versions: existing clusters hold one install at a time, \
                 and a kept install would be in the next version's way"
            );
        }
    }
    let interrupted = if existing.is_some() {
        "interrupted: what the install created on the existing clusters is still there: run \
         again with --force (its cleanup removes it), or delete the namespaces the plan names"
    } else {
        "interrupted: the run's clusters were removed (`cargo xtask down` removes anything \
         left behind)"
    };
    let rt = crate::runtime()?;
    let result = rt.block_on(async {
        let run = async {
            match &existing {
                Some(existing) => {
                    let provider = |v| Ok(existing.with_options(&existing_options(&args, v)));
                    suite::run(&options, provider, say).await
                }
                None => suite::run(&options, |v| kind_provider(&args, v), say).await,
            }
        };
        tokio::select! {
            result = run => result.map_err(anyhow::Error::from),
            // Dropping the runs removes kind clusters; existing ones stay as they are.
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(interrupted)),
        }
    });
    rt.block_on(forget_removed_runs());
    let passed = result?;
    println!("==> conformance passed for every version ({:.0} s)", passed.elapsed.as_secs_f64());
    Ok(())
}

/// The existing-cluster provider's options for one version.
fn existing_options(args: &Args, istio: IstioVersion) -> ExistingOptions {
    let mut opts = ExistingOptions::new(istio);
    opts.force = args.force;
    if args.keep {
        opts.state_dir = Some(cache_dir().join("runs"));
    }
    opts
}

fn say(line: &str) {
    println!("{line}");
}

/// The kind provider for one version: its node image (given, or the newest
/// Kubernetes the version supports), a run id recorded before anything exists.
fn kind_provider(args: &Args, v: IstioVersion) -> Result<KindProvider, Problem> {
    let image = match &args.node_image {
        Some(image) => image.clone(),
        None => {
            let known = kind::node_image_for(v).map_err(|e| {
                Problem::new(ProblemKind::NodeImage, format!("Istio {v}: {e}"), "pass --node-image")
            })?;
            println!("    Istio {v}: node image {known}");
            known.reference()
        }
    };
    let run_id = RunId::new();
    if let Ok(mut mine) = STARTED.lock() {
        mine.push(run_id.clone());
    }
    crate::runs::record(&run_id, "e2e").map_err(|e| {
        Problem::new(ProblemKind::Host, format!("recording run {run_id}: {e:#}"), "")
    })?;
    let mut opts = KindOptions::new(image, run_id);
    opts.registry_mirrors = args.registry_mirrors.clone();
    if args.keep {
        opts.state_dir = Some(cache_dir().join("runs"));
    }
    Ok(KindProvider { options: opts, pull_node_image: Some(NODE_IMAGE_PULL_TIMEOUT) })
}

/// The run ids this invocation recorded.
static STARTED: std::sync::Mutex<Vec<RunId>> = std::sync::Mutex::new(Vec::new());

/// Forgets this invocation's runs that left nothing on Docker (removed, or never
/// started); kept runs stay recorded for `cargo xtask down`.
async fn forget_removed_runs() {
    let Ok(docker) = docker::connect().await else { return };
    let mine = STARTED.lock().map(|m| m.clone()).unwrap_or_default();
    for id in mine {
        if let Ok(left) = docker::list_labelled(&docker, &docker::run_filter(&id)).await
            && left.is_empty()
        {
            crate::runs::forget(&id);
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { crate::workspace_root().join(d) })
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use ecp_harness::install::{GatewayTls, Installer};
    use ecp_harness::suite::scenarios::SCENARIOS;
    use ecp_harness::topology::NetworkMode;
    use ecp_harness::version::NEWEST;
    use std::path::Path;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_args("e2e", argv)
    }

    #[test]
    fn defaults_are_the_newest_release_with_istioctl_on_kind() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.provider, ProviderArg::Kind);
        let s = options(&args, None).unwrap();
        assert_eq!(s.versions, [NEWEST]);
        assert_eq!(s.installer, Installer::Istioctl);
        assert_eq!(s.remotes, 1);
        assert_eq!(s.network_mode, NetworkMode::MultiNetwork);
        assert_eq!(s.report_dir, PathBuf::from("target/ecp-report"));
        assert!(!s.keep && !s.reuse);
        assert_eq!(s.parallel, 1);
        assert_eq!(s.meshes, 1);
        assert_eq!(s.scenarios.len(), SCENARIOS.len() - 2, "all but multi_remote and multi_mesh");
    }

    #[test]
    fn every_option_parses_into_the_suite_options() {
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
        assert_eq!(args.node_image.as_deref(), Some("kindest/node:v1.30.0"));
        let s = options(&args, None).unwrap();
        assert_eq!(s.versions.len(), 2);
        assert_eq!(s.installer, Installer::Helm);
        assert_eq!(s.gateway_tls, GatewayTls::Simple);
        assert_eq!(s.network_mode, NetworkMode::SameNetwork);
        assert!(s.keep && s.reuse);
        let names: Vec<_> = s.scenarios.iter().map(|sc| sc.name).collect();
        assert_eq!(names, ["ingress_traffic", "multi_remote"]);
        assert_eq!(s.istioctl.as_deref(), Some(Path::new("/opt/istioctl")));
        assert_eq!(s.hub.as_deref(), Some("quay.io/vendor"));
        assert_eq!(s.tag.as_deref(), Some("1.30.3-v1"));
        assert_eq!(s.report_dir, PathBuf::from("out"));
    }

    #[test]
    fn the_report_knows_the_command_the_checkout_and_the_implementation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("impl.yaml");
        std::fs::write(
            &file,
            "organization: Example Corp\nproduct: Example Mesh\nversion: 3.1.0\n\
             url: https://mesh.example/\ncontact: mesh@example.com\n",
        )
        .unwrap();
        let args = parse(&["--implementation", file.to_str().unwrap()]).unwrap();
        let s = options(&args, None).unwrap();
        let i = s.run_info.implementation.unwrap();
        assert_eq!((i.organization.as_str(), i.version.as_str()), ("Example Corp", "3.1.0"));
        assert_eq!(&s.run_info.command[..2], ["cargo", "xtask"]);
        assert_eq!(s.run_info.suite.version, env!("CARGO_PKG_VERSION"));
        let here = suite_build(&crate::workspace_root());
        assert_eq!(here.revision.len(), 40, "this checkout is a git checkout: {here:?}");
        assert_eq!(suite_build(dir.path()).revision, "unknown");

        std::fs::write(&file, "organization: Example Corp\nproduct: x\n").unwrap();
        let err = options(&args, None).unwrap_err().to_string();
        assert!(err.contains("impl.yaml") && err.contains("version"), "{err}");
        std::fs::write(&file, "organization: ''\nproduct: x\nversion: 1\nurl: u\ncontact: c\n")
            .unwrap();
        let err = options(&args, None).unwrap_err().to_string();
        assert!(err.contains("`organization` is empty"), "{err}");
    }

    #[test]
    fn the_existing_provider_needs_a_topology_file() {
        let err = parse(&["--provider", "existing"]).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("--topology"), "{err}");
        let args = parse(&["--provider", "existing", "--topology", "t.yaml", "--force"]).unwrap();
        assert_eq!(args.provider, ProviderArg::Existing);
        assert!(args.force);
        assert!(parse(&["--provider", "openshift"]).is_err());
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let err = options(&parse(&["--istio", "1.21.0"]).unwrap(), None).unwrap_err().to_string();
        assert!(err.contains("1.22.0 and later"), "{err}");
        assert!(parse(&["--installer", "kubectl"]).is_err());
        assert!(parse(&["--parallel", "2", "--reuse"]).is_err(), "reuse hands clusters on in turn");
        assert!(parse(&["--same-network", "--network-mode", "multi-network"]).is_err());
        let err = options(&parse(&["--cni"]).unwrap(), None).unwrap_err().to_string();
        assert!(err.contains("--cni needs --installer sail"), "{err}");
    }

    /// `--cni` turns the Sail plan's `IstioCNI` on; off by default.
    #[test]
    fn cni_is_off_by_default_and_asked_with_sail() {
        let sail = |extra: &[&str]| {
            let mut argv = vec!["--installer", "sail", "--istio", "1.30.3"];
            argv.extend(extra);
            options(&parse(&argv).unwrap(), None).unwrap()
        };
        assert!(!sail(&[]).cni);
        assert!(sail(&["--cni"]).cni);
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
            "--network-mode",
            "--parallel",
            "--provider",
            "--topology",
            "--force",
            "--implementation",
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
}
