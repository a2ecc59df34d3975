//! Progress of a plan's execution: an indicatif bar on a terminal, plain lines in CI
//! (the `CI` variable set) or when stderr is not a terminal. Both on stderr.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif progress bar with the running step as its message.
    Bar,
    /// One line per finished step.
    Lines,
    /// Nothing (tests, library callers).
    Quiet,
}

impl ProgressMode {
    /// `Lines` when `CI` is set (non-empty) or stderr is no terminal, else `Bar`.
    pub fn detect() -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        Self::choose(ci, std::io::stderr().is_terminal())
    }

    pub fn choose(ci: bool, terminal: bool) -> Self {
        if ci || !terminal { ProgressMode::Lines } else { ProgressMode::Bar }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Ok,
    Failed,
}

/// Reports steps as they start and finish.
pub struct Progress {
    mode: ProgressMode,
    total: usize,
    bar: Option<ProgressBar>,
    lines: Mutex<Box<dyn Write + Send>>,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: usize) -> Self {
        Self::with_writer(mode, total, Box::new(std::io::stderr()))
    }

    /// Plain lines go to `out` (for tests).
    pub fn with_writer(mode: ProgressMode, total: usize, out: Box<dyn Write + Send>) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { mode, total, bar, lines: Mutex::new(out) }
    }

    /// A step (0-based `index`) starts.
    pub fn started(&self, index: usize, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(index as u64);
            bar.set_message(label.to_string());
        }
    }

    /// A step finished.
    pub fn finished(&self, index: usize, label: &str, outcome: StepOutcome, elapsed: Duration) {
        let line = line(index, self.total, label, outcome, elapsed);
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(index as u64 + 1);
                    bar.println(line);
                }
            }
            ProgressMode::Lines => {
                if let Ok(mut out) = self.lines.lock() {
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            ProgressMode::Quiet => {}
        }
    }

    /// Clears the bar, if any.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `[ 3/14] ok     12.3s  step 2 on config: Install the remote profile`
pub fn line(
    index: usize,
    total: usize,
    label: &str,
    outcome: StepOutcome,
    elapsed: Duration,
) -> String {
    let width = total.to_string().len();
    let status = match outcome {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "FAILED",
    };
    format!("[{:>width$}/{total}] {status:<6} {:>6.1}s  {label}", index + 1, elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ci_or_no_terminal_means_plain_lines() {
        assert_eq!(ProgressMode::choose(true, true), ProgressMode::Lines);
        assert_eq!(ProgressMode::choose(false, false), ProgressMode::Lines);
        assert_eq!(ProgressMode::choose(true, false), ProgressMode::Lines);
        assert_eq!(ProgressMode::choose(false, true), ProgressMode::Bar);
    }

    #[test]
    fn lines_are_aligned_and_timed() {
        let l = line(
            2,
            14,
            "step 2 on config: remote profile",
            StepOutcome::Ok,
            Duration::from_millis(12_340),
        );
        assert_eq!(l, "[ 3/14] ok       12.3s  step 2 on config: remote profile");
        let l = line(
            13,
            14,
            "step 9 on external: cleanup",
            StepOutcome::Failed,
            Duration::from_secs(301),
        );
        assert_eq!(l, "[14/14] FAILED  301.0s  step 9 on external: cleanup");
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_mode_writes_one_line_per_finished_step_and_quiet_nothing() {
        let sink = Sink::default();
        let progress = Progress::with_writer(ProgressMode::Lines, 2, Box::new(sink.clone()));
        progress.started(0, "a");
        progress.finished(0, "a", StepOutcome::Ok, Duration::from_secs(1));
        progress.started(1, "b");
        progress.finished(1, "b", StepOutcome::Failed, Duration::from_secs(2));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().next().unwrap().ends_with(" a"));
        assert!(text.contains("FAILED"));

        let quiet_sink = Sink::default();
        let quiet = Progress::with_writer(ProgressMode::Quiet, 1, Box::new(quiet_sink.clone()));
        quiet.finished(0, "a", StepOutcome::Ok, Duration::from_secs(1));
        assert!(quiet_sink.0.lock().unwrap().is_empty());
    }
}
