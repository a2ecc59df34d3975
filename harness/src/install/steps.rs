//! The procedure, one function per step of procedure.md, in the guide's words.
//! Each function adds its [`Step`]s and files to the [`Planner`], and records how to
//! undo what it created; step 9 undoes everything in reverse.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::backend::{Component, Revision, Target};
use super::plan::{
    Action, Check, GatewayTls, Plan, PlanError, PlanFile, PlanOptions, Step, StepPhase,
    WaitCondition,
};
use super::values::{WEBHOOK_PORT, XDS_PORT};
use crate::checks::{MeshClient, REQUESTS_FOR_BOTH_VERSIONS};
use crate::mesh::Mesh;
use crate::remote_secret::{RemoteSecret, SecretType};
use crate::samples::{self, SampleImages};
use crate::tls::{GATEWAY_TLS_SECRET, GatewayCerts};
use crate::topology::{ClusterSpec, EXTERNAL_ISTIOD_NAMESPACE, Topology};

/// The namespace of the external cluster's gateway and its small local istiod.
pub const ISTIO_SYSTEM: &str = "istio-system";
/// The namespace of the samples.
pub const SAMPLE_NAMESPACE: &str = "sample";
/// The control-plane gateway's Service (and the config cluster's ingress gateway's).
pub const INGRESS_GATEWAY: &str = "istio-ingressgateway";
/// The east-west gateway's Service on multi-network remotes.
pub const EASTWEST_GATEWAY: &str = "istio-eastwestgateway";
/// The label carrying a namespace's or pod's Istio network.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
/// The annotation naming the clusters whose control plane manages a remote
/// (without it, `istio-ca-root-cert` is never written there: istio/istio#41389).
pub const CONTROL_PLANE_CLUSTERS_ANNOTATION: &str = "topology.istio.io/controlPlaneClusters";
/// The service account the guide creates beside the external istiod.
pub const ISTIOD_SERVICE_ACCOUNT: &str = "istiod-service-account";
/// The root certificate config map istiod writes into every mesh namespace.
pub const ROOT_CERT_CONFIG_MAP: &str = "istio-ca-root-cert";

/// Upstream waits up to 3 minutes for the gateway's LoadBalancer IP.
const LOAD_BALANCER_TIMEOUT: u64 = 180;
/// Deployments (istiod, gateways) get 5 minutes to become Available.
const DEPLOYMENT_TIMEOUT: u64 = 300;
/// Sample pods get 5 minutes to be Running with their sidecars.
const PODS_TIMEOUT: u64 = 300;
/// istiod writes the root certificate config map within 2 minutes.
const CONFIG_MAP_TIMEOUT: u64 = 120;

/// Builds a plan: the state every step function reads and adds to.
pub(super) struct Planner<'a> {
    opts: &'a PlanOptions,
    topology: Topology,
    images: SampleImages,
    steps: Vec<Step>,
    files: Vec<PlanFile>,
    /// What undoes what was created, in creation order: (step, cluster, action).
    undo: Vec<(u8, String, Action)>,
    /// The mesh steps 2 to 8 are planned for (the first for steps 1 and 9).
    mesh: Mesh,
}

impl<'a> Planner<'a> {
    pub(super) fn new(opts: &'a PlanOptions, topology: Topology) -> Self {
        let mut images = SampleImages::for_version(opts.istio);
        if let Some(hub) = &opts.hub {
            images = images.with_hub(hub);
        }
        Self {
            opts,
            topology,
            images,
            steps: Vec::new(),
            files: Vec::new(),
            undo: Vec::new(),
            mesh: Mesh::FIRST,
        }
    }

    pub(super) fn finish(self) -> Plan {
        Plan {
            options: self.opts.clone(),
            topology: self.topology,
            steps: self.steps,
            files: self.files,
        }
    }

    /// Adds an install step; returns it for the facts only some steps have.
    fn step(
        &mut self,
        number: u8,
        id: &str,
        title: &str,
        cluster: &str,
        actions: Vec<Action>,
    ) -> &mut Step {
        // A mesh after the first: its step ids carry its suffix, its titles its
        // namespace and name; the first mesh's stay the guide's.
        let (id, title) = match self.mesh.is_first() {
            true => (id.to_string(), title.to_string()),
            false => (
                format!("{id}{}", self.mesh.suffix()),
                format!(
                    "{} [{}]",
                    title.replace("external-istiod", &self.mesh.namespace()),
                    self.mesh
                ),
            ),
        };
        self.steps.push(Step {
            number,
            id,
            title,
            cluster: cluster.to_string(),
            actions,
            phase: StepPhase::Install,
            publishes_external_address: false,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    /// Adds a file and returns its path for actions.
    fn file(&mut self, path: &str, contents: String, private: bool) -> String {
        self.files.push(PlanFile { path: path.to_string(), contents, private });
        path.to_string()
    }

    /// Adds a YAML file of `docs` (one document each).
    fn yaml(&mut self, step: &str, path: &str, docs: &[Value]) -> Result<String, PlanError> {
        self.files.push(PlanFile::yaml(step, path.to_string(), docs)?);
        Ok(path.to_string())
    }

    fn undo(&mut self, step: u8, cluster: &str, action: Action) {
        self.undo.push((step, cluster.to_string(), action));
    }

    /// Creates `name` on `cluster` (undone by deleting it).
    fn create_namespace(
        &mut self,
        step: u8,
        cluster: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Action {
        self.undo(step, cluster, Action::DeleteNamespace { name: name.to_string() });
        Action::CreateNamespace { name: name.to_string(), labels, annotations }
    }

    /// Applies `file` (undone by deleting its objects).
    fn apply(&mut self, step: u8, cluster: &str, file: &str, namespace: Option<&str>) -> Action {
        let namespace = namespace.map(String::from);
        self.undo(
            step,
            cluster,
            Action::Delete { file: file.to_string(), namespace: namespace.clone() },
        );
        Action::Apply { file: file.to_string(), namespace }
    }

    /// Installs `component` on `cluster` with the chosen backend: its files join the
    /// plan, its undo actions the cleanup; returns the actions that install it.
    fn install(
        &mut self,
        step: (u8, &str),
        cluster: &ClusterSpec,
        component: &Component,
    ) -> Result<Vec<Action>, PlanError> {
        let mut target = Target::new(&cluster.name, self.opts, step.1);
        if cluster.role == crate::topology::Role::External {
            target = target.in_dir(self.external_dir());
        }
        let actions = self.opts.installer.backend().install(component, &mut target)?;
        let (files, undo) = target.finish();
        self.files.extend(files);
        for action in undo {
            self.undo(step.0, &cluster.name, action);
        }
        Ok(actions)
    }

    /// The external cluster's directory of the current mesh's files: `external`, or
    /// `external/mesh<k>` for a mesh after the first.
    fn external_dir(&self) -> String {
        let external = &self.topology.external().name;
        match self.mesh.is_first() {
            true => external.clone(),
            false => format!("{external}/{}", self.mesh),
        }
    }

    /// The current mesh's namespace (`external-istiod` for the first).
    fn namespace(&self) -> String {
        self.mesh.namespace()
    }

    /// The current mesh's config cluster.
    fn config(&self) -> ClusterSpec {
        self.topology.config_of(self.mesh).unwrap_or_else(|| self.topology.config()).clone()
    }

    /// The revision istiod is installed as: `--revision`, else the backend's
    /// ([`PlanOptions::revision`]).
    fn revision(&self) -> Revision<'a> {
        self.opts.revision()
    }

    /// A remote secret for `source` in the external cluster (steps 3 and 8): the
    /// token Secret in the source cluster, the Secret template for the external one.
    fn create_remote_secret(
        &mut self,
        step: u8,
        source: &ClusterSpec,
        secret_type: SecretType,
    ) -> Result<Action, PlanError> {
        let external = self.topology.external().name.clone();
        // The config secret's account is istiod's, named after the revision (Sail:
        // `istiod-<revision>`, procedure.md "Sail operator backend").
        let service_account = match secret_type {
            SecretType::Config => self.revision().istiod(),
            SecretType::Remote => secret_type.default_service_account().to_string(),
        };
        let service_account = service_account.as_str();
        let namespace = self.namespace();
        let server = super::plan::api_server_placeholder(&source.name);
        let secret = RemoteSecret::new(&source.cluster_id, secret_type, &server, &namespace)?;
        let token = RemoteSecret::token_secret_manifest(service_account, &namespace);
        let token_file =
            self.file(&format!("{}/{service_account}-token.yaml", source.name), token, false);
        let file = self.file(
            &format!("{external}/remote-secret-{}.yaml", source.cluster_id),
            secret.secret_manifest_template(),
            true,
        );
        let ns = Some(namespace.clone());
        self.undo(
            step,
            &source.name,
            Action::Delete { file: token_file.clone(), namespace: ns.clone() },
        );
        self.undo(step, &external, Action::Delete { file: file.clone(), namespace: ns });
        Ok(Action::CreateRemoteSecret {
            source_cluster: source.name.clone(),
            target_cluster: external,
            cluster_id: source.cluster_id.clone(),
            secret_type,
            service_account: service_account.to_string(),
            namespace,
            token_file,
            file,
        })
    }
}

/// Every step of procedure.md, in order. Steps 2 to 8 run once per mesh, each step
/// for every mesh before the next step (procedure.md "Several meshes on one external
/// cluster").
pub(super) fn all_steps(p: &mut Planner<'_>) -> Result<(), PlanError> {
    set_up_gateway_in_external_cluster(p)?;
    type StepFn = fn(&mut Planner<'_>) -> Result<(), PlanError>;
    let per_mesh: [StepFn; 7] = [
        set_up_config_cluster,
        create_config_cluster_remote_secret,
        install_external_istiod,
        route_gateway_to_istiod,
        deploy_sample_application,
        enable_ingress_gateway,
        add_clusters_to_mesh,
    ];
    let meshes: Vec<Mesh> = p.topology.mesh_list().collect();
    for step in per_mesh {
        for &mesh in &meshes {
            p.mesh = mesh;
            step(p)?;
        }
    }
    p.mesh = Mesh::FIRST;
    clean_up_in_reverse(p);
    Ok(())
}

/// 1. External cluster: install the control-plane ingress gateway in `istio-system`
///    (15021 status, 15012 `tls-xds`, 15017 `tls-webhook`), with the small local
///    istiod that configures only this gateway; wait for its LoadBalancer IP.
fn set_up_gateway_in_external_cluster(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "install-external-gateway";
    let external = p.topology.external().clone();
    let c = external.name.as_str();
    let mut actions = vec![p.create_namespace(1, c, ISTIO_SYSTEM, labels(&[]), labels(&[]))];
    let gateway = Component::control_plane_gateway(p.topology.meshes);
    actions.extend(p.install((1, ID), &external, &gateway)?);
    actions.push(wait_deployment(ISTIO_SYSTEM, INGRESS_GATEWAY));
    actions.push(wait_load_balancer(ISTIO_SYSTEM, INGRESS_GATEWAY));
    let mut title = "Set up a gateway in the external cluster: the control-plane ingress \
                     gateway in istio-system exposing 15021, 15012 (tls-xds) and 15017 \
                     (tls-webhook); its LoadBalancer IP is EXTERNAL_ISTIOD_ADDR"
        .to_string();
    let later: Vec<String> =
        p.topology.mesh_list().skip(1).map(|m| format!("{} for {m}", port_pair(m))).collect();
    if !later.is_empty() {
        title.push_str(&format!("; further meshes on {}", later.join(", ")));
    }
    // Its wait for the LoadBalancer IP learns EXTERNAL_ISTIOD_ADDR.
    p.step(1, ID, &title, c, actions).publishes_external_address = true;
    Ok(())
}

/// 2. Config cluster: namespace `external-istiod` and the remote profile (webhooks,
///    config maps, the `istiod` Service pointing at `EXTERNAL_ISTIOD_ADDR`); verify
///    the webhook configurations, the `istio` config map and the address object.
fn set_up_config_cluster(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "install-remote-profile-config";
    let config = p.config();
    let c = config.name.as_str();
    let namespace = p.namespace();
    let ns = p.create_namespace(2, c, &namespace, network_labels(&config), labels(&[]));
    let mut actions = vec![ns];
    let remote_profile = Component::remote_profile(p.opts, &config, true);
    actions.extend(p.install((2, ID), &config, &remote_profile)?);
    actions.extend(mesh_istiod_service(p, 2, &config)?);
    actions.extend(remote_profile_checks(p, true));
    p.step(
        2,
        ID,
        "Set up the config cluster: install the remote profile so it gets webhooks, config \
         maps and an istiod Service pointing at EXTERNAL_ISTIOD_ADDR",
        c,
        actions,
    );
    Ok(())
}

/// A mesh after the first: its own `istiod` Service in its namespace of `cluster`,
/// pointing at the external address with the mesh's ports (the charts' own carry
/// 15012 and 15017, the first mesh's; see [`super::values::remote_profile`]). The
/// Service keeps the chart's shape (`tcp-istiod` 15012, `tcp-webhook` 443), so the
/// webhooks' `istiod` Service reference and inject path work as in the guide; its
/// address object is the version's (Endpoints up to 1.27, an EndpointSlice from
/// 1.28), as the chart would render it. Nothing for the first mesh.
fn mesh_istiod_service(
    p: &mut Planner<'_>,
    step: u8,
    cluster: &ClusterSpec,
) -> Result<Vec<Action>, PlanError> {
    if p.mesh.is_first() {
        return Ok(Vec::new());
    }
    let name = p.revision().istiod();
    let docs = istiod_service_manifests(p.mesh, p.opts.istio, p.opts.external_addr, &name);
    let c = cluster.name.as_str();
    let file = p.yaml("istiod-service", &format!("{c}/istiod-service.yaml"), &docs)?;
    Ok(vec![p.apply(step, c, &file, None)])
}

/// The istiod Service `name` of `mesh` (`istiod`, `istiod-<revision>` with a
/// revision, as the webhooks call it) and its address object (see
/// [`mesh_istiod_service`]).
pub(super) fn istiod_service_manifests(
    mesh: Mesh,
    istio: crate::version::IstioVersion,
    addr: std::net::IpAddr,
    name: &str,
) -> Vec<Value> {
    let ns = mesh.namespace();
    let labels =
        json!({ "app": "istiod", "istio.io/rev": "default", "ecp-harness.mesh": mesh.id() });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": ns, "labels": labels },
        "spec": { "ports": [
            { "name": "tcp-istiod", "port": XDS_PORT, "protocol": "TCP" },
            { "name": "tcp-webhook", "port": 443, "targetPort": WEBHOOK_PORT, "protocol": "TCP" },
        ] },
    });
    let ports = json!([
        { "name": "tcp-istiod", "port": mesh.xds_port(), "protocol": "TCP" },
        { "name": "tcp-webhook", "port": mesh.webhook_port(), "protocol": "TCP" },
    ]);
    let address = match istio.istiod_address_object() {
        crate::version::IstiodAddressObject::Endpoints => json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": { "name": name, "namespace": ns, "labels": labels },
            "subsets": [{ "addresses": [{ "ip": addr.to_string() }], "ports": ports }],
        }),
        crate::version::IstiodAddressObject::EndpointSlice => {
            let mut slice_labels = labels.clone();
            slice_labels["kubernetes.io/service-name"] = json!(name);
            json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": { "name": name, "namespace": ns, "labels": slice_labels },
                "addressType": if addr.is_ipv4() { "IPv4" } else { "IPv6" },
                "endpoints": [{ "addresses": [addr.to_string()] }],
                "ports": ports,
            })
        }
    };
    vec![service, address]
}

/// What the guide checks after installing the remote profile.
fn remote_profile_checks(p: &Planner<'_>, config: bool) -> Vec<Action> {
    let (istio, addr) = (p.opts.istio, p.opts.external_addr);
    let checks = if config {
        Check::config_cluster_profile_of(p.mesh, istio, addr)
    } else {
        Check::remote_profile_of(p.mesh, istio, addr)
    };
    let (revision, namespace) = (p.revision(), p.namespace());
    checks
        .into_iter()
        .map(|check| Action::Verify { check: check.for_revision_in(revision, &namespace) })
        .collect()
}

/// 3. External cluster: namespace `external-istiod`, service account
///    `istiod-service-account`, and the config-type remote secret for the config
///    cluster. In the SIMPLE variant also istiod's CA (`cacerts`), see
///    [`values::SIMPLE_CA_BUNDLE`].
fn create_config_cluster_remote_secret(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "create-config-remote-secret";
    let external = p.topology.external().name.clone();
    let config = p.config();
    let ns = p.namespace();
    let mut actions = vec![p.create_namespace(3, &external, &ns, labels(&[]), labels(&[]))];
    let sa = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": ISTIOD_SERVICE_ACCOUNT, "namespace": ns },
    });
    let sa = p.yaml(ID, &format!("{}/istiod-service-account.yaml", p.external_dir()), &[sa])?;
    actions.push(p.apply(3, &external, &sa, None));
    if p.opts.gateway_tls == GatewayTls::Simple {
        let certs = GatewayCerts::generate(p.opts.external_addr)
            .map_err(|error| PlanError::Tls { step: ID, error })?;
        let cacerts = p.file(&format!("{external}/cacerts.yaml"), cacerts_manifest(&certs), true);
        actions.push(p.apply(3, &external, &cacerts, None));
        p.gateway_certs_files(&external, &certs);
    }
    actions.push(p.create_remote_secret(3, &config, SecretType::Config)?);
    let title = match p.opts.gateway_tls {
        GatewayTls::Passthrough => {
            "Set up the control plane in the external cluster: namespace external-istiod, \
             service account istiod-service-account, and the config-type remote secret for \
             the config cluster"
        }
        GatewayTls::Simple => {
            "Set up the control plane in the external cluster: namespace external-istiod, \
             service account istiod-service-account, istiod's CA (cacerts: the gateway CA), \
             and the config-type remote secret for the config cluster"
        }
    };
    p.step(3, ID, title, &external, actions);
    Ok(())
}

impl Planner<'_> {
    /// SIMPLE variant: the gateway's TLS secret manifest and the certificate files.
    fn gateway_certs_files(&mut self, external: &str, certs: &GatewayCerts) {
        let secret = certs.tls_secret_manifest(GATEWAY_TLS_SECRET, ISTIO_SYSTEM);
        self.file(&format!("{external}/gateway-tls-secret.yaml"), secret, true);
        self.file(&format!("{external}/tls/ca.crt"), certs.ca_cert_pem.clone(), false);
        self.file(&format!("{external}/tls/ca.key"), certs.ca_key_pem().to_string(), true);
        self.file(&format!("{external}/tls/server.crt"), certs.server_cert_pem.clone(), false);
        self.file(&format!("{external}/tls/server.key"), certs.server_key_pem().to_string(), true);
    }
}

/// istiod's plugged-in CA (Secret `cacerts`): the harness's gateway CA signs the
/// workload certificates, so the mesh root every proxy mounts also trusts the
/// gateway's certificate.
fn cacerts_manifest(certs: &GatewayCerts) -> String {
    let ca = BASE64.encode(&certs.ca_cert_pem);
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: cacerts
  namespace: {EXTERNAL_ISTIOD_NAMESPACE}
type: Opaque
data:
  ca-cert.pem: {ca}
  ca-key.pem: {key}
  cert-chain.pem: {ca}
  root-cert.pem: {ca}
",
        key = BASE64.encode(certs.ca_key_pem()),
    )
}

/// 4. External cluster: install the external istiod; verify it is Ready and that
///    the external cluster's own webhooks do not mention `external-istiod`.
fn install_external_istiod(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "install-external-istiod";
    let external = p.topology.external().clone();
    let config = p.config();
    let istiod = Component::external_istiod(p.opts, &config);
    let mut actions = p.install((4, ID), &external, &istiod)?;
    actions.push(wait_deployment(&p.namespace(), &p.revision().istiod()));
    let no_mention = Check::webhooks_do_not_mention(&p.namespace());
    actions.push(Action::Verify { check: no_mention });
    p.step(
        4,
        ID,
        "Install the external istiod in external-istiod of the external cluster, configuring \
         the mesh of the config cluster; the external cluster's own webhooks must not mention \
         external-istiod (istio/istio#37674)",
        &external.name,
        actions,
    );
    Ok(())
}

/// 5. External cluster: route the gateway to istiod (Gateway `external-istiod-gw`,
///    VirtualService `external-istiod-vs`; SIMPLE adds the TLS secret and a
///    DestinationRule).
fn route_gateway_to_istiod(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "route-gateway-to-istiod";
    let external = p.topology.external().name.clone();
    let mut actions = Vec::new();
    let host = istiod_host(p.revision(), &p.namespace());
    let docs = match p.opts.gateway_tls {
        GatewayTls::Passthrough => passthrough_routing(p.mesh, &host),
        GatewayTls::Simple => {
            let secret = format!("{external}/gateway-tls-secret.yaml");
            actions.push(p.apply(5, &external, &secret, None));
            simple_routing(&host)
        }
    };
    let file = p.yaml(ID, &format!("{}/external-istiod-gw.yaml", p.external_dir()), &docs)?;
    actions.push(p.apply(5, &external, &file, None));
    let passthrough = format!(
        "Route the gateway to istiod: TLS PASSTHROUGH on {} -> 15012 and {} -> 443",
        p.mesh.xds_port(),
        p.mesh.webhook_port()
    );
    let title = match p.opts.gateway_tls {
        GatewayTls::Passthrough => passthrough.as_str(),
        GatewayTls::Simple => {
            "Route the gateway to istiod: TLS SIMPLE with the gateway certificate, 15012 -> \
             15012 and 15017 -> 443, re-encrypted by a DestinationRule"
        }
    };
    p.step(5, ID, title, &external, actions);
    Ok(())
}

/// istiod's fully qualified Service name for `revision` in `namespace`, as the
/// gateway routes to it (`istiod.external-istiod.svc.cluster.local` for the default
/// revision of the first mesh).
fn istiod_host(revision: Revision<'_>, namespace: &str) -> String {
    format!("{}.{namespace}.svc.cluster.local", revision.istiod())
}

/// `15012/15017`: a mesh's xDS and webhook ports on the control-plane gateway.
fn port_pair(mesh: Mesh) -> String {
    format!("{}/{}", mesh.xds_port(), mesh.webhook_port())
}

/// The doc test's and Sail's variant: TLS passed through to istiod at `host`, on
/// `mesh`'s ports of the gateway (its own Gateway and VirtualService in its
/// namespace; istiod's own ports behind them stay 15012 and 443).
fn passthrough_routing(mesh: Mesh, host: &str) -> Vec<Value> {
    let server = |port: u16, name: &str| {
        json!({
            "port": { "number": port, "protocol": "tls", "name": name },
            "tls": { "mode": "PASSTHROUGH" },
            "hosts": ["*"],
        })
    };
    let route = |port: u16, to: u16| {
        json!({
            "match": [{ "port": port, "sniHosts": ["*"] }],
            "route": [{ "destination": { "host": host, "port": { "number": to } } }],
        })
    };
    let (xds, webhook, suffix) = (mesh.xds_port(), mesh.webhook_port(), mesh.suffix());
    let ns = mesh.namespace();
    vec![
        gateway(
            &ns,
            vec![
                server(xds, &format!("tls-XDS{suffix}")),
                server(webhook, &format!("tls-WEBHOOK{suffix}")),
            ],
        ),
        virtual_service(&ns, "tls", vec![route(xds, XDS_PORT), route(webhook, 443)]),
    ]
}

/// The guide's public-address variant: TLS terminated with the harness's certificate
/// for the external address, re-encrypted to istiod.
///
/// The gateway verifies istiod's certificate when it re-encrypts: Istio checks the
/// upstream by default (`VERIFY_CERTIFICATE_AT_CLIENT`, unconditional from 1.24), and
/// a DestinationRule without a CA falls back to the system roots, which never trust
/// istiod's certificate. That certificate chains to the harness's CA (istiod's
/// plugged-in `cacerts`), so the DestinationRule names the gateway's own TLS Secret as
/// its credential: for SIMPLE a gateway reads only the CA from it (`<name>-cacert`,
/// else `ca.crt` of `<name>`, in the gateway's namespace), which is the harness's CA.
fn simple_routing(host: &str) -> Vec<Value> {
    let server = |port: u16, name: &str| {
        json!({
            "port": { "number": port, "protocol": "https", "name": name },
            "tls": { "mode": "SIMPLE", "credentialName": GATEWAY_TLS_SECRET },
            "hosts": ["*"],
        })
    };
    let route = |port: u16, to: u16| {
        json!({
            "match": [{ "port": port }],
            "route": [{ "destination": { "host": host, "port": { "number": to } } }],
        })
    };
    let upstream_tls = json!({ "mode": "SIMPLE", "credentialName": GATEWAY_TLS_SECRET });
    let ns = EXTERNAL_ISTIOD_NAMESPACE;
    vec![
        gateway(ns, vec![server(XDS_PORT, "https-XDS"), server(WEBHOOK_PORT, "https-WEBHOOK")]),
        virtual_service(ns, "http", vec![route(XDS_PORT, XDS_PORT), route(WEBHOOK_PORT, 443)]),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": { "name": "external-istiod-dr", "namespace": EXTERNAL_ISTIOD_NAMESPACE },
            "spec": {
                "host": host,
                "trafficPolicy": { "portLevelSettings": [
                    {
                        "port": { "number": XDS_PORT },
                        "tls": upstream_tls,
                        "connectionPool": { "http": { "h2UpgradePolicy": "UPGRADE" } },
                    },
                    { "port": { "number": 443 }, "tls": upstream_tls },
                ] },
            },
        }),
    ]
}

fn gateway(namespace: &str, servers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": { "name": "external-istiod-gw", "namespace": namespace },
        "spec": { "selector": { "istio": "ingressgateway" }, "servers": servers },
    })
}

fn virtual_service(namespace: &str, kind: &str, routes: Vec<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": { "name": "external-istiod-vs", "namespace": namespace },
        "spec": { "hosts": ["*"], "gateways": ["external-istiod-gw"], kind: routes },
    })
}

/// 6. Config cluster (mesh admin): namespace `sample` labelled for injection, the
///    helloworld Service and `helloworld-v1`, and the client (`sleep`/`curl`); pods
///    2/2 with `istio-proxy`; the client gets the v1 greeting.
fn deploy_sample_application(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "deploy-sample";
    let config = p.config().name;
    let mut actions = deploy_helloworld(p, 6, &config, "v1");
    let (client, manifest) = samples::client(p.opts.istio, &p.images);
    let file = p.file(&format!("{config}/sample/{client}.yaml"), manifest, false);
    actions.push(p.apply(6, &config, &file, Some(SAMPLE_NAMESPACE)));
    actions.push(wait_pods(WaitCondition::client_pods(client)));
    actions.push(Action::Verify {
        check: Check::helloworld_greeting(MeshClient::sample(client), &["v1"], 1),
    });
    p.step(
        6,
        ID,
        &format!(
            "Deploy a sample application: helloworld v1 and {client} in namespace sample, \
             injected by the external istiod"
        ),
        &config,
        actions,
    );
    Ok(())
}

/// Namespace `sample` (injection on), the helloworld Service and `helloworld-<v>`,
/// and a wait for its pods with sidecars.
fn deploy_helloworld(p: &mut Planner<'_>, step: u8, cluster: &str, version: &str) -> Vec<Action> {
    // Sail labels the revision instead (procedure.md step 6).
    let injection = match p.revision().0 {
        Some(revision) => labels(&[("istio.io/rev", revision)]),
        None => labels(&[("istio-injection", "enabled")]),
    };
    let ns = p.create_namespace(step, cluster, SAMPLE_NAMESPACE, injection, labels(&[]));
    let manifest = format!(
        "{}---\n{}",
        samples::helloworld_service(),
        samples::helloworld_deployment(version, &p.images)
    );
    let file = p.file(&format!("{cluster}/sample/helloworld-{version}.yaml"), manifest, false);
    let apply = p.apply(step, cluster, &file, Some(SAMPLE_NAMESPACE));
    vec![ns, apply, wait_pods(WaitCondition::helloworld_pods(version))]
}

/// 7. Config cluster: the ingress gateway in `external-istiod` (injection template
///    `gateway`), the helloworld Gateway and VirtualService on port 80; the v1
///    greeting through the ingress.
fn enable_ingress_gateway(p: &mut Planner<'_>) -> Result<(), PlanError> {
    const ID: &str = "enable-ingress-gateway";
    let config = p.config();
    let c = config.name.as_str();
    let ns = p.namespace();
    let mut actions = p.install((7, ID), &config, &Component::ingress_gateway(p.mesh))?;
    actions.push(wait_deployment(&ns, INGRESS_GATEWAY));
    actions.push(wait_load_balancer(&ns, INGRESS_GATEWAY));
    let file = p.file(
        &format!("{c}/sample/helloworld-gateway.yaml"),
        samples::helloworld_gateway(),
        false,
    );
    actions.push(p.apply(7, c, &file, Some(SAMPLE_NAMESPACE)));
    actions.push(Action::Verify { check: Check::ingress_greeting_of(p.mesh, &["v1"], 1) });
    p.step(
        7,
        ID,
        "Enable gateways: an ingress gateway in external-istiod of the config cluster \
         (injection template gateway) exposing helloworld on port 80",
        c,
        actions,
    );
    Ok(())
}

/// 8. Adding clusters to the mesh (the further remotes): east-west gateways on both
///    sides when networks differ; for each remote the annotated namespace, the remote
///    profile, a remote secret of type `remote`, and helloworld v2; then both
///    greetings through the ingress.
fn add_clusters_to_mesh(p: &mut Planner<'_>) -> Result<(), PlanError> {
    let remotes: Vec<ClusterSpec> = p.topology.further_remotes_of(p.mesh).cloned().collect();
    if remotes.is_empty() {
        return Ok(());
    }
    let config = p.config();
    if p.topology.needs_east_west() {
        install_eastwest_gateway(p, &config, true)?;
    }
    for remote in &remotes {
        add_remote_cluster(p, &config, remote)?;
        if p.topology.needs_east_west() {
            install_eastwest_gateway(p, remote, false)?;
        }
        deploy_helloworld_v2(p, remote);
    }
    p.step(
        8,
        "verify-both-versions",
        "Ten requests through the config cluster's ingress gateway reach helloworld v1 and v2",
        &config.name,
        vec![Action::Verify {
            check: Check::ingress_greeting_of(p.mesh, &["v1", "v2"], REQUESTS_FOR_BOTH_VERSIONS),
        }],
    );
    Ok(())
}

/// The second (or later) remote: namespace annotated with the config cluster, the
/// remote profile with its own inject path, and its `remote` secret in the external
/// cluster; then istiod writes `istio-ca-root-cert` there.
fn add_remote_cluster(
    p: &mut Planner<'_>,
    config: &ClusterSpec,
    remote: &ClusterSpec,
) -> Result<(), PlanError> {
    let r = remote.name.as_str();
    let id = format!("add-remote-{r}");
    let annotations = labels(&[(CONTROL_PLANE_CLUSTERS_ANNOTATION, &config.cluster_id)]);
    let namespace = p.namespace();
    let ns = namespace.as_str();
    let mut actions = vec![p.create_namespace(8, r, ns, network_labels(remote), annotations)];
    let remote_profile = Component::remote_profile(p.opts, remote, false);
    actions.extend(p.install((8, &id), remote, &remote_profile)?);
    actions.extend(mesh_istiod_service(p, 8, remote)?);
    actions.extend(remote_profile_checks(p, false));
    if p.revision().0.is_some() {
        actions.push(reader_service_account(p, remote)?);
    }
    p.step(
        8,
        &id,
        &format!(
            "Add {r} to the mesh: namespace external-istiod annotated \
             {CONTROL_PLANE_CLUSTERS_ANNOTATION}={}, remote profile with its own inject path",
            config.cluster_id
        ),
        r,
        actions,
    );
    let external = p.topology.external().name.clone();
    let secret = p.create_remote_secret(8, remote, SecretType::Remote)?;
    p.step(
        8,
        &format!("create-remote-secret-{r}"),
        &format!("Create the remote secret (type remote) for {r} in the external cluster"),
        &external,
        vec![secret],
    );
    p.step(
        8,
        &format!("wait-root-cert-{r}"),
        &format!("The external istiod now manages {r}: it writes {ROOT_CERT_CONFIG_MAP} there"),
        r,
        vec![Action::WaitFor {
            condition: WaitCondition::config_map_exists(ns, ROOT_CERT_CONFIG_MAP),
            timeout_secs: CONFIG_MAP_TIMEOUT,
        }],
    );
    Ok(())
}

/// The account the `remote` secret reads a further remote with, for a revision.
/// The revisioned chart binds its reader ClusterRole
/// (`istio-reader-clusterrole-<revision>-external-istiod`) to
/// `istio-reader-service-account` in `external-istiod`, but the account itself comes
/// from the `base` chart, which Sail installs only for the revision named `default`
/// (Sail's `pkg/reconcile/istiod.go`, 1.30.3); and the chart's `istiod-<revision>`
/// account exists only on the config cluster. So the plan creates the reader
/// account, as `istioctl create-remote-secret` does by default (procedure.md "Sail
/// operator backend").
fn reader_service_account(p: &mut Planner<'_>, remote: &ClusterSpec) -> Result<Action, PlanError> {
    let r = remote.name.as_str();
    let sa = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": SecretType::Remote.default_service_account(),
            "namespace": EXTERNAL_ISTIOD_NAMESPACE,
        },
    });
    let step = format!("add-remote-{r}");
    let file = p.yaml(&step, &format!("{r}/istio-reader-service-account.yaml"), &[sa])?;
    Ok(p.apply(8, r, &file, None))
}

/// An east-west gateway on `cluster`'s network; on the config cluster also the
/// `cross-network-gateway` exposing services (the mesh config lives there).
fn install_eastwest_gateway(
    p: &mut Planner<'_>,
    cluster: &ClusterSpec,
    expose_services: bool,
) -> Result<(), PlanError> {
    let c = cluster.name.as_str();
    let id = format!("install-eastwest-gateway-{c}");
    let network = cluster.network.clone().unwrap_or_default();
    let ns = p.namespace();
    let eastwest = Component::eastwest_gateway(p.mesh, &network);
    let mut actions = p.install((8, &id), cluster, &eastwest)?;
    actions.push(wait_deployment(&ns, EASTWEST_GATEWAY));
    actions.push(wait_load_balancer(&ns, EASTWEST_GATEWAY));
    if expose_services {
        let gateway = expose_services_gateway(&ns);
        let file = p.yaml(&id, &format!("{c}/expose-services.yaml"), &[gateway])?;
        actions.push(p.apply(8, c, &file, None));
    }
    p.step(8, &id, &format!("Install the east-west gateway of {network} on {c}"), c, actions);
    Ok(())
}

/// `expose-services.yaml`: services of every network reachable through 15443.
fn expose_services_gateway(namespace: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": { "name": "cross-network-gateway", "namespace": namespace },
        "spec": {
            "selector": { "istio": "eastwestgateway" },
            "servers": [{
                "port": { "number": 15443, "name": "tls", "protocol": "TLS" },
                "tls": { "mode": "AUTO_PASSTHROUGH" },
                "hosts": ["*.local"],
            }],
        },
    })
}

fn deploy_helloworld_v2(p: &mut Planner<'_>, remote: &ClusterSpec) {
    let r = remote.name.clone();
    let actions = deploy_helloworld(p, 8, &r, "v2");
    p.step(
        8,
        &format!("deploy-sample-{r}"),
        &format!("Deploy helloworld v2 on {r}, injected by the external istiod"),
        &r,
        actions,
    );
}

/// 9. Clean up in reverse order: every creation of steps 1-8 undone, last first,
///    one step per run of the same cluster; then no webhook configuration of the
///    harness may remain.
fn clean_up_in_reverse(p: &mut Planner<'_>) {
    let undo = std::mem::take(&mut p.undo);
    let mut groups: Vec<(u8, String, Vec<Action>)> = Vec::new();
    for (step, cluster, action) in undo.into_iter().rev() {
        match groups.last_mut() {
            Some((s, c, actions)) if *s == step && *c == cluster => actions.push(action),
            _ => groups.push((step, cluster, vec![action])),
        }
    }
    for (k, (step, cluster, actions)) in groups.into_iter().enumerate() {
        p.step(
            9,
            &format!("clean-up-{}-{cluster}", k + 1),
            &format!("Clean up what step {step} created on {cluster}"),
            &cluster,
            actions,
        )
        .phase = StepPhase::Cleanup;
    }
    let clusters: Vec<String> = p.topology.clusters.iter().map(|c| c.name.clone()).collect();
    for cluster in clusters.iter().rev() {
        p.step(
            9,
            &format!("verify-clean-{cluster}"),
            &format!("Nothing the harness installed remains on {cluster}"),
            cluster,
            vec![Action::Verify { check: Check::webhooks_do_not_mention("istio") }],
        )
        .phase = StepPhase::Cleanup;
    }
}

fn wait_deployment(namespace: &str, name: &str) -> Action {
    Action::WaitFor {
        condition: WaitCondition::deployment_available(namespace, name),
        timeout_secs: DEPLOYMENT_TIMEOUT,
    }
}

fn wait_load_balancer(namespace: &str, service: &str) -> Action {
    Action::WaitFor {
        condition: WaitCondition::load_balancer_ip(namespace, service),
        timeout_secs: LOAD_BALANCER_TIMEOUT,
    }
}

fn wait_pods(condition: WaitCondition) -> Action {
    Action::WaitFor { condition, timeout_secs: PODS_TIMEOUT }
}

/// The network label of a remote's namespace (istiod's fallback for a workload's
/// network, istio-release.md "Multi-network").
fn network_labels(cluster: &ClusterSpec) -> BTreeMap<String, String> {
    cluster.network.iter().map(|n| (NETWORK_LABEL.to_string(), n.clone())).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
