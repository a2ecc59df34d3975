//! Server-side apply of multi-document YAML against a real 1.20 API server.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure
mod kube_support;

use ecp_harness::kube::apply::{ApplyError, ApplyOptions, Outcome, apply_yaml};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube_support::{FIELD_MANAGER, apply, start};

/// Objects before the things they need: the namespaced ConfigMap and custom resource
/// come before their Namespace and CRDs, which come last. The ClusterRole wrongly
/// names a namespace: discovery says it is cluster-scoped.
const BUNDLE: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apply-test
data:
  mode: "one"
---
apiVersion: ecp.test/v1
kind: Widget
metadata:
  name: w1
  namespace: apply-test
spec:
  size: 3
---
apiVersion: ecp.test/v1
kind: Gadget
metadata:
  name: g1
spec:
  color: blue
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: apply-test-reader
  namespace: apply-test
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
---
apiVersion: v1
kind: Namespace
metadata:
  name: apply-test
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.ecp.test
spec:
  group: ecp.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.ecp.test
spec:
  group: ecp.test
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                color: {type: string}
"#;

/// The start of a Go runtime crash in a container log, if any. A kube-apiserver 1.20
/// built with Go >= 1.18 against the vendored reflect2 v1.0.1 dies this way on the first
/// custom resource it serves (reflect2 v1.0.2 fixes it).
fn fatal_error(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    match lines.iter().position(|l| l.starts_with("fatal error") || l.starts_with("panic:")) {
        Some(at) => format!(
            "\n--- the API server crashed ---\n{}",
            lines[at.saturating_sub(2)..(at + 24).min(lines.len())].join("\n")
        ),
        None => String::new(),
    }
}

fn summary(
    report: &ecp_harness::kube::apply::ApplyReport,
) -> Vec<(String, Option<String>, Outcome)> {
    report
        .objects
        .iter()
        .map(|o| (format!("{}/{}", o.kind, o.name), o.namespace.clone(), o.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_crds_first_resolves_scope_and_a_second_apply_changes_nothing() {
    let run = start(&["apply"]).await;
    let client = run.clusters()[0].client().await.unwrap();

    let started = std::time::Instant::now();
    let opts = ApplyOptions::new("apply", FIELD_MANAGER);
    let first = match apply_yaml(&client, BUNDLE, "bundle.yaml", &opts).await {
        Ok(report) => report,
        // Say why when the API server died under the apply (see fatal_error).
        Err(e) => panic!("{e}{}", fatal_error(&run.clusters()[0].logs().await.unwrap_or_default())),
    };
    let first_took = started.elapsed();
    let ns = Some("apply-test".to_string());
    let created = |kind: &str, namespace: &Option<String>| {
        (kind.to_string(), namespace.clone(), Outcome::Created)
    };
    assert_eq!(
        summary(&first),
        [
            created("CustomResourceDefinition/widgets.ecp.test", &None),
            created("CustomResourceDefinition/gadgets.ecp.test", &None),
            created("Namespace/apply-test", &None),
            created("ConfigMap/settings", &ns),
            created("Widget/w1", &ns),
            created("Gadget/g1", &None),
            created("ClusterRole/apply-test-reader", &None),
        ]
    );

    // The objects are there, at the scope discovery gave them.
    let widget = GroupVersionKind::gvk("ecp.test", "v1", "Widget");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "apply-test", &ApiResource::from_gvk(&widget));
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], 3);
    let gadget = GroupVersionKind::gvk("ecp.test", "v1", "Gadget");
    let gadgets: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::from_gvk(&gadget));
    let g1 = gadgets.get("g1").await.unwrap();
    assert_eq!(g1.metadata.namespace, None);
    let role = Api::<ClusterRole>::all(client.clone()).get("apply-test-reader").await.unwrap();
    assert_eq!(role.metadata.namespace, None);

    // Applying the same text again changes nothing: every resourceVersion stays.
    let second = apply(&client, "apply", BUNDLE, "bundle.yaml").await;
    assert_eq!(second.objects.len(), 7);
    assert_eq!(second.modified().map(|o| o.to_string()).collect::<Vec<_>>(), Vec::<String>::new());

    // A real change is reported as exactly that one change.
    let changed = BUNDLE.replace("mode: \"one\"", "mode: \"two\"");
    let third = apply(&client, "apply", &changed, "bundle.yaml").await;
    let modified: Vec<String> = third.modified().map(|o| o.to_string()).collect();
    assert_eq!(modified, ["ConfigMap apply-test/settings: Changed"]);
    let cm = Api::<ConfigMap>::namespaced(client, "apply-test").get("settings").await.unwrap();
    assert_eq!(cm.data.unwrap()["mode"], "two");
    eprintln!("first apply of 7 objects (2 CRDs waited Established) took {first_took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_document_is_named_with_kind_name_and_the_servers_reason() {
    let run = start(&["invalid"]).await;
    let client = run.clusters()[0].client().await.unwrap();
    let yaml = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: default}
---
# a Service port must be 1-65535
apiVersion: v1
kind: Service
metadata:
  name: broken
  namespace: default
spec:
  ports:
    - port: 0
      protocol: TCP
"#;
    let err =
        apply_yaml(&client, yaml, "broken.yaml", &ApplyOptions::new("invalid", FIELD_MANAGER))
            .await
            .unwrap_err();
    let text = err.to_string();
    let ApplyError::Rejected { target, reason, code, message } = &err else {
        panic!("expected a rejection, got: {text}");
    };
    assert_eq!((target.doc.index, target.doc.line), (2, 5), "{text}");
    assert_eq!((target.kind.as_str(), target.name.as_str()), ("Service", "default/broken"));
    assert_eq!((reason.as_str(), *code), ("Invalid", 422), "{text}");
    assert!(message.contains("spec.ports[0].port"), "{text}");
    for part in [
        "broken.yaml: document 2 (line 5)",
        "Service default/broken",
        "cluster invalid",
        "Invalid",
        "spec.ports[0].port",
    ] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
    eprintln!("{text}");

    // A kind this 1.20 server does not serve is named as such, not sent.
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: istiod, namespace: default}\naddressType: IPv4\nendpoints: []\n";
    let err =
        apply_yaml(&client, slice, "slice.yaml", &ApplyOptions::new("invalid", FIELD_MANAGER))
            .await
            .unwrap_err();
    assert!(matches!(err, ApplyError::NotServed { .. }), "{err}");
    assert!(err.to_string().contains("discovery.k8s.io/v1 EndpointSlice is not served"), "{err}");
}
