//! The Istio values of procedure.md ("Values by Istio version"), neutral: one
//! description of each component that every backend turns into its own form.
//! [`InstallValues`] is the values tree of istiod and the remote profile (istioctl
//! puts it in an IstioOperator's `spec.meshConfig` and `spec.values` and picks the
//! components with `spec.profile` and `spec.components`; Helm writes it to a values
//! file and picks charts). [`GatewayValues`] describes a gateway (istioctl renders an
//! `ingressGateways` component, Helm the `gateway` chart's values).

use std::net::IpAddr;

use serde_json::{Value, json};

use super::backend::Revision;
use super::plan::GatewayTls;
use super::steps::{EASTWEST_GATEWAY, INGRESS_GATEWAY, ISTIO_SYSTEM, NETWORK_LABEL};
use crate::mesh::Mesh;
use crate::topology::ClusterSpec;
use crate::version::IstioVersion;

/// The mutating webhook configuration of the remote profile in a remote cluster.
pub const INJECTION_WEBHOOK_CONFIG_NAME: &str = "istio-sidecar-injector-external-istiod";
/// The validating webhook configuration of the remote profile in a remote cluster.
pub const VALIDATION_WEBHOOK_CONFIG_NAME: &str = "istio-validator-external-istiod";
/// The start of the mutating webhook configuration's name, before the revision.
pub const INJECTION_WEBHOOK_BASE: &str = "istio-sidecar-injector";
/// The start of the validating webhook configuration's name, before the revision.
pub const VALIDATION_WEBHOOK_BASE: &str = "istio-validator";
/// The mesh config map the external istiod shares from the config cluster.
pub const SHARED_MESH_CONFIG: &str = "istio";
/// The injector config map, beside the external istiod in the external cluster.
pub const INJECTOR_CONFIG_MAP: &str = "istio-sidecar-injector";
/// Where the external istiod reads the mesh config map.
pub const MESH_CONFIG_MOUNT: &str = "/etc/istio/config";
/// Where the external istiod reads the injector config map.
pub const INJECTOR_MOUNT: &str = "/var/lib/istio/inject";
/// The port of xDS and CA behind the external gateway.
pub const XDS_PORT: u16 = 15012;
/// The port of the webhooks behind the external gateway.
pub const WEBHOOK_PORT: u16 = 15017;
/// The status port of every Istio gateway.
pub const STATUS_PORT: u16 = 15021;
/// The CA bundle proxies trust for the gateway in the SIMPLE variant: the mesh root
/// every proxy mounts from `istio-ca-root-cert`. The harness's gateway CA is plugged
/// in as istiod's CA (the `cacerts` Secret), so that root is the one that signed the
/// gateway's certificate.
///
/// The webhooks follow suit: called through the config cluster's `istiod` Service
/// (the inject path form), the API server would verify the name
/// `istiod.external-istiod.svc` on a certificate that names only the IP, so the
/// SIMPLE variant uses the guide's URL form at the external address instead
/// ([`remote_profile`]); istiod patches their caBundle with the same root.
pub const SIMPLE_CA_BUNDLE: &str = "/var/run/secrets/istio/root-cert.pem";

/// The values of istiod or the remote profile, for every backend. Which components
/// or charts carry them is the backend's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallValues {
    /// `spec.meshConfig` (istioctl) or `meshConfig` (Helm); `Null` when none.
    pub mesh_config: Value,
    /// `spec.values` (istioctl) or the Helm values.
    pub values: Value,
}

/// A gateway as the procedure describes it, for every backend.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayValues {
    /// Its Deployment and Service (and istioctl's component, Helm's release).
    pub name: &'static str,
    pub namespace: String,
    /// Its `istio` label, which the Gateway resources routing through it select.
    pub istio_label: &'static str,
    /// Its Service's ports, where the procedure names them; else the installer's.
    pub ports: Option<Value>,
    /// The network whose traffic it carries (an east-west gateway).
    pub network: Option<String>,
}

impl GatewayValues {
    /// Its pods' labels: `app` (its name), `istio`, and an east-west gateway's network.
    pub fn labels(&self) -> Value {
        let mut labels = json!({ "app": self.name, "istio": self.istio_label });
        if let Some(network) = &self.network {
            labels[NETWORK_LABEL] = json!(network);
        }
        labels
    }
}

/// `<addr>:<port>`, with brackets for IPv6.
pub fn host_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The control-plane gateway's Service ports (procedure.md step 1): 15021 status,
/// 15012 `tls-xds`, 15017 `tls-webhook`.
pub fn control_plane_gateway_ports() -> Value {
    control_plane_gateway_ports_for(1)
}

/// The control-plane gateway's Service ports for `meshes` meshes: the first mesh's
/// as in the guide, then each further mesh's pair ([`Mesh::xds_port`],
/// [`Mesh::webhook_port`]) named `tls-xds-mesh<k>` and `tls-webhook-mesh<k>`.
pub fn control_plane_gateway_ports_for(meshes: usize) -> Value {
    let mut ports =
        vec![json!({ "port": STATUS_PORT, "targetPort": STATUS_PORT, "name": "status-port" })];
    for mesh in Mesh::all(meshes) {
        let (xds, webhook, suffix) = (mesh.xds_port(), mesh.webhook_port(), mesh.suffix());
        ports.push(json!({ "port": xds, "targetPort": xds, "name": format!("tls-xds{suffix}") }));
        ports.push(
            json!({ "port": webhook, "targetPort": webhook, "name": format!("tls-webhook{suffix}") }),
        );
    }
    Value::Array(ports)
}

/// Step 1: the external cluster's ingress gateway in `istio-system` with the
/// control-plane ports (the guide installs it with the default profile: base and a
/// small istiod that configures only this gateway come with it).
pub fn control_plane_gateway() -> GatewayValues {
    control_plane_gateway_for(1)
}

/// Step 1's gateway carrying the ports of `meshes` meshes.
pub fn control_plane_gateway_for(meshes: usize) -> GatewayValues {
    GatewayValues {
        name: INGRESS_GATEWAY,
        namespace: ISTIO_SYSTEM.to_string(),
        istio_label: "ingressgateway",
        ports: Some(control_plane_gateway_ports_for(meshes)),
        network: None,
    }
}

/// Step 2 and 8: the remote profile for a remote cluster. `config` is the config
/// cluster (first remote): it also serves the mesh config (`global.configCluster`,
/// `pilot.configMap`).
///
/// PASSTHROUGH uses the inject path (`istiodRemote.injectionPath`): the webhooks call
/// the `istiod` Service, which points at the gateway, and istiod's own certificate
/// answers for that Service's name. SIMPLE terminates TLS at the gateway with a
/// certificate for the external IP, so the webhooks use the URL form at that IP
/// (`istiodRemote.injectionURL` with the same path, `base.validationURL`), and
/// proxies reach istiod at the IP, trusting it through [`SIMPLE_CA_BUNDLE`].
///
/// Whether the remote profile is `profile: remote` or the `istiodRemote` component
/// ([`IstioVersion::remote_profile`]) is for the backend to render.
///
/// Meshes after the first (the cluster's [`ClusterSpec::mesh`]) set no
/// `global.remotePilotAddress`: the charts' `istiod` Service and its address object
/// carry 15012 and 15017, hard-coded (`remote-istiod-service.yaml`,
/// `remote-istiod-endpoints.yaml`/`-endpointslices.yaml` of
/// `manifests/charts/istio-control/istio-discovery/templates` at 1.24.6 and 1.30.3,
/// `istiod-remote/templates/services.yaml` and `endpoints.yaml` at 1.23.6), which
/// are the first mesh's ports. The steps apply the mesh's own `istiod` Service and
/// address object instead (`steps.rs`, `mesh_istiod_service`).
pub fn remote_profile(
    cluster: &ClusterSpec,
    config: bool,
    external_addr: IpAddr,
    tls: GatewayTls,
    revision: Revision<'_>,
) -> InstallValues {
    let mesh = cluster.mesh;
    let mut values = json!({ "global": { "istioNamespace": mesh.namespace() } });
    if mesh.is_first() {
        values["global"]["remotePilotAddress"] = json!(external_addr.to_string());
    }
    let path = cluster.injection_path().unwrap_or_default();
    match tls {
        GatewayTls::Passthrough => values["istiodRemote"] = json!({ "injectionPath": path }),
        GatewayTls::Simple => {
            let webhooks = format!("https://{}", host_port(external_addr, WEBHOOK_PORT));
            values["istiodRemote"] = json!({ "injectionURL": format!("{webhooks}{path}") });
            values["base"] = json!({ "validationURL": format!("{webhooks}/validate") });
        }
    }
    if config {
        values["global"]["configCluster"] = json!(true);
        values["pilot"] = json!({ "configMap": true });
    }
    let mut mesh_config = Value::Null;
    if tls == GatewayTls::Simple {
        values["global"]["caAddress"] = json!(host_port(external_addr, XDS_PORT));
        mesh_config = simple_mesh_config(external_addr);
    }
    // The guide passes it on every version: without it 1.22/1.23 render no
    // `istiod-default-validator` (istioctl) or one calling a Service `istiod-` (Helm),
    // and unlabelled Istio config is never validated. With a revision it names the
    // revision: the validator then calls `istiod-<revision>`, the only istiod Service
    // there is (the charts' `defaultRevision` templates, procedure.md "Distribution
    // overrides").
    values["defaultRevision"] = json!(revision.0.unwrap_or("default"));
    InstallValues { mesh_config, values }
}

/// Step 4: the external istiod in `external-istiod` of the external cluster,
/// configuring the mesh of `config` (the config cluster). Its cluster ID is set by
/// `global.multiCluster.clusterName` alone: the chart renders `CLUSTER_ID` from it.
pub fn external_istiod(
    istio: IstioVersion,
    config: &ClusterSpec,
    external_addr: IpAddr,
    tls: GatewayTls,
    revision: Revision<'_>,
) -> InstallValues {
    let mesh = config.mesh;
    let namespace = mesh.namespace();
    let xds = host_port(external_addr, mesh.xds_port());
    let mut mesh_config = json!({
        "rootNamespace": namespace,
        "defaultConfig": { "discoveryAddress": xds },
    });
    if tls == GatewayTls::Simple {
        mesh_config["defaultConfig"]["proxyMetadata"] = simple_proxy_metadata();
    }
    InstallValues {
        mesh_config,
        values: json!({
            "global": {
                "caAddress": xds,
                "istioNamespace": namespace,
                "operatorManageWebhooks": true,
                "configValidation": false,
                "meshID": mesh.id(),
                "multiCluster": { "clusterName": config.cluster_id },
                "externalIstiod": true,
            },
            "pilot": {
                "env": external_istiod_env_of(mesh, istio, revision),
                "volumes": [
                    {
                        "name": "config-volume",
                        "configMap": { "name": revision.name(SHARED_MESH_CONFIG) },
                    },
                    {
                        "name": "inject-volume",
                        "configMap": { "name": revision.name(INJECTOR_CONFIG_MAP) },
                    },
                ],
                "volumeMounts": [
                    { "name": "config-volume", "mountPath": MESH_CONFIG_MOUNT },
                    { "name": "inject-volume", "mountPath": INJECTOR_MOUNT },
                ],
            },
        }),
    }
}

/// The external istiod's `pilot.env` map. Both webhook names must be set: left
/// empty, istiod never patches their caBundle (x509 errors, istio/istio#36858).
/// With a revision they, and the shared mesh config map, carry the names the charts
/// give that revision on the remotes ([`Revision::webhook_config`], [`Revision::name`]).
///
/// Never a name the chart renders itself ([`IstioVersion::chart_env_names`]): the
/// chart appends `pilot.env` to its own env list, and server-side apply refuses a
/// Deployment with two entries of one name. That rules out `CLUSTER_ID`, which the
/// guide's istioctl form sets in `components.pilot.k8s.env` (merged by name there).
pub fn external_istiod_env(istio: IstioVersion, revision: Revision<'_>) -> Value {
    external_istiod_env_of(Mesh::FIRST, istio, revision)
}

/// The `pilot.env` of `mesh`'s istiod: its own webhook configurations, named after
/// the revision and the mesh's namespace ([`Revision::webhook_config_in`]).
pub fn external_istiod_env_of(mesh: Mesh, istio: IstioVersion, revision: Revision<'_>) -> Value {
    let namespace = mesh.namespace();
    let mut env = json!({
        "INJECTION_WEBHOOK_CONFIG_NAME": revision.webhook_config_in(INJECTION_WEBHOOK_BASE, &namespace),
        "VALIDATION_WEBHOOK_CONFIG_NAME": revision.webhook_config_in(VALIDATION_WEBHOOK_BASE, &namespace),
        "LOCAL_CLUSTER_SECRET_WATCHER": "true",
        "SHARED_MESH_CONFIG": revision.name(SHARED_MESH_CONFIG),
    });
    if !istio.chart_env_names().contains(&"EXTERNAL_ISTIOD") {
        // From 1.23 the chart renders it from `global.externalIstiod`.
        env["EXTERNAL_ISTIOD"] = json!("true");
    }
    if istio.has_config_distribution_tracking() {
        // The doc test sets it; the feature was removed in 1.23.0.
        env["PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING"] = json!("true");
    }
    env
}

/// Step 7: the config cluster's ingress gateway in `external-istiod`, injected by the
/// external istiod with the `gateway` template.
pub fn remote_ingress_gateway() -> GatewayValues {
    remote_ingress_gateway_of(Mesh::FIRST)
}

/// Step 7's gateway of `mesh`, in its namespace.
pub fn remote_ingress_gateway_of(mesh: Mesh) -> GatewayValues {
    GatewayValues {
        name: INGRESS_GATEWAY,
        namespace: mesh.namespace(),
        istio_label: "ingressgateway",
        ports: None,
        network: None,
    }
}

/// Step 8: the east-west gateway of `gen-eastwest-gateway.sh --network N` in the
/// external-control-plane layout (istio-release.md "Multi-network").
pub fn eastwest_gateway(network: &str) -> GatewayValues {
    eastwest_gateway_of(Mesh::FIRST, network)
}

/// The east-west gateway of `network` of `mesh`, in its namespace.
pub fn eastwest_gateway_of(mesh: Mesh, network: &str) -> GatewayValues {
    GatewayValues {
        name: EASTWEST_GATEWAY,
        namespace: mesh.namespace(),
        istio_label: "eastwestgateway",
        ports: Some(json!([
            { "name": "status-port", "port": STATUS_PORT, "targetPort": STATUS_PORT },
            { "name": "tls", "port": 15443, "targetPort": 15443 },
            { "name": "tls-istiod", "port": XDS_PORT, "targetPort": XDS_PORT },
            { "name": "tls-webhook", "port": WEBHOOK_PORT, "targetPort": WEBHOOK_PORT },
        ])),
        network: Some(network.to_string()),
    }
}

/// `global.hub` / `global.tag` overrides for Istio's own images, merged into trees
/// that install istiod or gateways through istioctl.
pub fn with_images(mut values: Value, hub: Option<&str>, tag: Option<&str>) -> Value {
    if let Some(hub) = hub {
        values["global"]["hub"] = json!(hub);
    }
    if let Some(tag) = tag {
        values["global"]["tag"] = json!(tag);
    }
    values
}

/// SIMPLE variant: proxies discover and get certificates at the external address,
/// verifying the gateway with [`SIMPLE_CA_BUNDLE`].
fn simple_mesh_config(external_addr: IpAddr) -> Value {
    json!({
        "defaultConfig": {
            "discoveryAddress": host_port(external_addr, XDS_PORT),
            "proxyMetadata": simple_proxy_metadata(),
        },
    })
}

fn simple_proxy_metadata() -> Value {
    json!({ "XDS_ROOT_CA": SIMPLE_CA_BUNDLE, "CA_ROOT_CA": SIMPLE_CA_BUNDLE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NetworkMode, Topology};
    use rstest::rstest;

    const ADDR: &str = "172.18.6.66";

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    fn topo(remotes: usize) -> Topology {
        Topology::new(remotes, NetworkMode::MultiNetwork).unwrap()
    }

    fn addr() -> IpAddr {
        ADDR.parse().unwrap()
    }

    /// The config cluster's remote profile (procedure.md): the same values on every
    /// version (the backends render `profile: remote` or the `istiodRemote`
    /// component per version).
    #[test]
    fn config_cluster_remote_profile_values() {
        let t = topo(1);
        let r = remote_profile(t.config(), true, addr(), GatewayTls::Passthrough, Revision(None));
        assert_eq!(r.values["global"]["istioNamespace"], "external-istiod");
        assert_eq!(r.values["global"]["configCluster"], true);
        assert_eq!(r.values["pilot"]["configMap"], true);
        assert_eq!(
            r.values["istiodRemote"]["injectionPath"],
            "/inject/cluster/remote1/net/network1"
        );
        assert_eq!(r.values["global"]["remotePilotAddress"], ADDR);
        assert_eq!(r.values["defaultRevision"], "default", "the guide passes it on 1.22/1.23 too");
        assert!(r.mesh_config.is_null(), "PASSTHROUGH keeps the chart's discovery address");
    }

    /// The inject path is read as key/value pairs (`cluster` and `net`), in any order.
    #[test]
    fn inject_path_pairs_name_the_cluster_id_and_network() {
        let t = topo(2);
        for (cluster, id, net) in
            [("config", "remote1", "network1"), ("remote2", "remote2", "network2")]
        {
            let spec = t.by_name(cluster).unwrap();
            let r = remote_profile(
                spec,
                cluster == "config",
                addr(),
                GatewayTls::Passthrough,
                Revision(None),
            );
            let path = r.values["istiodRemote"]["injectionPath"].as_str().unwrap();
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            assert_eq!(segments[0], "inject", "{path}");
            let pairs: std::collections::BTreeMap<&str, &str> =
                segments[1..].chunks(2).map(|kv| (kv[0], kv[1])).collect();
            assert_eq!(pairs, [("cluster", id), ("net", net)].into_iter().collect(), "{path}");
        }
    }

    /// PASSTHROUGH: the path form, never the older `injectionURL` / `base.validationURL`.
    #[test]
    fn passthrough_remote_profile_uses_the_inject_path_not_urls() {
        let t = topo(2);
        for (cluster, config) in [("config", true), ("remote2", false)] {
            let spec = t.by_name(cluster).unwrap();
            let r = remote_profile(spec, config, addr(), GatewayTls::Passthrough, Revision(None));
            let text = r.values.to_string();
            assert!(!text.contains("injectionURL"), "{text}");
            assert!(!text.contains("validationURL"), "{text}");
        }
    }

    /// SIMPLE: the gateway's certificate names the IP, so the webhooks are called at
    /// the IP (URL form, same inject path) rather than through the `istiod` Service.
    #[test]
    fn simple_remote_profile_calls_webhooks_at_the_external_ip() {
        let t = topo(2);
        let r = remote_profile(t.config(), true, addr(), GatewayTls::Simple, Revision(None));
        assert_eq!(
            r.values["istiodRemote"],
            json!({ "injectionURL": "https://172.18.6.66:15017/inject/cluster/remote1/net/network1" })
        );
        assert_eq!(r.values["base"]["validationURL"], "https://172.18.6.66:15017/validate");
        let r2 = t.by_name("remote2").unwrap();
        let r = remote_profile(r2, false, addr(), GatewayTls::Simple, Revision(None));
        assert_eq!(
            r.values["istiodRemote"]["injectionURL"],
            "https://172.18.6.66:15017/inject/cluster/remote2/net/network2"
        );
        let v6 = remote_profile(
            t.config(),
            true,
            "fd00::66".parse().unwrap(),
            GatewayTls::Simple,
            Revision(None),
        );
        assert_eq!(v6.values["base"]["validationURL"], "https://[fd00::66]:15017/validate");
    }

    #[test]
    fn further_remote_has_its_own_inject_path_and_no_mesh_config() {
        let t = topo(2);
        let r2 = t.by_name("remote2").unwrap();
        let r = remote_profile(r2, false, addr(), GatewayTls::Passthrough, Revision(None));
        assert_eq!(
            r.values["istiodRemote"]["injectionPath"],
            "/inject/cluster/remote2/net/network2"
        );
        assert_eq!(r.values["global"]["remotePilotAddress"], ADDR);
        assert_eq!(r.values["global"].get("configCluster"), None);
        assert_eq!(r.values.get("pilot"), None);
    }

    /// External istiod (all supported versions): every value of procedure.md.
    #[rstest]
    #[case(GatewayTls::Passthrough)]
    #[case(GatewayTls::Simple)]
    fn external_istiod_values(#[case] tls: GatewayTls) {
        let t = topo(1);
        let e = external_istiod(v("1.31.0"), t.config(), addr(), tls, Revision(None));
        assert_eq!(e.mesh_config["rootNamespace"], "external-istiod");
        assert_eq!(e.mesh_config["defaultConfig"]["discoveryAddress"], "172.18.6.66:15012");
        let g = &e.values["global"];
        assert_eq!(g["caAddress"], "172.18.6.66:15012");
        assert_eq!(g["istioNamespace"], "external-istiod");
        assert_eq!(g["operatorManageWebhooks"], true);
        assert_eq!(g["configValidation"], false);
        assert_eq!(g["meshID"], "mesh1");
        assert_eq!(g["multiCluster"]["clusterName"], "remote1");
        assert_eq!(g["externalIstiod"], true);
        assert_eq!(
            e.values["pilot"]["volumes"],
            json!([
                { "name": "config-volume", "configMap": { "name": "istio" } },
                { "name": "inject-volume", "configMap": { "name": "istio-sidecar-injector" } },
            ])
        );
        assert_eq!(
            e.values["pilot"]["volumeMounts"],
            json!([
                { "name": "config-volume", "mountPath": "/etc/istio/config" },
                { "name": "inject-volume", "mountPath": "/var/lib/istio/inject" },
            ])
        );
    }

    #[rstest]
    #[case("1.22.8", &["EXTERNAL_ISTIOD", "PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING"])]
    #[case("1.23.6", &[])]
    #[case("1.24.6", &[])]
    #[case("1.31.0", &[])]
    fn external_istiod_env_names_both_webhooks_and_nothing_the_chart_renders(
        #[case] version: &str,
        #[case] extra: &[&str],
    ) {
        let env = external_istiod_env(v(version), Revision(None));
        let mut expected = json!({
            "INJECTION_WEBHOOK_CONFIG_NAME": "istio-sidecar-injector-external-istiod",
            "VALIDATION_WEBHOOK_CONFIG_NAME": "istio-validator-external-istiod",
            "LOCAL_CLUSTER_SECRET_WATCHER": "true",
            "SHARED_MESH_CONFIG": "istio",
        });
        for name in extra {
            expected[*name] = json!("true");
        }
        assert_eq!(env, expected);
        let owned = v(version).chart_env_names();
        let names = env.as_object().unwrap();
        assert!(names.keys().all(|k| !owned.contains(&k.as_str())), "{names:?}");
        assert!(!names.contains_key("CLUSTER_ID"), "the chart renders it from clusterName");
        // Env values are strings: the chart quotes them, Kubernetes requires it.
        assert!(names.values().all(Value::is_string));
    }

    #[test]
    fn simple_variant_points_proxies_at_the_gateway_with_a_ca_bundle() {
        let t = topo(1);
        let r = remote_profile(t.config(), true, addr(), GatewayTls::Simple, Revision(None));
        let dc = &r.mesh_config["defaultConfig"];
        assert_eq!(dc["discoveryAddress"], "172.18.6.66:15012");
        assert_eq!(dc["proxyMetadata"]["XDS_ROOT_CA"], SIMPLE_CA_BUNDLE);
        assert_eq!(dc["proxyMetadata"]["CA_ROOT_CA"], SIMPLE_CA_BUNDLE);
        assert_eq!(r.values["global"]["caAddress"], "172.18.6.66:15012");
        let e =
            external_istiod(v("1.31.0"), t.config(), addr(), GatewayTls::Simple, Revision(None));
        assert_eq!(
            e.mesh_config["defaultConfig"]["proxyMetadata"]["XDS_ROOT_CA"],
            SIMPLE_CA_BUNDLE
        );
        let passthrough = external_istiod(
            v("1.31.0"),
            t.config(),
            addr(),
            GatewayTls::Passthrough,
            Revision(None),
        );
        assert_eq!(passthrough.mesh_config["defaultConfig"].get("proxyMetadata"), None);
    }

    #[test]
    fn control_plane_gateway_exposes_status_xds_and_webhook() {
        let ports = control_plane_gateway_ports();
        let named: Vec<(u64, &str)> = ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["port"].as_u64().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        assert_eq!(named, [(15021, "status-port"), (15012, "tls-xds"), (15017, "tls-webhook")]);
        let g = control_plane_gateway();
        assert_eq!((g.name, g.namespace.as_str()), ("istio-ingressgateway", "istio-system"));
        assert_eq!(g.ports, Some(ports));
        assert_eq!(g.labels(), json!({ "app": "istio-ingressgateway", "istio": "ingressgateway" }));
    }

    #[test]
    fn eastwest_gateway_follows_gen_eastwest_gateway() {
        let g = eastwest_gateway("network2");
        assert_eq!((g.name, g.namespace.as_str()), ("istio-eastwestgateway", "external-istiod"));
        assert_eq!(
            g.labels(),
            json!({
                "app": "istio-eastwestgateway",
                "istio": "eastwestgateway",
                "topology.istio.io/network": "network2",
            })
        );
        let ports: Vec<u64> = g
            .ports
            .as_ref()
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|p| p["port"].as_u64().unwrap())
            .collect();
        assert_eq!(ports, [15021, 15443, 15012, 15017]);
        assert_eq!(g.network.as_deref(), Some("network2"));
    }

    #[test]
    fn ingress_gateway_keeps_the_installers_ports() {
        let g = remote_ingress_gateway();
        assert_eq!((g.name, g.namespace.as_str()), ("istio-ingressgateway", "external-istiod"));
        assert_eq!((g.ports, g.network), (None, None));
    }

    #[test]
    fn ipv6_addresses_are_bracketed_with_ports() {
        assert_eq!(host_port("fd00::66".parse().unwrap(), 15012), "[fd00::66]:15012");
        assert_eq!(host_port(addr(), 15017), "172.18.6.66:15017");
    }

    #[test]
    fn image_overrides_go_to_global() {
        let values = with_images(json!({ "pilot": {} }), Some("quay.io/vendor"), Some("1.30.3-v"));
        assert_eq!(values["global"]["hub"], "quay.io/vendor");
        assert_eq!(values["global"]["tag"], "1.30.3-v");
        assert_eq!(with_images(json!({}), None, None), json!({}));
    }
}
