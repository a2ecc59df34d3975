//! `cargo xtask`: the suite's commands. One file per task.

mod args;
mod bench;
mod down;
mod e2e;
mod plan;
mod report;
mod runs;
mod status;
mod test;
mod up;

use clap::{Parser, Subcommand};

/// End-to-end harness and conformance suite for Istio's external control plane.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print (and with --out, write) the install plan for a topology, offline.
    Plan(plan::Args),
    /// Run the project's own tests: unit, snapshot and control-plane-only clusters.
    Test(test::Args),
    /// Run the conformance suite end to end on kind clusters.
    E2e(e2e::Args),
    /// Start test clusters for manual use and print their kubeconfig paths.
    Up(up::Args),
    /// Show the clusters, containers and networks of this suite's runs.
    Status(status::Args),
    /// Remove the containers and networks of this checkout's runs (or --run-id, --all).
    Down(down::Args),
    /// Run a benchmark and print what it measured.
    Bench(bench::Args),
    /// Check a conformance report (`report verify DIR`).
    Report(report::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    ecp_harness::install_crypto_provider();
    let result = match cli.command {
        Command::Plan(a) => plan::run(a),
        Command::Test(a) => test::run(a),
        Command::E2e(a) => e2e::run(a),
        Command::Up(a) => up::run(a),
        Command::Status(a) => status::run(a),
        Command::Down(a) => down::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Report(a) => report::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line for the cause chain: `error: what failed: why`.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` selects what is logged (default: warnings and errors) on stderr.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Writes `text` to stdout. A reader that went away (`cargo xtask plan | head`) ends
/// the output quietly instead of panicking like `print!` does.
fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The workspace (this checkout's root directory).
fn workspace_root() -> std::path::PathBuf {
    use std::path::Path;
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Parses a command's arguments as `cargo xtask <name> ARGV...` would (for tests).
#[cfg(test)]
fn parse_args<A: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    argv: &[&str],
) -> Result<A, clap::Error> {
    let command = A::augment_args(clap::Command::new(name));
    let matches =
        command.try_get_matches_from(std::iter::once(name).chain(argv.iter().copied()))?;
    A::from_arg_matches(&matches)
}

/// A tokio runtime for the async commands.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
