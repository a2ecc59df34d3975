//! Distribution overrides (procedure.md "Distribution overrides"): what a vendor
//! changes without changing the procedure. Values files merged into the values of
//! every backend (`--values [ROLE=]FILE`), the revision of the external istiod
//! (`--revision NAME`) and a chart repository of their own (`--helm-repo URL`).
//! `--hub` and `--tag` stay fields of [`PlanOptions`] as before.
//!
//! Everything here is pure: the xtask reads the files, [`Overrides`] carries their
//! text inside the plan options (so a plan serializes with them into plan.json),
//! and [`Overrides::check`] parses and refuses them before anything runs.
//!
//! The merge: each values file is deep-merged into the neutral values of the
//! components installed on its role's clusters (maps merged key by key, anything
//! else, lists included, replaced); files for every cluster first, then role files,
//! each group in the order given, so a later file wins. `meshConfig` at the top of a
//! file goes to the component's mesh config, the rest to its values. It happens once,
//! in [`super::Component`]'s constructors, before any backend renders the values.
//! Keys the procedure owns are refused (`OWNED_KEYS`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::plan::{Installer, PlanOptions};
use super::values::InstallValues;
use crate::topology::Role;

/// A values file as given: its name (for messages and the report), the role it
/// applies to (`None`: every cluster) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuesFile {
    /// The path as the user gave it.
    pub name: String,
    /// The role of the clusters it applies to; every cluster when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The file's text, read by the caller.
    pub contents: String,
}

/// The overrides of a distribution, part of [`PlanOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// `--values [ROLE=]FILE`, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ValuesFile>,
    /// `--revision NAME`: the revision of the external istiod and the remote
    /// profiles; `None` is the backend's own ([`super::InstallerBackend::revision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `--helm-repo URL`: the chart repository of the backend's own charts (Istio's
    /// for Helm, the Sail operator's for Sail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_repo: Option<String>,
}

/// Why an override is refused. Each names the file or flag, and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// serde-saphyr's message names line and column; it never quotes the source.
    #[error("values file {file}: not valid YAML: {message}")]
    Parse { file: String, message: String },
    #[error("values file {file}: the top level must be a map of values, not {found}")]
    NotAMap { file: String, found: &'static str },
    #[error(
        "values file {file}: `{key}` is set by the procedure ({why}); {remedy} \
         (docs/procedure.md \"Distribution overrides\")"
    )]
    Owned { file: String, key: String, why: &'static str, remedy: &'static str },
    #[error("values file {file}: unknown role `{role}`: expected external, config or remote")]
    Role { file: String, role: String },
    #[error(
        "--revision `{0}`: a revision must be a DNS-1123 label (lower-case letters, digits \
         and `-`, starting and ending with a letter or digit, at most 63 characters)"
    )]
    RevisionName(String),
    #[error(
        "--revision default: `default` is the default revision, installed without \
         --revision; name another revision"
    )]
    RevisionDefault,
    #[error("--helm-repo `{0}`: expected an http:// or https:// URL with a host")]
    HelmRepoUrl(String),
    #[error(
        "--helm-repo is for a backend that installs charts (helm, sail); --installer \
         istioctl uses no chart repository (its charts are built into istioctl: give \
         --istioctl PATH instead)"
    )]
    HelmRepoIstioctl,
}

/// What an owned key is and what to use instead.
struct Owned {
    /// The dotted path in the values tree (`meshConfig.` for the mesh config).
    key: &'static str,
    why: &'static str,
    remedy: &'static str,
}

const FIXED: &str = "it cannot be overridden";

/// The keys the procedure sets itself: an override would silently break it. A file
/// setting one of them, a map above one of them to something else than a map, or
/// the same path written as a `--set`-style dotted key, is refused. docs/procedure.md
/// "Distribution overrides" lists the same table.
const OWNED_KEYS: &[Owned] = &[
    owned("global.remotePilotAddress", "the remote address: EXTERNAL_ISTIOD_ADDR", FIXED),
    owned("istiodRemote.injectionPath", "the injection path of the remote profile", FIXED),
    owned("istiodRemote.injectionURL", "the injection URL at the remote address", FIXED),
    owned("base.validationURL", "the validation URL at the remote address", FIXED),
    owned("global.caAddress", "the CA at the remote address", FIXED),
    owned("meshConfig.defaultConfig.discoveryAddress", "discovery at the remote address", FIXED),
    owned("meshConfig.defaultConfig.proxyMetadata.XDS_ROOT_CA", "the SIMPLE variant's CA", FIXED),
    owned("meshConfig.defaultConfig.proxyMetadata.CA_ROOT_CA", "the SIMPLE variant's CA", FIXED),
    owned("meshConfig.rootNamespace", "the root namespace: external-istiod", FIXED),
    owned("global.multiCluster.clusterName", "the cluster name: the config cluster's ID", FIXED),
    owned("global.meshID", "the mesh ID", FIXED),
    owned("global.network", "the network of a cluster", FIXED),
    owned("global.istioNamespace", "the control plane namespace: external-istiod", FIXED),
    owned("global.configCluster", "the config cluster's role", FIXED),
    owned("pilot.configMap", "the config cluster's mesh config map", FIXED),
    owned("global.externalIstiod", "the external istiod", FIXED),
    owned("global.operatorManageWebhooks", "the external istiod's webhooks", FIXED),
    owned("global.configValidation", "the external istiod's webhooks", FIXED),
    owned("pilot.env.INJECTION_WEBHOOK_CONFIG_NAME", "the webhook names", FIXED),
    owned("pilot.env.VALIDATION_WEBHOOK_CONFIG_NAME", "the webhook names", FIXED),
    owned("pilot.env.LOCAL_CLUSTER_SECRET_WATCHER", "the config cluster's secret", FIXED),
    owned("pilot.env.SHARED_MESH_CONFIG", "the shared mesh config map", FIXED),
    owned("pilot.env.EXTERNAL_ISTIOD", "the external istiod", FIXED),
    owned("pilot.env.CLUSTER_ID", "the cluster name: the chart renders it", FIXED),
    owned("pilot.env.REVISION", "the revision: the chart renders it", "use --revision NAME"),
    owned("pilot.volumes", "the config maps the external istiod mounts", FIXED),
    owned("pilot.volumeMounts", "the config maps the external istiod mounts", FIXED),
    owned("pilot.enabled", "which components run", FIXED),
    owned("istiodRemote.enabled", "which components run", FIXED),
    owned("profile", "which components run", FIXED),
    owned("revision", "the revision", "use --revision NAME"),
    owned("defaultRevision", "the revision the default tag points at", "use --revision NAME"),
    owned("revisionTags", "the revision tags' webhooks", FIXED),
    owned("global.hub", "the image hub", "use --hub HUB (the report checks it)"),
    owned("global.tag", "the image tag", "use --tag TAG (the report checks it)"),
];

const fn owned(key: &'static str, why: &'static str, remedy: &'static str) -> Owned {
    Owned { key, why, remedy }
}

/// The owned keys as (dotted key, what it is), for documents and tests.
pub fn owned_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    OWNED_KEYS.iter().map(|o| (o.key, o.why))
}

impl ValuesFile {
    /// A values file for every cluster (`role` `None`) or one role's.
    pub fn new(name: impl Into<String>, role: Option<Role>, contents: impl Into<String>) -> Self {
        Self { name: name.into(), role, contents: contents.into() }
    }

    /// Splits `--values [ROLE=]FILE` into the role and the path. `ROLE=` is read only
    /// for a known role, so a path with `=` in it stays a path.
    pub fn split_arg(arg: &str) -> (Option<Role>, &str) {
        match arg.split_once('=') {
            Some((role, path)) => match role.parse() {
                Ok(role) => (Some(role), path),
                Err(_) => (None, arg),
            },
            None => (None, arg),
        }
    }

    /// The file's values, parsed and checked against `OWNED_KEYS`.
    pub fn parse(&self) -> Result<Map<String, Value>, OverrideError> {
        let file = || self.name.clone();
        let value: Value = crate::yaml::from_str(&self.contents)
            .map_err(|e| OverrideError::Parse { file: file(), message: e.to_string() })?;
        let map = match value {
            Value::Object(m) => m,
            // An empty file (or one of comments only) sets nothing.
            Value::Null => Map::new(),
            other => return Err(OverrideError::NotAMap { file: file(), found: kind(&other) }),
        };
        let mut keys = Vec::new();
        paths(&map, &mut Vec::new(), &mut keys);
        for (path, is_map) in keys {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            for o in OWNED_KEYS {
                let owned: Vec<&str> = o.key.split('.').collect();
                // The owned key itself or something inside it, or a non-map where a
                // map above an owned key belongs.
                let hits = path.starts_with(&owned) || (!is_map && owned.starts_with(&path));
                if hits {
                    return Err(OverrideError::Owned {
                        file: file(),
                        key: path.join("."),
                        why: o.why,
                        remedy: o.remedy,
                    });
                }
            }
        }
        Ok(map)
    }

    /// The dotted keys of its leaves, for the plan and the report: `pilot.resources.
    /// requests.cpu, global.imagePullSecrets`. Empty if it does not parse.
    pub fn keys(&self) -> Vec<String> {
        let Ok(map) = self.parse() else { return Vec::new() };
        let mut keys = Vec::new();
        paths(&map, &mut Vec::new(), &mut keys);
        keys.into_iter().filter(|(_, is_map)| !is_map).map(|(p, _)| p.join(".")).collect()
    }
}

/// Every node under `map` as (path, whether it is a non-empty map), parents first.
/// A key with dots in it (`--set` style) is split into its parts.
fn paths(map: &Map<String, Value>, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
    for (key, value) in map {
        let depth = prefix.len();
        prefix.extend(key.split('.').map(String::from));
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push((prefix.clone(), true));
                paths(m, prefix, out);
            }
            _ => out.push((prefix.clone(), false)),
        }
        prefix.truncate(depth);
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Merges `over` into `base`: maps key by key, anything else replaced.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.revision.is_none() && self.helm_repo.is_none()
    }

    /// Refuses what cannot be used with `installer`, before anything runs: a values
    /// file that does not parse or sets an owned key, a revision that is no DNS-1123
    /// label or is `default`, a chart repository that is no http(s) URL or is given
    /// to istioctl.
    pub fn check(&self, installer: Installer) -> Result<(), OverrideError> {
        for file in &self.values {
            file.parse()?;
        }
        if let Some(revision) = &self.revision {
            check_revision(revision)?;
        }
        if let Some(url) = &self.helm_repo {
            if installer == Installer::Istioctl {
                return Err(OverrideError::HelmRepoIstioctl);
            }
            check_url(url)?;
        }
        Ok(())
    }

    /// `values` with every file for `role` merged in: files for every cluster first,
    /// then the role's, each in order. Files are checked by [`Self::check`] before
    /// planning; one that fails here merges nothing.
    pub fn apply(&self, role: Role, mut values: InstallValues) -> InstallValues {
        let files = self.values.iter().filter(|f| f.role.is_none());
        let files = files.chain(self.values.iter().filter(|f| f.role == Some(role)));
        for file in files {
            let Ok(mut map) = file.parse() else { continue };
            if let Some(mesh) = map.remove("meshConfig") {
                if values.mesh_config.is_null() {
                    values.mesh_config = Value::Object(Map::new());
                }
                deep_merge(&mut values.mesh_config, &mesh);
            }
            deep_merge(&mut values.values, &Value::Object(map));
        }
        values
    }
}

/// A revision is a DNS-1123 label and not `default`.
fn check_revision(name: &str) -> Result<(), OverrideError> {
    if name == "default" {
        return Err(OverrideError::RevisionDefault);
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(ok_char)
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid { Ok(()) } else { Err(OverrideError::RevisionName(name.to_string())) }
}

/// An http(s) URL with a host.
fn check_url(url: &str) -> Result<(), OverrideError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with(':') && !h.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(OverrideError::HelmRepoUrl(url.to_string())),
    }
}

impl PlanOptions {
    /// Every override of these options as (name, value) pairs, in the order the
    /// plan and the report show them: hub, tag, revision, chart repository, then each
    /// values file (`values` or `values (<role>)`: the file and its keys).
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut list = Vec::new();
        if let Some(hub) = &self.hub {
            list.push(("hub".to_string(), hub.clone()));
        }
        if let Some(tag) = &self.tag {
            list.push(("tag".to_string(), tag.clone()));
        }
        let o = &self.overrides;
        if let Some(revision) = &o.revision {
            list.push(("revision".to_string(), revision.clone()));
        }
        if let Some(repo) = &o.helm_repo {
            list.push(("helm-repo".to_string(), repo.clone()));
        }
        for file in &o.values {
            let name = match file.role {
                Some(role) => format!("values ({role})"),
                None => "values".to_string(),
            };
            let keys = file.keys();
            let keys = if keys.is_empty() { "no keys".to_string() } else { keys.join(", ") };
            list.push((name, format!("{}: {keys}", file.name)));
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(contents: &str) -> ValuesFile {
        ValuesFile::new("vendor.yaml", None, contents)
    }

    fn refusal(contents: &str) -> String {
        file(contents).parse().unwrap_err().to_string()
    }

    /// Each refusal names the file and the key (full dotted path), whatever form the
    /// key is written in.
    #[test]
    fn refusals_name_the_file_and_the_key() {
        let cases = [
            ("cluster name", "global:\n  multiCluster:\n    clusterName: vendor\n"),
            ("remote address", "global:\n  remotePilotAddress: 192.0.2.7\n"),
            ("injection path", "istiodRemote:\n  injectionPath: /inject\n"),
            ("injection URL", "istiodRemote:\n  injectionURL: https://192.0.2.7/inject\n"),
            ("webhook name", "pilot:\n  env:\n    INJECTION_WEBHOOK_CONFIG_NAME: mine\n"),
            ("set-style key", "pilot.env.VALIDATION_WEBHOOK_CONFIG_NAME: mine\n"),
            ("set-style in map", "pilot:\n  env.VALIDATION_WEBHOOK_CONFIG_NAME: mine\n"),
            ("map replaced", "global:\n  multiCluster: none\n"),
            ("env replaced", "pilot:\n  env: []\n"),
            ("mesh ID", "global:\n  meshID: vendor-mesh\n"),
            ("network", "global:\n  network: vendor-net\n"),
            ("config cluster", "global:\n  configCluster: false\n"),
            ("external istiod", "global:\n  externalIstiod: false\n"),
            ("revision", "revision: canary\n"),
            ("hub", "global:\n  hub: quay.io/vendor\n"),
            ("mesh config", "meshConfig:\n  defaultConfig:\n    discoveryAddress: x:15012\n"),
            ("volumes", "pilot:\n  volumes: []\n"),
            ("not YAML", "pilot:\n  env: [unclosed\n"),
            ("not a map", "- pilot\n- global\n"),
            ("a string", "just text\n"),
        ];
        let text: Vec<String> =
            cases.iter().map(|(what, yaml)| format!("{what}: {}", refusal(yaml))).collect();
        insta::assert_snapshot!("values_refusals", text.join("\n"));
    }

    #[test]
    fn vendor_values_are_accepted_and_listed_by_key() {
        let f = file(
            "# vendor\nglobal:\n  imagePullSecrets: [vendor-pull]\n  logging:\n    level: \
             default:debug\npilot:\n  env:\n    PILOT_TRACE_SAMPLING: \"5\"\n  podAnnotations:\n    \
             sidecar.istio.io/inject: \"false\"\n",
        );
        f.parse().unwrap();
        assert_eq!(
            f.keys(),
            [
                "global.imagePullSecrets",
                "global.logging.level",
                "pilot.env.PILOT_TRACE_SAMPLING",
                "pilot.podAnnotations.sidecar.istio.io/inject",
            ]
        );
        assert!(file("").parse().unwrap().is_empty(), "an empty file sets nothing");
        assert!(file("# only a comment\n").keys().is_empty());
    }

    #[test]
    fn maps_merge_and_everything_else_is_replaced() {
        let mut base = json!({ "a": { "b": 1, "c": [1, 2] }, "d": "x" });
        deep_merge(&mut base, &json!({ "a": { "c": [3], "e": true }, "d": { "f": 1 } }));
        assert_eq!(base, json!({ "a": { "b": 1, "c": [3], "e": true }, "d": { "f": 1 } }));
    }

    /// Every-cluster files first, then the role's, each in order: the last one wins.
    #[test]
    fn role_files_come_after_every_cluster_files_and_later_files_win() {
        let o = Overrides {
            values: vec![
                ValuesFile::new("ext.yaml", Some(Role::External), "pilot:\n  replicaCount: 3\n"),
                ValuesFile::new("all.yaml", None, "pilot:\n  replicaCount: 1\n  x: 1\n"),
                ValuesFile::new("all2.yaml", None, "pilot:\n  x: 2\nmeshConfig:\n  a: 1\n"),
                ValuesFile::new("cfg.yaml", Some(Role::Config), "pilot:\n  replicaCount: 9\n"),
            ],
            ..Overrides::default()
        };
        let neutral = InstallValues { mesh_config: Value::Null, values: json!({ "pilot": {} }) };
        let ext = o.apply(Role::External, neutral.clone());
        assert_eq!(ext.values, json!({ "pilot": { "replicaCount": 3, "x": 2 } }));
        assert_eq!(ext.mesh_config, json!({ "a": 1 }), "meshConfig goes to the mesh config");
        let remote = o.apply(Role::Remote, neutral);
        assert_eq!(remote.values, json!({ "pilot": { "replicaCount": 1, "x": 2 } }));
    }

    #[test]
    fn values_args_take_a_known_role_before_the_path() {
        assert_eq!(
            ValuesFile::split_arg("external=/tmp/x.yaml"),
            (Some(Role::External), "/tmp/x.yaml")
        );
        assert_eq!(ValuesFile::split_arg("remote=r.yaml"), (Some(Role::Remote), "r.yaml"));
        assert_eq!(ValuesFile::split_arg("/tmp/a=b.yaml"), (None, "/tmp/a=b.yaml"));
        assert_eq!(ValuesFile::split_arg("x.yaml"), (None, "x.yaml"));
    }

    #[test]
    fn revisions_are_dns_labels_and_not_default() {
        let check = |r: &str| {
            Overrides { revision: Some(r.into()), ..Overrides::default() }.check(Installer::Helm)
        };
        for ok in ["canary", "1-30-3", "a", &"a".repeat(63)] {
            check(ok).unwrap();
        }
        for bad in ["", "Canary", "-x", "x-", "a.b", "a_b", &"a".repeat(64)] {
            assert_eq!(check(bad), Err(OverrideError::RevisionName(bad.into())), "{bad}");
        }
        assert_eq!(check("default"), Err(OverrideError::RevisionDefault));
    }

    #[test]
    fn a_chart_repository_is_an_http_url_for_a_backend_with_charts() {
        let check = |url: &str, installer| {
            Overrides { helm_repo: Some(url.into()), ..Overrides::default() }.check(installer)
        };
        check("https://charts.example/istio", Installer::Helm).unwrap();
        check("http://charts.example:8080", Installer::Sail).unwrap();
        for bad in ["charts.example", "ftp://charts.example", "https://", "https:///x"] {
            assert_eq!(
                check(bad, Installer::Helm),
                Err(OverrideError::HelmRepoUrl(bad.into())),
                "{bad}"
            );
        }
        let err = check("https://charts.example", Installer::Istioctl).unwrap_err();
        assert_eq!(err, OverrideError::HelmRepoIstioctl);
        assert!(err.to_string().contains("istioctl uses no chart repository"), "{err}");
    }

    #[test]
    fn overrides_are_listed_by_name() {
        let mut opts = PlanOptions::new(crate::version::NEWEST, Installer::Helm, 1);
        assert!(opts.overrides().is_empty());
        opts.hub = Some("quay.io/vendor".into());
        opts.tag = Some("1.31.0-v1".into());
        opts.overrides = Overrides {
            values: vec![
                ValuesFile::new("all.yaml", None, "pilot:\n  replicaCount: 2\n"),
                ValuesFile::new("/tmp/x.yaml", Some(Role::External), ""),
            ],
            revision: Some("canary".into()),
            helm_repo: Some("https://charts.example/istio".into()),
        };
        let list: Vec<String> = opts.overrides().iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            list,
            [
                "hub=quay.io/vendor",
                "tag=1.31.0-v1",
                "revision=canary",
                "helm-repo=https://charts.example/istio",
                "values=all.yaml: pilot.replicaCount",
                "values (external)=/tmp/x.yaml: no keys",
            ]
        );
    }

    /// The table in docs/procedure.md is this one.
    #[test]
    fn the_documented_table_lists_every_owned_key() {
        let doc = include_str!("../../../docs/procedure.md");
        for (key, _) in owned_keys() {
            assert!(doc.contains(&format!("`{key}`")), "docs/procedure.md does not list `{key}`");
        }
    }
}
