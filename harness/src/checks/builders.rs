//! The checks and waits of the guide as values, built in one place: the planner
//! (`install/steps.rs`) puts them in the plan, the scenarios run them against the
//! clusters, so both check the same names, ports, paths and pod shapes.

use std::net::IpAddr;

use crate::install::values::SHARED_MESH_CONFIG;
use crate::install::{
    Check, INGRESS_GATEWAY, Revision, SAMPLE_NAMESPACE, WaitCondition, WebhookKind,
};
use crate::mesh::Mesh;
use crate::topology::EXTERNAL_ISTIOD_NAMESPACE;
use crate::version::IstioVersion;

/// helloworld as a client in the mesh asks it (procedure.md step 6).
pub const HELLOWORLD_URL: &str = "http://helloworld.sample:5000/hello";
/// The doc test sends ten requests to see both helloworld versions.
pub const REQUESTS_FOR_BOTH_VERSIONS: u32 = 10;
/// Where the config cluster's ingress gateway serves helloworld (procedure.md step 7):
/// `http://<its LoadBalancer IP>:80/hello`.
pub const INGRESS_PORT: u16 = 80;
pub const INGRESS_PATH: &str = "/hello";
/// The injector configuration carries four webhooks (namespace and object
/// selectors, with and without revision).
const INJECTOR_WEBHOOKS: u32 = 4;

/// The pods an in-mesh greeting is asked from: `curl` runs in container `container`
/// of a running pod matching `selector` in `sample`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshClient<'a> {
    pub selector: String,
    pub container: &'a str,
}

impl<'a> MeshClient<'a> {
    /// The client sample `name` (`sleep` up to 1.23, `curl` from 1.24,
    /// [`IstioVersion::client_sample`]): pods `app=<name>`, container `<name>`.
    pub fn sample(name: &'a str) -> Self {
        Self { selector: format!("app={name}"), container: name }
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

impl Check {
    /// The config cluster's injector configuration, with its four webhooks.
    pub fn injector_webhooks() -> Self {
        Self::injector_webhooks_of(Mesh::FIRST)
    }

    /// The injector configuration of `mesh` on its remotes.
    pub fn injector_webhooks_of(mesh: Mesh) -> Self {
        Check::WebhookConfigurationExists {
            kind: WebhookKind::Mutating,
            name: mesh.injection_webhook_config(),
            min_webhooks: INJECTOR_WEBHOOKS,
        }
    }

    /// The config cluster's validating configuration of the external istiod.
    pub fn validator_webhooks() -> Self {
        Self::validator_webhooks_of(Mesh::FIRST)
    }

    /// The validating configuration of `mesh` on its config cluster.
    pub fn validator_webhooks_of(mesh: Mesh) -> Self {
        Check::WebhookConfigurationExists {
            kind: WebhookKind::Validating,
            name: mesh.validation_webhook_config(),
            min_webhooks: 1,
        }
    }

    /// The `istiod` Service of `external-istiod` points at `address` (the version's
    /// address object).
    pub fn istiod_address(istio: IstioVersion, address: IpAddr) -> Self {
        Self::istiod_address_of(Mesh::FIRST, istio, address)
    }

    /// The `istiod` Service of `mesh`'s namespace points at `address` with the mesh's
    /// ports.
    pub fn istiod_address_of(mesh: Mesh, istio: IstioVersion, address: IpAddr) -> Self {
        Check::IstiodAddress {
            namespace: mesh.namespace(),
            service: Revision::default().istiod(),
            object: istio.istiod_address_object(),
            address,
            ports: [mesh.xds_port(), mesh.webhook_port()],
        }
    }

    /// This remote-profile check of the first mesh for the names the charts give
    /// `revision` ([`Self::for_revision_in`] `external-istiod`).
    pub fn for_revision(self, revision: Revision<'_>) -> Self {
        self.for_revision_in(revision, EXTERNAL_ISTIOD_NAMESPACE)
    }

    /// This remote-profile check of the mesh in `namespace` for the names the charts
    /// give `revision`: the webhook configurations `<base>-<revision>-<namespace>`
    /// (the injector then has the two revision webhooks; the four of the guide's are
    /// split with the default tag's), the config maps `<name>-<revision>`, the
    /// Service `istiod-<revision>`. The default revision's names stay.
    pub fn for_revision_in(self, revision: Revision<'_>, namespace: &str) -> Self {
        if revision.0.is_none() {
            return self;
        }
        match self {
            Check::WebhookConfigurationExists { kind, name, min_webhooks } => {
                let suffix = format!("-{namespace}");
                let base = name.strip_suffix(&suffix).unwrap_or(&name);
                let min_webhooks = match kind {
                    WebhookKind::Mutating => min_webhooks.min(2),
                    WebhookKind::Validating => min_webhooks,
                };
                Check::WebhookConfigurationExists {
                    kind,
                    name: revision.webhook_config_in(base, namespace),
                    min_webhooks,
                }
            }
            Check::ConfigMapExists { namespace, name } => {
                Check::ConfigMapExists { namespace, name: revision.name(&name) }
            }
            Check::IstiodAddress { namespace, object, address, ports, .. } => {
                Check::IstiodAddress {
                    namespace,
                    service: revision.istiod(),
                    object,
                    address,
                    ports,
                }
            }
            other => other,
        }
    }

    /// The mesh config the config cluster shares: config map `istio` in
    /// `external-istiod`, and `values` where the version renders it.
    pub fn mesh_config_maps(istio: IstioVersion) -> Vec<Self> {
        Self::mesh_config_maps_of(Mesh::FIRST, istio)
    }

    /// The mesh config maps of `mesh` on its config cluster.
    pub fn mesh_config_maps_of(mesh: Mesh, istio: IstioVersion) -> Vec<Self> {
        let mut names = vec![SHARED_MESH_CONFIG];
        if istio.renders_values_configmap() {
            names.push("values");
        }
        names
            .into_iter()
            .map(|name| Check::ConfigMapExists { namespace: mesh.namespace(), name: name.into() })
            .collect()
    }

    /// What the guide checks on the config cluster after installing the remote
    /// profile: both webhook configurations, the istiod address, the mesh config.
    pub fn config_cluster_profile(istio: IstioVersion, address: IpAddr) -> Vec<Self> {
        Self::config_cluster_profile_of(Mesh::FIRST, istio, address)
    }

    /// [`Self::config_cluster_profile`] for `mesh`'s names and ports.
    pub fn config_cluster_profile_of(
        mesh: Mesh,
        istio: IstioVersion,
        address: IpAddr,
    ) -> Vec<Self> {
        let mut checks = vec![
            Self::injector_webhooks_of(mesh),
            Self::validator_webhooks_of(mesh),
            Self::istiod_address_of(mesh, istio, address),
        ];
        checks.extend(Self::mesh_config_maps_of(mesh, istio));
        checks
    }

    /// What the guide checks on a further remote after installing the remote
    /// profile: the injector and the istiod address.
    pub fn remote_profile(istio: IstioVersion, address: IpAddr) -> Vec<Self> {
        Self::remote_profile_of(Mesh::FIRST, istio, address)
    }

    /// [`Self::remote_profile`] for `mesh`'s names and ports.
    pub fn remote_profile_of(mesh: Mesh, istio: IstioVersion, address: IpAddr) -> Vec<Self> {
        vec![Self::injector_webhooks_of(mesh), Self::istiod_address_of(mesh, istio, address)]
    }

    /// No webhook configuration of the cluster mentions `text`.
    pub fn webhooks_do_not_mention(text: &str) -> Self {
        Check::WebhooksDoNotMention { text: text.into() }
    }

    /// From `client`, `curl` of helloworld answers every version of `versions`
    /// within `requests` requests.
    pub fn helloworld_greeting(client: MeshClient<'_>, versions: &[&str], requests: u32) -> Self {
        Check::ExecGreeting {
            namespace: SAMPLE_NAMESPACE.into(),
            selector: client.selector,
            container: client.container.into(),
            url: HELLOWORLD_URL.into(),
            versions: strings(versions),
            requests,
        }
    }

    /// Through the config cluster's ingress gateway (in `external-istiod`), from
    /// outside the mesh, helloworld answers every version of `versions` within
    /// `requests` requests.
    pub fn ingress_greeting(versions: &[&str], requests: u32) -> Self {
        Self::ingress_greeting_of(Mesh::FIRST, versions, requests)
    }

    /// [`Self::ingress_greeting`] through `mesh`'s ingress gateway (in its namespace).
    pub fn ingress_greeting_of(mesh: Mesh, versions: &[&str], requests: u32) -> Self {
        Check::IngressGreeting {
            namespace: mesh.namespace(),
            service: INGRESS_GATEWAY.into(),
            port: INGRESS_PORT,
            path: INGRESS_PATH.into(),
            versions: strings(versions),
            requests,
        }
    }
}

impl WaitCondition {
    /// The Service `namespace/service` has a LoadBalancer IP.
    pub fn load_balancer_ip(namespace: &str, service: &str) -> Self {
        WaitCondition::LoadBalancerIp { namespace: namespace.into(), service: service.into() }
    }

    /// The Deployment `namespace/name` is Available.
    pub fn deployment_available(namespace: &str, name: &str) -> Self {
        WaitCondition::DeploymentAvailable { namespace: namespace.into(), name: name.into() }
    }

    /// The ConfigMap `namespace/name` exists.
    pub fn config_map_exists(namespace: &str, name: &str) -> Self {
        WaitCondition::ConfigMapExists { namespace: namespace.into(), name: name.into() }
    }

    /// Pods of the samples matching `selector` in `sample`: 2/2 Running, one of them
    /// `istio-proxy` (injected by the external istiod).
    pub fn sample_pods(selector: &str) -> Self {
        WaitCondition::PodsReady {
            namespace: SAMPLE_NAMESPACE.into(),
            selector: selector.into(),
            containers: 2,
            sidecar: true,
        }
    }

    /// helloworld `version`'s pods, as [`WaitCondition::sample_pods`].
    pub fn helloworld_pods(version: &str) -> Self {
        Self::sample_pods(&format!("app=helloworld,version={version}"))
    }

    /// The client sample `name`'s pods, as [`WaitCondition::sample_pods`].
    pub fn client_pods(name: &str) -> Self {
        Self::sample_pods(&MeshClient::sample(name).selector)
    }

    /// The external istiod's pods (`app=istiod` in `external-istiod` of the external
    /// cluster): 1/1 Running, no sidecar.
    pub fn external_istiod_pods() -> Self {
        Self::external_istiod_pods_of(Mesh::FIRST)
    }

    /// `mesh`'s istiod pods in its namespace of the external cluster.
    pub fn external_istiod_pods_of(mesh: Mesh) -> Self {
        WaitCondition::PodsReady {
            namespace: mesh.namespace(),
            selector: "app=istiod".into(),
            containers: 1,
            sidecar: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_checks_differ_between_the_config_cluster_and_further_remotes() {
        let addr: IpAddr = "172.18.6.66".parse().unwrap();
        let old = IstioVersion::new(1, 25, 4);
        let new = IstioVersion::new(1, 30, 3);
        assert_eq!(Check::config_cluster_profile(old, addr).len(), 4);
        assert_eq!(Check::config_cluster_profile(new, addr).len(), 5, "`values` from 1.26");
        assert_eq!(
            Check::remote_profile(new, addr),
            [Check::injector_webhooks(), Check::istiod_address(new, addr)]
        );
    }

    #[test]
    fn the_client_sample_is_found_by_its_app_label_and_container() {
        let client = MeshClient::sample("curl");
        assert_eq!(client, MeshClient { selector: "app=curl".into(), container: "curl" });
        let Check::ExecGreeting { selector, container, url, versions, .. } =
            Check::helloworld_greeting(client, &["v1"], 1)
        else {
            panic!("an exec greeting")
        };
        assert_eq!((selector.as_str(), container.as_str()), ("app=curl", "curl"));
        assert_eq!((url.as_str(), versions), (HELLOWORLD_URL, vec!["v1".to_string()]));
        assert_eq!(
            WaitCondition::client_pods("curl"),
            WaitCondition::sample_pods("app=curl"),
            "the wait and the greeting look at the same pods"
        );
    }
}
