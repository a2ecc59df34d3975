//! The Sail operator backend (procedure.md "Sail operator backend"): the procedure's
//! components as `Istio` and `IstioCNI` resources of `sailoperator.io/v1`, applied
//! as files and awaited on their `Ready` condition; the operator itself installed
//! from its Helm chart on every cluster before its first resource.
//!
//! - External cluster: an `Istio` named `default` in `istio-system` (the control-plane
//!   gateway's small mesh), and one named [`REVISION`] in `external-istiod` (the
//!   external istiod, `profile: empty`, the neutral values of every backend with the
//!   volumes, mounts and env in `spec.values`).
//! - Each remote: an `Istio` named [`REVISION`] with `profile: remote`, and an
//!   `IstioCNI` where [`PlanOptions::cni`] says so (`--cni`, always on OpenShift).
//! - Gateways: Sail installs none; they are Deployments injected with the `gateway`
//!   template (by the local istiod on the external cluster, by the external istiod on
//!   the remotes), with their Service, service account and the Role that lets them
//!   read their TLS secrets.
//! - The operator: from its Helm chart on clusters the harness owns; already there on
//!   existing clusters ([`OperatorSource::Preinstalled`]: the preflight looks for
//!   [`CRDS`]).
//! - Images: every resource names the hub and tag the suite loads ([`pinned_images`]).
//!
//! Not done: OpenShift's own installation of the operator (OLM); it must be there.

use serde_json::{Map, Value, json};

use super::backend::{Component, InstallerBackend, Needs, Repository, Revision, Target};
use super::plan::{
    Action, OperatorSource, PlanError, PlanOptions, Program, WaitCondition, kubeconfig_placeholder,
};
use super::values::{GatewayValues, INJECTOR_CONFIG_MAP, InstallValues, SHARED_MESH_CONFIG};
use super::values::{STATUS_PORT, with_images};
use crate::install::Installer;
use crate::version::IstioVersion;

/// The revision of the external istiod and of every remote profile: the name of
/// their `Istio` resources (Sail names a revision after its `Istio`). It cannot be
/// `default`: the external cluster's gateway mesh is `default`, and `Istio` is
/// cluster-scoped. The charts then name istiod `istiod-external-istiod`, its service
/// account too (the config remote secret's), and the remote webhooks
/// `istio-sidecar-injector-external-istiod-external-istiod`.
pub const REVISION: &str = "external-istiod";
/// The `Istio` resource of the external cluster's gateway mesh (the default revision).
pub const GATEWAY_MESH: &str = "default";
/// The API group and version of Sail's resources.
pub const GROUP: &str = "sailoperator.io";
pub const VERSION: &str = "v1";
/// The CRDs an installed operator provides (what a preflight looks for).
pub const CRDS: [&str; 2] = ["istios.sailoperator.io", "istiocnis.sailoperator.io"];
/// The operator's Helm chart repository; chart version = operator version.
pub const REPOSITORY: &str = "https://istio-ecosystem.github.io/sail-operator";
/// The chart, its release name and its Deployment.
pub const OPERATOR: &str = "sail-operator";
/// The namespace the operator runs in.
pub const OPERATOR_NAMESPACE: &str = "sail-operator";
/// The namespace of the Istio CNI node agent.
pub const CNI_NAMESPACE: &str = "istio-cni";

/// Sail resources get 5 minutes to be Ready (istiod pulls its image).
const READY_TIMEOUT: u64 = 300;
/// The operator's Deployment gets 5 minutes to be Available.
const OPERATOR_TIMEOUT: u64 = 300;

/// One Sail operator release and the Istio versions it installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SailRelease {
    pub operator: IstioVersion,
    pub oldest: IstioVersion,
    pub newest: IstioVersion,
}

/// procedure.md's table (each release's `pkg/istioversion/versions.yaml` without
/// its `eol` entries), oldest first.
pub const SAIL_RELEASES: &[SailRelease] = &[
    release((1, 26, 3), (1, 24, 0), (1, 26, 3)),
    release((1, 27, 2), (1, 24, 0), (1, 27, 2)),
    release((1, 28, 3), (1, 26, 0), (1, 28, 3)),
    release((1, 29, 2), (1, 27, 0), (1, 29, 2)),
    release((1, 30, 3), (1, 28, 0), (1, 30, 3)),
];

const fn release(
    op: (u32, u32, u32),
    oldest: (u32, u32, u32),
    newest: (u32, u32, u32),
) -> SailRelease {
    SailRelease {
        operator: IstioVersion::new(op.0, op.1, op.2),
        oldest: IstioVersion::new(oldest.0, oldest.1, oldest.2),
        newest: IstioVersion::new(newest.0, newest.1, newest.2),
    }
}

/// The newest Sail release that installs `istio`; `None` outside the table (1.22,
/// 1.23, anything after the newest release's newest, pre-releases: Sail accepts only
/// the versions it lists).
pub fn release_for(istio: IstioVersion) -> Option<&'static SailRelease> {
    if istio.pre_release().is_some() {
        return None;
    }
    SAIL_RELEASES.iter().rev().find(|r| r.oldest <= istio && istio <= r.newest)
}

/// What the table installs, for messages: "1.24.0 to 1.30.3 (releases only)".
pub fn installable_range() -> String {
    let oldest = SAIL_RELEASES.iter().map(|r| r.oldest).min();
    let newest = SAIL_RELEASES.iter().map(|r| r.newest).max();
    match (oldest, newest) {
        (Some(o), Some(n)) => {
            format!("{o} to {n} (releases only; procedure.md \"Sail operator backend\")")
        }
        _ => "no version".to_string(),
    }
}

/// The operator's image for `istio` (to preload on kind); `None` where no release
/// installs it.
pub fn operator_image(istio: IstioVersion) -> Option<String> {
    release_for(istio).map(|r| format!("quay.io/sail-dev/sail-operator:{}", r.operator))
}

/// The Istio CNI node agent's image for these options (to preload on kind).
pub fn cni_image(opts: &PlanOptions) -> String {
    let (hub, tag) = hub_and_tag(opts);
    format!("{hub}/install-cni:{tag}")
}

/// The hub and tag of every image the plan's resources run: `--hub`/`--tag`, else the
/// release's hub and the version (what the suite preloads on kind).
fn hub_and_tag(opts: &PlanOptions) -> (String, String) {
    let hub = opts.hub.as_deref().unwrap_or(opts.istio.default_hub()).trim_end_matches('/');
    let tag = opts.tag.clone().unwrap_or_else(|| opts.istio.to_string());
    (hub.to_string(), tag)
}

/// `values` with `global.hub` and `global.tag` always set: kept where the values
/// already set them (`--hub`/`--tag`, a `--values` file), else those of
/// `hub_and_tag`. Without them Sail runs the images of its own list
/// (`gcr.io/istio-release` up to 1.28), which kind has not loaded; any global hub or
/// tag turns that list off (Sail's `ApplyDigests` and `ApplyCNIImageDigests`, from
/// release 1.27.2 on: the releases the table picks).
pub fn pinned_images(mut values: Value, opts: &PlanOptions) -> Value {
    let (hub, tag) = hub_and_tag(opts);
    let global = &values["global"];
    let hub = global["hub"].as_str().map(str::to_string).unwrap_or(hub);
    let tag = global["tag"].as_str().map(str::to_string).unwrap_or(tag);
    values = with_images(values, Some(&hub), Some(&tag));
    values
}

/// The Sail operator's resources.
pub struct Sail;

impl InstallerBackend for Sail {
    fn install(&self, component: &Component, t: &mut Target<'_>) -> Result<Vec<Action>, PlanError> {
        let (ns, stem) = (component.namespace(), component.file_stem());
        let file = format!("{stem}.yaml");
        // `--revision`, else [`REVISION`]: the name of the revision's `Istio` resources.
        let revision = t.opts.revision();
        let name = revision.0.unwrap_or(REVISION).to_string();
        match component {
            Component::ControlPlaneGateway(g) => {
                // The first component on the external cluster: the operator comes first.
                let mut actions = install_operator(t)?;
                let values = pinned_images(json!({}), t.opts);
                let values = InstallValues { mesh_config: Value::Null, values };
                let mesh = istio(GATEWAY_MESH, &g.namespace, t.opts.istio, "default", &values);
                actions.extend(apply_ready(t, "gateway-mesh.yaml", mesh, "Istio", GATEWAY_MESH)?);
                actions.extend(gateway(t, &file, g, None)?);
                Ok(actions)
            }
            Component::RemoteProfile { values, .. } => {
                // The first component on a remote: the operator, then its CNI.
                let mut actions = install_operator(t)?;
                if t.opts.cni {
                    actions.extend(install_cni(t)?);
                }
                let mut values = values.clone();
                values.values = pinned_images(values.values, t.opts);
                // The default tag points at this revision, as the guide's `default`.
                values.values["defaultRevision"] = json!(name);
                let cr = istio(&name, ns, t.opts.istio, "remote", &values);
                actions.extend(apply_ready(t, &file, cr, "Istio", &name)?);
                Ok(actions)
            }
            Component::ExternalIstiod(values) => {
                let mut values = external_istiod_values(values, revision, t.opts.cni);
                values.values = pinned_images(values.values, t.opts);
                let cr = istio(&name, ns, t.opts.istio, "empty", &values);
                apply_ready(t, &file, cr, "Istio", &name)
            }
            Component::IngressGateway(g) | Component::EastWestGateway(g) => {
                gateway(t, &file, g, Some(&name))
            }
        }
    }

    /// Helm for the operator's chart, and its repository (`--helm-repo`, else
    /// [`REPOSITORY`]).
    fn needs(&self, opts: &PlanOptions) -> Needs {
        let repo = opts.helm_repo(REPOSITORY);
        Needs {
            programs: vec![Program::Helm],
            repositories: vec![Repository::https(repo, "the Sail operator's Helm chart")],
            release: false,
        }
    }

    fn check_version(&self, istio: IstioVersion) -> Result<(), PlanError> {
        match release_for(istio) {
            Some(_) => Ok(()),
            None => Err(PlanError::NotInstallable {
                istio,
                installer: Installer::Sail,
                range: installable_range(),
            }),
        }
    }

    fn revision(&self) -> Option<&'static str> {
        Some(REVISION)
    }
}

/// The external istiod's values as Sail carries them: the neutral values with pilot
/// enabled, the names the chart gives a revision (`Revision::name` on the two config
/// maps it mounts, the remote webhooks' names in env), and CNI injection where the
/// remotes run the CNI (`cni`).
fn external_istiod_values(v: &InstallValues, revision: Revision, cni: bool) -> InstallValues {
    let mut v = v.clone();
    let pilot = &mut v.values["pilot"];
    pilot["enabled"] = json!(true);
    if cni {
        pilot["cni"] = json!({ "enabled": true });
    }
    if let Some(volumes) = pilot["volumes"].as_array_mut() {
        for volume in volumes {
            let name = volume["configMap"]["name"].as_str().map(str::to_string);
            if let Some(name) =
                name.filter(|n| [SHARED_MESH_CONFIG, INJECTOR_CONFIG_MAP].contains(&n.as_str()))
            {
                volume["configMap"]["name"] = json!(revision.name(&name));
            }
        }
    }
    let env = &mut pilot["env"];
    env["INJECTION_WEBHOOK_CONFIG_NAME"] = json!(revision.webhook_config("istio-sidecar-injector"));
    env["VALIDATION_WEBHOOK_CONFIG_NAME"] = json!(revision.webhook_config("istio-validator"));
    v
}

/// An `Istio` resource: `spec.version` `v<istio>`, `spec.namespace`, `spec.profile`,
/// and the values with `meshConfig` inside them (Sail's `spec.values` is the charts'
/// values tree).
pub fn istio(
    name: &str,
    namespace: &str,
    istio: IstioVersion,
    profile: &str,
    v: &InstallValues,
) -> Value {
    let mut values = match &v.values {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if !v.mesh_config.is_null() {
        values.insert("meshConfig".into(), v.mesh_config.clone());
    }
    let mut spec =
        json!({ "version": format!("v{istio}"), "namespace": namespace, "profile": profile });
    if !values.is_empty() {
        spec["values"] = Value::Object(values);
    }
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "Istio",
        "metadata": { "name": name },
        "spec": spec,
    })
}

/// An `IstioCNI` named `default` in [`CNI_NAMESPACE`], with the images of `opts`.
pub fn istio_cni(opts: &PlanOptions) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "IstioCNI",
        "metadata": { "name": "default" },
        "spec": {
            "version": format!("v{}", opts.istio),
            "namespace": CNI_NAMESPACE,
            "values": pinned_images(json!({}), opts),
        },
    })
}

/// Applies `doc` as the file `name`, undone by deleting it, and waits for its
/// `Ready` condition.
fn apply_ready(
    t: &mut Target<'_>,
    name: &str,
    doc: Value,
    kind: &str,
    object: &str,
) -> Result<Vec<Action>, PlanError> {
    let file = t.yaml(name, &[doc])?;
    t.undo(Action::Delete { file: file.clone(), namespace: None });
    Ok(vec![Action::Apply { file, namespace: None }, wait_ready(kind, object)])
}

/// The wait for Sail's `kind`/`name` to be Ready (Sail's kinds are cluster-scoped).
pub fn wait_ready(kind: &str, name: &str) -> Action {
    Action::WaitFor {
        condition: WaitCondition::ResourceReady {
            group: GROUP.into(),
            version: VERSION.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        },
        timeout_secs: READY_TIMEOUT,
    }
}

/// The CNI namespace and an `IstioCNI`, Ready.
fn install_cni(t: &mut Target<'_>) -> Result<Vec<Action>, PlanError> {
    let mut actions = vec![create_namespace(t, CNI_NAMESPACE)];
    actions.extend(apply_ready(t, "istio-cni.yaml", istio_cni(t.opts), "IstioCNI", "default")?);
    Ok(actions)
}

/// `CreateNamespace`, undone by deleting it.
fn create_namespace(t: &mut Target<'_>, name: &str) -> Action {
    t.undo(Action::DeleteNamespace { name: name.into() });
    Action::CreateNamespace {
        name: name.into(),
        labels: Default::default(),
        annotations: Default::default(),
    }
}

/// The operator of the Sail release for this Istio version, from its chart; undone
/// last on the cluster (its undo is recorded first, step 9 runs in reverse), after
/// every resource it manages is gone. Helm leaves the chart's CRDs. Nothing where it
/// is already installed ([`OperatorSource::Preinstalled`]).
fn install_operator(t: &mut Target<'_>) -> Result<Vec<Action>, PlanError> {
    let istio = t.opts.istio;
    let release = release_for(istio).ok_or_else(|| PlanError::NotInstallable {
        istio,
        installer: Installer::Sail,
        range: installable_range(),
    })?;
    if t.opts.operator == OperatorSource::Preinstalled {
        return Ok(Vec::new());
    }
    let ns = create_namespace(t, OPERATOR_NAMESPACE);
    let kubeconfig = kubeconfig_placeholder(t.cluster);
    let repo = t.opts.helm_repo(REPOSITORY);
    let args = ["upgrade", "--install", OPERATOR, OPERATOR, "--repo", repo, "--version"];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push(release.operator.to_string());
    args.extend(["--namespace".into(), OPERATOR_NAMESPACE.into()]);
    args.extend(["--kubeconfig".into(), kubeconfig.clone()]);
    let uninstall =
        ["uninstall", OPERATOR, "--namespace", OPERATOR_NAMESPACE, "--wait", "--kubeconfig"];
    let mut uninstall: Vec<String> = uninstall.iter().map(|a| a.to_string()).collect();
    uninstall.push(kubeconfig);
    t.undo(Action::Run { program: Program::Helm, args: uninstall, stdout_file: None });
    Ok(vec![
        ns,
        Action::Run { program: Program::Helm, args, stdout_file: None },
        Action::WaitFor {
            condition: WaitCondition::DeploymentAvailable {
                namespace: OPERATOR_NAMESPACE.into(),
                name: OPERATOR.into(),
            },
            timeout_secs: OPERATOR_TIMEOUT,
        },
    ])
}

/// The ports of an ingress gateway whose ports the procedure leaves to the installer
/// (istioctl's and the gateway chart's: status, 80 and 443 to the unprivileged 8080
/// and 8443).
fn default_gateway_ports() -> Value {
    json!([
        { "name": "status-port", "port": STATUS_PORT, "targetPort": STATUS_PORT },
        { "name": "http2", "port": 80, "targetPort": 8080 },
        { "name": "https", "port": 443, "targetPort": 8443 },
    ])
}

/// A gateway as Sail deploys one: a Deployment injected with the `gateway` template
/// (by `revision`, or by the default revision), its LoadBalancer Service, service
/// account, and the Role letting it read TLS secrets; applied, undone by deleting.
fn gateway(
    t: &mut Target<'_>,
    file: &str,
    g: &GatewayValues,
    revision: Option<&str>,
) -> Result<Vec<Action>, PlanError> {
    let file = t.yaml(file, &gateway_manifests(g, revision))?;
    t.undo(Action::Delete { file: file.clone(), namespace: None });
    Ok(vec![Action::Apply { file, namespace: None }])
}

/// The objects of one gateway (the module docs: injected, with Service, account, Role).
pub fn gateway_manifests(g: &GatewayValues, revision: Option<&str>) -> Vec<Value> {
    let (name, ns) = (g.name, g.namespace.as_str());
    let labels = g.labels();
    let mut pod_labels = labels.clone();
    match revision {
        Some(r) => pod_labels["istio.io/rev"] = json!(r),
        None => pod_labels["sidecar.istio.io/inject"] = json!("true"),
    }
    let mut container = json!({ "name": "istio-proxy", "image": "auto" });
    if let Some(network) = &g.network {
        container["env"] =
            json!([{ "name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": network }]);
    }
    let ports = g.ports.clone().unwrap_or_else(default_gateway_ports);
    let meta = json!({ "name": name, "namespace": ns });
    vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": {
                        "annotations": { "inject.istio.io/templates": "gateway" },
                        "labels": pod_labels,
                    },
                    "spec": { "serviceAccountName": name, "containers": [container] },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": { "type": "LoadBalancer", "selector": labels, "ports": ports },
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": { "name": format!("{name}-sds"), "namespace": ns },
            "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"] }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": { "name": format!("{name}-sds"), "namespace": ns },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{name}-sds") },
            "subjects": [{ "kind": "ServiceAccount", "name": name }],
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{ISTIO_SYSTEM, values};
    use crate::topology::{NetworkMode, Topology};

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    /// procedure.md's table: the newest release that installs a version is chosen;
    /// 1.22, 1.23, later than 1.30.3 and pre-releases have none.
    #[test]
    fn the_sail_release_follows_the_table() {
        let op = |s: &str| release_for(v(s)).map(|r| r.operator.to_string());
        assert_eq!(op("1.24.0").as_deref(), Some("1.27.2"));
        assert_eq!(op("1.25.5").as_deref(), Some("1.27.2"));
        assert_eq!(op("1.26.8").as_deref(), Some("1.28.3"));
        assert_eq!(op("1.27.9").as_deref(), Some("1.29.2"));
        assert_eq!(op("1.28.10").as_deref(), Some("1.30.3"));
        assert_eq!(op("1.30.3").as_deref(), Some("1.30.3"));
        for refused in ["1.22.8", "1.23.6", "1.30.4", "1.31.0", "1.28.0-rc.0"] {
            assert_eq!(op(refused), None, "{refused}");
        }
        assert!(installable_range().starts_with("1.24.0 to 1.30.3"));
        assert_eq!(
            operator_image(v("1.30.3")).as_deref(),
            Some("quay.io/sail-dev/sail-operator:1.30.3")
        );
    }

    #[test]
    fn the_external_istiod_carries_the_revision_names() {
        let t = Topology::new(1, NetworkMode::MultiNetwork).unwrap();
        let neutral = values::external_istiod(
            v("1.30.3"),
            t.config(),
            "172.18.6.66".parse().unwrap(),
            Default::default(),
            Revision(None),
        );
        let s = external_istiod_values(&neutral, Revision(Some(REVISION)), false);
        let pilot = &s.values["pilot"];
        assert_eq!(pilot["enabled"], true);
        assert_eq!(pilot.get("cni"), None);
        let with_cni = external_istiod_values(&neutral, Revision(Some(REVISION)), true);
        assert_eq!(with_cni.values["pilot"]["cni"]["enabled"], true);
        assert_eq!(pilot["volumes"][0]["configMap"]["name"], "istio-external-istiod");
        assert_eq!(
            pilot["volumes"][1]["configMap"]["name"],
            "istio-sidecar-injector-external-istiod"
        );
        assert_eq!(pilot["volumeMounts"], neutral.values["pilot"]["volumeMounts"]);
        assert_eq!(
            pilot["env"]["INJECTION_WEBHOOK_CONFIG_NAME"],
            "istio-sidecar-injector-external-istiod-external-istiod"
        );
        assert_eq!(
            pilot["env"]["VALIDATION_WEBHOOK_CONFIG_NAME"],
            "istio-validator-external-istiod-external-istiod"
        );
        assert_eq!(pilot["env"]["SHARED_MESH_CONFIG"], "istio");
        assert_eq!(s.values["global"], neutral.values["global"]);
        assert_eq!(s.mesh_config, neutral.mesh_config);
    }

    #[test]
    fn an_istio_resource_carries_mesh_config_in_its_values() {
        let values = InstallValues {
            mesh_config: json!({ "rootNamespace": "external-istiod" }),
            values: json!({ "global": { "meshID": "mesh1" } }),
        };
        assert_eq!(
            istio("external-istiod", "external-istiod", v("1.30.3"), "empty", &values),
            json!({
                "apiVersion": "sailoperator.io/v1",
                "kind": "Istio",
                "metadata": { "name": "external-istiod" },
                "spec": {
                    "version": "v1.30.3",
                    "namespace": "external-istiod",
                    "profile": "empty",
                    "values": {
                        "global": { "meshID": "mesh1" },
                        "meshConfig": { "rootNamespace": "external-istiod" },
                    },
                },
            })
        );
    }

    #[test]
    fn gateways_are_injected_by_their_revision() {
        let cp = gateway_manifests(&values::control_plane_gateway(), None);
        assert_eq!(cp[1]["metadata"]["namespace"], ISTIO_SYSTEM);
        let labels = &cp[1]["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["sidecar.istio.io/inject"], "true");
        assert_eq!(cp[2]["spec"]["ports"], values::control_plane_gateway_ports());
        let ew = gateway_manifests(&values::eastwest_gateway("network2"), Some(REVISION));
        let pod = &ew[1]["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"]["istio.io/rev"], REVISION);
        assert_eq!(pod["metadata"]["annotations"]["inject.istio.io/templates"], "gateway");
        assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "network2");
        let ingress = gateway_manifests(&values::remote_ingress_gateway(), Some(REVISION));
        assert_eq!(ingress[2]["spec"]["ports"][1]["port"], 80);
    }
}
