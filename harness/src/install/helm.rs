//! The Helm backend: values files and `helm` command lines for Istio's charts.

use serde_json::{Value, json};

use super::plan::{Action, Program, RELEASE_DIR_PLACEHOLDER, kubeconfig_placeholder};
use super::values::InstallValues;
use crate::version::IstioVersion;

/// Istio's Helm repository; chart version = Istio version.
pub const REPOSITORY: &str = "https://istio-release.storage.googleapis.com/charts";

/// Skips a chart's JSON schema. Passed for the `gateway` chart of the versions whose
/// schema Helm 3.18.5+ and Helm 4 refuse ([`IstioVersion::gateway_chart_fails_schema`]);
/// Helm has the flag from [`SKIP_SCHEMA_VALIDATION_SINCE`], and the executor drops it
/// for an older Helm, which does not have the bug either.
pub const SKIP_SCHEMA_VALIDATION: &str = "--skip-schema-validation";
/// The first Helm release with [`SKIP_SCHEMA_VALIDATION`] (3.16.0).
pub const SKIP_SCHEMA_VALIDATION_SINCE: (u32, u32) = (3, 16);

/// Where a chart comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// A chart of [`REPOSITORY`] (`base`, `istiod`, `gateway`, 1.23's `istiod-remote`).
    Repo(&'static str),
    /// A chart directory inside the unpacked release, relative to `istio-<v>/`.
    Release(&'static str),
}

/// The chart of one of the config cluster's remote-profile releases:
/// `istiod-remote` was published to the repository only for 1.23; for 1.22 it is
/// only in the release archive.
pub fn remote_chart(istio: IstioVersion, name: &'static str) -> Chart {
    if name == "istiod-remote" && istio.minor == 22 {
        Chart::Release("manifests/charts/istiod-remote")
    } else {
        Chart::Repo(name)
    }
}

/// A Helm values file's contents: the values with `meshConfig` and `profile` merged
/// in at the top.
pub fn values_file(v: &InstallValues) -> Value {
    let mut values = match &v.values {
        Value::Object(_) => v.values.clone(),
        _ => json!({}),
    };
    if !v.mesh_config.is_null() {
        values["meshConfig"] = v.mesh_config.clone();
    }
    if let Some(profile) = v.helm_profile {
        values["profile"] = json!(profile);
    }
    values
}

/// `helm upgrade --install <release> <chart> -n <namespace> [-f <values>]` at
/// `istio`'s chart version, on `cluster`.
pub fn upgrade_install(
    cluster: &str,
    istio: IstioVersion,
    release: &str,
    chart: Chart,
    namespace: &str,
    values: Option<&str>,
) -> Action {
    let mut args: Vec<String> = vec!["upgrade".into(), "--install".into(), release.into()];
    match chart {
        Chart::Repo(name) => {
            args.extend([name.to_string(), "--repo".into(), REPOSITORY.into()]);
            args.extend(["--version".into(), istio.to_string()]);
        }
        Chart::Release(dir) => args.push(format!("{RELEASE_DIR_PLACEHOLDER}/{dir}")),
    }
    args.extend(["--namespace".into(), namespace.into()]);
    if let Some(file) = values {
        args.extend(["--values".into(), file.into()]);
    }
    if chart == Chart::Repo("gateway") && istio.gateway_chart_fails_schema() {
        args.push(SKIP_SCHEMA_VALIDATION.into());
    }
    finish(args, cluster)
}

/// `helm uninstall <release> -n <namespace> --wait` on `cluster`.
pub fn uninstall(cluster: &str, release: &str, namespace: &str) -> Action {
    let args = vec![
        "uninstall".into(),
        release.into(),
        "--namespace".into(),
        namespace.into(),
        "--wait".into(),
    ];
    finish(args, cluster)
}

fn finish(mut args: Vec<String>, cluster: &str) -> Action {
    args.push("--kubeconfig".into());
    args.push(kubeconfig_placeholder(cluster));
    Action::Run { program: Program::Helm, args, stdout_file: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &Action) -> Vec<String> {
        match a {
            Action::Run { program: Program::Helm, args, stdout_file: None } => args.clone(),
            other => panic!("not a helm run: {other:?}"),
        }
    }

    #[test]
    fn upgrade_install_from_the_repository_pins_the_version() {
        let v: IstioVersion = "1.30.3".parse().unwrap();
        let a = upgrade_install(
            "config",
            v,
            "istiod",
            Chart::Repo("istiod"),
            "external-istiod",
            Some("config/v.yaml"),
        );
        assert_eq!(
            args(&a),
            [
                "upgrade",
                "--install",
                "istiod",
                "istiod",
                "--repo",
                REPOSITORY,
                "--version",
                "1.30.3",
                "--namespace",
                "external-istiod",
                "--values",
                "config/v.yaml",
                "--kubeconfig",
                "{kubeconfig:config}",
            ]
        );
    }

    #[test]
    fn istiod_remote_of_1_22_comes_from_the_release_archive() {
        let v122: IstioVersion = "1.22.8".parse().unwrap();
        let v123: IstioVersion = "1.23.6".parse().unwrap();
        assert_eq!(
            remote_chart(v122, "istiod-remote"),
            Chart::Release("manifests/charts/istiod-remote")
        );
        assert_eq!(remote_chart(v123, "istiod-remote"), Chart::Repo("istiod-remote"));
        let a = upgrade_install(
            "config",
            v122,
            "istiod-remote",
            remote_chart(v122, "istiod-remote"),
            "external-istiod",
            None,
        );
        assert_eq!(
            args(&a),
            [
                "upgrade",
                "--install",
                "istiod-remote",
                "{istio-release}/manifests/charts/istiod-remote",
                "--namespace",
                "external-istiod",
                "--kubeconfig",
                "{kubeconfig:config}",
            ]
        );
    }

    /// Helm 3.18.5+ and Helm 4 refuse the gateway chart of these versions against its
    /// own schema: exactly those get `--skip-schema-validation`, and no other chart.
    #[test]
    fn the_gateway_chart_skips_its_schema_exactly_where_it_is_broken() {
        let has_flag = |version: &str, chart: &'static str| {
            let v: IstioVersion = version.parse().unwrap();
            args(&upgrade_install("c", v, "r", Chart::Repo(chart), "ns", Some("v.yaml")))
                .iter()
                .any(|a| a == SKIP_SCHEMA_VALIDATION)
        };
        for (version, broken) in [
            ("1.22.8", true),
            ("1.24.6", true),
            ("1.25.4", true),
            ("1.25.5", false),
            ("1.26.3", true),
            ("1.26.8", false),
            ("1.27.0", true),
            ("1.27.9", false),
            ("1.31.0", false),
        ] {
            assert_eq!(has_flag(version, "gateway"), broken, "{version}");
            assert!(!has_flag(version, "istiod"), "{version}");
            assert!(!has_flag(version, "base"), "{version}");
        }
    }

    #[test]
    fn uninstall_waits() {
        assert_eq!(
            args(&uninstall("external", "istiod", "external-istiod")),
            [
                "uninstall",
                "istiod",
                "--namespace",
                "external-istiod",
                "--wait",
                "--kubeconfig",
                "{kubeconfig:external}"
            ]
        );
    }

    #[test]
    fn values_file_merges_mesh_config_and_profile() {
        let v = InstallValues {
            profile: Some("remote"),
            components: json!({ "pilot": { "enabled": false } }),
            mesh_config: json!({ "rootNamespace": "external-istiod" }),
            values: json!({ "global": { "meshID": "mesh1" } }),
            helm_profile: Some("remote"),
        };
        assert_eq!(
            values_file(&v),
            json!({
                "global": { "meshID": "mesh1" },
                "meshConfig": { "rootNamespace": "external-istiod" },
                "profile": "remote",
            })
        );
    }
}
