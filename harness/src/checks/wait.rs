//! The plan's wait conditions run against a cluster: awaited, watch-based with an
//! explicit timeout ([`WaitCondition::wait`], the executor's `WaitFor`), or checked
//! once ([`WaitCondition::check`], what a scenario asks of a settled install).

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use super::{CheckFailed, failed};
use crate::install::WaitCondition;
use crate::kube::conditions::{self, Condition, load_balancer_ip};
use crate::kube::wait::{self, WaitError};

impl WaitCondition {
    /// What is awaited, in words (the wait's error names it).
    pub fn describe(&self) -> String {
        match self {
            WaitCondition::LoadBalancerIp { namespace, service } => {
                format!("a LoadBalancer IP for Service {namespace}/{service}")
            }
            WaitCondition::DeploymentAvailable { namespace, name } => {
                format!("Deployment {namespace}/{name} Available")
            }
            WaitCondition::ConfigMapExists { namespace, name } => {
                format!("ConfigMap {namespace}/{name}")
            }
            WaitCondition::PodsReady { namespace, selector, containers, .. } => {
                format!("pods {selector} in {namespace} {containers}/{containers} Running")
            }
            WaitCondition::ResourceReady { kind, namespace, name, .. } => match namespace {
                Some(ns) => format!("{kind} {ns}/{name} Ready"),
                None => format!("{kind} {name} Ready"),
            },
        }
    }

    /// The API of a [`WaitCondition::ResourceReady`]'s kind (plural guessed from the
    /// kind, as kube does: `istios`, `istiocnis`).
    fn dynamic_api(
        client: &Client,
        group: &str,
        version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        }
    }

    /// Waits, watch-based, until the condition holds on `cluster` or `timeout`
    /// passes. Returns the Service's LoadBalancer IP for
    /// [`WaitCondition::LoadBalancerIp`] (in step 1, `EXTERNAL_ISTIOD_ADDR`).
    pub async fn wait(
        &self,
        cluster: &str,
        client: &Client,
        timeout: Duration,
    ) -> Result<Option<IpAddr>, WaitError> {
        let what = self.describe();
        match self {
            WaitCondition::LoadBalancerIp { namespace, service } => {
                let api = Api::<Service>::namespaced(client.clone(), namespace);
                let has_ip = conditions::has_load_balancer_ip();
                let svc = wait::until(cluster, &api, service, &what, has_ip, timeout).await?;
                Ok(load_balancer_ip(&svc))
            }
            WaitCondition::DeploymentAvailable { namespace, name } => {
                let api = Api::<Deployment>::namespaced(client.clone(), namespace);
                let available = conditions::deployment_available();
                wait::until(cluster, &api, name, &what, available, timeout).await?;
                Ok(None)
            }
            WaitCondition::ConfigMapExists { namespace, name } => {
                let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
                wait::until(cluster, &api, name, &what, conditions::exists(), timeout).await?;
                Ok(None)
            }
            WaitCondition::PodsReady { namespace, selector, containers, sidecar } => {
                let api = Api::<Pod>::namespaced(client.clone(), namespace);
                let ready = super::pod_ready(*containers, *sidecar);
                wait::until_all(cluster, &api, selector, &what, ready, timeout).await?;
                Ok(None)
            }
            WaitCondition::ResourceReady { group, version, kind, namespace, name } => {
                let api = Self::dynamic_api(client, group, version, kind, namespace.as_deref());
                let ready = conditions::ready_condition();
                wait::until(cluster, &api, name, &what, ready, timeout).await?;
                Ok(None)
            }
        }
    }

    /// Checks once, without waiting, that the condition holds on `cluster`.
    pub async fn check(&self, cluster: &str, client: &Client) -> Result<(), CheckFailed> {
        match self {
            WaitCondition::LoadBalancerIp { namespace, service } => {
                let api = Api::<Service>::namespaced(client.clone(), namespace);
                self.holds(cluster, &api, service, conditions::has_load_balancer_ip()).await
            }
            WaitCondition::DeploymentAvailable { namespace, name } => {
                let api = Api::<Deployment>::namespaced(client.clone(), namespace);
                self.holds(cluster, &api, name, conditions::deployment_available()).await
            }
            WaitCondition::ConfigMapExists { namespace, name } => {
                super::facts::config_map_exists(cluster, client, namespace, name).await
            }
            WaitCondition::PodsReady { namespace, selector, containers, sidecar } => {
                super::facts::pods_ready(
                    cluster,
                    client,
                    namespace,
                    selector,
                    *containers,
                    *sidecar,
                )
                .await
            }
            WaitCondition::ResourceReady { group, version, kind, namespace, name } => {
                let api = Self::dynamic_api(client, group, version, kind, namespace.as_deref());
                self.holds(cluster, &api, name, conditions::ready_condition()).await
            }
        }
    }

    /// The object `name` exists and `condition` holds for it now.
    async fn holds<K, C>(
        &self,
        cluster: &str,
        api: &Api<K>,
        name: &str,
        condition: C,
    ) -> Result<(), CheckFailed>
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        C: Condition<K>,
    {
        let what = self.describe();
        match api.get_opt(name).await {
            Ok(Some(obj)) if condition.matches_object(Some(&obj)) => Ok(()),
            Ok(Some(obj)) => {
                Err(failed(cluster, what, format!("not yet: {}", wait::describe(&obj))))
            }
            Ok(None) => Err(failed(cluster, what, "it does not exist")),
            Err(e) => Err(failed(cluster, what, format!("reading it failed: {e}"))),
        }
    }
}
