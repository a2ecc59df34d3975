//! Named conditions for the watch-based waits of [`super::wait`], in the style of
//! kube-runtime's `conditions` module: each is a value implementing kube's
//! [`Condition`] (a predicate over the watched object, `None` when it does not
//! exist), so a wait reads as what it waits for:
//! `wait::until(cluster, &api, name, what, deployment_available(), timeout)`.
//!
//! A condition awaited over a set of objects ([`super::wait::until_all`]) also says
//! why an object does not meet it ([`Explain`]): a timed-out wait then reports
//! "pod helloworld-v1-x is Pending" rather than every pod's raw status.
//!
//! Only Kubernetes facts live here; what Istio adds (the `istio-proxy` sidecar) is
//! passed in by the checks (`crate::checks`).

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use ::kube::runtime::wait::Condition;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};

/// A [`Condition`] that can say, in words, why an object does not meet it.
pub trait Explain<K>: Condition<K> {
    /// Why `obj` does not meet the condition; `None` when it does.
    fn unmet(&self, obj: &K) -> Option<String>;
}

/// The object exists.
pub fn exists<K>() -> impl Condition<K> + Copy {
    |obj: Option<&K>| obj.is_some()
}

/// The object does not exist (never created, or deleted and gone).
pub fn is_gone<K>() -> impl Condition<K> + Copy {
    |obj: Option<&K>| obj.is_none()
}

/// The Deployment reports `Available=True`.
pub fn deployment_available() -> impl Condition<Deployment> + Copy {
    |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            })
        })
    }
}

/// The object's `status.conditions` has `Ready` with status `True` (a custom
/// resource read as untyped JSON, e.g. the Sail operator's `Istio`).
pub fn ready_condition() -> impl Condition<::kube::api::DynamicObject> + Copy {
    |obj: Option<&::kube::api::DynamicObject>| obj.is_some_and(|o| has_ready_condition(&o.data))
}

/// Whether `object` (a resource as JSON) reports the condition `Ready=True`.
pub fn has_ready_condition(object: &serde_json::Value) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The Service has a LoadBalancer ingress IP ([`load_balancer_ip`]); a hostname
/// alone does not count (the harness needs an address).
pub fn has_load_balancer_ip() -> impl Condition<Service> + Copy {
    |s: Option<&Service>| s.and_then(load_balancer_ip).is_some()
}

/// The first ingress IP of a LoadBalancer Service.
pub fn load_balancer_ip(service: &Service) -> Option<IpAddr> {
    service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .iter()
        .flatten()
        .find_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
}

/// Where a pod runs a container of a given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerPlacement {
    /// In `spec.containers`.
    Container,
    /// In `spec.initContainers` with `restartPolicy: Always`: a native sidecar
    /// (Kubernetes 1.29+).
    NativeSidecar,
}

/// Where the pod runs the container `name`, looking in both lists; an init
/// container that is no native sidecar does not count (it has ended once the pod
/// runs).
pub fn container_placement(pod: &Pod, name: &str) -> Option<ContainerPlacement> {
    let spec = pod.spec.as_ref()?;
    if spec.containers.iter().any(|c| c.name == name) {
        return Some(ContainerPlacement::Container);
    }
    spec.init_containers
        .iter()
        .flatten()
        .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
        .then_some(ContainerPlacement::NativeSidecar)
}

/// `ready/total` as `kubectl get pods` shows it: containers plus native sidecars
/// (init containers with `restartPolicy: Always`).
pub fn ready_containers(pod: &Pod) -> (u32, u32) {
    let Some(spec) = pod.spec.as_ref() else { return (0, 0) };
    let sidecars: BTreeSet<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let total = spec.containers.len() + sidecars.len();
    let status = pod.status.as_ref();
    let ready_main = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().filter(|c| c.ready).count());
    let ready_sidecars = status.and_then(|s| s.init_container_statuses.as_ref()).map_or(0, |cs| {
        cs.iter().filter(|c| c.ready && sidecars.contains(c.name.as_str())).count()
    });
    (count(ready_main + ready_sidecars), count(total))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A pod is Running with exactly `containers` containers, all ready (native sidecars
/// counted, as `kubectl` does), one of them named `with_container` when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodReady<'a> {
    pub containers: u32,
    pub with_container: Option<&'a str>,
}

/// [`PodReady`]: Running, `containers`/`containers` ready, with `with_container`.
pub fn pod_ready(containers: u32, with_container: Option<&str>) -> PodReady<'_> {
    PodReady { containers, with_container }
}

impl Explain<Pod> for PodReady<'_> {
    fn unmet(&self, pod: &Pod) -> Option<String> {
        let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
        if phase != "Running" {
            return Some(format!("pod {name} is {phase}"));
        }
        let (ready, total) = ready_containers(pod);
        let n = self.containers;
        if ready != n || total != n {
            return Some(format!("pod {name} is {ready}/{total}, expected {n}/{n}"));
        }
        match self.with_container {
            Some(c) if container_placement(pod, c).is_none() => {
                Some(format!("pod {name} has no {c} container or native sidecar"))
            }
            _ => None,
        }
    }
}

impl Condition<Pod> for PodReady<'_> {
    fn matches_object(&self, obj: Option<&Pod>) -> bool {
        obj.is_some_and(|p| self.unmet(p).is_none())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Only `Ready` with status `True` counts: not another condition that is true,
    /// not `Ready` that is false or unknown, not a resource without status.
    #[test]
    fn ready_condition_is_ready_true() {
        let with =
            |conditions: serde_json::Value| json!({ "status": { "conditions": conditions } });
        assert!(has_ready_condition(&with(json!([
            { "type": "Reconciled", "status": "True" },
            { "type": "Ready", "status": "True" },
        ]))));
        assert!(!has_ready_condition(&with(json!([{ "type": "Ready", "status": "False" }]))));
        assert!(!has_ready_condition(&with(json!([{ "type": "Ready", "status": "Unknown" }]))));
        assert!(!has_ready_condition(&with(json!([{ "type": "Reconciled", "status": "True" }]))));
        assert!(!has_ready_condition(&json!({ "spec": {} })));
        let ar = ::kube::api::ApiResource::from_gvk(&::kube::api::GroupVersionKind::gvk(
            "sailoperator.io",
            "v1",
            "Istio",
        ));
        let mut obj = ::kube::api::DynamicObject::new("default", &ar);
        assert!(!ready_condition().matches_object(Some(&obj)));
        obj.data = with(json!([{ "type": "Ready", "status": "True" }]));
        assert!(ready_condition().matches_object(Some(&obj)));
        assert!(!ready_condition().matches_object(None));
    }

    pub(crate) fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    /// A pod with a sidecar in `spec.containers` (Istio up to 1.26 by default).
    pub(crate) fn with_proxy_container(ready: [bool; 2], phase: &str) -> Pod {
        pod(json!({
            "metadata": {"name": "helloworld-v1-abc"},
            "spec": {
                "initContainers": [{"name": "istio-init", "image": "proxyv2"}],
                "containers": [
                    {"name": "helloworld", "image": "hw"},
                    {"name": "istio-proxy", "image": "proxyv2"}
                ]
            },
            "status": {
                "phase": phase,
                "initContainerStatuses": [{"name": "istio-init", "ready": false, "restartCount": 0, "image": "", "imageID": ""}],
                "containerStatuses": [
                    {"name": "helloworld", "ready": ready[0], "restartCount": 0, "image": "", "imageID": ""},
                    {"name": "istio-proxy", "ready": ready[1], "restartCount": 0, "image": "", "imageID": ""}
                ]
            }
        }))
    }

    /// A pod with a native sidecar (Istio 1.27+ on 1.33+ kubelets).
    pub(crate) fn with_native_sidecar(proxy_ready: bool) -> Pod {
        pod(json!({
            "metadata": {"name": "helloworld-v1-def"},
            "spec": {
                "initContainers": [
                    {"name": "istio-init", "image": "proxyv2"},
                    {"name": "istio-proxy", "image": "proxyv2", "restartPolicy": "Always"}
                ],
                "containers": [{"name": "helloworld", "image": "hw"}]
            },
            "status": {
                "phase": "Running",
                "initContainerStatuses": [
                    {"name": "istio-init", "ready": false, "restartCount": 0, "image": "", "imageID": ""},
                    {"name": "istio-proxy", "ready": proxy_ready, "restartCount": 0, "image": "", "imageID": ""}
                ],
                "containerStatuses": [
                    {"name": "helloworld", "ready": true, "restartCount": 0, "image": "", "imageID": ""}
                ]
            }
        }))
    }

    #[test]
    fn containers_are_found_in_containers_or_as_native_sidecars() {
        let p = with_proxy_container([true; 2], "Running");
        assert_eq!(container_placement(&p, "istio-proxy"), Some(ContainerPlacement::Container));
        assert_eq!(
            container_placement(&with_native_sidecar(true), "istio-proxy"),
            Some(ContainerPlacement::NativeSidecar)
        );
        assert_eq!(container_placement(&with_native_sidecar(true), "istio-init"), None);
        assert_eq!(container_placement(&p, "nope"), None);
    }

    #[test]
    fn ready_counts_match_kubectl_for_both_shapes() {
        assert_eq!(ready_containers(&with_proxy_container([true, true], "Running")), (2, 2));
        assert_eq!(ready_containers(&with_proxy_container([true, false], "Running")), (1, 2));
        assert_eq!(ready_containers(&with_native_sidecar(true)), (2, 2));
        assert_eq!(ready_containers(&with_native_sidecar(false)), (1, 2));
    }

    #[test]
    fn pods_ready_name_the_pod_and_what_is_wrong() {
        let ready = pod_ready(2, Some("istio-proxy"));
        assert!(ready.matches_object(Some(&with_proxy_container([true; 2], "Running"))));
        assert!(ready.matches_object(Some(&with_native_sidecar(true))));
        assert!(!ready.matches_object(None));
        let pending = ready.unmet(&with_proxy_container([false; 2], "Pending")).unwrap();
        assert_eq!(pending, "pod helloworld-v1-abc is Pending");
        let half = ready.unmet(&with_native_sidecar(false)).unwrap();
        assert!(half.contains("1/2, expected 2/2"), "{half}");
        let plain = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "image": "", "imageID": ""},
                {"name": "b", "ready": true, "restartCount": 0, "image": "", "imageID": ""}]}}));
        let missing = ready.unmet(&plain).unwrap();
        assert_eq!(missing, "pod p has no istio-proxy container or native sidecar");
        assert_eq!(pod_ready(2, None).unmet(&plain), None);
    }

    #[test]
    fn deployments_are_available_only_with_the_condition_true() {
        let d = |status: &str| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "istiod"},
                "status": {"conditions": [
                    {"type": "Progressing", "status": "True"},
                    {"type": "Available", "status": status}
                ]}
            }))
            .unwrap()
        };
        let available = deployment_available();
        assert!(available.matches_object(Some(&d("True"))));
        assert!(!available.matches_object(Some(&d("False"))));
        assert!(!available.matches_object(None));
    }

    #[test]
    fn load_balancer_ips_are_read() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "istio-ingressgateway"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.6.116"}]}}
        }))
        .unwrap();
        assert_eq!(load_balancer_ip(&svc), Some("172.18.6.116".parse().unwrap()));
        assert!(has_load_balancer_ip().matches_object(Some(&svc)));
        let pending: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "status": {}})).unwrap();
        assert_eq!(load_balancer_ip(&pending), None);
        assert!(!has_load_balancer_ip().matches_object(Some(&pending)));
        let by_name: Service = serde_json::from_value(json!({"metadata": {"name": "s"},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}}))
        .unwrap();
        assert!(!has_load_balancer_ip().matches_object(Some(&by_name)));
    }

    #[test]
    fn existence_and_absence() {
        let cm = k8s_openapi::api::core::v1::ConfigMap::default();
        assert!(exists().matches_object(Some(&cm)));
        assert!(!exists::<Pod>().matches_object(None));
        assert!(is_gone::<Pod>().matches_object(None));
        assert!(!is_gone().matches_object(Some(&cm)));
    }
}
