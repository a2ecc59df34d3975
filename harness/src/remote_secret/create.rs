//! Creating a remote secret on live clusters (procedure.md "The remote secret,
//! natively"), step by step:
//!
//! 1. in the source cluster, wait for the service account (the charts create it; a
//!    remote secret made before it makes a later chart install conflict:
//!    `--create-service-account=false` semantics);
//! 2. request a token for it with an explicit `kubernetes.io/service-account-token`
//!    Secret (Kubernetes 1.24+ no longer makes one per account);
//! 3. wait until the token controller fills `token` and `ca.crt`;
//! 4. apply the Secret carrying the kubeconfig to the target (external) cluster.
//!
//! Every step is idempotent (server-side apply), and an apply that fails for a
//! transient reason is retried a few times: upstream found remote-secret creation
//! behind most of its multicluster flakes. The token never reaches a log or an error.

use std::time::{Duration, Instant};

use ::kube::Client;
use ::kube::api::Api;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use tracing::Instrument as _;

use super::RemoteSecret;
use crate::kube::apply::{ApplyError, ApplyOptions, apply_yaml};
use crate::kube::wait::{self, WaitError};

/// The field manager of everything this module applies.
pub const FIELD_MANAGER: &str = "ecp-harness-remote-secret";
/// Attempts per apply when it fails for a transient reason.
const APPLY_ATTEMPTS: u32 = 3;
const APPLY_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A cluster and a client for it.
#[derive(Clone, Copy)]
pub struct Endpoint<'a> {
    pub cluster: &'a str,
    pub client: &'a Client,
}

/// Everything [`create`] needs.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// What to create (type, cluster id, the server address the target reaches).
    pub remote: &'a RemoteSecret,
    /// The cluster the kubeconfig gives access to.
    pub source: Endpoint<'a>,
    /// The service account whose token the kubeconfig carries, and its namespace in
    /// the source cluster.
    pub service_account: &'a str,
    pub service_account_namespace: &'a str,
    /// The cluster that gets the Secret (in `remote.namespace`).
    pub target: Endpoint<'a>,
    /// Deadline for all the steps together.
    pub timeout: Duration,
}

/// The Secret created in the target cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub namespace: String,
    pub name: String,
    pub data_key: String,
    /// The token Secret in the source cluster.
    pub token_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(
        "cluster {cluster}: service account {namespace}/{name} is not there; the remote secret \
         is made only after it exists (--create-service-account=false): {error}"
    )]
    NoServiceAccount { cluster: String, namespace: String, name: String, error: Box<WaitError> },
    #[error(
        "cluster {cluster}: requesting a token for service account {namespace}/{name}: {error}"
    )]
    TokenRequest { cluster: String, namespace: String, name: String, error: Box<ApplyError> },
    #[error(
        "cluster {cluster}: the token controller did not fill Secret {namespace}/{name}: {error}"
    )]
    TokenNotFilled { cluster: String, namespace: String, name: String, error: Box<WaitError> },
    #[error("cluster {cluster}: the token in Secret {namespace}/{name} is not UTF-8")]
    TokenNotText { cluster: String, namespace: String, name: String },
    #[error("cluster {cluster}: applying the remote secret {namespace}/{name}: {error}")]
    Apply { cluster: String, namespace: String, name: String, error: Box<ApplyError> },
}

/// Creates the remote secret: the four steps of the module documentation.
pub async fn create(req: &Request<'_>) -> Result<Created, CreateError> {
    let span = tracing::info_span!(
        "remote_secret",
        source = req.source.cluster,
        target = req.target.cluster,
        kind = ?req.remote.secret_type,
    );
    steps(req).instrument(span).await
}

async fn steps(req: &Request<'_>) -> Result<Created, CreateError> {
    let deadline = Instant::now() + req.timeout;
    wait_for_service_account(req, remaining(deadline)).await?;
    let token_secret = request_token(req, remaining(deadline)).await?;
    let (ca_crt, token) = wait_for_token(req, &token_secret, remaining(deadline)).await?;
    let kubeconfig = req.remote.kubeconfig(&ca_crt, &token);
    let created = apply_remote_secret(req, &kubeconfig, remaining(deadline)).await?;
    tracing::info!(namespace = %created.namespace, name = %created.name, "remote secret created");
    Ok(Created { token_secret, ..created })
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Step 1: the service account exists in the source cluster.
async fn wait_for_service_account(req: &Request<'_>, timeout: Duration) -> Result<(), CreateError> {
    let (ns, name) = (req.service_account_namespace, req.service_account);
    let api: Api<ServiceAccount> = Api::namespaced(req.source.client.clone(), ns);
    let what = format!("service account {ns}/{name}");
    wait::until(req.source.cluster, &api, name, &what, |_: Option<&ServiceAccount>| true, timeout)
        .await
        .map_err(|error| CreateError::NoServiceAccount {
            cluster: req.source.cluster.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
            error: Box::new(error),
        })?;
    Ok(())
}

/// Step 2: a token Secret bound to the service account. Returns its name.
async fn request_token(req: &Request<'_>, timeout: Duration) -> Result<String, CreateError> {
    let (ns, name) = (req.service_account_namespace, req.service_account);
    let manifest = RemoteSecret::token_secret_manifest(name, ns);
    let opts = ApplyOptions::new(req.source.cluster, FIELD_MANAGER).timeout(timeout);
    apply_with_retries(req.source.client, &manifest, "service-account token Secret", &opts)
        .await
        .map_err(|error| CreateError::TokenRequest {
        cluster: req.source.cluster.to_string(),
        namespace: ns.to_string(),
        name: name.to_string(),
        error: Box::new(error),
    })?;
    Ok(RemoteSecret::token_secret_name(name))
}

/// Step 3: the token controller has filled `token` and `ca.crt`. Returns both.
async fn wait_for_token(
    req: &Request<'_>,
    secret: &str,
    timeout: Duration,
) -> Result<(Vec<u8>, String), CreateError> {
    let ns = req.service_account_namespace;
    let api: Api<Secret> = Api::namespaced(req.source.client.clone(), ns);
    let filled = |s: Option<&Secret>| {
        s.and_then(|s| s.data.as_ref()).is_some_and(|d| {
            d.get("token").is_some_and(|t| !t.0.is_empty())
                && d.get("ca.crt").is_some_and(|c| !c.0.is_empty())
        })
    };
    let what = format!("token and ca.crt in Secret {ns}/{secret}");
    let err = |error| CreateError::TokenNotFilled {
        cluster: req.source.cluster.to_string(),
        namespace: ns.to_string(),
        name: secret.to_string(),
        error: Box::new(error),
    };
    let found =
        wait::until(req.source.cluster, &api, secret, &what, filled, timeout).await.map_err(err)?;
    let mut data = found.data.unwrap_or_default();
    let token = data.remove("token").map(|t| t.0).unwrap_or_default();
    let ca_crt = data.remove("ca.crt").map(|c| c.0).unwrap_or_default();
    let token = String::from_utf8(token).map_err(|_| CreateError::TokenNotText {
        cluster: req.source.cluster.to_string(),
        namespace: ns.to_string(),
        name: secret.to_string(),
    })?;
    Ok((ca_crt, token))
}

/// Step 4: the Secret with the kubeconfig, in the target cluster.
async fn apply_remote_secret(
    req: &Request<'_>,
    kubeconfig: &str,
    timeout: Duration,
) -> Result<Created, CreateError> {
    let remote = req.remote;
    let name = remote.secret_type.secret_name(&remote.cluster_id);
    let manifest = remote.secret_manifest(kubeconfig);
    let opts = ApplyOptions::new(req.target.cluster, FIELD_MANAGER).timeout(timeout);
    apply_with_retries(req.target.client, &manifest, "remote secret", &opts).await.map_err(
        |error| CreateError::Apply {
            cluster: req.target.cluster.to_string(),
            namespace: remote.namespace.clone(),
            name: name.clone(),
            error: Box::new(error),
        },
    )?;
    Ok(Created {
        namespace: remote.namespace.clone(),
        data_key: remote.secret_type.data_key(&remote.cluster_id),
        name,
        token_secret: String::new(),
    })
}

/// Applies, retrying a few times when the failure may pass (the request did not
/// reach the server, or it answered conflict, too many requests, or 5xx).
async fn apply_with_retries(
    client: &Client,
    manifest: &str,
    file: &str,
    opts: &ApplyOptions<'_>,
) -> Result<(), ApplyError> {
    let deadline = Instant::now() + opts.timeout;
    let mut attempt = 1;
    loop {
        let opts = opts.clone().timeout(remaining(deadline));
        match apply_yaml(client, manifest, file, &opts).await {
            Ok(_) => return Ok(()),
            Err(e)
                if attempt < APPLY_ATTEMPTS
                    && transient(&e)
                    && remaining(deadline) > APPLY_RETRY_PAUSE =>
            {
                let error = crate::diag::redact_text(&e.to_string()).into_owned();
                tracing::warn!(attempt, %error, "apply failed; retrying");
                attempt += 1;
                tokio::time::sleep(APPLY_RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn transient(err: &ApplyError) -> bool {
    match err {
        ApplyError::Request { .. } | ApplyError::Discovery { .. } => true,
        ApplyError::Rejected { code, .. } => matches!(code, 409 | 429 | 500..=599),
        _ => false,
    }
}
