//! What the config cluster's API server did with a probe object created during an
//! outage: admitted it (a pod with or without an injected sidecar), refused it
//! because a webhook could not be called (see [`crate::fault`]), or refused it for
//! another reason. The judgements of the outage scenario are pure functions of it.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use crate::checks::sidecar_placement;
use crate::fault::{self, Outage};

/// The admission outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Created. For pods, whether `istio-proxy` was injected; `false` for other kinds.
    Admitted { sidecar: bool },
    /// Refused because the sidecar injector could not be called.
    InjectionUnavailable,
    /// Refused because the validating webhook could not be called.
    ValidationUnavailable,
    /// Refused for another reason: a webhook that answered and denied it, another
    /// webhook unavailable, the API server unreachable.
    Refused { reason: String },
}

impl Admission {
    /// Classifies the result of creating a pod.
    pub fn of_pod(result: Result<&Pod, &::kube::Error>) -> Self {
        match result {
            Ok(pod) => Admission::Admitted { sidecar: sidecar_placement(pod).is_some() },
            Err(err) => Self::refused(fault::classify(err)),
        }
    }

    /// Classifies the result of creating any other object.
    pub fn of_object<T>(result: Result<T, &::kube::Error>) -> Self {
        match result {
            Ok(_) => Admission::Admitted { sidecar: false },
            Err(err) => Self::refused(fault::classify(err)),
        }
    }

    fn refused(outage: Outage) -> Self {
        match outage {
            Outage::InjectionUnavailable { .. } => Admission::InjectionUnavailable,
            Outage::ValidationUnavailable { .. } => Admission::ValidationUnavailable,
            other => Admission::Refused { reason: other.to_string() },
        }
    }

    /// An injected namespace during an outage: the pod must be refused by the
    /// injector, never admitted without a sidecar.
    pub fn expect_injection_unavailable(&self) -> Result<(), String> {
        match self {
            Admission::InjectionUnavailable => Ok(()),
            Admission::Admitted { sidecar: false } => {
                Err("a pod was admitted WITHOUT a sidecar while the injector was down".into())
            }
            other => Err(format!("expected the injector to be unavailable, got: {other}")),
        }
    }

    /// A namespace without injection (or a ConfigMap): admitted.
    pub fn expect_admitted(&self) -> Result<(), String> {
        match self {
            Admission::Admitted { .. } => Ok(()),
            other => Err(format!("expected it to be admitted, got: {other}")),
        }
    }

    /// After recovery, in an injected namespace: admitted with a sidecar.
    pub fn expect_injected(&self) -> Result<(), String> {
        match self {
            Admission::Admitted { sidecar: true } => Ok(()),
            other => Err(format!("expected a pod admitted with a sidecar, got: {other}")),
        }
    }

    /// An Istio resource during an outage: refused by validation, or admitted where
    /// the version leaves validation open. Either is recorded; anything else fails.
    pub fn expect_validation_closed_or_open(&self) -> Result<(), String> {
        match self {
            Admission::ValidationUnavailable | Admission::Admitted { .. } => Ok(()),
            other => Err(format!(
                "expected validation to be unavailable or open (admitted), got: {other}"
            )),
        }
    }
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Admission::Admitted { sidecar: true } => write!(f, "admitted with sidecar"),
            Admission::Admitted { sidecar: false } => write!(f, "admitted"),
            Admission::InjectionUnavailable => write!(f, "injection unavailable"),
            Admission::ValidationUnavailable => write!(f, "validation unavailable"),
            Admission::Refused { reason } => write!(f, "refused: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> ::kube::Error {
        ::kube::Error::Api(Box::new(::kube::core::Status {
            code,
            message: message.into(),
            reason: "InternalError".into(),
            ..Default::default()
        }))
    }

    const INJECTOR_DOWN: &str = r#"Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io": failed to call webhook: Post "https://istiod.external-istiod.svc:443/inject?timeout=10s": dial tcp 172.18.6.66:15017: connect: connection refused"#;
    const VALIDATOR_DOWN: &str = r#"Internal error occurred: failed calling webhook "rev.validation.istio.io": failed to call webhook: Post "https://istiod.external-istiod.svc:443/validate?timeout=10s": context deadline exceeded"#;

    fn pod(sidecar: bool) -> Pod {
        let mut containers = vec![serde_json::json!({"name": "app"})];
        if sidecar {
            containers.push(serde_json::json!({"name": "istio-proxy"}));
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "probe"}, "spec": {"containers": containers}
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_classified_by_sidecar_and_by_refusal() {
        assert_eq!(Admission::of_pod(Ok(&pod(true))), Admission::Admitted { sidecar: true });
        assert_eq!(Admission::of_pod(Ok(&pod(false))), Admission::Admitted { sidecar: false });
        let err = status(500, INJECTOR_DOWN);
        assert_eq!(Admission::of_pod(Err(&err)), Admission::InjectionUnavailable);
        let denied = status(
            400,
            r#"admission webhook "x.sidecar-injector.istio.io" denied the request: no"#,
        );
        assert!(matches!(Admission::of_pod(Err(&denied)), Admission::Refused { .. }));
    }

    #[test]
    fn during_an_outage_a_pod_without_sidecar_is_the_worst_outcome() {
        assert_eq!(Admission::InjectionUnavailable.expect_injection_unavailable(), Ok(()));
        let err =
            Admission::Admitted { sidecar: false }.expect_injection_unavailable().unwrap_err();
        assert!(err.contains("WITHOUT a sidecar"), "{err}");
        // Admitted with a sidecar during an outage means the injector was not down.
        assert!(Admission::Admitted { sidecar: true }.expect_injection_unavailable().is_err());
        let refused = Admission::Refused { reason: "API server unreachable: x".into() };
        let err = refused.expect_injection_unavailable().unwrap_err();
        assert!(err.contains("API server unreachable"), "{err}");
    }

    #[test]
    fn objects_and_validation() {
        let ok: Result<(), &::kube::Error> = Ok(());
        assert_eq!(Admission::of_object(ok), Admission::Admitted { sidecar: false });
        let err = status(500, VALIDATOR_DOWN);
        let refused = Admission::of_object::<()>(Err(&err));
        assert_eq!(refused, Admission::ValidationUnavailable);
        assert_eq!(refused.to_string(), "validation unavailable");
        assert_eq!(refused.expect_validation_closed_or_open(), Ok(()));
        assert_eq!(
            Admission::Admitted { sidecar: false }.expect_validation_closed_or_open(),
            Ok(())
        );
        assert!(Admission::InjectionUnavailable.expect_validation_closed_or_open().is_err());
        assert!(refused.expect_admitted().is_err());
        let unreachable = Admission::of_object::<()>(Err(&status(503, "unavailable")));
        assert!(unreachable.expect_validation_closed_or_open().is_err());
    }

    #[test]
    fn after_recovery_only_an_injected_pod_counts() {
        assert_eq!(Admission::Admitted { sidecar: true }.expect_injected(), Ok(()));
        assert!(Admission::Admitted { sidecar: false }.expect_injected().is_err());
        assert!(Admission::InjectionUnavailable.expect_injected().is_err());
        assert_eq!(Admission::Admitted { sidecar: true }.to_string(), "admitted with sidecar");
    }
}
