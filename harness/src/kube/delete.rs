//! Deleting and waiting until gone: one object ([`delete_and_wait`]) or every object
//! of a multi-document manifest, last first ([`delete_manifest`]). What is already
//! gone is fine; what is still there at the deadline is an error saying what and
//! where ([`super::wait::until_gone`], [`super::conditions::is_gone`]).

use std::fmt::Debug;
use std::time::Duration;

use ::kube::api::{Api, DeleteParams, DynamicObject};
use ::kube::discovery::Scope;
use ::kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wait::{self, WaitError};

/// How long discovery may take before a manifest's objects are deleted.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a deletion failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The request (or what it needed: the manifest, discovery) failed.
    #[error("deleting {what} on cluster {cluster}: {reason}")]
    Request { cluster: String, what: String, reason: String },
    /// The object was still there at the deadline, or the watch was refused.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Deletes the object `name` with `params` and waits, watch-based, until it is gone;
/// an object that does not exist is fine. `cluster` only serves the error message.
pub async fn delete_and_wait<K>(
    cluster: &str,
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
    timeout: Duration,
) -> Result<(), DeleteError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    match api.delete(name, params).await {
        Ok(_) => {}
        Err(::kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(DeleteError::Request {
                cluster: cluster.to_string(),
                what: name.to_string(),
                reason: e.to_string(),
            });
        }
    }
    wait::until_gone(cluster, api, name, timeout).await?;
    Ok(())
}

/// An object of a manifest, as needed to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// The objects of a multi-document manifest, last first (the order to delete them),
/// `default_namespace` filled in where a document has none (cluster-scoped kinds
/// ignore it).
pub fn objects_to_delete(
    yaml: &str,
    default_namespace: Option<&str>,
) -> Result<Vec<ObjectRef>, String> {
    let docs: Vec<serde_json::Value> =
        crate::yaml::from_multiple(yaml).map_err(|e| e.to_string())?;
    let mut objects = Vec::new();
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let meta = |k: &str| {
            doc.get("metadata").and_then(|m| m.get(k)).and_then(|v| v.as_str()).map(str::to_string)
        };
        let (Some(api_version), Some(kind), Some(name)) =
            (field("apiVersion"), field("kind"), meta("name"))
        else {
            return Err("a document lacks apiVersion, kind or metadata.name".to_string());
        };
        let namespace = meta("namespace").or(default_namespace.map(str::to_string));
        objects.push(ObjectRef { api_version, kind, namespace, name });
    }
    objects.reverse();
    Ok(objects)
}

/// Deletes every object of the manifest `yaml` (named `file` in errors), last first,
/// each in the background and waited for until gone (at most `timeout` each).
/// Documents without a namespace go to `default_namespace` (like `kubectl delete
/// -n`). A kind the server no longer serves (its CRD went first) has nothing left to
/// delete.
pub async fn delete_manifest(
    cluster: &str,
    client: &Client,
    yaml: &str,
    file: &str,
    default_namespace: Option<&str>,
    timeout: Duration,
) -> Result<(), DeleteError> {
    let fail = |what: &str, reason: String| DeleteError::Request {
        cluster: cluster.to_string(),
        what: what.to_string(),
        reason,
    };
    let objects = objects_to_delete(yaml, default_namespace).map_err(|r| fail(file, r))?;
    let discovery =
        super::discover(client, DISCOVERY_TIMEOUT).await.map_err(|e| fail(file, e.to_string()))?;
    for object in objects {
        let what = format!("{} {}", object.kind, object.name);
        let Some((resource, caps)) = super::resolve(&discovery, &object.api_version, &object.kind)
        else {
            tracing::debug!(%what, "kind not served; skipping");
            continue;
        };
        let api: Api<DynamicObject> = match (caps.scope, &object.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        let params = DeleteParams::background();
        delete_and_wait(cluster, &api, &object.name, &params, timeout).await.map_err(
            |e| match e {
                DeleteError::Request { reason, .. } => fail(&what, reason),
                other => other,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_deleted_last_first_with_the_default_namespace() {
        let yaml = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istiod-service-account
---
# a comment-only document
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: external-istiod-gw
  namespace: istio-system
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: istio-validator-external-istiod
";
        let objects = objects_to_delete(yaml, Some("external-istiod")).unwrap();
        let got: Vec<_> = objects
            .iter()
            .map(|o| (o.kind.as_str(), o.namespace.as_deref(), o.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "ValidatingWebhookConfiguration",
                    Some("external-istiod"),
                    "istio-validator-external-istiod"
                ),
                ("Gateway", Some("istio-system"), "external-istiod-gw"),
                ("ServiceAccount", Some("external-istiod"), "istiod-service-account"),
            ]
        );
        assert!(objects_to_delete("kind: Secret\nmetadata: {}\n", None).is_err());
    }

    #[test]
    fn request_errors_name_what_and_where() {
        let e = DeleteError::Request {
            cluster: "config".into(),
            what: "Gateway external-istiod-gw".into(),
            reason: "forbidden".into(),
        };
        assert_eq!(
            e.to_string(),
            "deleting Gateway external-istiod-gw on cluster config: forbidden"
        );
    }
}
