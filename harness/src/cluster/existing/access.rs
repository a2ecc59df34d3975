//! What the install plan does to each cluster, as the API server authorizes it: one
//! [`Access`] (verb, group/resource, namespace) per request kind the executor and the
//! installers make. The preflight asks the API server about each with a
//! SelfSubjectAccessReview ([`super::preflight`]), so missing permissions are named
//! before anything is created.
//!
//! Derived from the [`Plan`] action by action (docs/existing-clusters.md
//! "Permissions"):
//! - `CreateNamespace`: namespaces get, create, patch (server-side apply; an apply
//!   that creates is authorized as create too).
//! - `Apply` of a plan file: per object, get, create, patch of its resource in its
//!   namespace; CustomResourceDefinitions also list and watch (the wait for
//!   Established).
//! - `Delete` and `DeleteNamespace`: delete, then get, list and watch (the wait until
//!   gone).
//! - `CreateRemoteSecret`: in the source cluster, serviceaccounts get, list, watch and
//!   secrets get, list, watch, create, patch; in the target cluster, secrets get,
//!   create, patch.
//! - `WaitFor` and `Verify`: the reads (and `pods/exec` create) of each wait and check.
//! - `Run` (istioctl, helm): what they create is known only when they run, so a
//!   fixed list stands for it ([`INSTALLER_CLUSTER_RESOURCES`],
//!   [`INSTALLER_NAMESPACED_RESOURCES`], [`INSTALLER_VERBS`]) in every namespace the
//!   plan uses on that cluster but the sample application's; `--purge` also lists
//!   them in all namespaces.
//!
//! A plan file's kinds are mapped to resources by discovery; a kind the cluster does
//! not serve yet (an Istio CRD installed by the plan itself) gets its conventional
//! plural. A namespaced object without a namespace goes to `default`, as the
//! executor's client would send it.

use std::collections::BTreeSet;
use std::fmt;

use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

use crate::install::{Action, Check, Plan, SAMPLE_NAMESPACE, WaitCondition, WebhookKind};
use crate::version::IstiodAddressObject;

/// Verbs of an object the executor applies.
const APPLY_VERBS: &[&str] = &["get", "create", "patch"];
/// Verbs of an object the executor deletes and waits for.
const DELETE_VERBS: &[&str] = &["delete", "get", "list", "watch"];
/// Verbs of a watch-based wait.
const WATCH_VERBS: &[&str] = &["get", "list", "watch"];

/// Cluster-scoped resources istioctl and helm create, read and delete for the
/// procedure's charts (base/CRDs, istiod, the remote profile).
pub const INSTALLER_CLUSTER_RESOURCES: &[(&str, &str)] = &[
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
];

/// Namespaced resources istioctl and helm create, read and delete for the
/// procedure's charts (istiod, the gateways, the remote profile; Helm's release
/// records are Secrets). The istiod address object of the remote profile
/// (`endpoints` or `endpointslices.discovery.k8s.io`) is added per Istio version.
pub const INSTALLER_NAMESPACED_RESOURCES: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "configmaps"),
    ("", "secrets"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("policy", "poddisruptionbudgets"),
    ("autoscaling", "horizontalpodautoscalers"),
];

/// What the installers do to each of those.
pub const INSTALLER_VERBS: &[&str] =
    &["get", "list", "watch", "create", "update", "patch", "delete"];

/// What the installers read while waiting for their workloads to become ready.
const INSTALLER_READS: &[(&str, &str)] = &[("", "pods"), ("apps", "replicasets")];

/// One request kind, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub verb: String,
    /// The API group, `""` for the core group.
    pub group: String,
    /// The resource (plural), e.g. `deployments`.
    pub resource: String,
    /// A subresource, e.g. `exec`.
    pub subresource: Option<String>,
    /// `None` for cluster-scoped resources, and for namespaced ones in all namespaces.
    pub namespace: Option<String>,
}

impl Access {
    fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Self {
        Self {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: None,
            namespace: namespace.map(str::to_string),
        }
    }

    /// The resource as kubectl names it: `deployments.apps`, `namespaces`, `pods/exec`.
    pub fn resource_name(&self) -> String {
        let mut out = self.resource.clone();
        if !self.group.is_empty() {
            out = format!("{out}.{}", self.group);
        }
        if let Some(sub) = &self.subresource {
            out = format!("{out}/{sub}");
        }
        out
    }

    /// Where, in words: `in istio-system`, or `cluster-wide`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.verb, self.resource_name(), self.scope())
    }
}

/// A kind as the cluster serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub group: String,
    pub resource: String,
    pub namespaced: bool,
}

/// Every access the plan needs on `cluster`. `resolve` maps an `apiVersion` and
/// kind to the cluster's resource (discovery); `None` falls back to the
/// conventional plural, namespaced when the object or action names a namespace.
pub fn required(
    plan: &Plan,
    cluster: &str,
    resolve: &dyn Fn(&str, &str) -> Option<Resolved>,
) -> BTreeSet<Access> {
    let mut out = Needs { set: BTreeSet::new() };
    // The sample application is applied by the executor, never by an installer.
    let installer_namespaces: BTreeSet<String> =
        namespaces(plan, cluster).into_iter().filter(|n| n != SAMPLE_NAMESPACE).collect();
    for step in &plan.steps {
        let here = step.cluster == cluster;
        for action in &step.actions {
            match action {
                Action::CreateNamespace { .. } if here => {
                    out.add(APPLY_VERBS, "", "namespaces", None);
                }
                Action::Apply { file, namespace } if here => {
                    out.objects(plan, file, namespace.as_deref(), APPLY_VERBS, resolve);
                }
                Action::Delete { file, namespace } if here => {
                    out.objects(plan, file, namespace.as_deref(), DELETE_VERBS, resolve);
                }
                Action::DeleteNamespace { .. } if here => {
                    out.add(DELETE_VERBS, "", "namespaces", None);
                }
                Action::Run { args, .. } if here => {
                    out.installer(plan, &installer_namespaces, args.iter().any(|a| a == "--purge"));
                }
                Action::CreateRemoteSecret {
                    source_cluster, target_cluster, namespace, ..
                } => {
                    let ns = Some(namespace.as_str());
                    if source_cluster == cluster {
                        out.add(WATCH_VERBS, "", "serviceaccounts", ns);
                        out.add(&["get", "list", "watch", "create", "patch"], "", "secrets", ns);
                    }
                    if target_cluster == cluster {
                        out.add(APPLY_VERBS, "", "secrets", ns);
                    }
                }
                Action::WaitFor { condition, .. } if here => out.wait(condition),
                Action::Verify { check } if here => out.verify(check),
                _ => {}
            }
        }
    }
    out.set
}

/// Every namespace the plan creates or writes into on `cluster`, sorted.
pub fn namespaces(plan: &Plan, cluster: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for step in &plan.steps {
        let here = step.cluster == cluster;
        for action in &step.actions {
            match action {
                Action::CreateNamespace { name, .. } if here => {
                    out.insert(name.clone());
                }
                Action::Apply { namespace: Some(ns), .. } if here => {
                    out.insert(ns.clone());
                }
                Action::CreateRemoteSecret {
                    source_cluster, target_cluster, namespace, ..
                } if source_cluster == cluster || target_cluster == cluster => {
                    out.insert(namespace.clone());
                }
                _ => {}
            }
        }
    }
    out
}

struct Needs {
    set: BTreeSet<Access>,
}

impl Needs {
    fn add(&mut self, verbs: &[&str], group: &str, resource: &str, namespace: Option<&str>) {
        for verb in verbs {
            self.set.insert(Access::new(verb, group, resource, namespace));
        }
    }

    /// The objects of a plan file. Files made at run time (an installer's output)
    /// are not in the plan; the installer's fixed list stands for them.
    fn objects(
        &mut self,
        plan: &Plan,
        file: &str,
        namespace: Option<&str>,
        verbs: &[&str],
        resolve: &dyn Fn(&str, &str) -> Option<Resolved>,
    ) {
        let Some(f) = plan.file(file) else { return };
        let Ok(objects) = crate::kube::delete::objects_to_delete(&f.contents, namespace) else {
            return;
        };
        for o in objects {
            let r = resolve(&o.api_version, &o.kind).unwrap_or_else(|| {
                let (group, version) = crate::kube::group_version(&o.api_version);
                let guess = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &o.kind));
                Resolved {
                    group: group.to_string(),
                    resource: guess.plural,
                    namespaced: o.namespace.is_some(),
                }
            });
            let ns = r.namespaced.then(|| o.namespace.as_deref().unwrap_or("default"));
            let crd =
                r.group == "apiextensions.k8s.io" && r.resource == "customresourcedefinitions";
            let verbs: Vec<&str> = if crd && verbs == APPLY_VERBS {
                APPLY_VERBS.iter().chain(&["list", "watch"]).copied().collect()
            } else {
                verbs.to_vec()
            };
            self.add(&verbs, &r.group, &r.resource, ns);
        }
    }

    fn installer(&mut self, plan: &Plan, namespaces: &BTreeSet<String>, purge: bool) {
        for (group, resource) in INSTALLER_CLUSTER_RESOURCES {
            self.add(INSTALLER_VERBS, group, resource, None);
        }
        let address = match plan.options.istio.istiod_address_object() {
            IstiodAddressObject::Endpoints => ("", "endpoints"),
            IstiodAddressObject::EndpointSlice => ("discovery.k8s.io", "endpointslices"),
        };
        let namespaced = INSTALLER_NAMESPACED_RESOURCES.iter().chain([&address]);
        for (group, resource) in namespaced {
            for ns in namespaces {
                self.add(INSTALLER_VERBS, group, resource, Some(ns));
            }
            if purge {
                self.add(&["list"], group, resource, None);
            }
        }
        for (group, resource) in INSTALLER_READS {
            for ns in namespaces {
                self.add(&["get", "list"], group, resource, Some(ns));
            }
        }
    }

    fn wait(&mut self, condition: &WaitCondition) {
        match condition {
            WaitCondition::LoadBalancerIp { namespace, .. } => {
                self.add(WATCH_VERBS, "", "services", Some(namespace));
            }
            WaitCondition::DeploymentAvailable { namespace, .. } => {
                self.add(WATCH_VERBS, "apps", "deployments", Some(namespace));
            }
            WaitCondition::PodsReady { namespace, .. } => {
                self.add(&["list", "watch"], "", "pods", Some(namespace));
            }
            WaitCondition::ConfigMapExists { namespace, .. } => {
                self.add(WATCH_VERBS, "", "configmaps", Some(namespace));
            }
            WaitCondition::ResourceReady { group, kind, namespace, .. } => {
                // Sail's kinds: `istios`, `istiocnis` (plural as kube guesses it).
                let resource = format!("{}s", kind.to_lowercase());
                self.add(WATCH_VERBS, group, &resource, namespace.as_deref());
            }
        }
    }

    fn verify(&mut self, check: &Check) {
        let webhooks = |kind: WebhookKind| match kind {
            WebhookKind::Mutating => "mutatingwebhookconfigurations",
            WebhookKind::Validating => "validatingwebhookconfigurations",
        };
        let admission = "admissionregistration.k8s.io";
        match check {
            Check::WebhookConfigurationExists { kind, .. } => {
                self.add(&["get"], admission, webhooks(*kind), None);
            }
            Check::ConfigMapExists { namespace, .. } => {
                self.add(&["get"], "", "configmaps", Some(namespace));
            }
            Check::IstiodAddress { namespace, object, .. } => match object {
                IstiodAddressObject::Endpoints => {
                    self.add(&["get"], "", "endpoints", Some(namespace));
                }
                IstiodAddressObject::EndpointSlice => {
                    self.add(&["list"], "discovery.k8s.io", "endpointslices", Some(namespace));
                }
            },
            Check::WebhooksDoNotMention { .. } => {
                for kind in [WebhookKind::Mutating, WebhookKind::Validating] {
                    self.add(&["list"], admission, webhooks(kind), None);
                }
            }
            Check::ExecGreeting { namespace, .. } => {
                self.add(&["list"], "", "pods", Some(namespace));
                let mut exec = Access::new("create", "", "pods", Some(namespace));
                exec.subresource = Some("exec".into());
                self.set.insert(exec);
            }
            Check::IngressGreeting { namespace, .. } => {
                self.add(&["get"], "", "services", Some(namespace));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{Installer, PlanOptions, plan};
    use crate::version::NEWEST;

    fn a_plan(installer: Installer, remotes: usize) -> Plan {
        plan(&PlanOptions::new(NEWEST, installer, remotes)).unwrap()
    }

    /// Discovery as a cluster without Istio's CRDs answers it.
    fn core_only(api_version: &str, kind: &str) -> Option<Resolved> {
        let (group, _) = crate::kube::group_version(api_version);
        let (resource, namespaced) = match kind {
            "Namespace" => ("namespaces", false),
            "Deployment" => ("deployments", true),
            "Service" => ("services", true),
            "ServiceAccount" => ("serviceaccounts", true),
            "Secret" => ("secrets", true),
            _ => return None,
        };
        Some(Resolved { group: group.into(), resource: resource.into(), namespaced })
    }

    fn has(set: &BTreeSet<Access>, text: &str) -> bool {
        set.iter().any(|a| a.to_string() == text)
    }

    #[test]
    fn the_plan_needs_namespaces_objects_installers_and_remote_secrets() {
        let p = a_plan(Installer::Istioctl, 1);
        let ext = required(&p, "external", &core_only);
        let cfg = required(&p, "config", &core_only);
        for (set, text) in [
            (&ext, "create namespaces cluster-wide"),
            (&ext, "patch namespaces cluster-wide"),
            (&ext, "delete namespaces cluster-wide"),
            (&ext, "create customresourcedefinitions.apiextensions.k8s.io cluster-wide"),
            (&ext, "create deployments.apps in namespace istio-system"),
            (&ext, "create deployments.apps in namespace external-istiod"),
            (&ext, "list deployments.apps cluster-wide"), // istioctl uninstall --purge
            // The routing file's Istio kinds, before Istio's CRDs exist.
            (&ext, "create gateways.networking.istio.io in namespace external-istiod"),
            (&ext, "create virtualservices.networking.istio.io in namespace external-istiod"),
            (&ext, "create secrets in namespace external-istiod"), // the remote secret
            (&cfg, "create secrets in namespace external-istiod"), // the token Secret
            (&cfg, "watch serviceaccounts in namespace external-istiod"),
            (&cfg, "create deployments.apps in namespace sample"),
            (&cfg, "create pods/exec in namespace sample"),
            (&cfg, "get mutatingwebhookconfigurations.admissionregistration.k8s.io cluster-wide"),
            (&cfg, "list endpointslices.discovery.k8s.io in namespace external-istiod"),
        ] {
            assert!(has(set, text), "{text} missing from {set:#?}");
        }
        assert!(!has(&cfg, "create deployments.apps in namespace istio-system"));
        // The samples are the executor's: an installer writes nothing there.
        assert!(!has(&cfg, "create configmaps in namespace sample"));
        assert!(!has(&ext, "create deployments.apps in namespace sample"));
    }

    #[test]
    fn namespaces_are_those_the_plan_uses_per_cluster() {
        let p = a_plan(Installer::Helm, 2);
        let names = |c| namespaces(&p, c).into_iter().collect::<Vec<_>>();
        assert_eq!(names("external"), ["external-istiod", "istio-system"]);
        assert_eq!(names("config"), ["external-istiod", "sample"]);
        assert!(names("remote2").contains(&"external-istiod".to_string()));
    }

    #[test]
    fn accesses_read_as_kubectl_names_them() {
        let mut a = Access::new("create", "", "pods", Some("sample"));
        a.subresource = Some("exec".into());
        assert_eq!(a.to_string(), "create pods/exec in namespace sample");
        let b = Access::new("list", "apps", "deployments", None);
        assert_eq!(b.to_string(), "list deployments.apps cluster-wide");
    }
}
