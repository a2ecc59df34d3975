//! Success-rate accounting of a steady stream of requests: how many were sent, which
//! failed and why. A stream is a bounded number of requests at a fixed pace; the
//! judgement ("every one of at least N succeeded") is a pure function of the tally.

use std::future::Future;
use std::time::Duration;

/// How many failure reasons a tally keeps to explain itself.
const KEPT_REASONS: usize = 5;

/// The outcome of every request of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The stream's name in reports: `client -> helloworld`, `host -> ingress`.
    pub stream: String,
    pub sent: u32,
    /// The 0-based numbers of the requests that failed, in order.
    pub failed: Vec<u32>,
    /// The first few failure reasons, with the request number.
    pub reasons: Vec<String>,
}

impl Tally {
    pub fn new(stream: impl Into<String>) -> Self {
        Self { stream: stream.into(), ..Self::default() }
    }

    /// Records the next request: `Err` is a failure with its reason.
    pub fn record(&mut self, outcome: Result<(), String>) {
        if let Err(reason) = outcome {
            if self.reasons.len() < KEPT_REASONS {
                self.reasons.push(format!("request {}: {reason}", self.sent));
            }
            self.failed.push(self.sent);
        }
        self.sent += 1;
    }

    pub fn failures(&self) -> u32 {
        u32::try_from(self.failed.len()).unwrap_or(u32::MAX)
    }

    /// Percentage of requests that succeeded (0 when none was sent).
    pub fn success_rate(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        f64::from(self.sent - self.failures()) * 100.0 / f64::from(self.sent)
    }

    /// The stream's verdict: at least `min_requests` sent and every one succeeded.
    pub fn all_succeeded(&self, min_requests: u32) -> Result<(), String> {
        if self.sent < min_requests {
            return Err(format!(
                "{}: only {} requests sent, at least {min_requests} needed",
                self.stream, self.sent
            ));
        }
        if self.failed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}: {} of {} requests failed ({:.1}% succeeded): {}",
            self.stream,
            self.failures(),
            self.sent,
            self.success_rate(),
            self.reasons.join("; ")
        ))
    }
}

/// Sends `count` requests with `request`, starting one every `pace` (a request that
/// takes longer delays the next; each request bounds its own time), and tallies them.
pub async fn steady<F, Fut>(stream: &str, count: u32, pace: Duration, mut request: F) -> Tally
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut tally = Tally::new(stream);
    let mut ticks = tokio::time::interval(pace);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..count {
        ticks.tick().await;
        tally.record(request().await);
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(outcomes: &[bool]) -> Tally {
        let mut t = Tally::new("client -> helloworld");
        for (i, ok) in outcomes.iter().enumerate() {
            t.record(if *ok { Ok(()) } else { Err(format!("reset {i}")) });
        }
        t
    }

    #[test]
    fn every_request_succeeding_over_enough_requests_passes() {
        let t = tally(&[true; 50]);
        assert_eq!((t.sent, t.failures()), (50, 0));
        assert_eq!(t.success_rate(), 100.0);
        assert_eq!(t.all_succeeded(50), Ok(()));
    }

    #[test]
    fn too_few_requests_fail_even_if_all_succeeded() {
        let err = tally(&[true; 49]).all_succeeded(50).unwrap_err();
        assert!(err.contains("only 49 requests sent, at least 50"), "{err}");
        let err = Tally::new("x").all_succeeded(1).unwrap_err();
        assert!(err.contains("only 0"), "{err}");
        assert_eq!(Tally::new("x").success_rate(), 0.0);
    }

    #[test]
    fn one_failure_fails_and_is_named() {
        let mut outcomes = [true; 60];
        outcomes[17] = false;
        let t = tally(&outcomes);
        assert_eq!(t.failed, [17]);
        let err = t.all_succeeded(50).unwrap_err();
        assert!(err.starts_with("client -> helloworld: 1 of 60 requests failed"), "{err}");
        assert!(err.contains("98.3% succeeded") && err.contains("request 17: reset 17"), "{err}");
    }

    #[test]
    fn reasons_are_bounded_but_every_failure_is_counted() {
        let t = tally(&[false; 12]);
        assert_eq!(t.failures(), 12);
        assert_eq!(t.reasons.len(), KEPT_REASONS);
        assert_eq!(t.success_rate(), 0.0);
    }

    #[tokio::test]
    async fn a_steady_stream_sends_exactly_its_count_and_tallies_each_outcome() {
        let mut n = 0u32;
        let t = steady("s", 6, Duration::from_millis(1), || {
            n += 1;
            let ok = !n.is_multiple_of(3);
            async move { if ok { Ok(()) } else { Err("refused".to_string()) } }
        })
        .await;
        assert_eq!(n, 6);
        assert_eq!(t.sent, 6);
        assert_eq!(t.failed, [2, 5]);
    }
}
