//! Running a command in a pod's container through the Kubernetes exec API: how the
//! in-mesh checks ask helloworld, with `curl` in the client pod, whose sidecar
//! carries the request through the mesh (mutual TLS, the mesh's routing).
//!
//! Why not reqwest here: the request must leave from inside the pod, through its
//! `istio-proxy`; a client in this process would reach the Service (if at all: pod
//! and Service addresses are not routed to the host) from outside the mesh, which
//! proves nothing about in-mesh traffic. The exec API carries only the command's
//! streams and its exit status; `curl` in the pod is the HTTP client.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Client;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use super::shorten;

/// How long one command (one request of a greeting check) may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `command` in `container` of pod `pod` and returns its standard output. A
/// non-zero exit status is an error carrying the status and the standard error
/// (curl's `-sS` reason), so a failed request never passes for an empty answer.
pub async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[&str],
) -> Result<String, String> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = AttachParams::default().container(container).stderr(true);
    let run = async {
        let mut process =
            api.exec(pod, command.to_vec(), &params).await.map_err(|e| e.to_string())?;
        let status = process.take_status();
        let (mut out, mut err) = (String::new(), String::new());
        let (stdout, stderr) = (process.stdout(), process.stderr());
        let read_out = async {
            if let Some(mut s) = stdout {
                s.read_to_string(&mut out).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                s.read_to_string(&mut err).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let (o, e) = tokio::join!(read_out, read_err);
        o.and(e).map_err(|e| e.to_string())?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        process.join().await.map_err(|e| e.to_string())?;
        exec_outcome(status.as_ref(), out, &err)
    };
    tokio::time::timeout(EXEC_TIMEOUT, run)
        .await
        .map_err(|_| format!("no answer within {EXEC_TIMEOUT:?}"))?
}

/// The outcome of an exec from the status the API server sent at its end: success
/// gives the output; anything else the exit code and standard error. No status at
/// all is an error too (the command's end was not seen).
pub fn exec_outcome(
    status: Option<&Status>,
    stdout: String,
    stderr: &str,
) -> Result<String, String> {
    let Some(status) = status else {
        return Err(format!("no exit status received; stderr: {}", shorten(stderr.trim(), 300)));
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(stdout);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.iter().flatten().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "?".to_string());
    Err(format!("exit code {code}: {}", shorten(stderr.trim(), 300)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exec_outcomes_carry_exit_code_and_stderr() {
        let ok: Status =
            serde_json::from_value(json!({"status": "Success", "metadata": {}})).unwrap();
        assert_eq!(exec_outcome(Some(&ok), "Hello".into(), ""), Ok("Hello".to_string()));
        let failed: Status = serde_json::from_value(json!({
            "status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
            "details": {"causes": [{"reason": "ExitCode", "message": "56"}]}
        }))
        .unwrap();
        let err = exec_outcome(
            Some(&failed),
            String::new(),
            "curl: (56) Recv failure: Connection reset by peer\n",
        )
        .unwrap_err();
        assert_eq!(err, "exit code 56: curl: (56) Recv failure: Connection reset by peer");
        let err = exec_outcome(None, "partial".into(), "").unwrap_err();
        assert!(err.starts_with("no exit status"), "{err}");
    }
}
