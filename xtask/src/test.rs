//! `cargo xtask test`: the project's own tests, everything needed included.
//!
//! 1. `cargo fmt --check`, `cargo clippy --workspace --all-targets -D warnings`, the
//!    same for the scenario tests (`-p ecp-scenarios --features e2e`, which only
//!    build with that feature) and `cargo doc --no-deps` with warnings denied (fast
//!    feedback first; `--no-lint` skips them).
//! 2. The Kubernetes binaries for control-plane-only clusters (obtained and cached
//!    once, see `ecp_harness::cluster::assets`) and the local image built from them.
//! 3. `cargo nextest run --workspace --features ecp-harness/stand-ins --profile ci`
//!    (the feature builds the test stand-ins; installs cargo-nextest if missing), with
//!    `ECP_K8S_ASSETS` naming the binaries and a session label on everything the
//!    tests create.
//! 4. A check that the tests left no labelled container or network behind (it fails
//!    the run if they did, after removing them).

use std::time::Instant;

use anyhow::{Context, bail};
use ecp_harness::cluster::assets::{ASSETS_ENV, Assets};
use ecp_harness::cluster::{RunId, SESSION_ENV, SESSION_LABEL, docker, image};
use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check`, `cargo clippy` and `cargo doc`.
    #[arg(long)]
    no_lint: bool,
    /// Nextest profile (see .config/nextest.toml).
    #[arg(long, default_value = "ci")]
    profile: String,
    /// Further arguments for `cargo nextest run` (e.g. a test filter), after `--`.
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

/// The feature that builds the test stand-ins (the outage tests' injection webhook).
const STAND_INS: &str = "ecp-harness/stand-ins";

pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    if !args.no_lint {
        step("cargo fmt --check");
        cmd!(sh, "cargo fmt --all --check").run().context("formatting differs: run `cargo fmt`")?;
        step(
            "cargo clippy --workspace --all-targets --features ecp-harness/stand-ins -- -D warnings",
        );
        cmd!(sh, "cargo clippy --workspace --all-targets --features {STAND_INS} -- -D warnings")
            .run()?;
        // The scenario tests build only with `e2e` (they need real clusters to run):
        // linting them here is what keeps them compiling.
        step("cargo clippy -p ecp-scenarios --features e2e --all-targets -- -D warnings");
        cmd!(sh, "cargo clippy -p ecp-scenarios --features e2e --all-targets -- -D warnings")
            .run()?;
        step("cargo doc --no-deps --workspace (warnings denied: no broken intra-doc link)");
        cmd!(sh, "cargo doc --no-deps --workspace").env("RUSTDOCFLAGS", "-D warnings").run()?;
    }

    let rt = crate::runtime()?;
    let assets = rt.block_on(prepare_clusters())?;
    ensure_nextest(&sh)?;

    let session = RunId::new();
    step(&format!(
        "cargo nextest run --workspace --features {STAND_INS} --profile {} (session {session})",
        args.profile
    ));
    let profile = &args.profile;
    let extra = &args.nextest_args;
    let tests = cmd!(
        sh,
        "cargo nextest run --workspace --features {STAND_INS} --profile {profile} {extra...}"
    )
    .env(ASSETS_ENV, &assets.dir)
    .env(SESSION_ENV, session.as_str())
    .run();
    let leftovers = rt.block_on(remove_leftovers(&session));
    if profile == "ci" {
        println!("JUnit report: target/nextest/ci/junit.xml");
    }
    if let (Err(_), Err(e)) = (&tests, &leftovers) {
        eprintln!("error: {e:#}");
    }
    tests.context("tests failed")?;
    leftovers?;
    println!("cargo xtask test: all passed; no labelled container or network left behind");
    Ok(())
}

fn step(what: &str) {
    println!("==> {what}");
}

/// Kubernetes binaries (cached after the first time) and the image built from them.
pub(crate) async fn prepare_clusters() -> anyhow::Result<Assets> {
    step("kubernetes binaries for control-plane-only clusters");
    let t = Instant::now();
    let progress = |line: &str| println!("    {line}");
    let assets = Assets::ensure(&progress).await?;
    let docker = docker::connect().await?;
    let tag = image::ensure_image(&docker, &assets).await?;
    println!("    image {tag} ready ({:.1?})", t.elapsed());
    Ok(assets)
}

fn ensure_nextest(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "cargo nextest --version").quiet().ignore_stdout().ignore_stderr().run().is_ok() {
        return Ok(());
    }
    step("cargo install cargo-nextest --locked (once)");
    cmd!(sh, "cargo install cargo-nextest --locked").run().context("installing cargo-nextest")?;
    Ok(())
}

/// Removes whatever the session's tests left behind; an error if there was anything.
async fn remove_leftovers(session: &RunId) -> anyhow::Result<()> {
    let docker = docker::connect().await?;
    let removed =
        docker::remove_labelled(&docker, &format!("{SESSION_LABEL}={}", session.as_str())).await?;
    if removed.is_empty() {
        return Ok(());
    }
    let containers: Vec<&str> = removed.containers.iter().map(|c| c.name.as_str()).collect();
    let networks: Vec<&str> = removed.networks.iter().map(|n| n.name.as_str()).collect();
    bail!(
        "the tests left containers {containers:?} and networks {networks:?} behind (now removed): \
         a cleanup path is broken"
    )
}
