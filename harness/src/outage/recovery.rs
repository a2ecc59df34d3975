//! Recovery after an outage is restored: how long until something works again,
//! measured from the restore and reported, never asserted as a duration. Each
//! recovery is bounded by a timeout ([`RECOVERY_TIMEOUT`] in the scenarios); the
//! verdict names what did not recover within it.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long the outage scenario waits for each recovery.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// One recovery: what, and how long after the restore it happened (`None`: not
/// within the timeout, with what was seen last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub what: String,
    pub after: Option<Duration>,
    pub last_seen: Option<String>,
}

impl Recovery {
    /// The recovery of `what` from its outcome: `Ok` at `ended` means it recovered
    /// `ended - restored` after the restore.
    pub fn from_outcome(
        what: &str,
        restored: Instant,
        ended: Instant,
        outcome: Result<(), String>,
    ) -> Self {
        match outcome {
            Ok(()) => Self {
                what: what.to_string(),
                after: Some(ended.saturating_duration_since(restored)),
                last_seen: None,
            },
            Err(last) => Self { what: what.to_string(), after: None, last_seen: Some(last) },
        }
    }
}

/// Runs `until` (a watch-based wait, or [`poll`]) with `timeout` and measures the
/// recovery from `restored`.
pub async fn measure<Fut>(what: &str, restored: Instant, timeout: Duration, until: Fut) -> Recovery
where
    Fut: Future<Output = Result<(), String>>,
{
    let outcome = match tokio::time::timeout(timeout, until).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("not within {timeout:?}")),
    };
    let recovery = Recovery::from_outcome(what, restored, Instant::now(), outcome);
    tracing::info!(what, after = ?recovery.after, "recovery measured");
    recovery
}

/// For what has no watchable condition (admission of a new object, traffic): tries
/// `probe` up to `attempts` times, `interval` apart, until it succeeds; the error is
/// the last attempt's.
pub async fn poll<F, Fut>(interval: Duration, attempts: u32, mut probe: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut last = String::from("never tried");
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(interval).await;
        }
        match probe().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(format!("after {attempts} attempts: {last}"))
}

/// The verdict over every recovery: all happened, or which did not, and why.
pub fn all_recovered(recoveries: &[Recovery]) -> Result<(), String> {
    let missing: Vec<String> = recoveries
        .iter()
        .filter(|r| r.after.is_none())
        .map(|r| format!("{} did not recover ({})", r.what, r.last_seen.as_deref().unwrap_or("?")))
        .collect();
    if recoveries.is_empty() {
        return Err("no recovery was measured".into());
    }
    if missing.is_empty() { Ok(()) } else { Err(missing.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_is_measured_from_the_restore() {
        let restored = Instant::now();
        let ended = restored + Duration::from_millis(4200);
        let r = Recovery::from_outcome("injection", restored, ended, Ok(()));
        assert_eq!(r.after, Some(Duration::from_millis(4200)));
        assert_eq!(r.last_seen, None);
        assert_eq!(all_recovered(&[r]), Ok(()));
    }

    #[test]
    fn what_did_not_recover_is_named_with_what_was_seen() {
        let t = Instant::now();
        let ok = Recovery::from_outcome("validation", t, t, Ok(()));
        let stuck = Recovery::from_outcome("injection", t, t, Err("injection unavailable".into()));
        assert_eq!(stuck.after, None);
        let err = all_recovered(&[ok, stuck]).unwrap_err();
        assert_eq!(err, "injection did not recover (injection unavailable)");
        assert!(all_recovered(&[]).is_err(), "nothing measured proves nothing");
    }

    #[test]
    fn an_end_before_the_restore_counts_as_zero() {
        let t = Instant::now() + Duration::from_secs(1);
        let r = Recovery::from_outcome("x", t, t - Duration::from_millis(5), Ok(()));
        assert_eq!(r.after, Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn polling_stops_at_the_first_success_and_is_bounded() {
        let mut n = 0;
        let ok = poll(Duration::from_millis(1), 10, || {
            n += 1;
            let done = n == 3;
            async move { if done { Ok(()) } else { Err(format!("attempt {n}")) } }
        })
        .await;
        assert_eq!((ok, n), (Ok(()), 3));
        let mut n = 0;
        let err = poll(Duration::from_millis(1), 4, || {
            n += 1;
            let seen = n;
            async move { Err(format!("refused {seen}")) }
        })
        .await
        .unwrap_err();
        assert_eq!(n, 4);
        assert_eq!(err, "after 4 attempts: refused 4");
    }

    #[tokio::test]
    async fn a_measurement_that_times_out_did_not_recover() {
        let r = measure("routing", Instant::now(), Duration::from_millis(20), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        assert_eq!(r.after, None);
        assert!(r.last_seen.unwrap().starts_with("not within"));
        let r = measure("routing", Instant::now(), Duration::from_secs(5), async { Ok(()) }).await;
        assert!(r.after.is_some());
    }
}
