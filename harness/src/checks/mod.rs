//! The facts the guide checks (procedure.md "What the anchors check"), shared by the
//! executor's `Verify` and `WaitFor` actions, the conformance scenarios and the e2e
//! diagnostics. A check is a value, the plan's [`Check`] or [`WaitCondition`],
//! built by the constructors of [`builders`] and run against a cluster:
//! [`Check::run`], [`WaitCondition::wait`] (watch-based, explicit timeout) or
//! [`WaitCondition::check`] (once).
//!
//! - [`facts`]: pure readers of Kubernetes objects (sidecars, webhooks, the istiod
//!   address) and the checks of a cluster built on them;
//! - [`greeting`]: helloworld's greeting, from inside the mesh or through the
//!   ingress, retried with the documentation test's back-off ([`Retry`]);
//! - [`exec`](mod@exec): a command in a pod's container (`curl` in the client pod);
//! - [`http`]: HTTP from this process, outside the mesh;
//! - [`provenance`]: facts proving the external istiod did the work;
//! - [`mtls`]: proving mutual TLS.
//!
//! [`WaitCondition`]: crate::install::WaitCondition
//! [`WaitCondition::wait`]: crate::install::WaitCondition::wait
//! [`WaitCondition::check`]: crate::install::WaitCondition::check

pub mod builders;
pub mod exec;
pub mod facts;
pub mod greeting;
pub mod http;
pub mod mtls;
pub mod provenance;
mod wait;

use kube::Client;

pub use builders::{
    HELLOWORLD_URL, INGRESS_PATH, INGRESS_PORT, MeshClient, REQUESTS_FOR_BOTH_VERSIONS,
};
pub use exec::exec;
pub use facts::{ISTIO_PROXY, pod_ready, pods, sidecar_placement};
pub use greeting::{Greeting, Retry, parse_greeting};
pub use http::{HostClient, http_get};

use crate::install::Check;
use greeting::{Expected, FromPod, ThroughIngress};

/// A check that did not hold: what was checked, on which cluster, and what was seen.
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: {check}: {detail}")]
pub struct CheckFailed {
    pub cluster: String,
    pub check: String,
    pub detail: String,
}

fn failed(cluster: &str, check: impl Into<String>, detail: impl Into<String>) -> CheckFailed {
    CheckFailed { cluster: cluster.to_string(), check: check.into(), detail: detail.into() }
}

/// `s` cut to `max` characters, `...` marking the cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

impl Check {
    /// Checks the fact on `cluster`; greeting checks retry per `retry`, the others
    /// look once.
    pub async fn run(
        &self,
        cluster: &str,
        client: &Client,
        retry: Retry,
    ) -> Result<(), CheckFailed> {
        match self {
            Check::WebhookConfigurationExists { kind, name, min_webhooks } => {
                facts::webhook_configuration_exists(cluster, client, *kind, name, *min_webhooks)
                    .await
            }
            Check::ConfigMapExists { namespace, name } => {
                facts::config_map_exists(cluster, client, namespace, name).await
            }
            Check::IstiodAddress { namespace, service, object, address, ports } => {
                let service = (namespace.as_str(), service.as_str());
                facts::istiod_address(cluster, client, service, *object, *address, *ports).await
            }
            Check::WebhooksDoNotMention { text } => {
                facts::webhooks_do_not_mention(cluster, client, text).await
            }
            Check::ExecGreeting { namespace, selector, container, url, versions, requests } => {
                let from = FromPod { namespace, selector, container, url };
                let expected = Expected { versions, requests: *requests, retry };
                greeting::from_pod(cluster, client, from, expected).await.map(|_| ())
            }
            Check::IngressGreeting { namespace, service, port, path, versions, requests } => {
                let to = ThroughIngress { namespace, service, port: *port, path };
                let expected = Expected { versions, requests: *requests, retry };
                greeting::through_ingress(cluster, client, to, expected).await.map(|_| ())
            }
        }
    }
}
