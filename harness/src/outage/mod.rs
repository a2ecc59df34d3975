//! The outage scenario's judging and its figures. While the external control plane
//! is gone, workloads must keep serving ([`traffic`]), new pods in injected
//! namespaces must be refused by the injector, never admitted without a sidecar
//! ([`admission`]), and nothing may restart ([`restarts`]); after the restore,
//! injection, validation, routing and the refused Deployment recover within a
//! bounded time that is measured, not asserted ([`recovery`]). The figures of each
//! outage go into the report ([`OutageFigures`]).

pub mod admission;
pub mod recovery;
pub mod restarts;
pub mod traffic;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use admission::Admission;
pub use recovery::Recovery;
pub use traffic::Tally;

/// The outage variants, in the order the scenario runs them: the external istiod
/// scaled to 0, the control-plane gateway scaled to 0, the external cluster paused.
/// The report lists each, measured or not.
pub const VARIANTS: [&str; 3] = ["istiod", "gateway", "external-cluster"];

/// Requests of one stream during one outage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamFigure {
    pub stream: String,
    pub sent: u32,
    pub failed: u32,
}

/// The admission outcome of one probe (`pod in sample` -> `injection unavailable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeFigure {
    pub probe: String,
    pub outcome: String,
}

/// How long after the restore something recovered; `None`: not within the timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryFigure {
    pub what: String,
    pub seconds: Option<f64>,
}

/// The figures of one outage variant, written by the scenario and read into the
/// report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageFigures {
    /// One of [`VARIANTS`].
    pub variant: String,
    pub streams: Vec<StreamFigure>,
    pub probes: Vec<ProbeFigure>,
    pub recoveries: Vec<RecoveryFigure>,
}

#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    #[error("writing outage figures {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("reading outage figures {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
}

impl OutageFigures {
    pub fn new(variant: &str) -> Self {
        Self {
            variant: variant.to_string(),
            streams: Vec::new(),
            probes: Vec::new(),
            recoveries: Vec::new(),
        }
    }

    pub fn stream(&mut self, tally: &Tally) {
        self.streams.push(StreamFigure {
            stream: tally.stream.clone(),
            sent: tally.sent,
            failed: tally.failures(),
        });
    }

    pub fn probe(&mut self, probe: &str, outcome: &Admission) {
        self.probes.push(ProbeFigure { probe: probe.to_string(), outcome: outcome.to_string() });
    }

    pub fn recovery(&mut self, recovery: &Recovery) {
        self.recoveries.push(RecoveryFigure {
            what: recovery.what.clone(),
            seconds: recovery.after.map(|d| d.as_secs_f64()),
        });
    }

    /// The file of this variant in `dir`: `outage-<variant>.json`.
    pub fn path(dir: &Path, variant: &str) -> PathBuf {
        dir.join(format!("outage-{variant}.json"))
    }

    /// Writes the figures to `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, FiguresError> {
        let path = Self::path(dir, &self.variant);
        let fail = |reason: String| FiguresError::Write { path: path.clone(), reason };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| fail(e.to_string()))?;
        Ok(path)
    }

    /// Every `outage-*.json` in `dir`, by variant name; none if `dir` does not exist.
    /// The first unreadable file is the error.
    pub fn read_all(dir: &Path) -> Result<Vec<Self>, FiguresError> {
        let (all, mut errors) = Self::read_each(dir);
        if errors.is_empty() { Ok(all) } else { Err(errors.remove(0)) }
    }

    /// Every `outage-*.json` in `dir` that reads, by variant name, and an error naming
    /// each file that does not (a malformed file does not hide the others). Nothing
    /// if `dir` does not exist: no scenario wrote figures.
    pub fn read_each(dir: &Path) -> (Vec<Self>, Vec<FiguresError>) {
        let read = |path: &Path, reason: String| FiguresError::Read { path: path.into(), reason };
        let Ok(entries) = std::fs::read_dir(dir) else { return (Vec::new(), Vec::new()) };
        let (mut all, mut errors) = (Vec::new(), Vec::new());
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(e) => errors.push(read(dir, e.to_string())),
            }
        }
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !(name.starts_with("outage-") && name.ends_with(".json")) {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str::<Self>(&text).map_err(|e| e.to_string()));
            match parsed {
                Ok(figures) => all.push(figures),
                Err(reason) => errors.push(read(&path, reason)),
            }
        }
        all.sort_by(|a, b| a.variant.cmp(&b.variant));
        (all, errors)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    pub(crate) fn sample(variant: &str) -> OutageFigures {
        let mut f = OutageFigures::new(variant);
        let mut t = Tally::new("client -> helloworld");
        for _ in 0..60 {
            t.record(Ok(()));
        }
        f.stream(&t);
        f.probe("pod in sample", &Admission::InjectionUnavailable);
        let now = Instant::now();
        f.recovery(&Recovery::from_outcome(
            "injection",
            now,
            now + Duration::from_millis(2500),
            Ok(()),
        ));
        f.recovery(&Recovery::from_outcome("routing", now, now, Err("v2 seen".into())));
        f
    }

    #[test]
    fn figures_carry_tallies_outcomes_and_recoveries() {
        let f = sample("istiod");
        assert_eq!(
            f.streams[0],
            StreamFigure { stream: "client -> helloworld".into(), sent: 60, failed: 0 }
        );
        assert_eq!(f.probes[0].outcome, "injection unavailable");
        assert_eq!(f.recoveries[0].seconds, Some(2.5));
        assert_eq!(f.recoveries[1].seconds, None);
    }

    #[test]
    fn figures_round_trip_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OutageFigures::read_all(&dir.path().join("none")).unwrap().is_empty());
        let figures = dir.path().join("figures");
        sample("istiod").write(&figures).unwrap();
        sample("gateway").write(&figures).unwrap();
        std::fs::write(figures.join("other.json"), "{}").unwrap();
        let all = OutageFigures::read_all(&figures).unwrap();
        assert_eq!(
            all.iter().map(|f| f.variant.as_str()).collect::<Vec<_>>(),
            ["gateway", "istiod"]
        );
        assert_eq!(all[1], sample("istiod"));
        std::fs::write(figures.join("outage-bad.json"), "{").unwrap();
        let err = OutageFigures::read_all(&figures).unwrap_err().to_string();
        assert!(err.contains("outage-bad.json"), "{err}");
        let (good, errors) = OutageFigures::read_each(&figures);
        assert_eq!(good.len(), 2, "a malformed file does not hide the others");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("outage-bad.json"), "{}", errors[0]);
    }
}
