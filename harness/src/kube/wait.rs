//! Watch-based waits with explicit timeouts: for one object by name ([`until`],
//! [`until_gone`]) or for every object a label selector matches ([`until_all`]),
//! with the named conditions of [`super::conditions`].
//!
//! kube's `await_condition` has no timeout and stops at the first watch error; these
//! waits keep watching through transient errors (the watcher re-lists with backoff),
//! stop at the deadline, and then say what was awaited, where, the last state seen
//! and the last error, so a failed run explains itself.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::time::Duration;

use ::kube::Resource;
use ::kube::api::Api;
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::conditions::{self, Condition, Explain};

/// How long a described state may get in an error message.
const MAX_STATE_CHARS: usize = 1500;

/// A wait that ended without its condition becoming true.
#[derive(Debug, thiserror::Error)]
#[error("{cause} waiting for {what} ({where_}); last state seen: {last_state}{}",
    last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
pub struct WaitError {
    /// What was awaited, in words ("CRD foos.example.com Established").
    pub what: String,
    /// Where: cluster, resource URL and object name.
    pub where_: String,
    /// The last state of the object seen, summarised and redacted; or why none was seen.
    pub last_state: String,
    /// The last error the watch met, if any.
    pub last_error: Option<String>,
    pub cause: WaitCause,
}

/// Why a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitCause {
    /// The deadline passed.
    TimedOut(Duration),
    /// The server refused the watch for good (unknown kind, forbidden, unauthorized).
    Refused,
}

impl fmt::Display for WaitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitCause::TimedOut(t) => write!(f, "timed out after {t:.1?}"),
            WaitCause::Refused => write!(f, "the API server refused the watch"),
        }
    }
}

/// Waits until the object `name` exists and `condition` holds for it, and returns it.
/// `cluster` and `what` only serve the error message.
pub async fn until<K, C>(
    cluster: &str,
    api: &Api<K>,
    name: &str,
    what: &str,
    condition: C,
    timeout: Duration,
) -> Result<K, WaitError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
    C: Condition<K>,
{
    let found = watch(cluster, api, name, what, timeout, |obj: Option<&K>| {
        obj.is_some_and(|o| condition.matches_object(Some(o)))
    })
    .await?;
    // The predicate only holds for an object.
    found.ok_or_else(|| WaitError {
        what: what.to_string(),
        where_: where_(cluster, api, name),
        last_state: "object not found".to_string(),
        last_error: None,
        cause: WaitCause::Refused,
    })
}

/// Waits until the object `name` no longer exists ([`conditions::is_gone`]).
pub async fn until_gone<K>(
    cluster: &str,
    api: &Api<K>,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let what = format!("{name} to be deleted");
    let gone = conditions::is_gone();
    watch(cluster, api, name, &what, timeout, |obj: Option<&K>| gone.matches_object(obj))
        .await
        .map(|_| ())
}

/// Waits until at least one object matches the label `selector` and `condition`
/// holds for every one of them, and returns them (ordered by name). On timeout the
/// error's last state is the [`Explain::unmet`] reason of each object that did not
/// meet it. `cluster` and `what` only serve the error message.
pub async fn until_all<K, C>(
    cluster: &str,
    api: &Api<K>,
    selector: &str,
    what: &str,
    condition: C,
    timeout: Duration,
) -> Result<Vec<K>, WaitError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
    C: Explain<K>,
{
    let unmet = |objects: &Objects<K>| -> Option<String> {
        if objects.is_empty() {
            return Some(format!("no object matches {selector}"));
        }
        let reasons: Vec<String> = objects.values().filter_map(|o| condition.unmet(o)).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    };
    let config = watcher::Config::default().labels(selector);
    let seen = watch_set(api, config, timeout, |objects| unmet(objects).is_none()).await;
    let (cause, objects, last_error) = match seen {
        Ok(objects) => return Ok(objects.into_values().collect()),
        Err(stopped) => stopped,
    };
    let last_state = match objects {
        None => "nothing received from the API server".to_string(),
        Some(objects) => unmet(&objects).unwrap_or_else(|| "the watch ended".to_string()),
    };
    Err(WaitError {
        what: what.to_string(),
        where_: format!("cluster {cluster}, {} with labels {selector}", api.resource_url()),
        last_state,
        last_error,
        cause,
    })
}

fn where_<K: Resource>(cluster: &str, api: &Api<K>, name: &str) -> String {
    format!("cluster {cluster}, {}/{name}", api.resource_url())
}

/// Watches one object by name and returns the state for which `done` first holds.
async fn watch<K, F>(
    cluster: &str,
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: F,
) -> Result<Option<K>, WaitError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
    F: Fn(Option<&K>) -> bool,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let seen = watch_set(api, config, timeout, |objects| done(objects.values().next())).await;
    let (cause, objects, last_error) = match seen {
        Ok(mut objects) => return Ok(objects.pop_first().map(|(_, o)| o)),
        Err(stopped) => stopped,
    };
    let last_state = match objects.as_ref().map(|o| o.values().next()) {
        None => "nothing received from the API server".to_string(),
        Some(None) => "object not found".to_string(),
        Some(Some(obj)) => describe(obj),
    };
    Err(WaitError {
        what: what.to_string(),
        where_: where_(cluster, api, name),
        last_state,
        last_error,
        cause,
    })
}

/// The objects a watch sees, by name.
type Objects<K> = BTreeMap<String, K>;

/// Why a watch stopped without `done` holding, the objects it last saw (`None`
/// when the API server sent nothing), and the last error it met.
type Stopped<K> = (WaitCause, Option<Objects<K>>, Option<String>);

/// Watches the objects `config` selects until `done` holds for them, through
/// transient errors (the watcher re-lists with backoff), at most `timeout`.
async fn watch_set<K, F>(
    api: &Api<K>,
    config: watcher::Config,
    timeout: Duration,
    done: F,
) -> Result<Objects<K>, Stopped<K>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
    F: Fn(&Objects<K>) -> bool,
{
    let mut stream = watcher::watcher(api.clone(), config).default_backoff().boxed();
    // What the watch saw, kept outside the timed future so the error can report it.
    let mut current: Objects<K> = BTreeMap::new();
    let mut observed = false;
    let mut last_error: Option<String> = None;

    let outcome = tokio::time::timeout(timeout, async {
        let mut listing: Objects<K> = BTreeMap::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(obj)) => {
                    listing.insert(obj.meta().name.clone().unwrap_or_default(), obj);
                }
                Ok(Event::InitDone) => {
                    current = std::mem::take(&mut listing);
                    observed = true;
                }
                Ok(Event::Apply(obj)) => {
                    current.insert(obj.meta().name.clone().unwrap_or_default(), obj);
                    observed = true;
                }
                Ok(Event::Delete(obj)) => {
                    current.remove(obj.meta().name.as_deref().unwrap_or_default());
                    observed = true;
                }
                Err(err) => {
                    let refused = is_permanent(&err);
                    last_error =
                        Some(crate::diag::redact_text(&super::error_chain(&err)).into_owned());
                    if refused {
                        return Err(WaitCause::Refused);
                    }
                    continue;
                }
            }
            if observed && done(&current) {
                return Ok(());
            }
        }
        // The watcher never ends on its own; treat an end like a refusal.
        Err(WaitCause::Refused)
    })
    .await;

    let cause = match outcome {
        Ok(Ok(())) => return Ok(current),
        Ok(Err(cause)) => cause,
        Err(_elapsed) => WaitCause::TimedOut(timeout),
    };
    Err((cause, observed.then_some(current), last_error))
}

/// Errors that retrying will not cure: the kind is not served, or we may not watch it.
fn is_permanent(err: &watcher::Error) -> bool {
    let status = match err {
        watcher::Error::InitialListFailed(::kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(::kube::Error::Api(s))
        | watcher::Error::WatchFailed(::kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    matches!(status, 401 | 403 | 404)
}

/// A short, redacted summary of an object's state: resource version, deletion mark,
/// the keys (never the values) of `data`, and `status`.
pub fn describe<K: Serialize>(obj: &K) -> String {
    match serde_json::to_value(obj) {
        Ok(value) => describe_value(&value),
        Err(e) => format!("(could not serialise the object: {e})"),
    }
}

fn describe_value(value: &Value) -> String {
    let mut summary = serde_json::Map::new();
    let meta = value.get("metadata");
    for key in ["resourceVersion", "deletionTimestamp", "generation"] {
        if let Some(v) = meta.and_then(|m| m.get(key)) {
            summary.insert(key.to_string(), v.clone());
        }
    }
    for key in ["data", "stringData", "binaryData"] {
        if let Some(Value::Object(map)) = value.get(key) {
            let keys: Vec<Value> = map.keys().map(|k| Value::String(k.clone())).collect();
            summary.insert(format!("{key}Keys"), Value::Array(keys));
        }
    }
    if let Some(status) = value.get("status") {
        summary.insert("status".to_string(), status.clone());
    }
    let text = Value::Object(summary).to_string();
    let text = crate::diag::redact_text(&text).into_owned();
    if text.chars().count() > MAX_STATE_CHARS {
        let cut: String = text.chars().take(MAX_STATE_CHARS).collect();
        format!("{cut}... (truncated)")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn describes_a_secret_by_its_keys_only() {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("reader-token".into()),
                resource_version: Some("42".into()),
                ..Default::default()
            },
            data: Some(
                [("token".to_string(), ByteString(b"eyJhbGciOiJSUzI1NiJ9.e30.c2ln".to_vec()))]
                    .into(),
            ),
            ..Default::default()
        };
        let text = describe(&secret);
        assert_eq!(text, r#"{"dataKeys":["token"],"resourceVersion":"42"}"#);
    }

    #[test]
    fn describes_status_and_truncates() {
        let long = "x".repeat(4000);
        let value = serde_json::json!({
            "metadata": {"resourceVersion": "7"},
            "status": {"conditions": [{"type": "Established", "status": "False", "message": long}]}
        });
        let text = describe_value(&value);
        assert!(text.starts_with(r#"{"resourceVersion":"7","status":{"conditions""#), "{text}");
        assert!(text.ends_with("... (truncated)"));
        assert!(text.len() < MAX_STATE_CHARS + 20);
    }

    #[test]
    fn error_message_says_what_where_and_last_state() {
        let err = WaitError {
            what: "CRD foos.example.com Established".into(),
            where_: "cluster c1, /apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com".into(),
            last_state: r#"{"status":{}}"#.into(),
            last_error: Some("connection refused".into()),
            cause: WaitCause::TimedOut(Duration::from_secs(3)),
        };
        assert_eq!(
            err.to_string(),
            "timed out after 3.0s waiting for CRD foos.example.com Established (cluster c1, \
             /apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com); \
             last state seen: {\"status\":{}}; last error: connection refused"
        );
    }
}
