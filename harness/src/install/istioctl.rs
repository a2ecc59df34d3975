//! The istioctl backend: IstioOperator files and `istioctl` command lines, the
//! guide's own form. The example to read before writing a backend.

use serde_json::{Map, Value, json};

use super::backend::{Component, InstallerBackend, Needs, Target};
use super::plan::{Action, PlanError, PlanOptions, Program, kubeconfig_placeholder};
use super::steps::ISTIO_SYSTEM;
use super::values::{self, GatewayValues, InstallValues};
use crate::version::{IstioVersion, RemoteProfile};

/// `istioctl install` of IstioOperator files.
pub struct Istioctl;

impl InstallerBackend for Istioctl {
    fn install(&self, component: &Component, t: &mut Target<'_>) -> Result<Vec<Action>, PlanError> {
        let (ns, stem) = (component.namespace(), component.file_stem());
        let file = format!("{stem}.yaml");
        match component {
            Component::RemoteProfile { values, .. } => {
                // The guide generates the remote profile's manifest and applies it.
                let mut op = remote_profile(t.opts.istio, values);
                op.revision = t.opts.revision().0;
                let iop = istio_operator("remote", ns, &op);
                let file = t.yaml(&file, &[iop])?;
                let generated = t.path(&format!("{stem}.generated.yaml"));
                t.undo(Action::Delete { file: generated.clone(), namespace: None });
                Ok(vec![
                    manifest_generate(t.cluster, &file, &generated),
                    Action::Apply { file: generated, namespace: None },
                ])
            }
            Component::ControlPlaneGateway(g) => {
                let file = t.yaml(&file, &[istio_operator(stem, ns, &gateway(g, true, t.opts))])?;
                // Last on this cluster, after the external istiod is gone: every Istio
                // resource left here is ours.
                t.undo(uninstall_purge(t.cluster));
                Ok(vec![install(t.cluster, &file)])
            }
            Component::ExternalIstiod(values) => {
                let op = Operator {
                    profile: Some("empty"),
                    revision: t.opts.revision().0,
                    components: json!({ "pilot": { "enabled": true } }),
                    values: values.clone(),
                };
                let file = t.yaml(&file, &[istio_operator(stem, ns, &op)])?;
                t.undo(uninstall(t.cluster, &file));
                Ok(vec![install(t.cluster, &file)])
            }
            Component::IngressGateway(g) | Component::EastWestGateway(g) => {
                // Injected by the external istiod: by its revision, if it has one.
                let mut op = gateway(g, false, t.opts);
                op.revision = t.opts.revision().0;
                let file = t.yaml(&file, &[istio_operator(stem, ns, &op)])?;
                t.undo(uninstall(t.cluster, &file));
                Ok(vec![install(t.cluster, &file)])
            }
        }
    }

    /// istioctl itself, from `--istioctl PATH` or the release (the preflight decides);
    /// no repository: istioctl carries its charts.
    fn needs(&self, _opts: &PlanOptions) -> Needs {
        Needs { programs: vec![Program::Istioctl], ..Needs::default() }
    }
}

/// What an IstioOperator carries besides its name.
#[derive(Debug, Clone, PartialEq)]
struct Operator<'a> {
    /// `spec.profile`; `None` is istioctl's default profile.
    profile: Option<&'static str>,
    /// `spec.revision`; `None` is the default revision.
    revision: Option<&'a str>,
    /// `spec.components`.
    components: Value,
    /// `spec.meshConfig` and `spec.values`.
    values: InstallValues,
}

/// The remote profile: `profile: remote`, from 1.24 alone; before, the `istiodRemote`
/// component with base and pilot disabled.
fn remote_profile(istio: IstioVersion, values: &InstallValues) -> Operator<'static> {
    let components = match istio.remote_profile() {
        RemoteProfile::Remote => json!({}),
        RemoteProfile::IstiodRemote => json!({
            "base": { "enabled": false },
            "pilot": { "enabled": false },
            "istiodRemote": { "enabled": true },
        }),
    };
    Operator { profile: Some("remote"), revision: None, components, values: values.clone() }
}

/// The labels istioctl gives an ingress gateway itself.
fn default_ingress_labels() -> Value {
    json!({ "app": "istio-ingressgateway", "istio": "ingressgateway" })
}

/// A gateway as an `ingressGateways` component. `with_local_istiod` (the control-plane
/// gateway): on the default profile, which brings base and the small istiod that
/// configures only this gateway, with `--hub`/`--tag`'s images. Else on the `empty`
/// profile, injected by the external istiod with the `gateway` template. Namespace
/// and labels are written only where they differ from istioctl's own (`istio-system`,
/// [`default_ingress_labels`]).
fn gateway(g: &GatewayValues, with_local_istiod: bool, opts: &PlanOptions) -> Operator<'static> {
    let mut gateway = json!({ "name": g.name, "enabled": true });
    if g.namespace != ISTIO_SYSTEM {
        gateway["namespace"] = json!(g.namespace);
    }
    if g.labels() != default_ingress_labels() {
        gateway["label"] = g.labels();
    }
    let mut k8s = Map::new();
    if let Some(network) = &g.network {
        let env = json!([{ "name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": network }]);
        k8s.insert("env".into(), env);
    }
    if let Some(ports) = &g.ports {
        k8s.insert("service".into(), json!({ "ports": ports }));
    }
    if !k8s.is_empty() {
        gateway["k8s"] = Value::Object(k8s);
    }
    let components = json!({ "ingressGateways": [gateway] });
    if with_local_istiod {
        let values = values::with_images(json!({}), opts.hub.as_deref(), opts.tag.as_deref());
        let values = InstallValues { mesh_config: Value::Null, values };
        return Operator { profile: None, revision: None, components, values };
    }
    let mut values = json!({
        "global": { "istioNamespace": g.namespace },
        "gateways": { "istio-ingressgateway": { "injectionTemplate": "gateway" } },
    });
    if let Some(network) = &g.network {
        values["global"]["network"] = json!(network);
    }
    let values = InstallValues { mesh_config: Value::Null, values };
    Operator { profile: Some("empty"), revision: None, components, values }
}

/// An IstioOperator named `name` in `namespace` (the guide's form: `spec.profile`,
/// `spec.components`, `spec.meshConfig`, `spec.values`, each left out when empty).
fn istio_operator(name: &str, namespace: &str, op: &Operator<'_>) -> Value {
    let mut spec = Map::new();
    if let Some(profile) = op.profile {
        spec.insert("profile".into(), json!(profile));
    }
    if let Some(revision) = op.revision {
        spec.insert("revision".into(), json!(revision));
    }
    if !is_empty(&op.components) {
        spec.insert("components".into(), op.components.clone());
    }
    if !is_empty(&op.values.mesh_config) {
        spec.insert("meshConfig".into(), op.values.mesh_config.clone());
    }
    if !is_empty(&op.values.values) {
        spec.insert("values".into(), op.values.values.clone());
    }
    json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    })
}

/// `istioctl install -y -f <file>` on `cluster` (istioctl waits for readiness itself).
pub fn install(cluster: &str, file: &str) -> Action {
    run(["install", "-y", "-f", file], cluster, None)
}

/// `istioctl manifest generate -f <file>`, its output written to `out`: the guide
/// applies the remote profile's manifest rather than installing it.
pub fn manifest_generate(cluster: &str, file: &str, out: &str) -> Action {
    run(["manifest", "generate", "-f", file], cluster, Some(out))
}

/// `istioctl uninstall -y -f <file>`: removes what that IstioOperator installed.
pub fn uninstall(cluster: &str, file: &str) -> Action {
    run(["uninstall", "-y", "-f", file], cluster, None)
}

/// `istioctl uninstall -y --purge`: removes every Istio resource of the cluster
/// (the last step on the external cluster, whose Istio is all ours).
pub fn uninstall_purge(cluster: &str) -> Action {
    run(["uninstall", "-y", "--purge"], cluster, None)
}

fn run<const N: usize>(args: [&str; N], cluster: &str, stdout_file: Option<&str>) -> Action {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push("--kubeconfig".into());
    args.push(kubeconfig_placeholder(cluster));
    Action::Run { program: Program::Istioctl, args, stdout_file: stdout_file.map(String::from) }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &Action) -> (Program, Vec<String>, Option<String>) {
        match a {
            Action::Run { program, args, stdout_file } => {
                (*program, args.clone(), stdout_file.clone())
            }
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn command_lines() {
        let (program, a, out) = args(&install("external", "external/istiod.yaml"));
        assert_eq!(program, Program::Istioctl);
        assert_eq!(
            a,
            [
                "install",
                "-y",
                "-f",
                "external/istiod.yaml",
                "--kubeconfig",
                "{kubeconfig:external}"
            ]
        );
        assert_eq!(out, None);
        let (_, a, out) = args(&manifest_generate("config", "config/r.yaml", "config/r.gen.yaml"));
        assert_eq!(
            a,
            ["manifest", "generate", "-f", "config/r.yaml", "--kubeconfig", "{kubeconfig:config}"]
        );
        assert_eq!(out.as_deref(), Some("config/r.gen.yaml"));
        let (_, a, _) = args(&uninstall("config", "config/g.yaml"));
        assert_eq!(
            a,
            ["uninstall", "-y", "-f", "config/g.yaml", "--kubeconfig", "{kubeconfig:config}"]
        );
        let (_, a, _) = args(&uninstall_purge("external"));
        assert_eq!(a, ["uninstall", "-y", "--purge", "--kubeconfig", "{kubeconfig:external}"]);
    }

    #[test]
    fn istio_operator_leaves_out_what_is_empty() {
        let op = Operator {
            profile: Some("empty"),
            revision: None,
            components: json!({}),
            values: InstallValues {
                mesh_config: Value::Null,
                values: json!({ "global": { "meshID": "mesh1" } }),
            },
        };
        let iop = istio_operator("x", "external-istiod", &op);
        assert_eq!(
            iop,
            json!({
                "apiVersion": "install.istio.io/v1alpha1",
                "kind": "IstioOperator",
                "metadata": { "name": "x", "namespace": "external-istiod" },
                "spec": { "profile": "empty", "values": { "global": { "meshID": "mesh1" } } },
            })
        );
    }

    fn options() -> PlanOptions {
        PlanOptions {
            hub: Some("quay.io/vendor".into()),
            ..PlanOptions::new(crate::version::NEWEST, crate::install::Installer::Istioctl, 1)
        }
    }

    /// 1.24 and later: `profile: remote` alone; 1.22 and 1.23: the `istiodRemote`
    /// component with base and pilot disabled.
    #[test]
    fn the_remote_profile_follows_the_version() {
        let v = InstallValues { mesh_config: Value::Null, values: json!({}) };
        for version in ["1.24.0", "1.30.3"] {
            let op = remote_profile(version.parse().unwrap(), &v);
            assert_eq!((op.profile, &op.components), (Some("remote"), &json!({})), "{version}");
        }
        for version in ["1.22.0", "1.23.6"] {
            let op = remote_profile(version.parse().unwrap(), &v);
            assert_eq!(op.profile, Some("remote"));
            assert_eq!(
                op.components,
                json!({
                    "base": { "enabled": false },
                    "pilot": { "enabled": false },
                    "istiodRemote": { "enabled": true },
                }),
                "{version}"
            );
        }
    }

    /// The guide's control-plane gateway: the default profile, ports only, and the
    /// images of `--hub` for its own istiod.
    #[test]
    fn the_control_plane_gateway_is_the_default_profile_with_its_ports() {
        let g = values::control_plane_gateway();
        let op = gateway(&g, true, &options());
        assert_eq!(op.profile, None, "the guide installs the default profile");
        assert_eq!(
            op.components,
            json!({ "ingressGateways": [{
                "name": "istio-ingressgateway",
                "enabled": true,
                "k8s": { "service": { "ports": values::control_plane_gateway_ports() } },
            }] })
        );
        assert_eq!(op.values.values, json!({ "global": { "hub": "quay.io/vendor" } }));
    }

    #[test]
    fn the_ingress_gateway_uses_the_gateway_injection_template() {
        let op = gateway(&values::remote_ingress_gateway(), false, &options());
        assert_eq!(op.profile, Some("empty"));
        let gw = &op.components["ingressGateways"][0];
        assert_eq!(gw["namespace"], "external-istiod");
        assert_eq!(gw.get("label"), None, "istioctl's own labels");
        assert_eq!(gw.get("k8s"), None);
        let values = &op.values.values;
        assert_eq!(values["gateways"]["istio-ingressgateway"]["injectionTemplate"], "gateway");
        assert_eq!(values["global"]["istioNamespace"], "external-istiod");
        assert_eq!(values["global"].get("hub"), None, "injected: the external istiod's images");
    }

    #[test]
    fn the_eastwest_gateway_follows_gen_eastwest_gateway() {
        let op = gateway(&values::eastwest_gateway("network2"), false, &options());
        let gw = &op.components["ingressGateways"][0];
        assert_eq!(gw["name"], "istio-eastwestgateway");
        assert_eq!(gw["label"]["istio"], "eastwestgateway");
        assert_eq!(gw["label"]["topology.istio.io/network"], "network2");
        assert_eq!(gw["k8s"]["env"][0]["name"], "ISTIO_META_REQUESTED_NETWORK_VIEW");
        assert_eq!(gw["k8s"]["env"][0]["value"], "network2");
        assert_eq!(gw["k8s"]["service"]["ports"].as_array().map(Vec::len), Some(4));
        assert_eq!(op.values.values["global"]["network"], "network2");
        assert_eq!(op.values.values["global"]["istioNamespace"], "external-istiod");
    }
}
