//! `cargo xtask report verify DIR`: checks a conformance report as a reader would
//! (docs/report.md "Verifying a report"); the checks are
//! [`ecp_harness::conformance::verify`], this file prints them.

use std::path::PathBuf;

use anyhow::bail;
use ecp_harness::conformance::verify;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Check a report directory: report.json's schema, that every scenario of each
    /// claimed profile is present and passed, that Istio's images that ran carry the
    /// claimed version and hub, and that summary.md and junit.xml are the files the
    /// run wrote. One line per problem; exits non-zero on any.
    Verify {
        /// A version's report directory (holding report.json), or a run's report
        /// directory (each version's directory under it is checked).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::Verify { dir } = args.command;
    let checked = verify::verify(&dir).map_err(anyhow::Error::msg)?;
    let mut problems = 0;
    for c in &checked {
        let what = match &c.report {
            Some(r) => {
                let claimed: Vec<&str> = r.claimed().iter().map(|p| p.name()).collect();
                let claimed =
                    if claimed.is_empty() { "no profile".to_string() } else { claimed.join(", ") };
                format!("Istio {} with {}, claims {claimed}", r.istio, r.installer.name())
            }
            None => "unreadable".into(),
        };
        if c.problems.is_empty() {
            println!("ok: {} ({what})", c.dir.display());
        } else {
            for p in &c.problems {
                println!("{}: {p}", c.dir.display());
            }
            problems += c.problems.len();
        }
    }
    if problems > 0 {
        bail!("{problems} problem(s) in the report under {}", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_args("report", argv)
    }

    #[test]
    fn a_directory_without_a_report_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(parse(&["verify", dir.path().to_str().unwrap()]).unwrap()).unwrap_err();
        let e = format!("{err:#}");
        assert!(e.contains("no report.json in") && e.contains("cargo xtask e2e"), "{e}");
        assert!(parse(&["verify"]).is_err(), "DIR is required");
    }
}
