//! The greeting checks (procedure.md steps 6 to 8): helloworld answers
//! `Hello version: <v>, instance: <pod>`, asked from inside the mesh (`curl` in a
//! client pod, [`super::exec::exec`]) or from outside it (an HTTP GET from this process to
//! the ingress gateway's LoadBalancer IP, [`super::http`]). Traffic has no watchable
//! condition, so these retry with the documentation test's back-off ([`Retry`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::Api;

use super::{CheckFailed, failed, shorten};
use crate::kube::conditions::load_balancer_ip;

/// helloworld's answer: `Hello version: v1, instance: helloworld-v1-6d9c...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub version: String,
    pub instance: String,
}

/// Reads helloworld's greeting from a response body (surrounding whitespace allowed).
pub fn parse_greeting(body: &str) -> Option<Greeting> {
    let rest = body.trim().strip_prefix("Hello version: ")?;
    let (version, instance) = rest.split_once(", instance: ")?;
    let instance = instance.trim();
    let valid = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (valid(version) && valid(instance))
        .then(|| Greeting { version: version.to_string(), instance: instance.to_string() })
}

/// Tallies greetings by version over `bodies`; bodies that are no greeting are kept
/// (at most 3) to explain a failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GreetingTally {
    pub versions: BTreeMap<String, u32>,
    pub others: Vec<String>,
}

impl GreetingTally {
    pub fn record(&mut self, body: &str) {
        match parse_greeting(body) {
            Some(g) => *self.versions.entry(g.version).or_default() += 1,
            None if self.others.len() < 3 => self.others.push(shorten(body.trim(), 200)),
            None => {}
        }
    }

    pub fn has_all(&self, versions: &[String]) -> bool {
        versions.iter().all(|v| self.versions.contains_key(v))
    }

    pub fn describe(&self) -> String {
        let seen: Vec<String> = self.versions.iter().map(|(v, n)| format!("{v} x{n}")).collect();
        let mut out = format!("greetings seen: [{}]", seen.join(", "));
        if !self.others.is_empty() {
            out.push_str(&format!("; other answers: {:?}", self.others));
        }
        out
    }
}

/// How greeting checks retry: as the documentation test's `__verify_with_retry`
/// (istio.io `tests/util/verify.sh`), 7 attempts with exponential back-off, sleeping
/// 2^n s after the n-th failed attempt: 2 + 4 + ... + 64 = 126 s between the first
/// and the last attempt.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    /// The sleep after the first failed attempt; each later one doubles it.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 7, first_delay: Duration::from_secs(2) }
    }
}

impl Retry {
    /// The sleep after each failed attempt but the last.
    pub fn delays(&self) -> Vec<Duration> {
        (0..self.attempts.saturating_sub(1))
            .map(|n| self.first_delay.saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX)))
            .collect()
    }

    /// The time spent sleeping between attempts when every attempt fails.
    pub fn budget(&self) -> Duration {
        self.delays().iter().sum()
    }
}

/// What a greeting check expects: the greeting of every version of `versions` seen
/// within `requests` requests of one attempt, attempts made per `retry`.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub versions: &'a [String],
    pub requests: u32,
    pub retry: Retry,
}

/// Sends `expected.requests` requests with `get` per attempt until the greetings of
/// every expected version were seen in one attempt, retrying per `expected.retry`.
/// `check` names what is asked in the error.
pub async fn greetings<F, Fut>(
    cluster: &str,
    check: &str,
    expected: Expected<'_>,
    mut get: F,
) -> Result<GreetingTally, CheckFailed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let Expected { versions, requests, retry } = expected;
    if versions.is_empty() {
        return Err(failed(cluster, check, "no expected version given: nothing would be checked"));
    }
    let started = Instant::now();
    let mut last_error = None;
    let mut delays = retry.delays().into_iter();
    let last = loop {
        let mut tally = GreetingTally::default();
        for _ in 0..requests.max(1) {
            match get().await {
                Ok(body) => tally.record(&body),
                Err(e) => last_error = Some(e),
            }
            if tally.has_all(versions) {
                return Ok(tally);
            }
        }
        match delays.next() {
            Some(delay) => tokio::time::sleep(delay).await,
            None => break tally,
        }
    };
    let mut detail = format!("after {:?}: {}", started.elapsed(), last.describe());
    if let Some(e) = last_error {
        detail.push_str(&format!("; last error: {e}"));
    }
    Err(failed(cluster, format!("{check} answers {}", versions.join(" and ")), detail))
}

/// Where an in-mesh greeting is asked: `curl -sS <url>` in container `container` of
/// a running pod matching `selector` in `namespace`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FromPod<'a> {
    pub namespace: &'a str,
    pub selector: &'a str,
    pub container: &'a str,
    pub url: &'a str,
}

/// The in-mesh greeting check (the plan's `ExecGreeting`).
pub(super) async fn from_pod(
    cluster: &str,
    client: &Client,
    from: FromPod<'_>,
    expected: Expected<'_>,
) -> Result<GreetingTally, CheckFailed> {
    let FromPod { namespace, selector, container, url } = from;
    let check = format!("curl {url} from {selector} in {namespace}");
    let pods = super::pods(cluster, client, namespace, selector).await?;
    let running = pods.iter().find(|p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            && p.metadata.deletion_timestamp.is_none()
    });
    let Some(pod) = running.and_then(|p| p.metadata.name.clone()) else {
        return Err(failed(cluster, check, "no running pod matches"));
    };
    greetings(cluster, &check, expected, || {
        let pod = pod.clone();
        async move { super::exec(client, namespace, &pod, container, &["curl", "-sS", url]).await }
    })
    .await
}

/// Where a greeting from outside the mesh is asked: `GET http://<ip>:<port><path>`,
/// `ip` the LoadBalancer IP of Service `service` in `namespace`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ThroughIngress<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub port: u16,
    pub path: &'a str,
}

/// The greeting check from outside the mesh (the plan's `IngressGreeting`).
pub(super) async fn through_ingress(
    cluster: &str,
    client: &Client,
    to: ThroughIngress<'_>,
    expected: Expected<'_>,
) -> Result<GreetingTally, CheckFailed> {
    let ThroughIngress { namespace, service, port, path } = to;
    let check = format!("http://<{namespace}/{service}>:{port}{path}");
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(service)
        .await
        .map_err(|e| failed(cluster, &check, format!("reading the service failed: {e}")))?
        .ok_or_else(|| failed(cluster, &check, "the service does not exist"))?;
    let ip = load_balancer_ip(&svc)
        .ok_or_else(|| failed(cluster, &check, "the service has no LoadBalancer IP"))?;
    let check = format!("http://{ip}:{port}{path}");
    let http = super::http::HostClient::new().map_err(|e| failed(cluster, &check, e))?;
    greetings(cluster, &check, expected, || http.get(ip, port, path)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_parse() {
        assert_eq!(
            parse_greeting("Hello version: v1, instance: helloworld-v1-776f57d5f6-s7zfc\n"),
            Some(Greeting {
                version: "v1".into(),
                instance: "helloworld-v1-776f57d5f6-s7zfc".into()
            })
        );
        assert_eq!(parse_greeting("Hello version: v2, instance: x").unwrap().version, "v2");
        assert_eq!(parse_greeting("upstream connect error or disconnect/reset"), None);
        assert_eq!(parse_greeting("Hello version: , instance: x"), None);
        assert_eq!(parse_greeting("Hello version: v1, instance: "), None);
        assert_eq!(parse_greeting("no healthy upstream"), None);
    }

    fn versions(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn greetings_stop_as_soon_as_every_version_was_seen() {
        let answers = ["Hello version: v1, instance: a", "Hello version: v2, instance: b"];
        let mut n = 0;
        let retry = Retry { attempts: 7, first_delay: Duration::from_millis(1) };
        let both = versions(&["v1", "v2"]);
        let expected = Expected { versions: &both, requests: 10, retry };
        let tally = greetings("config", "x", expected, || {
            let body = answers[n % 2].to_string();
            n += 1;
            async move { Ok(body) }
        })
        .await
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(tally.versions.len(), 2);
    }

    #[tokio::test]
    async fn missing_versions_fail_with_what_was_seen() {
        let mut calls = 0;
        let retry = Retry { attempts: 3, first_delay: Duration::from_millis(1) };
        let both = versions(&["v1", "v2"]);
        let expected = Expected { versions: &both, requests: 10, retry };
        let err = greetings("config", "ingress", expected, || {
            calls += 1;
            async move {
                if calls % 5 == 0 {
                    Err("connection refused".to_string())
                } else {
                    Ok("Hello version: v1, instance: a".to_string())
                }
            }
        })
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cluster config: ingress answers v1 and v2"), "{msg}");
        assert!(msg.contains("v1 x"), "{msg}");
        assert!(msg.contains("connection refused"), "{msg}");
        assert_eq!(calls, 30, "three attempts of 10 requests each, no more");
    }

    #[test]
    fn the_retry_budget_is_the_doc_tests_exponential_back_off() {
        let retry = Retry::default();
        let secs: Vec<u64> = retry.delays().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64]);
        assert_eq!(retry.budget(), Duration::from_secs(126));
        assert!(Retry { attempts: 1, first_delay: Duration::from_secs(2) }.delays().is_empty());
        assert!(Retry { attempts: 0, first_delay: Duration::from_secs(2) }.delays().is_empty());
    }

    #[tokio::test]
    async fn an_empty_list_of_versions_is_refused_before_any_request() {
        let mut calls = 0;
        let expected = Expected { versions: &[], requests: 1, retry: Retry::default() };
        let err = greetings("config", "x", expected, || {
            calls += 1;
            async { Ok("Hello version: v1, instance: a".to_string()) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 0);
        assert!(err.to_string().contains("no expected version given"), "{err}");
    }
}
