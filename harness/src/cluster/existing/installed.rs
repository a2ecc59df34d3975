//! What is already in an existing cluster where the plan would install: an Istio
//! (istiod, its webhook configurations, the root certificate istiod writes into every
//! namespace), and the plan's namespaces themselves. The install would fight an
//! Istio already there, and its cleanup deletes the namespaces the plan creates, with
//! everything in them: so both refuse the run unless `--force`
//! (docs/existing-clusters.md "Existing installs").

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams};
use kube::{Client, Resource};

/// istiod's Deployment, also `istiod-<revision>`.
pub const ISTIOD: &str = "istiod";
/// The ConfigMap istiod writes into every namespace it watches.
pub const CA_ROOT_CERT: &str = "istio-ca-root-cert";
/// Webhook configurations an Istio install creates, by name prefix (revisions and
/// namespaces are suffixed: `istio-sidecar-injector-external-istiod`).
pub const WEBHOOK_PREFIXES: &[&str] =
    &["istio-sidecar-injector", "istio-validator", "istiod-default-validator"];

/// What was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Signs of Istio, e.g. `Deployment istio-system/istiod`.
    pub istio: Vec<String>,
    /// The plan's namespaces that already exist.
    pub namespaces: Vec<String>,
}

/// Looks for Istio in `namespaces` and cluster-wide (webhook configurations), and for
/// the namespaces themselves. A read the credentials may not make is skipped: the
/// permission check names it.
pub async fn find(client: &Client, namespaces: &BTreeSet<String>) -> Result<Found, kube::Error> {
    let mut found = Found::default();
    for ns in namespaces {
        match allowed(Api::<Namespace>::all(client.clone()).get_opt(ns).await)? {
            Some(None) => continue,
            Some(Some(_)) => found.namespaces.push(ns.clone()),
            // Not allowed to know: look inside anyway.
            None => {}
        }
        let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
        if let Some(list) = allowed(deployments.list(&ListParams::default()).await)? {
            for d in list.items.iter().filter(|d| is_istiod(d)) {
                found.istio.push(format!("Deployment {ns}/{}", name(d)));
            }
        }
        let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
        if let Some(Some(_)) = allowed(config_maps.get_opt(CA_ROOT_CERT).await)? {
            found.istio.push(format!("ConfigMap {ns}/{CA_ROOT_CERT}"));
        }
    }
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone());
    if let Some(list) = allowed(mutating.list(&ListParams::default()).await)? {
        found.istio.extend(webhooks("MutatingWebhookConfiguration", &list.items));
    }
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    if let Some(list) = allowed(validating.list(&ListParams::default()).await)? {
        found.istio.extend(webhooks("ValidatingWebhookConfiguration", &list.items));
    }
    Ok(found)
}

/// `None` when the server forbade the read.
fn allowed<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(e),
    }
}

fn name<K: Resource>(o: &K) -> &str {
    o.meta().name.as_deref().unwrap_or_default()
}

fn is_istiod(d: &Deployment) -> bool {
    let n = name(d);
    let app = d.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str);
    n == ISTIOD || n.starts_with("istiod-") || app == Some(ISTIOD)
}

fn webhooks<K: Resource>(kind: &str, items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(name)
        .filter(|n| WEBHOOK_PREFIXES.iter().any(|p| n.starts_with(p)))
        .map(|n| format!("{kind} {n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn deployment(name: &str, app: Option<&str>) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some(name.into());
        d.metadata.labels = app.map(|a| BTreeMap::from([("app".to_string(), a.to_string())]));
        d
    }

    #[test]
    fn istiod_is_known_by_name_revision_or_label() {
        assert!(is_istiod(&deployment("istiod", None)));
        assert!(is_istiod(&deployment("istiod-1-31-0", None)));
        assert!(is_istiod(&deployment("pilot", Some("istiod"))));
        assert!(!is_istiod(&deployment("istio-ingressgateway", Some("istio-ingressgateway"))));
    }

    #[test]
    fn istio_webhooks_are_known_by_prefix() {
        let hooks: Vec<MutatingWebhookConfiguration> =
            ["istio-sidecar-injector-external-istiod", "cert-manager-webhook"]
                .iter()
                .map(|n| {
                    let mut w = MutatingWebhookConfiguration::default();
                    w.metadata.name = Some(n.to_string());
                    w
                })
                .collect();
        assert_eq!(
            webhooks("MutatingWebhookConfiguration", &hooks),
            ["MutatingWebhookConfiguration istio-sidecar-injector-external-istiod"]
        );
    }
}
