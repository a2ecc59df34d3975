//! Facts that prove the external istiod did the work, as pure readers of the objects
//! the API returns: the injected proxy's cluster ID, discovery and CA addresses; the
//! webhook configurations' CA bundle, failure policy and target; their generation
//! staying put (two istiods fighting over them is a known failure).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Container, Pod};

use super::facts::ISTIO_PROXY;
use crate::install::values::{XDS_PORT, host_port};

/// The certificates of a PEM text, each as its base64 body without whitespace.
pub fn pem_certificates(text: &str) -> Vec<String> {
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match line {
            "-----BEGIN CERTIFICATE-----" => current = Some(String::new()),
            "-----END CERTIFICATE-----" => certs.extend(current.take()),
            body => {
                if let Some(c) = current.as_mut() {
                    c.push_str(body);
                }
            }
        }
    }
    certs
}

/// A webhook's `caBundle` is non-empty and holds exactly the certificates of
/// `expected_pem` (the CA that signs what the webhook client is served).
pub fn ca_bundle_matches(bundle: &[u8], expected_pem: &str) -> Result<(), String> {
    let bundle = pem_certificates(&String::from_utf8_lossy(bundle));
    if bundle.is_empty() {
        return Err("the caBundle is empty or holds no certificate".into());
    }
    let expected: BTreeSet<String> = pem_certificates(expected_pem).into_iter().collect();
    if expected.is_empty() {
        return Err("the expected CA holds no certificate".into());
    }
    let got: BTreeSet<String> = bundle.into_iter().collect();
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "the caBundle holds {} certificate(s), {} of them the expected CA's ({} expected)",
            got.len(),
            got.intersection(&expected).count(),
            expected.len()
        ))
    }
}

/// The mutating webhook configurations that carry a sidecar-injector webhook.
pub fn injector_configurations(mutating: &[MutatingWebhookConfiguration]) -> Vec<String> {
    mutating
        .iter()
        .filter(|c| c.webhooks.iter().flatten().any(|w| w.name.contains("sidecar-injector")))
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect()
}

/// The one sidecar-injector configuration; more than one means two injectors answer
/// for the same pods (or a second control plane left its configuration behind).
pub fn single_injector(
    mutating: &[MutatingWebhookConfiguration],
) -> Result<&MutatingWebhookConfiguration, String> {
    let names = injector_configurations(mutating);
    match names.as_slice() {
        [name] => mutating
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| format!("{name} vanished while reading")),
        [] => Err("no mutating webhook configuration carries a sidecar injector".into()),
        many => Err(format!("{} injector configurations: {}", many.len(), many.join(", "))),
    }
}

/// The CA a webhook's caBundle must hold: the mesh root the external istiod publishes
/// (`root-cert.pem` of `istio-ca-root-cert`). When the harness plugged its own CA
/// into istiod (the SIMPLE variant: `harness_ca`, which also signs the gateway's
/// certificate that the webhook client is served), the mesh root must be that CA.
pub fn expected_webhook_ca(mesh_root: &str, harness_ca: Option<&str>) -> Result<String, String> {
    let root: BTreeSet<String> = pem_certificates(mesh_root).into_iter().collect();
    if root.is_empty() {
        return Err("the published mesh root holds no certificate".into());
    }
    let Some(harness_ca) = harness_ca else { return Ok(mesh_root.to_string()) };
    let harness: BTreeSet<String> = pem_certificates(harness_ca).into_iter().collect();
    if harness.is_empty() {
        return Err("the harness's CA file holds no certificate".into());
    }
    if root != harness {
        return Err("the published mesh root is not the harness's CA plugged into istiod".into());
    }
    Ok(harness_ca.to_string())
}

/// Every name of `required` is among `found`; names those missing.
pub fn all_present(found: &[String], required: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> =
        required.iter().copied().filter(|r| !found.iter().any(|f| f == r)).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("missing: {}", missing.join(", "))) }
}

/// Where a webhook client config sends the API server's call, if it is istiod
/// through the external address: the `istiod` Service of `namespace` (whose
/// endpoints are the external address, checked separately), or a URL on `address`.
fn target_problem(
    config: &WebhookClientConfig,
    namespace: &str,
    address: IpAddr,
) -> Option<String> {
    if let Some(svc) = &config.service {
        return (svc.name != "istiod" || svc.namespace != namespace)
            .then(|| format!("calls Service {}/{}", svc.namespace, svc.name));
    }
    let Some(url) = &config.url else { return Some("has neither a Service nor a URL".into()) };
    let host = url.split("://").nth(1).unwrap_or("").split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
    (host.parse::<IpAddr>().ok() != Some(address)).then(|| format!("calls URL {url}"))
}

/// What is wrong with an injector configuration: webhooks that are not fail-closed,
/// that do not reach istiod through the external address, whose caBundle is not the
/// expected CA.
pub fn injector_problems(
    config: &MutatingWebhookConfiguration,
    namespace: &str,
    address: IpAddr,
    ca_pem: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for w in config.webhooks.iter().flatten() {
        if w.failure_policy.as_deref() != Some("Fail") {
            problems.push(format!("{}: failurePolicy is {:?}, not Fail", w.name, w.failure_policy));
        }
        problems.extend(webhook_problems(&w.name, &w.client_config, namespace, address, ca_pem));
    }
    if problems.is_empty() && config.webhooks.as_ref().is_none_or(Vec::is_empty) {
        problems.push("it has no webhook".into());
    }
    problems
}

/// What is wrong with a validating configuration: target and caBundle.
pub fn validator_problems(
    config: &ValidatingWebhookConfiguration,
    namespace: &str,
    address: IpAddr,
    ca_pem: &str,
) -> Vec<String> {
    let mut problems: Vec<String> = config
        .webhooks
        .iter()
        .flatten()
        .flat_map(|w| webhook_problems(&w.name, &w.client_config, namespace, address, ca_pem))
        .collect();
    if config.webhooks.as_ref().is_none_or(Vec::is_empty) {
        problems.push("it has no webhook".into());
    }
    problems
}

fn webhook_problems(
    name: &str,
    config: &WebhookClientConfig,
    namespace: &str,
    address: IpAddr,
    ca_pem: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(p) = target_problem(config, namespace, address) {
        problems.push(format!("{name} {p}, not istiod at {address}"));
    }
    let bundle = config.ca_bundle.as_ref().map(|b| b.0.as_slice()).unwrap_or_default();
    if let Err(e) = ca_bundle_matches(bundle, ca_pem) {
        problems.push(format!("{name}: {e}"));
    }
    problems
}

/// Generations by object name.
pub type Generations = BTreeMap<String, i64>;

/// The generation of every webhook configuration, mutating and validating (names
/// prefixed `mutating/` and `validating/`).
pub fn generations(
    mutating: &[MutatingWebhookConfiguration],
    validating: &[ValidatingWebhookConfiguration],
) -> Generations {
    let name = |kind: &str, n: &Option<String>| format!("{kind}/{}", n.as_deref().unwrap_or(""));
    mutating
        .iter()
        .map(|c| (name("mutating", &c.metadata.name), c.metadata.generation.unwrap_or(0)))
        .chain(
            validating.iter().map(|c| {
                (name("validating", &c.metadata.name), c.metadata.generation.unwrap_or(0))
            }),
        )
        .collect()
}

/// The webhook configurations kept their generation over the observation.
pub fn generations_stable(before: &Generations, after: &Generations) -> Result<(), String> {
    if before.is_empty() {
        return Err("no webhook configuration was observed".into());
    }
    let changed: Vec<String> = before
        .iter()
        .filter_map(|(name, g)| match after.get(name) {
            None => Some(format!("{name} disappeared")),
            Some(now) if now != g => Some(format!("{name} went from generation {g} to {now}")),
            Some(_) => None,
        })
        .collect();
    if changed.is_empty() { Ok(()) } else { Err(changed.join("; ")) }
}

fn proxy_container(pod: &Pod) -> Option<&Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == ISTIO_PROXY)
}

fn env<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container.env.iter().flatten().find(|e| e.name == name).and_then(|e| e.value.as_deref())
}

/// What shows that a pod's proxy was not injected by the external istiod serving
/// `cluster_id` at `address`: cluster ID, discovery address and CA address.
pub fn proxy_provenance_problems(pod: &Pod, cluster_id: &str, address: IpAddr) -> Vec<String> {
    proxy_provenance_problems_at(pod, cluster_id, address, XDS_PORT)
}

/// [`proxy_provenance_problems`] for a mesh whose xDS and CA are on `xds_port` of
/// the gateway (a mesh after the first, [`crate::mesh::Mesh::xds_port`]).
pub fn proxy_provenance_problems_at(
    pod: &Pod,
    cluster_id: &str,
    address: IpAddr,
    xds_port: u16,
) -> Vec<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
    let Some(proxy) = proxy_container(pod) else {
        return vec![format!("pod {name} has no {ISTIO_PROXY}")];
    };
    let xds = host_port(address, xds_port);
    let mut problems = Vec::new();
    let id = env(proxy, "ISTIO_META_CLUSTER_ID");
    if id != Some(cluster_id) {
        problems.push(format!("pod {name}: cluster ID {id:?}, expected {cluster_id}"));
    }
    let discovery = env(proxy, "PROXY_CONFIG")
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c.get("discoveryAddress").and_then(|d| d.as_str()).map(String::from));
    if discovery.as_deref() != Some(xds.as_str()) {
        problems.push(format!("pod {name}: discovery address {discovery:?}, expected {xds}"));
    }
    let ca = env(proxy, "CA_ADDR");
    if ca != Some(xds.as_str()) {
        problems.push(format!("pod {name}: CA address {ca:?}, expected {xds}"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "-----BEGIN CERTIFICATE-----\nMIIBroot\nAAAA\n-----END CERTIFICATE-----\n";
    const OTHER: &str = "-----BEGIN CERTIFICATE-----\nMIIBother\n-----END CERTIFICATE-----\n";
    const ADDR: &str = "172.18.6.66";

    fn addr() -> IpAddr {
        ADDR.parse().unwrap()
    }

    #[test]
    fn pem_bodies_ignore_layout() {
        assert_eq!(pem_certificates(ROOT), ["MIIBrootAAAA"]);
        let reflowed =
            "-----BEGIN CERTIFICATE-----\r\n MIIBro\r\not\nAAAA \n-----END CERTIFICATE-----";
        assert_eq!(pem_certificates(reflowed), pem_certificates(ROOT));
        assert!(pem_certificates("no pem").is_empty());
    }

    #[test]
    fn the_ca_bundle_must_be_exactly_the_expected_ca() {
        assert_eq!(ca_bundle_matches(ROOT.as_bytes(), ROOT), Ok(()));
        let err = ca_bundle_matches(b"", ROOT).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = ca_bundle_matches(OTHER.as_bytes(), ROOT).unwrap_err();
        assert!(err.contains("0 of them the expected"), "{err}");
        let both = format!("{ROOT}{OTHER}");
        assert!(ca_bundle_matches(both.as_bytes(), ROOT).is_err(), "an extra CA is a mismatch");
        assert!(ca_bundle_matches(ROOT.as_bytes(), "").is_err());
    }

    fn injector(policy: &str, client: serde_json::Value) -> MutatingWebhookConfiguration {
        serde_json::from_value(json!({
            "metadata": {"name": "istio-sidecar-injector-external-istiod", "generation": 1},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "failurePolicy": policy,
                "admissionReviewVersions": ["v1"], "sideEffects": "None", "clientConfig": client}]
        }))
        .unwrap()
    }

    fn bundle() -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(ROOT)
    }

    #[test]
    fn a_fail_closed_injector_reaching_the_external_istiod_has_no_problem() {
        let svc = json!({"service": {"name": "istiod", "namespace": "external-istiod", "path": "/inject"}, "caBundle": bundle()});
        assert!(
            injector_problems(&injector("Fail", svc), "external-istiod", addr(), ROOT).is_empty()
        );
        let url = json!({"url": format!("https://{ADDR}:15017/inject/cluster/remote1/net/network1"), "caBundle": bundle()});
        assert!(
            injector_problems(&injector("Fail", url), "external-istiod", addr(), ROOT).is_empty()
        );
    }

    #[test]
    fn open_policies_other_targets_and_wrong_bundles_are_named() {
        let svc = json!({"service": {"name": "istiod", "namespace": "external-istiod"}, "caBundle": bundle()});
        let p = injector_problems(&injector("Ignore", svc), "external-istiod", addr(), ROOT);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("failurePolicy is Some(\"Ignore\")"), "{p:?}");
        let local = json!({"service": {"name": "istiod", "namespace": "istio-system"}, "caBundle": bundle()});
        let p = injector_problems(&injector("Fail", local), "external-istiod", addr(), ROOT);
        assert!(p[0].contains("calls Service istio-system/istiod"), "{p:?}");
        let elsewhere = json!({"url": "https://10.0.0.9:15017/inject"});
        let p = injector_problems(&injector("Fail", elsewhere), "external-istiod", addr(), ROOT);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("calls URL https://10.0.0.9") && p[1].contains("empty"), "{p:?}");
    }

    #[test]
    fn validators_are_checked_for_target_and_bundle() {
        let v: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "istiod-default-validator"},
            "webhooks": [{"name": "validation.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"name": "istiod", "namespace": "external-istiod"}, "caBundle": bundle()}}]
        }))
        .unwrap();
        assert!(validator_problems(&v, "external-istiod", addr(), ROOT).is_empty());
        assert!(!validator_problems(&v, "external-istiod", addr(), OTHER).is_empty());
        let empty: ValidatingWebhookConfiguration =
            serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        assert_eq!(
            validator_problems(&empty, "external-istiod", addr(), ROOT),
            ["it has no webhook"]
        );
    }

    #[test]
    fn exactly_the_injector_configurations_are_found() {
        let svc = json!({"service": {"name": "istiod", "namespace": "external-istiod"}});
        let other: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "cert-manager"},
            "webhooks": [{"name": "webhook.cert-manager.io", "admissionReviewVersions": ["v1"], "sideEffects": "None", "clientConfig": svc}]
        }))
        .unwrap();
        assert_eq!(
            injector_configurations(&[injector("Fail", svc.clone()), other]),
            ["istio-sidecar-injector-external-istiod"]
        );
    }

    #[test]
    fn exactly_one_injector_configuration() {
        let svc = json!({"service": {"name": "istiod", "namespace": "external-istiod"}});
        let one = [injector("Fail", svc.clone())];
        let found = single_injector(&one).unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("istio-sidecar-injector-external-istiod"));
        let err = single_injector(&[]).unwrap_err();
        assert!(err.contains("no mutating webhook configuration"), "{err}");
        let mut second = injector("Fail", svc);
        second.metadata.name = Some("istio-sidecar-injector".into());
        let err = single_injector(&[one[0].clone(), second]).unwrap_err();
        assert_eq!(
            err,
            "2 injector configurations: istio-sidecar-injector-external-istiod, istio-sidecar-injector"
        );
    }

    #[test]
    fn the_expected_ca_is_the_mesh_root_or_the_harness_ca_it_must_equal() {
        assert_eq!(expected_webhook_ca(ROOT, None), Ok(ROOT.to_string()));
        assert_eq!(expected_webhook_ca(ROOT, Some(ROOT)), Ok(ROOT.to_string()));
        let err = expected_webhook_ca(ROOT, Some(OTHER)).unwrap_err();
        assert!(err.contains("not the harness's CA"), "{err}");
        assert!(expected_webhook_ca("", None).unwrap_err().contains("mesh root"));
        assert!(expected_webhook_ca(ROOT, Some("x")).unwrap_err().contains("harness's CA file"));
    }

    #[test]
    fn required_names_must_all_be_present() {
        let found = ["istiod-default-validator".to_string(), "x".to_string()];
        assert_eq!(all_present(&found, &["istiod-default-validator"]), Ok(()));
        let err =
            all_present(&found, &["istio-validator-external-istiod", "istiod-default-validator"])
                .unwrap_err();
        assert_eq!(err, "missing: istio-validator-external-istiod");
    }

    #[test]
    fn generations_cover_both_kinds() {
        let svc = json!({"service": {"name": "istiod", "namespace": "external-istiod"}});
        let v: ValidatingWebhookConfiguration = serde_json::from_value(
            json!({"metadata": {"name": "istiod-default-validator", "generation": 3}}),
        )
        .unwrap();
        let g = generations(&[injector("Fail", svc)], &[v]);
        assert_eq!(
            g.into_iter().collect::<Vec<_>>(),
            [
                ("mutating/istio-sidecar-injector-external-istiod".to_string(), 1),
                ("validating/istiod-default-validator".to_string(), 3)
            ]
        );
    }

    #[test]
    fn generations_must_not_move() {
        let before: Generations = [("a".to_string(), 1), ("b".to_string(), 4)].into();
        assert_eq!(generations_stable(&before, &before.clone()), Ok(()));
        let mut fought = before.clone();
        fought.insert("b".into(), 9);
        assert_eq!(
            generations_stable(&before, &fought).unwrap_err(),
            "b went from generation 4 to 9"
        );
        fought.remove("a");
        assert!(generations_stable(&before, &fought).unwrap_err().contains("a disappeared"));
        assert!(generations_stable(&Generations::new(), &before).is_err());
    }

    fn proxied(cluster_id: &str, discovery: &str, ca: &str) -> Pod {
        let config = json!({"discoveryAddress": discovery}).to_string();
        serde_json::from_value(json!({
            "metadata": {"name": "helloworld-v1-x"},
            "spec": {"containers": [{"name": "helloworld"}, {"name": "istio-proxy", "env": [
                {"name": "ISTIO_META_CLUSTER_ID", "value": cluster_id},
                {"name": "PROXY_CONFIG", "value": config},
                {"name": "CA_ADDR", "value": ca}
            ]}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_proxy_names_the_remote_and_the_external_address() {
        let xds = format!("{ADDR}:15012");
        assert!(
            proxy_provenance_problems(&proxied("remote1", &xds, &xds), "remote1", addr())
                .is_empty()
        );
        let local =
            proxied("Kubernetes", "istiod.istio-system.svc:15012", "istiod.istio-system.svc:15012");
        let p = proxy_provenance_problems(&local, "remote1", addr());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("cluster ID Some(\"Kubernetes\")"), "{p:?}");
        let bare: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}),
        )
        .unwrap();
        assert_eq!(
            proxy_provenance_problems(&bare, "remote1", addr()),
            ["pod p has no istio-proxy"]
        );
    }
}
