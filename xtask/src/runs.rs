//! The runs started from this checkout: `cargo xtask up` and `e2e` record each run id
//! before they create anything, so `cargo xtask down` without arguments removes
//! exactly these (also after a killed run) and leaves other checkouts' and other
//! users' runs on the same Docker daemon alone.
//!
//! The records live in the checkout itself, `<workspace>/target/ecp-runs/<run id>`,
//! not under `CARGO_TARGET_DIR` (which several checkouts may share) and not in the
//! cache directory (shared by every checkout of a user).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ecp_harness::cluster::RunId;

/// Where this checkout records its runs.
pub(crate) fn records_dir() -> PathBuf {
    crate::workspace_root().join("target").join("ecp-runs")
}

/// Records `run` as started from this checkout by `command` (`up`, `e2e`).
pub(crate) fn record(run: &RunId, command: &str) -> anyhow::Result<()> {
    record_in(&records_dir(), run, command)
}

/// Forgets `run` (it was removed).
pub(crate) fn forget(run: &RunId) {
    forget_in(&records_dir(), run)
}

/// The run ids recorded in this checkout, sorted.
pub(crate) fn recorded() -> anyhow::Result<Vec<RunId>> {
    recorded_in(&records_dir())
}

fn record_in(dir: &Path, run: &RunId, command: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(run.as_str());
    std::fs::write(&path, format!("{command}\n"))
        .with_context(|| format!("record run {run} in {}", path.display()))
}

fn forget_in(dir: &Path, run: &RunId) {
    let path = dir.join(run.as_str());
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: could not remove the record {}: {e}", path.display());
    }
}

fn recorded_in(dir: &Path) -> anyhow::Result<Vec<RunId>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    let mut runs: Vec<RunId> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| is_run_id(name))
        .map(RunId::from_existing)
        .collect();
    runs.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(runs)
}

/// A run id as `--run-id` accepts it: letters, digits and dashes.
pub(crate) fn is_run_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_listed_until_forgotten_and_only_run_ids_count() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("ecp-runs");
        assert!(recorded_in(&records).unwrap().is_empty(), "no directory: no runs");
        let (a, b) = (RunId::from_existing("bbbbbbbbbb"), RunId::from_existing("aaaaaaaaaa"));
        record_in(&records, &a, "up").unwrap();
        record_in(&records, &b, "e2e").unwrap();
        std::fs::write(records.join("not a run id"), "").unwrap();
        assert_eq!(recorded_in(&records).unwrap(), [b.clone(), a.clone()]);
        forget_in(&records, &a);
        forget_in(&records, &a);
        assert_eq!(recorded_in(&records).unwrap(), [b]);
    }

    #[test]
    fn records_live_in_this_checkout_whatever_the_cargo_target_dir() {
        let dir = records_dir();
        assert!(dir.starts_with(crate::workspace_root()), "{}", dir.display());
        assert!(dir.ends_with("target/ecp-runs"), "{}", dir.display());
    }

    #[test]
    fn run_ids_are_letters_digits_and_dashes() {
        assert!(is_run_id("0123456789") && is_run_id("a-b"));
        assert!(!is_run_id("") && !is_run_id("../x") && !is_run_id("a b"));
    }
}
