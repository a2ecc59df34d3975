//! Registry mirrors for the nodes' containerd, Istio's way (kind-node.md "Images
//! without a registry per node"): `config_path = "/etc/containerd/certs.d"` patched
//! into containerd's configuration before kubeadm runs, and one `hosts.toml` per
//! mirrored registry. The mirror itself (e.g. a registry container on the kind
//! network) is the user's; this only points containerd at it.

use std::fmt;
use std::str::FromStr;

/// containerd's configuration inside kind nodes.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// The directory of per-registry `hosts.toml` files.
pub const CERTS_D: &str = "/etc/containerd/certs.d";

/// `REGISTRY=ENDPOINT`, e.g. `docker.io=http://kind-registry:5000`: pulls from
/// `REGISTRY` try `ENDPOINT` first, then the registry itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMirror {
    /// The registry host as image references name it (`docker.io`, `gcr.io`, `localhost:5000`).
    pub registry: String,
    /// The mirror's URL, `http://` or `https://`.
    pub endpoint: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MirrorError {
    #[error(
        "registry mirror `{0}`: expected REGISTRY=ENDPOINT, e.g. docker.io=http://kind-registry:5000"
    )]
    Malformed(String),
    #[error("registry mirror `{0}`: the registry must be a host name with an optional port")]
    BadRegistry(String),
    #[error(
        "registry mirror `{0}`: the endpoint must be an http:// or https:// URL without spaces or quotes"
    )]
    BadEndpoint(String),
}

impl FromStr for RegistryMirror {
    type Err = MirrorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (registry, endpoint) =
            s.trim().split_once('=').ok_or_else(|| MirrorError::Malformed(s.to_string()))?;
        let host_ok = !registry.is_empty()
            && !registry.starts_with(['.', '-', ':'])
            && registry.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !host_ok {
            return Err(MirrorError::BadRegistry(s.to_string()));
        }
        let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
        let endpoint_ok = rest.is_some_and(|r| {
            !r.is_empty() && !r.bytes().any(|b| b.is_ascii_whitespace() || b"\"'\\".contains(&b))
        });
        if !endpoint_ok {
            return Err(MirrorError::BadEndpoint(s.to_string()));
        }
        Ok(Self { registry: registry.to_string(), endpoint: endpoint.to_string() })
    }
}

impl fmt::Display for RegistryMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.registry, self.endpoint)
    }
}

impl RegistryMirror {
    /// `/etc/containerd/certs.d/<registry>`.
    pub fn hosts_dir(&self) -> String {
        format!("{CERTS_D}/{}", self.registry)
    }

    /// `/etc/containerd/certs.d/<registry>/hosts.toml`.
    pub fn hosts_toml_path(&self) -> String {
        format!("{}/hosts.toml", self.hosts_dir())
    }

    /// The registry's own endpoint, the fallback after the mirror.
    pub fn upstream(&self) -> String {
        match self.registry.as_str() {
            "docker.io" => "https://registry-1.docker.io".to_string(),
            other => format!("https://{other}"),
        }
    }

    /// containerd's `hosts.toml`: the mirror for pulls and resolves, then upstream.
    pub fn hosts_toml(&self) -> String {
        format!(
            "# written by ecp-harness: pulls from {registry} try the mirror first\n\
             server = \"{upstream}\"\n\
             \n\
             [host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            registry = self.registry,
            upstream = self.upstream(),
            endpoint = self.endpoint,
        )
    }
}

/// The `version = N` of a containerd configuration (1 where it says none).
pub fn config_version(config: &str) -> u32 {
    config
        .lines()
        .filter_map(|l| l.trim().replace(' ', "").strip_prefix("version=")?.parse().ok())
        .next()
        .unwrap_or(1)
}

/// The CRI registry table of containerd's configuration: config version 3
/// (containerd 2) moved it under the images plugin, and later versions keep it there.
fn registry_table(config: &str) -> &'static str {
    if config_version(config) >= 3 {
        r#"plugins."io.containerd.cri.v1.images".registry"#
    } else {
        r#"plugins."io.containerd.grpc.v1.cri".registry"#
    }
}

/// Sets `config_path = "/etc/containerd/certs.d"` in the CRI registry table of
/// containerd's configuration: replaced where set, added to the table where the table
/// exists, else the table is appended. Patching twice changes nothing more.
pub fn patch_containerd_config(config: &str) -> String {
    let table = registry_table(config);
    let header = format!("[{table}]");
    let setting = format!("  config_path = \"{CERTS_D}\"");
    let mut out: Vec<String> = Vec::new();
    let mut in_table = false;
    let mut done = false;
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if in_table && !done {
                out.push(setting.clone());
                done = true;
            }
            in_table = trimmed.replace('\'', "\"") == header;
            out.push(line.to_string());
            continue;
        }
        if in_table && trimmed.starts_with("config_path") {
            if !done {
                out.push(setting.clone());
                done = true;
            }
            continue;
        }
        out.push(line.to_string());
    }
    if in_table && !done {
        out.push(setting.clone());
        done = true;
    }
    if !done {
        if out.last().is_some_and(|l| !l.trim().is_empty()) {
            out.push(String::new());
        }
        out.push(header);
        out.push(setting);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> RegistryMirror {
        "docker.io=http://kind-registry:5000".parse().unwrap()
    }

    const KIND_V2_CONFIG: &str = r#"version = 2

[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = false
  sandbox_image = "registry.k8s.io/pause:3.10"

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  snapshotter = "overlayfs"
"#;

    #[test]
    fn mirrors_parse_and_refuse_what_would_break_toml() {
        let m = mirror();
        assert_eq!(m.registry, "docker.io");
        assert_eq!(m.endpoint, "http://kind-registry:5000");
        assert_eq!(m.to_string(), "docker.io=http://kind-registry:5000");
        assert!("localhost:5000=https://10.0.0.1:5000".parse::<RegistryMirror>().is_ok());
        for bad in ["docker.io", "=http://x", "dock er.io=http://x", "../etc=http://x"] {
            assert!(bad.parse::<RegistryMirror>().is_err(), "{bad}");
        }
        for bad in ["docker.io=ftp://x", "docker.io=http://x\"y", "docker.io=http://"] {
            assert!(
                matches!(bad.parse::<RegistryMirror>(), Err(MirrorError::BadEndpoint(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_toml_per_registry() {
        let m = mirror();
        assert_eq!(m.hosts_toml_path(), "/etc/containerd/certs.d/docker.io/hosts.toml");
        insta::assert_snapshot!(m.hosts_toml());
        let gcr: RegistryMirror = "gcr.io=https://mirror.test".parse().unwrap();
        assert!(gcr.hosts_toml().contains("server = \"https://gcr.io\""));
    }

    #[test]
    fn config_path_is_appended_to_kinds_config() {
        let patched = patch_containerd_config(KIND_V2_CONFIG);
        assert!(patched.starts_with(KIND_V2_CONFIG));
        insta::assert_snapshot!(patched);
        assert_eq!(patch_containerd_config(&patched), patched, "patching is idempotent");
    }

    #[test]
    fn existing_registry_table_gets_config_path_replaced_or_added() {
        let with_table = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/old\"\n[other]\nx = 1\n";
        let patched = patch_containerd_config(with_table);
        assert_eq!(
            patched,
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n[other]\nx = 1\n"
        );
        let empty_table = "[plugins.'io.containerd.grpc.v1.cri'.registry]\n[other]\n";
        assert_eq!(
            patch_containerd_config(empty_table),
            "[plugins.'io.containerd.grpc.v1.cri'.registry]\n  config_path = \"/etc/containerd/certs.d\"\n[other]\n"
        );
    }

    #[test]
    fn config_versions_from_3_up_use_the_images_plugin_table() {
        assert_eq!(config_version("version = 2\n"), 2);
        assert_eq!(config_version("# no version\n[plugins]\n"), 1);
        assert_eq!(config_version("version=4\n"), 4);
        for v in ["version = 3", "version = 4", "version=10"] {
            let patched = patch_containerd_config(&format!("{v}\n"));
            assert!(
                patched.contains("[plugins.\"io.containerd.cri.v1.images\".registry]"),
                "{patched}"
            );
        }
        let patched = patch_containerd_config("version = 2\n");
        assert!(patched.contains("[plugins.\"io.containerd.grpc.v1.cri\".registry]"), "{patched}");
    }

    #[test]
    fn containerd_2_config_uses_the_images_plugin_table() {
        let patched = patch_containerd_config("version = 3\n");
        assert_eq!(
            patched,
            "version = 3\n\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"
        );
    }
}
