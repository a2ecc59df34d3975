//! Talking to a cluster's API server through kube-rs: server-side apply of
//! multi-document YAML ([`apply`]), watch-based waits with explicit timeouts
//! ([`wait`]) on named conditions ([`conditions`]), deleting and waiting until gone
//! ([`delete`]), and discovery of what the server serves (this module).

pub mod apply;
pub mod conditions;
pub mod delete;
pub mod wait;

use std::time::Duration;

use ::kube::Client;
use ::kube::core::GroupVersionKind;
use ::kube::discovery::{ApiCapabilities, ApiResource, Discovery};

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovering the API groups served by the cluster failed: {0}")]
    Api(#[source] ::kube::Error),
    #[error("discovering the API groups served by the cluster took longer than {0:?}")]
    Timeout(Duration),
}

/// Runs API discovery. Aggregated discovery first (one request per API prefix);
/// servers without it (Kubernetes before 1.26, e.g. the 1.20 control-plane-only
/// clusters) answer with nothing rather than an error, so an empty answer falls back
/// to the classic per-group discovery.
pub async fn discover(client: &Client, timeout: Duration) -> Result<Discovery, DiscoveryError> {
    let run = async {
        let aggregated = Discovery::new(client.clone()).run_aggregated().await;
        match aggregated {
            Ok(d) if d.groups().next().is_some() => Ok(d),
            Ok(_) | Err(_) => {
                tracing::debug!("aggregated discovery found nothing; using per-group discovery");
                Discovery::new(client.clone()).run().await
            }
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| DiscoveryError::Timeout(timeout))?
        .map_err(DiscoveryError::Api)
}

/// Splits an `apiVersion` into group and version (`v1` is the core group).
pub fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Looks a kind up in a discovery result; `None` means the server does not serve it
/// (for example `discovery.k8s.io/v1` on Kubernetes 1.20).
pub fn resolve(
    discovery: &Discovery,
    api_version: &str,
    kind: &str,
) -> Option<(ApiResource, ApiCapabilities)> {
    let (group, version) = group_version(api_version);
    discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// Attempts of an idempotent request whose connection failed.
const TRANSPORT_ATTEMPTS: u32 = 3;
const TRANSPORT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Runs an idempotent request (a GET, a server-side apply), again if it failed in
/// transport (the server closed a pooled connection under it, as a 1.20 API server
/// was seen to do right after a CRD became Established), at most three times.
/// Answers from the server are never retried.
pub async fn idempotent<T, F, Fut>(mut request: F) -> Result<T, ::kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ::kube::Error>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e @ (::kube::Error::HyperError(_) | ::kube::Error::Service(_)))
                if attempt < TRANSPORT_ATTEMPTS =>
            {
                tracing::debug!(attempt, error = %error_chain(&e), "request failed in transport; again");
                attempt += 1;
                tokio::time::sleep(TRANSPORT_RETRY_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// An error and its sources, one after the other: hyper's own message alone
/// ("client error (Connect)") hides the reason.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_api_versions() {
        assert_eq!(group_version("v1"), ("", "v1"));
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
        assert_eq!(group_version("apiextensions.k8s.io/v1"), ("apiextensions.k8s.io", "v1"));
    }
}
