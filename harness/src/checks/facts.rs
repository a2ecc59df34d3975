//! The facts of Kubernetes objects the guide checks (procedure.md "What the anchors
//! check"): pure readers of the objects as the API returns them, then the checks of
//! a cluster built on them, which [`Check::run`](crate::install::Check) runs.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};

use super::{CheckFailed, failed};
use crate::install::WebhookKind;
use crate::install::plan::GUIDE_ISTIOD_PORTS;
use crate::kube::conditions::{ContainerPlacement, Explain, PodReady, container_placement};
use crate::version::IstiodAddressObject;

/// The istio-proxy container's name.
pub const ISTIO_PROXY: &str = "istio-proxy";

// ---- pure readers -------------------------------------------------------------

/// Where the pod's `istio-proxy` sidecar is: in `spec.containers` (1.22-1.26 by
/// default) or a native sidecar in `spec.initContainers` (1.27+ on 1.33+ kubelets).
pub fn sidecar_placement(pod: &Pod) -> Option<ContainerPlacement> {
    container_placement(pod, ISTIO_PROXY)
}

/// A pod is Running with `containers` ready, one of them `istio-proxy` when
/// `sidecar`: the condition of the plan's `PodsReady` waits and checks.
pub fn pod_ready(containers: u32, sidecar: bool) -> PodReady<'static> {
    crate::kube::conditions::pod_ready(containers, sidecar.then_some(ISTIO_PROXY))
}

/// The names of webhook configurations whose content mentions `text`
/// (istio/istio#37674: the external cluster's must not mention `external-istiod`).
pub fn webhooks_mentioning(
    mutating: &[MutatingWebhookConfiguration],
    validating: &[ValidatingWebhookConfiguration],
    text: &str,
) -> Vec<String> {
    let mentions = |value: serde_json::Result<String>| value.is_ok_and(|s| s.contains(text));
    let m = mutating
        .iter()
        .filter(|w| mentions(serde_json::to_string(w)))
        .map(|w| format!("mutating {}", w.metadata.name.as_deref().unwrap_or("")));
    let v = validating
        .iter()
        .filter(|w| mentions(serde_json::to_string(w)))
        .map(|w| format!("validating {}", w.metadata.name.as_deref().unwrap_or("")));
    m.chain(v).collect()
}

/// Whether an `istiod` Endpoints object points at `address` with ports 15012 and 15017.
pub fn endpoints_point_at(endpoints: &Endpoints, address: IpAddr) -> bool {
    endpoints_point_at_ports(endpoints, address, GUIDE_ISTIOD_PORTS)
}

/// Whether an `istiod` Endpoints object points at `address` with `ports` (a mesh's
/// xDS and webhook ports).
pub fn endpoints_point_at_ports(endpoints: &Endpoints, address: IpAddr, ports: [u16; 2]) -> bool {
    let address = address.to_string();
    endpoints.subsets.iter().flatten().any(|subset| {
        let has_address = subset.addresses.iter().flatten().any(|a| a.ip == address);
        let seen: BTreeSet<i32> = subset.ports.iter().flatten().map(|p| p.port).collect();
        has_address && ports.iter().all(|p| seen.contains(&i32::from(*p)))
    })
}

/// Whether an EndpointSlice points at `address` with ports 15012 and 15017.
pub fn slice_points_at(slice: &EndpointSlice, address: IpAddr) -> bool {
    slice_points_at_ports(slice, address, GUIDE_ISTIOD_PORTS)
}

/// Whether an EndpointSlice points at `address` with `ports`.
pub fn slice_points_at_ports(slice: &EndpointSlice, address: IpAddr, ports: [u16; 2]) -> bool {
    let address = address.to_string();
    let has_address = slice.endpoints.iter().flatten().any(|e| e.addresses.contains(&address));
    let seen: BTreeSet<i32> = slice.ports.iter().flatten().filter_map(|p| p.port).collect();
    has_address && ports.iter().all(|p| seen.contains(&i32::from(*p)))
}

// ---- cluster checks -------------------------------------------------------------

/// The webhook configuration exists with at least `min_webhooks` webhooks.
pub(super) async fn webhook_configuration_exists(
    cluster: &str,
    client: &Client,
    kind: WebhookKind,
    name: &str,
    min_webhooks: u32,
) -> Result<(), CheckFailed> {
    let mutating = kind == WebhookKind::Mutating;
    let kind = if mutating { "mutating" } else { "validating" };
    let check =
        format!("{kind} webhook configuration {name} with at least {min_webhooks} webhooks");
    let found = if mutating {
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await
            .map(|w| w.map(|w| w.webhooks.map_or(0, |v| v.len())))
    } else {
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await
            .map(|w| w.map(|w| w.webhooks.map_or(0, |v| v.len())))
    };
    match found {
        Err(e) => Err(failed(cluster, check, format!("reading it failed: {e}"))),
        Ok(None) => Err(failed(cluster, check, "it does not exist")),
        Ok(Some(n)) if u32::try_from(n).unwrap_or(u32::MAX) < min_webhooks => {
            Err(failed(cluster, check, format!("it has {n} webhooks")))
        }
        Ok(Some(_)) => Ok(()),
    }
}

/// The ConfigMap exists.
pub(super) async fn config_map_exists(
    cluster: &str,
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), CheckFailed> {
    let check = format!("config map {namespace}/{name}");
    match Api::<ConfigMap>::namespaced(client.clone(), namespace).get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(failed(cluster, check, "it does not exist")),
        Err(e) => Err(failed(cluster, check, format!("reading it failed: {e}"))),
    }
}

/// No webhook configuration of the cluster mentions `text`.
pub(super) async fn webhooks_do_not_mention(
    cluster: &str,
    client: &Client,
    text: &str,
) -> Result<(), CheckFailed> {
    let check = format!("no webhook configuration mentions `{text}`");
    let lp = ListParams::default();
    let read = |e: kube::Error| failed(cluster, &check, format!("listing them failed: {e}"));
    let mutating =
        Api::<MutatingWebhookConfiguration>::all(client.clone()).list(&lp).await.map_err(read)?;
    let validating =
        Api::<ValidatingWebhookConfiguration>::all(client.clone()).list(&lp).await.map_err(read)?;
    let offenders = webhooks_mentioning(&mutating.items, &validating.items, text);
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(failed(cluster, check, format!("mentioned by {}", offenders.join(", "))))
    }
}

/// The istiod Service `service`'s address object (the version's `object`) points
/// at `address` with `ports` (15012 and 15017 for the first mesh).
pub(super) async fn istiod_address(
    cluster: &str,
    client: &Client,
    (namespace, service): (&str, &str),
    object: IstiodAddressObject,
    address: IpAddr,
    ports: [u16; 2],
) -> Result<(), CheckFailed> {
    let check = format!("{service} in {namespace} points at {address}:{}/{}", ports[0], ports[1]);
    let seen = match object {
        IstiodAddressObject::Endpoints => {
            let api = Api::<Endpoints>::namespaced(client.clone(), namespace);
            match api.get_opt(service).await {
                Ok(Some(ep)) if endpoints_point_at_ports(&ep, address, ports) => return Ok(()),
                Ok(Some(_)) => format!("Endpoints {service} points elsewhere"),
                Ok(None) => format!("no Endpoints {service}"),
                Err(e) => format!("reading Endpoints failed: {e}"),
            }
        }
        IstiodAddressObject::EndpointSlice => {
            let api = Api::<EndpointSlice>::namespaced(client.clone(), namespace);
            let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
            match api.list(&lp).await {
                Ok(list) if list.items.iter().any(|s| slice_points_at_ports(s, address, ports)) => {
                    return Ok(());
                }
                Ok(list) => {
                    format!("{} EndpointSlices of {service}, none pointing there", list.items.len())
                }
                Err(e) => format!("listing EndpointSlices failed: {e}"),
            }
        }
    };
    Err(failed(cluster, check, seen))
}

/// Pods matching `selector` in `namespace`, newest last.
pub async fn pods(
    cluster: &str,
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Pod>, CheckFailed> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(selector)).await.map(|l| l.items).map_err(|e| {
        failed(cluster, format!("pods {selector} in {namespace}"), format!("listing failed: {e}"))
    })
}

/// Every pod matching `selector` is Running with `containers` ready (and istio-proxy
/// when `sidecar`), and there is at least one: [`pod_ready`] checked once.
pub(super) async fn pods_ready(
    cluster: &str,
    client: &Client,
    namespace: &str,
    selector: &str,
    containers: u32,
    sidecar: bool,
) -> Result<(), CheckFailed> {
    let check = format!("pods {selector} in {namespace} are {containers}/{containers} Running");
    let pods = pods(cluster, client, namespace, selector).await?;
    if pods.is_empty() {
        return Err(failed(cluster, check, "no pod matches"));
    }
    let ready = pod_ready(containers, sidecar);
    let reasons: Vec<String> = pods.iter().filter_map(|p| ready.unmet(p)).collect();
    if reasons.is_empty() { Ok(()) } else { Err(failed(cluster, check, reasons.join("; "))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::kube::conditions::tests::{pod, with_native_sidecar, with_proxy_container};

    /// A pod as a 1.26 injector renders it: istio-proxy in `spec.containers`.
    fn pod_1_26() -> Pod {
        with_proxy_container([true; 2], "Running")
    }

    /// A pod as a 1.27 injector renders it on 1.33+ kubelets: native sidecar.
    fn pod_1_27() -> Pod {
        with_native_sidecar(true)
    }

    #[test]
    fn sidecar_found_in_containers_or_as_native_sidecar() {
        assert_eq!(sidecar_placement(&pod_1_26()), Some(ContainerPlacement::Container));
        assert_eq!(sidecar_placement(&pod_1_27()), Some(ContainerPlacement::NativeSidecar));
        let plain =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}));
        assert_eq!(sidecar_placement(&plain), None);
        // An init container named istio-proxy without restartPolicy Always is no sidecar.
        let init_only = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app"}],
            "initContainers": [{"name": "istio-proxy"}]
        }}));
        assert_eq!(sidecar_placement(&init_only), None);
    }

    #[test]
    fn sample_pods_are_ready_in_both_shapes_and_need_the_proxy() {
        assert_eq!(pod_ready(2, true).unmet(&pod_1_26()), None);
        assert_eq!(pod_ready(2, true).unmet(&pod_1_27()), None);
        let plain = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "image": "", "imageID": ""},
                {"name": "b", "ready": true, "restartCount": 0, "image": "", "imageID": ""}]}}));
        assert!(pod_ready(2, true).unmet(&plain).unwrap().contains("no istio-proxy"));
        assert_eq!(pod_ready(2, false).unmet(&plain), None);
    }

    #[test]
    fn webhook_mentions_are_found_by_name() {
        let clean: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "istio-sidecar-injector"},
            "webhooks": [{"name": "a.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}}}]
        }))
        .unwrap();
        let bad: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "istio-validator-external-istiod"},
            "webhooks": [{"name": "v.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"name": "istiod", "namespace": "external-istiod"}}}]
        }))
        .unwrap();
        assert!(
            webhooks_mentioning(std::slice::from_ref(&clean), &[], "external-istiod").is_empty()
        );
        assert_eq!(
            webhooks_mentioning(&[clean], &[bad], "external-istiod"),
            ["validating istio-validator-external-istiod"]
        );
    }

    #[test]
    fn istiod_address_objects_are_read() {
        let addr: IpAddr = "172.18.6.66".parse().unwrap();
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "istiod"},
            "subsets": [{"addresses": [{"ip": "172.18.6.66"}],
                "ports": [{"name": "tcp-istiod", "port": 15012}, {"name": "tcp-webhook", "port": 15017}]}]
        }))
        .unwrap();
        assert!(endpoints_point_at(&ep, addr));
        assert!(!endpoints_point_at(&ep, "172.18.6.67".parse().unwrap()));
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "istiod-x"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["172.18.6.66"]}],
            "ports": [{"port": 15012}]
        }))
        .unwrap();
        assert!(!slice_points_at(&slice, addr), "15017 is missing");
        let mut full = slice.clone();
        full.ports.as_mut().unwrap().push(serde_json::from_value(json!({"port": 15017})).unwrap());
        assert!(slice_points_at(&full, addr));
    }
}
