//! Proving mutual TLS rather than assuming it: with a STRICT `PeerAuthentication` in
//! a namespace, the server's proxy accepts only mutual TLS, so a client without a
//! sidecar (plaintext) is refused while an injected client still gets its answer.

use serde_json::{Value, json};

/// The policy's name, so the scenario can remove it.
pub const STRICT_POLICY: &str = "ecp-strict";

/// curl's exit codes for a connection the server closed on it: 52 (empty reply) and
/// 56 (connection reset). Not 7 (could not connect) nor a timeout: those mean the
/// server was not reached at all, which proves nothing about TLS.
const REFUSED_EXIT_CODES: [&str; 2] = ["52", "56"];

/// A STRICT `PeerAuthentication` for every workload of `namespace`.
pub fn strict_peer_authentication(namespace: &str) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "PeerAuthentication",
        "metadata": {"name": STRICT_POLICY, "namespace": namespace},
        "spec": {"mtls": {"mode": "STRICT"}}
    })
}

/// The outcome of a plaintext request (from a pod without a sidecar, as
/// [`super::exec::exec`] reports it) under STRICT: refused by the server's proxy.
pub fn plaintext_refused(outcome: &Result<String, String>) -> Result<(), String> {
    match outcome {
        Ok(body) => Err(format!(
            "a client without a sidecar got an answer, mutual TLS is not enforced: {}",
            body.chars().take(120).collect::<String>()
        )),
        Err(e) if REFUSED_EXIT_CODES.iter().any(|c| e.starts_with(&format!("exit code {c}:"))) => {
            Ok(())
        }
        Err(e) => Err(format!("the request failed, but not as a refused connection: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_or_an_empty_reply_is_a_refusal() {
        let reset = Err("exit code 56: curl: (56) Recv failure: Connection reset by peer".into());
        assert_eq!(plaintext_refused(&reset), Ok(()));
        let empty = Err("exit code 52: curl: (52) Empty reply from server".into());
        assert_eq!(plaintext_refused(&empty), Ok(()));
    }

    #[test]
    fn an_answer_or_an_unrelated_failure_proves_nothing() {
        let answered = Ok("Hello version: v1, instance: helloworld-v1-abc".to_string());
        let err = plaintext_refused(&answered).unwrap_err();
        assert!(err.contains("mutual TLS is not enforced") && err.contains("Hello"), "{err}");
        for e in [
            "exit code 7: curl: (7) Failed to connect to helloworld.sample port 5000",
            "no answer within 30s",
            "exit code 6: curl: (6) Could not resolve host: helloworld.sample",
            "exit code 560: nonsense",
        ] {
            let err = plaintext_refused(&Err(e.to_string())).unwrap_err();
            assert!(err.contains("not as a refused connection"), "{e}: {err}");
        }
    }

    #[test]
    fn the_policy_is_strict_for_the_whole_namespace() {
        let p = strict_peer_authentication("sample");
        assert_eq!(p["kind"], "PeerAuthentication");
        assert_eq!(p["metadata"]["namespace"], "sample");
        assert_eq!(p["metadata"]["name"], STRICT_POLICY);
        assert_eq!(p["spec"]["mtls"]["mode"], "STRICT");
        assert!(p["spec"].get("selector").is_none(), "every workload of the namespace");
    }
}
