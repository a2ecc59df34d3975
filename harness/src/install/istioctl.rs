//! The istioctl backend: IstioOperator files and `istioctl` command lines.

use serde_json::{Map, Value, json};

use super::plan::{Action, Program, kubeconfig_placeholder};
use super::values::InstallValues;

/// An IstioOperator named `name` in `namespace` carrying `v` (the guide's form:
/// `spec.profile`, `spec.components`, `spec.meshConfig`, `spec.values`).
pub fn istio_operator(name: &str, namespace: &str, v: &InstallValues) -> Value {
    let mut spec = Map::new();
    if let Some(profile) = v.profile {
        spec.insert("profile".into(), json!(profile));
    }
    if !is_empty(&v.components) {
        spec.insert("components".into(), v.components.clone());
    }
    if !is_empty(&v.mesh_config) {
        spec.insert("meshConfig".into(), v.mesh_config.clone());
    }
    if !is_empty(&v.values) {
        spec.insert("values".into(), v.values.clone());
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
        let v = InstallValues {
            profile: Some("empty"),
            components: json!({}),
            mesh_config: Value::Null,
            values: json!({ "global": { "meshID": "mesh1" } }),
            helm_profile: Some("remote"),
        };
        let iop = istio_operator("x", "external-istiod", &v);
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
}
