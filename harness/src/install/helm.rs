//! The Helm backend: values files and `helm` command lines for Istio's charts.

use serde_json::{Value, json};

use super::backend::{Component, InstallerBackend, Needs, Repository, Target};
use super::plan::{
    Action, PlanError, PlanOptions, Program, RELEASE_DIR_PLACEHOLDER, kubeconfig_placeholder,
};
use super::values::{self, GatewayValues, InstallValues};
use crate::version::{IstioVersion, RemoteProfile};

/// `helm upgrade --install` of Istio's charts with values files.
pub struct Helm;

impl InstallerBackend for Helm {
    fn install(&self, component: &Component, t: &mut Target<'_>) -> Result<Vec<Action>, PlanError> {
        let (ns, stem) = (component.namespace(), component.file_stem());
        let values_path = format!("{stem}-values.yaml");
        let istio = t.opts.istio;
        match component {
            Component::RemoteProfile { values, .. } => {
                // From 1.24 the remote charts take `profile: remote`.
                let profile = match istio.remote_profile() {
                    RemoteProfile::Remote => Some("remote"),
                    RemoteProfile::IstiodRemote => None,
                };
                let doc = with_revision(values_file(values, profile), t.opts);
                let file = t.yaml(&values_path, &[doc])?;
                let charts: Vec<(&str, Chart)> = istio
                    .remote_charts()
                    .iter()
                    .map(|chart| (release_name(chart), remote_chart(istio, chart)))
                    .collect();
                Ok(install_charts(t, ns, Some(&file), &charts))
            }
            Component::ExternalIstiod(values) => {
                let doc = with_revision(values_file(values, None), t.opts);
                let file = t.yaml(&values_path, &[doc])?;
                Ok(install_charts(t, ns, Some(&file), &[("istiod", Chart::Repo("istiod"))]))
            }
            Component::ControlPlaneGateway(g) => {
                let mut actions = local_istiod(t, ns)?;
                let file = t.yaml(&values_path, &[gateway_values(g)])?;
                actions.extend(install_charts(t, ns, Some(&file), &[(g.name, GATEWAY_CHART)]));
                Ok(actions)
            }
            Component::IngressGateway(g) | Component::EastWestGateway(g) => {
                // Injected by the external istiod: by its revision, if it has one.
                let doc = with_revision(gateway_values(g), t.opts);
                let file = t.yaml(&values_path, &[doc])?;
                Ok(install_charts(t, ns, Some(&file), &[(g.name, GATEWAY_CHART)]))
            }
        }
    }

    /// helm, the chart repository, and the release for the charts published nowhere
    /// else ([`remote_chart`]).
    fn needs(&self, opts: &PlanOptions) -> Needs {
        let istio = opts.istio;
        let release = istio
            .remote_charts()
            .iter()
            .any(|chart| matches!(remote_chart(istio, chart), Chart::Release(_)));
        Needs {
            programs: vec![Program::Helm],
            repositories: vec![Repository::https(
                opts.helm_repo(REPOSITORY),
                "Istio's Helm charts",
            )],
            release,
        }
    }
}

/// The chart of every gateway.
const GATEWAY_CHART: Chart = Chart::Repo("gateway");

/// `helm upgrade --install` of each (release, chart) in order, undone by
/// `helm uninstall` in reverse.
fn install_charts(
    t: &mut Target<'_>,
    namespace: &str,
    values: Option<&str>,
    charts: &[(&str, Chart)],
) -> Vec<Action> {
    let (istio, cluster) = (t.opts.istio, t.cluster);
    let repo = t.opts.helm_repo(REPOSITORY).to_string();
    charts
        .iter()
        .map(|(release, chart)| {
            t.undo(uninstall(cluster, release, namespace));
            let (chart, repo) = (*chart, repo.as_str());
            upgrade_install(cluster, Release { istio, release, chart, repo }, namespace, values)
        })
        .collect()
}

/// `base` and the small istiod in `namespace` that configures only the control-plane
/// gateway, with `--hub`/`--tag`'s images.
fn local_istiod(t: &mut Target<'_>, namespace: &str) -> Result<Vec<Action>, PlanError> {
    let o = t.opts;
    let local = json!({ "global": { "istioNamespace": namespace } });
    let local = values::with_images(local, o.hub.as_deref(), o.tag.as_deref());
    let local = t.yaml("istiod-local-values.yaml", &[local])?;
    let mut actions = install_charts(t, namespace, None, &[("istio-base", Chart::Repo("base"))]);
    actions.extend(install_charts(
        t,
        namespace,
        Some(&local),
        &[("istiod", Chart::Repo("istiod"))],
    ));
    Ok(actions)
}

/// `revision: <R>` added for `--revision R` (the charts name their objects after it:
/// procedure.md "Distribution overrides"); the default revision adds nothing.
fn with_revision(mut values: Value, opts: &PlanOptions) -> Value {
    if let Some(revision) = opts.revision().0 {
        values["revision"] = json!(revision);
    }
    values
}

/// The `gateway` chart's values: the gateway's labels; an east-west gateway is a
/// `networkGateway` (the chart gives it the network's ports, 15021, 15443, 15012 and
/// 15017, and its env), any other a LoadBalancer Service with the gateway's ports.
fn gateway_values(g: &GatewayValues) -> Value {
    let mut v = json!({ "labels": g.labels() });
    match &g.network {
        Some(network) => {
            v["name"] = json!(g.name);
            v["networkGateway"] = json!(network);
        }
        None => {
            v["service"] = json!({ "type": "LoadBalancer" });
            if let Some(ports) = &g.ports {
                v["service"]["ports"] = ports.clone();
            }
        }
    }
    v
}

/// The Helm release name of a chart.
fn release_name(chart: &str) -> &str {
    match chart {
        "base" => "istio-base",
        other => other,
    }
}

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
pub fn values_file(v: &InstallValues, profile: Option<&str>) -> Value {
    let mut values = match &v.values {
        Value::Object(_) => v.values.clone(),
        _ => json!({}),
    };
    if !v.mesh_config.is_null() {
        values["meshConfig"] = v.mesh_config.clone();
    }
    if let Some(profile) = profile {
        values["profile"] = json!(profile);
    }
    values
}

/// One Helm release of an Istio chart: the release name, the chart at `istio`'s
/// version, and the repository of [`Chart::Repo`] charts ([`REPOSITORY`] or
/// `--helm-repo`).
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub istio: IstioVersion,
    pub release: &'a str,
    pub chart: Chart,
    pub repo: &'a str,
}

/// `helm upgrade --install <release> <chart> -n <namespace> [-f <values>]` at
/// `istio`'s chart version, on `cluster`.
pub fn upgrade_install(
    cluster: &str,
    r: Release<'_>,
    namespace: &str,
    values: Option<&str>,
) -> Action {
    let Release { istio, release, chart, repo } = r;
    let mut args: Vec<String> = vec!["upgrade".into(), "--install".into(), release.into()];
    match chart {
        Chart::Repo(name) => {
            args.extend([name.to_string(), "--repo".into(), repo.into()]);
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
        let r =
            Release { istio: v, release: "istiod", chart: Chart::Repo("istiod"), repo: REPOSITORY };
        let a = upgrade_install("config", r, "external-istiod", Some("config/v.yaml"));
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
        let chart = remote_chart(v122, "istiod-remote");
        let r = Release { istio: v122, release: "istiod-remote", chart, repo: REPOSITORY };
        let a = upgrade_install("config", r, "external-istiod", None);
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
            let r = Release { istio: v, release: "r", chart: Chart::Repo(chart), repo: REPOSITORY };
            args(&upgrade_install("c", r, "ns", Some("v.yaml")))
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
            mesh_config: json!({ "rootNamespace": "external-istiod" }),
            values: json!({ "global": { "meshID": "mesh1" } }),
        };
        assert_eq!(
            values_file(&v, Some("remote")),
            json!({
                "global": { "meshID": "mesh1" },
                "meshConfig": { "rootNamespace": "external-istiod" },
                "profile": "remote",
            })
        );
    }

    /// The gateway chart's values of each gateway of the procedure.
    #[test]
    fn gateway_values_per_gateway() {
        let ingress = json!({ "app": "istio-ingressgateway", "istio": "ingressgateway" });
        assert_eq!(
            gateway_values(&values::control_plane_gateway()),
            json!({
                "labels": ingress,
                "service": { "type": "LoadBalancer", "ports": values::control_plane_gateway_ports() },
            })
        );
        assert_eq!(
            gateway_values(&values::remote_ingress_gateway()),
            json!({ "labels": ingress, "service": { "type": "LoadBalancer" } })
        );
        let eastwest = gateway_values(&values::eastwest_gateway("network2"));
        assert_eq!(eastwest["networkGateway"], "network2");
        assert_eq!(eastwest["name"], "istio-eastwestgateway");
        assert_eq!(eastwest["labels"]["topology.istio.io/network"], "network2");
        assert_eq!(eastwest.get("service"), None, "networkGateway gives the ports");
    }
}
