//! The diagnostics bundle written when something fails: per cluster, the events, the
//! objects of the namespaces the run touched, the webhook configurations, and the
//! containers' logs. Everything written goes through redaction first: Secret data,
//! service-account tokens, bearer credentials, private keys and kubeconfig user
//! credentials never reach the bundle.
//!
//! Collection is best effort: a cluster that cannot be reached (the fault cases are
//! exactly when a bundle matters) is noted in the bundle, not an error.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, DynamicObject, ListParams};
use ::kube::discovery::{Scope, verbs};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Event, Namespace};
use regex::{Captures, Regex};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument as _;

/// What to collect from one cluster.
#[derive(Clone)]
pub struct ClusterInput {
    /// The cluster's name: the bundle's directory for it.
    pub name: String,
    pub client: Client,
    /// Namespaces whose objects are dumped.
    pub namespaces: Vec<String>,
    /// The cluster's container logs as (container name, text).
    pub container_logs: Vec<(String, String)>,
}

/// The written bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub dir: PathBuf,
    /// Every file written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// What could not be collected, and why (also written to `<cluster>/problems.txt`).
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("writing the diagnostics bundle file {path}: {error}")]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// Collects a bundle for every cluster into `out_dir`; each API request may take at
/// most `request_timeout`, and a cluster whose API does not answer is skipped after
/// its first request.
pub async fn collect(
    clusters: &[ClusterInput],
    out_dir: &Path,
    request_timeout: Duration,
) -> Result<Bundle, DiagError> {
    let gathered = futures::future::join_all(clusters.iter().map(|c| {
        gather(c, request_timeout).instrument(tracing::info_span!("diag", cluster = %c.name))
    }))
    .await;
    let mut bundle = Bundle { dir: out_dir.to_path_buf(), files: Vec::new(), problems: Vec::new() };
    for (cluster, files) in clusters.iter().zip(gathered) {
        for (relative, text) in files.files {
            let relative = Path::new(&cluster.name).join(relative);
            write(out_dir, &relative, &text).await?;
            bundle.files.push(relative);
        }
        if !files.problems.is_empty() {
            let relative = Path::new(&cluster.name).join("problems.txt");
            write(out_dir, &relative, &(files.problems.join("\n") + "\n")).await?;
            bundle.files.push(relative);
            bundle.problems.extend(files.problems.iter().map(|p| format!("{}: {p}", cluster.name)));
        }
    }
    tracing::info!(dir = %out_dir.display(), files = bundle.files.len(), problems = bundle.problems.len(), "diagnostics bundle written");
    Ok(bundle)
}

async fn write(out_dir: &Path, relative: &Path, text: &str) -> Result<(), DiagError> {
    let path = out_dir.join(relative);
    let io = |error| DiagError::Write { path: path.clone(), error };
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    tokio::fs::write(&path, redact_text(text).as_bytes()).await.map_err(io)
}

/// Files (relative path, text) gathered from one cluster, already redacted.
#[derive(Default)]
struct Gathered {
    files: Vec<(PathBuf, String)>,
    problems: Vec<String>,
}

async fn gather(cluster: &ClusterInput, timeout: Duration) -> Gathered {
    let mut out = Gathered::default();
    for (container, text) in &cluster.container_logs {
        let file = format!("logs/{}.log", safe_file_name(container));
        out.files.push((PathBuf::from(file), redact_text(text).into_owned()));
    }
    if let Err(problem) = gather_api(cluster, timeout, &mut out).await {
        out.problems.push(problem);
    }
    out
}

/// Runs one request with the deadline, as a problem message on failure.
async fn timed<T>(
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, ::kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", redact_text(&crate::kube::error_chain(&e)))),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// The API part of a cluster's bundle. An `Err` means the API is unreachable: the rest
/// is skipped.
async fn gather_api(
    cluster: &ClusterInput,
    timeout: Duration,
    out: &mut Gathered,
) -> Result<(), String> {
    let client = &cluster.client;
    let discovery = crate::kube::discover(client, timeout)
        .await
        .map_err(|e| format!("API unreachable, nothing collected from it: {e}"))?;

    // Events, all namespaces, oldest first.
    match timed(
        "listing events",
        timeout,
        Api::<Event>::all(client.clone()).list(&ListParams::default()),
    )
    .await
    {
        Ok(list) => out.files.push(("events.txt".into(), events_text(list.items))),
        Err(p) => out.problems.push(p),
    }

    // Webhook configurations.
    let mut hooks = String::new();
    match timed(
        "listing mutating webhook configurations",
        timeout,
        Api::<MutatingWebhookConfiguration>::all(client.clone()).list(&ListParams::default()),
    )
    .await
    {
        Ok(list) => list.items.iter().for_each(|o| {
            push_yaml(
                &mut hooks,
                o,
                "MutatingWebhookConfiguration",
                "admissionregistration.k8s.io/v1",
            )
        }),
        Err(p) => out.problems.push(p),
    }
    match timed(
        "listing validating webhook configurations",
        timeout,
        Api::<ValidatingWebhookConfiguration>::all(client.clone()).list(&ListParams::default()),
    )
    .await
    {
        Ok(list) => list.items.iter().for_each(|o| {
            push_yaml(
                &mut hooks,
                o,
                "ValidatingWebhookConfiguration",
                "admissionregistration.k8s.io/v1",
            )
        }),
        Err(p) => out.problems.push(p),
    }
    out.files.push(("webhooks.yaml".into(), hooks));

    // Every listable namespaced kind in each touched namespace (events are above).
    let mut kinds = Vec::new();
    let mut seen = BTreeSet::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let listable = caps.supports_operation(verbs::LIST);
            if caps.scope == Scope::Namespaced
                && listable
                && resource.plural != "events"
                && seen.insert(resource.plural.clone() + "." + &resource.group)
            {
                kinds.push(resource);
            }
        }
    }
    for ns in &cluster.namespaces {
        let mut text = String::new();
        match timed(
            &format!("reading namespace {ns}"),
            timeout,
            Api::<Namespace>::all(client.clone()).get_opt(ns),
        )
        .await
        {
            Ok(Some(namespace)) => push_yaml(&mut text, &namespace, "Namespace", "v1"),
            Ok(None) => {
                out.problems.push(format!("namespace {ns} does not exist"));
                continue;
            }
            Err(p) => {
                out.problems.push(p);
                continue;
            }
        }
        for resource in &kinds {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
            let what = format!("listing {} in {ns}", resource.plural);
            match timed(&what, timeout, api.list(&ListParams::default())).await {
                Ok(list) => list
                    .items
                    .iter()
                    .for_each(|o| push_yaml(&mut text, o, &resource.kind, &resource.api_version)),
                Err(p) => out.problems.push(p),
            }
        }
        out.files.push((PathBuf::from(format!("namespaces/{}.yaml", safe_file_name(ns))), text));
    }
    Ok(())
}

/// Appends one object as a YAML document, with its type filled in, redacted.
fn push_yaml<K: Serialize>(out: &mut String, obj: &K, kind: &str, api_version: &str) {
    let mut value = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(out, "---\n# could not serialise a {kind}: {e}");
            return;
        }
    };
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
    }
    redact_object(&mut value);
    match serde_saphyr::to_string(&value) {
        Ok(yaml) => {
            out.push_str("---\n");
            out.push_str(&yaml);
            if !yaml.ends_with('\n') {
                out.push('\n');
            }
        }
        Err(e) => {
            let _ = writeln!(out, "---\n# could not write a {kind} as YAML: {e}");
        }
    }
}

fn events_text(mut events: Vec<Event>) -> String {
    let time = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
            .unwrap_or_default()
    };
    events.sort_by_key(time);
    let mut text = String::new();
    for e in &events {
        let object = &e.involved_object;
        let _ = writeln!(
            text,
            "{} {} {} {}/{} ({}) x{}: {}",
            time(e),
            e.type_.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            object.kind.as_deref().unwrap_or("-"),
            object.name.as_deref().unwrap_or("-"),
            object.namespace.as_deref().unwrap_or("cluster"),
            e.count.unwrap_or(1),
            e.message.as_deref().unwrap_or("").trim_end(),
        );
    }
    text
}

fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect()
}

// ---------------------------------------------------------------------------------
// Redaction

const REDACTED: &str = "<redacted>";

/// Redacts an API object in place: drops managed fields, replaces every value of a
/// Secret's `data`/`stringData` (and its last-applied annotation), then redacts every
/// string with [`redact_text`].
pub fn redact_object(value: &mut Value) {
    let is_secret = value.get("kind").and_then(Value::as_str) == Some("Secret");
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if is_secret
            && let Some(Value::Object(annotations)) = meta.get_mut("annotations")
            && let Some(v) = annotations.get_mut("kubectl.kubernetes.io/last-applied-configuration")
        {
            *v = Value::String(REDACTED.into());
        }
    }
    if is_secret {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(map)) = value.get_mut(field) {
                for v in map.values_mut() {
                    let len = v.as_str().map(str::len).unwrap_or(0);
                    *v = Value::String(format!("{REDACTED} ({len} characters)"));
                }
            }
        }
    }
    redact_strings(value);
}

fn redact_strings(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    // A whole PEM block, or the rest of a truncated one.
    Regex::new(
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
    )
    .expect("valid regex")
});
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").expect("valid regex")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+").expect("valid regex"));
/// `token: x`, `"token":"x"`, `password=x`, `client-key-data: x`... as YAML, JSON or flags.
static CREDENTIAL_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(^|[^A-Za-z0-9_-])("?(?:token|id-token|refresh-token|access-token|password|client-key-data|client-key)"?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,}"']+)"#,
    )
    .expect("valid regex")
});
/// Long base64 runs: decoded and checked for tokens, keys and kubeconfigs.
static BASE64_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").expect("valid regex"));

/// Redacts credentials in free text (logs, YAML, JSON, error messages): private key
/// blocks, JWTs (service-account tokens), bearer credentials, credential fields
/// (`token:`, `password:`, `client-key-data:`), and base64 that decodes to any of
/// these or to a kubeconfig with credentials.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    let mut apply = |re: &Regex, with: &dyn Fn(&Captures) -> String| {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, |c: &Captures| with(c)).into_owned());
        }
    };
    apply(&PRIVATE_KEY, &|_| "<redacted private key>".to_string());
    apply(&BASE64_RUN, &|c| {
        let run = &c[0];
        if decodes_to_secret(run) {
            "<redacted base64 credential>".to_string()
        } else {
            run.to_string()
        }
    });
    apply(&JWT, &|_| "<redacted token>".to_string());
    apply(&BEARER, &|c| format!("{}{REDACTED}", &c[1]));
    apply(&CREDENTIAL_FIELD, &|c| {
        let value = &c[3];
        if value.contains(REDACTED) || value.starts_with("<redacted") {
            c[0].to_string()
        } else {
            let quote = if value.starts_with('"') { "\"" } else { "" };
            format!("{}{}{quote}{REDACTED}{quote}", &c[1], &c[2])
        }
    });
    out
}

fn decodes_to_secret(run: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(bytes) = engine.decode(run) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
    text.starts_with("eyJ")
        || text.contains("PRIVATE KEY-----")
        || CREDENTIAL_FIELD.is_match(&text)
        || JWT.is_match(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLWJ5dGVz";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn redacts_jwts_bearers_and_keys_in_logs() {
        let log = format!(
            "I1121 request Authorization: Bearer {JWT_TOKEN}\nsaw token {JWT_TOKEN} here\n{KEY}\nafter"
        );
        let red = redact_text(&log);
        assert!(!red.contains("c2lnbmF0dXJlLWJ5dGVz"), "{red}");
        assert!(!red.contains("MIGHAgEAMBMG"), "{red}");
        assert!(red.contains("Bearer <redacted"), "{red}");
        assert!(red.contains("<redacted private key>\nafter"), "{red}");
    }

    #[test]
    fn redacts_credential_fields_but_not_lookalikes() {
        let yaml = "users:\n- name: u\n  user:\n    token: abc.def-opaque\n    client-key-data: Zm9v\nautomountServiceAccountToken: false\n";
        let red = redact_text(yaml);
        assert!(red.contains("token: <redacted>"), "{red}");
        assert!(red.contains("client-key-data: <redacted>"), "{red}");
        assert!(red.contains("automountServiceAccountToken: false"), "{red}");
        assert!(!red.contains("abc.def-opaque"));
        let json = r#"{"token":"opaque-value","kind":"x"}"#;
        assert_eq!(redact_text(json), r#"{"token":"<redacted>","kind":"x"}"#);
    }

    #[test]
    fn redacts_base64_of_tokens_keys_and_kubeconfigs() {
        let kubeconfig = format!("users:\n- name: r\n  user:\n    token: {JWT_TOKEN}\n");
        for secret in [JWT_TOKEN.to_string(), KEY.to_string(), kubeconfig] {
            let text = format!("data: {}", b64(&secret));
            let red = redact_text(&text);
            assert_eq!(red, "data: <redacted base64 credential>", "{secret}");
        }
        // A certificate is public: left alone.
        let cert =
            b64("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n");
        assert_eq!(redact_text(&cert), cert.as_str());
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "I1121 controller started; 3 workers; 401 Unauthorized";
        assert!(matches!(redact_text(text), Cow::Borrowed(_)));
    }

    #[test]
    fn redacts_secret_objects() {
        let mut secret = serde_json::json!({
            "kind": "Secret",
            "metadata": {
                "name": "istio-remote-secret-remote1",
                "managedFields": [{"manager": "x"}],
                "annotations": {
                    "networking.istio.io/cluster": "remote1",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"remote1\":\"c2VjcmV0\"}}"
                }
            },
            "data": {"remote1": "c2VjcmV0IHZhbHVl"},
            "stringData": {"note": "plain secret"}
        });
        redact_object(&mut secret);
        let text = secret.to_string();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(!text.contains("plain secret"), "{text}");
        assert!(!text.contains("managedFields"), "{text}");
        assert_eq!(secret["metadata"]["annotations"]["networking.istio.io/cluster"], "remote1");
        assert_eq!(secret["data"]["remote1"], "<redacted> (16 characters)");
    }

    #[test]
    fn redacts_tokens_inside_other_objects() {
        let mut cm = serde_json::json!({
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"kubeconfig": format!("users:\n- user:\n    token: {JWT_TOKEN}\n"), "plain": "hello"}
        });
        redact_object(&mut cm);
        assert!(!cm.to_string().contains("c2lnbmF0dXJl"), "{cm}");
        assert_eq!(cm["data"]["plain"], "hello");
    }

    #[test]
    fn events_are_one_line_each_oldest_first() {
        let event = |name: &str, at: &str, message: &str| {
            serde_json::from_value::<Event>(serde_json::json!({
                "metadata": {"name": name, "namespace": "n"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "n"},
                "reason": "FailedCreate", "type": "Warning", "count": 2,
                "lastTimestamp": at, "message": message
            }))
            .unwrap()
        };
        let text = events_text(vec![
            event("b", "2026-11-21T10:00:02Z", "second"),
            event("a", "2026-11-21T10:00:01Z", "first\n"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("Warning FailedCreate Pod/p (n) x2: first"), "{text}");
        assert!(lines[1].ends_with(": second"));
    }
}
