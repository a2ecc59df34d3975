//! What an error means during a control-plane outage. The outage scenario relies on
//! the API server's admission semantics: with `failurePolicy: Fail`, a webhook that
//! cannot be called rejects the request with
//! `Internal error occurred: failed calling webhook "<name>": <transport error>`.
//! [`classify`] tells such a rejection (injection or validation unavailable) from an
//! API server that cannot be reached at all, and from everything else.

use std::fmt;
use std::time::Duration;

/// What an error says about the availability of the mesh's control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outage {
    /// The sidecar injector webhook could not be called: new pods in injected
    /// namespaces are rejected.
    InjectionUnavailable { webhook: String, message: String },
    /// The validating webhook could not be called: Istio configuration is refused.
    ValidationUnavailable { webhook: String, message: String },
    /// Some other admission webhook could not be called.
    WebhookUnavailable { webhook: String, message: String },
    /// The API server itself did not answer (refused, unreachable, timed out).
    ApiUnreachable { message: String },
    /// Anything else, including a webhook that answered and denied the request.
    Other { message: String },
}

impl Outage {
    /// True for the three "a webhook could not be called" outcomes.
    pub fn is_webhook_unavailable(&self) -> bool {
        matches!(
            self,
            Outage::InjectionUnavailable { .. }
                | Outage::ValidationUnavailable { .. }
                | Outage::WebhookUnavailable { .. }
        )
    }
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outage::InjectionUnavailable { webhook, message } => {
                write!(f, "injection unavailable (webhook {webhook}): {message}")
            }
            Outage::ValidationUnavailable { webhook, message } => {
                write!(f, "validation unavailable (webhook {webhook}): {message}")
            }
            Outage::WebhookUnavailable { webhook, message } => {
                write!(f, "webhook {webhook} unavailable: {message}")
            }
            Outage::ApiUnreachable { message } => write!(f, "API server unreachable: {message}"),
            Outage::Other { message } => write!(f, "{message}"),
        }
    }
}

/// Runs one request with a deadline; a failure comes back classified. A server that
/// does not answer in time counts as unreachable, like one that refuses connections:
/// a killed or cut-off cluster often does not refuse, it just never answers (the
/// host still sends to the container's old address, and nothing replies).
pub async fn within<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, ::kube::Error>>,
) -> Result<T, Outage> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(&err)),
        Err(_) => {
            Err(Outage::ApiUnreachable { message: format!("no answer within {timeout:.1?}") })
        }
    }
}

/// Classifies an error from a kube client call.
pub fn classify(err: &::kube::Error) -> Outage {
    match err {
        ::kube::Error::Api(status) => {
            // 503/504 from the API server itself (not a webhook) mean it cannot serve.
            let outage = classify_message(&status.message);
            if matches!(outage, Outage::Other { .. }) && matches!(status.code, 503 | 504) {
                Outage::ApiUnreachable { message: status.message.clone() }
            } else {
                outage
            }
        }
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) | ::kube::Error::ReadEvents(_) => {
            Outage::ApiUnreachable { message: crate::kube::error_chain(err) }
        }
        _ => Outage::Other { message: err.to_string() },
    }
}

/// Classifies an API server's error message.
pub fn classify_message(message: &str) -> Outage {
    const MARK: &str = "failed calling webhook \"";
    let Some(at) = message.find(MARK) else {
        return Outage::Other { message: message.to_string() };
    };
    let rest = &message[at + MARK.len()..];
    let webhook = rest.split('"').next().unwrap_or_default().to_string();
    let url_path = called_url_path(rest).unwrap_or_default();
    let message = message.to_string();
    if webhook.contains("sidecar-injector") || url_path.starts_with("/inject") {
        Outage::InjectionUnavailable { webhook, message }
    } else if webhook.contains("validation") || url_path.starts_with("/validate") {
        Outage::ValidationUnavailable { webhook, message }
    } else {
        Outage::WebhookUnavailable { webhook, message }
    }
}

/// The path of the URL the API server tried to call: `Post "https://h:443/inject?timeout=10s"`.
fn called_url_path(text: &str) -> Option<&str> {
    let url = text.split('"').find(|s| s.starts_with("https://") || s.starts_with("http://"))?;
    let after_scheme = url.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    Some(path.split('?').next().unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::refused_1_20(
        r#"Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": Post "https://istiod.external-istiod.svc:443/inject/cluster/remote1/net/network1?timeout=10s": dial tcp 172.18.0.200:15017: connect: connection refused"#,
        "namespace.sidecar-injector.istio.io"
    )]
    #[case::deadline_newer(
        r#"Internal error occurred: failed calling webhook "rev.object.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod.external-istiod.svc:443/inject?timeout=10s": context deadline exceeded"#,
        "rev.object.sidecar-injector.istio.io"
    )]
    #[case::no_route_test_hook(
        r#"Internal error occurred: failed calling webhook "inject.ecp.test": Post "https://172.30.0.250:443/inject?timeout=3s": dial tcp 172.30.0.250:443: connect: no route to host"#,
        "inject.ecp.test"
    )]
    #[case::no_endpoints(
        r#"Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod.istio-system.svc:443/inject?timeout=10s": no endpoints available for service "istiod""#,
        "namespace.sidecar-injector.istio.io"
    )]
    fn injection_failures(#[case] message: &str, #[case] webhook: &str) {
        let outage = classify_message(message);
        assert_eq!(
            outage,
            Outage::InjectionUnavailable { webhook: webhook.into(), message: message.into() }
        );
        assert!(outage.to_string().starts_with("injection unavailable"));
    }

    #[test]
    fn validation_failure() {
        let message = r#"admission webhook "rev.validation.istio.io" could not be called: Internal error occurred: failed calling webhook "rev.validation.istio.io": Post "https://istiod.external-istiod.svc:443/validate?timeout=10s": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"#;
        assert!(matches!(
            classify_message(message),
            Outage::ValidationUnavailable { webhook, .. } if webhook == "rev.validation.istio.io"
        ));
    }

    #[test]
    fn unknown_webhook_and_denials() {
        let other = r#"Internal error occurred: failed calling webhook "policy.example.com": Post "https://10.0.0.1:443/check?timeout=5s": context deadline exceeded"#;
        assert!(matches!(classify_message(other), Outage::WebhookUnavailable { .. }));
        let denied = r#"admission webhook "namespace.sidecar-injector.istio.io" denied the request: bad template"#;
        assert!(matches!(classify_message(denied), Outage::Other { .. }));
        assert!(!classify_message(denied).is_webhook_unavailable());
    }

    #[test]
    fn api_status_errors() {
        let status = |code: u16, message: &str| {
            ::kube::Error::Api(Box::new(::kube::core::Status {
                code,
                message: message.into(),
                reason: "InternalError".into(),
                ..Default::default()
            }))
        };
        let webhook = r#"Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": Post "https://1.2.3.4:443/inject?timeout=2s": context deadline exceeded"#;
        assert!(matches!(classify(&status(500, webhook)), Outage::InjectionUnavailable { .. }));
        assert!(matches!(
            classify(&status(503, "the server is currently unable to handle the request")),
            Outage::ApiUnreachable { .. }
        ));
        assert!(matches!(classify(&status(409, "conflict")), Outage::Other { .. }));
    }

    #[test]
    fn url_paths() {
        assert_eq!(
            called_url_path(r#"x": Post "https://a:443/inject/cluster/c?timeout=1s": y"#),
            Some("/inject/cluster/c")
        );
        assert_eq!(called_url_path("no url"), None);
    }
}
