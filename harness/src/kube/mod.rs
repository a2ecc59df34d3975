//! Talking to a cluster's API server through kube-rs: server-side apply of
//! multi-document YAML ([`apply`]), watch-based waits with explicit timeouts
//! ([`wait`]), and discovery of what the server serves (this module).

pub mod apply;
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
