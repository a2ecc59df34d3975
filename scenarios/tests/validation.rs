//! The external istiod's validating webhook answers for the config cluster: an
//! invalid VirtualService is refused by it (denied, not "could not be called"), a
//! valid one accepted. Both are server-side dry runs: nothing is left behind.

use ecp_harness::outage::Admission;
use ecp_scenarios::{SAMPLE_NAMESPACE, client, topology};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn virtual_service(name: &str, host: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": SAMPLE_NAMESPACE},
        "spec": {"hosts": ["helloworld"], "http": [{"route": [{"destination": {"host": host}}]}]}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn an_invalid_virtual_service_is_refused_and_a_valid_one_accepted() {
    let t = topology();
    let c = client(&t, t.config()).await;
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1beta1", "VirtualService");
    let api: Api<DynamicObject> =
        Api::namespaced_with(c, SAMPLE_NAMESPACE, &ApiResource::from_gvk(&gvk));
    let dry = PostParams { dry_run: true, ..Default::default() };

    let invalid = api.create(&dry, &virtual_service("ecp-invalid", "")).await;
    match &invalid {
        Err(kube::Error::Api(s)) => assert!(
            s.message.contains("denied the request") && s.message.contains("validation.istio.io"),
            "refused, but not by istiod's validation: {}",
            s.message
        ),
        other => panic!(
            "an invalid VirtualService: {}",
            Admission::of_object(other.as_ref().map(|_| ()))
        ),
    }
    let valid = api.create(&dry, &virtual_service("ecp-valid", "helloworld")).await;
    assert_eq!(Admission::of_object(valid.as_ref()), Admission::Admitted { sidecar: false });
}
