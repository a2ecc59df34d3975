//! The topology file of the existing-cluster provider (docs/existing-clusters.md):
//! a YAML list of clusters, read the way Istio's integration framework reads its
//! topology file (one entry per cluster with its name, network and kubeconfig), with
//! the role each cluster plays in this suite's topology.
//!
//! ```yaml
//! - role: external
//!   name: external
//!   kubeconfig: external.kubeconfig     # relative to this file's directory
//!   context: admin@external             # optional: the kubeconfig's current context
//!   externalAddress: 203.0.113.10       # optional: when there is no LoadBalancer
//! - role: config
//!   name: config
//!   kubeconfig: /home/me/.kube/config
//!   context: config-admin
//!   network: network1
//! - role: remote
//!   name: remote2
//!   kubeconfig: /home/me/.kube/config
//!   context: remote2-admin
//!   network: network2
//! ```
//!
//! Names and networks are those [`Topology::new`] gives (the plan, the scenarios and
//! the report all use them), so the file is checked against that topology: exactly
//! one `external` and one `config` cluster, further remotes named `remote2`,
//! `remote3`, ... without gaps, the config cluster on `network1`, and further remotes
//! either each on its own network (`network2`, ...) or all on `network1`. Unknown
//! keys are refused, so that a misspelt `externalAdress` is not silently ignored.
//! Parsing reads no kubeconfig and contacts no cluster.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::topology::{NetworkMode, Role, Topology, parse_external_addr};

/// What Istio's framework writes as `kind`; the only value accepted when given.
const KIND: &str = "Kubernetes";

/// One entry as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    kind: Option<String>,
    role: Role,
    /// `clusterName` is the spelling of Istio's framework.
    #[serde(alias = "clusterName")]
    name: Spanned<String>,
    kubeconfig: PathBuf,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    external_address: Option<Spanned<String>>,
}

/// One cluster of the file, checked, its kubeconfig path made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    /// The topology's cluster name (`external`, `config`, `remote2`, ...).
    pub name: String,
    pub role: Role,
    /// The kubeconfig, relative paths taken from the file's directory.
    pub kubeconfig: PathBuf,
    /// The context to use; `None` for the kubeconfig's current context.
    pub context: Option<String>,
    /// The Istio network; `None` for the external cluster.
    pub network: Option<String>,
    /// `EXTERNAL_ISTIOD_ADDR` given by hand (only the external cluster): the address
    /// at which the remotes reach the control-plane gateway when the external cluster
    /// has no LoadBalancer implementation.
    pub external_address: Option<IpAddr>,
    /// The line of the entry's name, for messages.
    pub line: usize,
}

/// The whole file: the topology it describes and its clusters in topology order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyFile {
    pub path: PathBuf,
    pub topology: Topology,
    /// In the order of [`Topology::clusters`].
    pub clusters: Vec<ClusterEntry>,
}

/// Why a topology file cannot be used. Every variant names the file; entry errors
/// name the line and the cluster.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("topology file {}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// serde-saphyr's message names line and column; it never quotes the source.
    #[error("topology file {}: not a valid topology: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("topology file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("topology file {} line {line} (cluster `{name}`): {message}", path.display())]
    Entry { path: PathBuf, line: usize, name: String, message: String },
}

impl TopologyFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| FileError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// Checks `text`, the contents of the file at `path` (relative kubeconfig paths
    /// are taken from its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        let invalid = |message: String| FileError::Invalid { path: path.to_path_buf(), message };
        let entries: Vec<Entry> = crate::yaml::from_str::<Option<Vec<Entry>>>(text)
            .map_err(|e| FileError::Parse { path: path.to_path_buf(), message: e.to_string() })?
            .unwrap_or_default();
        if entries.is_empty() {
            return Err(invalid(
                "no clusters: the file is a YAML list with one entry per cluster (external, \
                 config, and any further remotes)"
                    .into(),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let clusters = entries
            .into_iter()
            .map(|e| entry(path, dir, e))
            .collect::<Result<Vec<ClusterEntry>, FileError>>()?;
        let topology = topology(&clusters).map_err(invalid)?;
        let ordered = topology
            .clusters
            .iter()
            .filter_map(|spec| clusters.iter().find(|c| c.name == spec.name).cloned())
            .collect();
        Ok(Self { path: path.to_path_buf(), topology, clusters: ordered })
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterEntry> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The address given for the external cluster, if any.
    pub fn external_address(&self) -> Option<IpAddr> {
        self.clusters.iter().find_map(|c| c.external_address)
    }
}

/// Checks what one entry says by itself.
fn entry(path: &Path, dir: &Path, e: Entry) -> Result<ClusterEntry, FileError> {
    let line = e.name.referenced.line() as usize;
    let name = e.name.value;
    let fail = |message: String| FileError::Entry {
        path: path.to_path_buf(),
        line,
        name: name.clone(),
        message,
    };
    if let Some(kind) = e.kind.as_deref().filter(|k| *k != KIND) {
        return Err(fail(format!("kind `{kind}`: only `{KIND}` clusters are supported")));
    }
    if e.kubeconfig.as_os_str().is_empty() {
        return Err(fail("kubeconfig is empty: give the path of the cluster's kubeconfig".into()));
    }
    if e.context.as_deref().is_some_and(str::is_empty) {
        return Err(fail("context is empty: leave it out to use the current context".into()));
    }
    let external_address = match (&e.external_address, e.role) {
        (None, _) => None,
        (Some(a), Role::External) => {
            Some(parse_external_addr(&a.value).map_err(|err| FileError::Entry {
                path: path.to_path_buf(),
                line: a.referenced.line() as usize,
                name: name.clone(),
                message: err.to_string(),
            })?)
        }
        (Some(_), _) => {
            return Err(fail(
                "externalAddress belongs to the external cluster only (the address at which \
                 the remotes reach its control-plane gateway)"
                    .into(),
            ));
        }
    };
    let network = match (e.network, e.role) {
        (Some(_), Role::External) => {
            return Err(fail(
                "the external cluster has no network: it runs no workloads of the mesh".into(),
            ));
        }
        (None, Role::Config | Role::Remote) => {
            return Err(fail(
                "network is missing: the Istio network of this cluster's \
                             workloads (`network1` for the config cluster)"
                    .into(),
            ));
        }
        (network, _) => network,
    };
    let kubeconfig = expand_home(&e.kubeconfig);
    let kubeconfig = if kubeconfig.is_relative() { dir.join(kubeconfig) } else { kubeconfig };
    Ok(ClusterEntry {
        name,
        role: e.role,
        kubeconfig,
        context: e.context,
        network,
        external_address,
        line,
    })
}

/// `~/x` as the shell would read it: kubeconfig paths are often written so.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The topology the entries describe, or why they describe none.
fn topology(clusters: &[ClusterEntry]) -> Result<Topology, String> {
    let count = |role| clusters.iter().filter(|c| c.role == role).count();
    for (role, name) in [(Role::External, "external"), (Role::Config, "config")] {
        let n = count(role);
        if n != 1 {
            return Err(format!("exactly one cluster with role {name} is needed, found {n}"));
        }
    }
    for (i, c) in clusters.iter().enumerate() {
        if let Some(first) = clusters[..i].iter().find(|o| o.name == c.name) {
            return Err(format!(
                "cluster `{}` is named twice (lines {} and {})",
                c.name, first.line, c.line
            ));
        }
    }
    let remotes = 1 + count(Role::Remote);
    let network_mode = network_mode(clusters);
    let topology = Topology::new(remotes, network_mode)
        .map_err(|e| format!("{} clusters with role remote: {e}", remotes - 1))?;
    for c in clusters {
        let expected = topology.clusters.iter().find(|s| s.role == c.role && s.name == c.name);
        let Some(spec) = expected else {
            let names: Vec<&str> = topology
                .clusters
                .iter()
                .filter(|s| s.role == c.role)
                .map(|s| s.name.as_str())
                .collect();
            return Err(format!(
                "line {}: a cluster with role {} is named {} in this topology, not `{}`",
                c.line,
                role_name(c.role),
                names.join(", "),
                c.name
            ));
        };
        if spec.network != c.network {
            let expected = spec.network.as_deref().unwrap_or("none");
            let hint = match c.role {
                Role::Remote => {
                    " (further remotes are either each on their own network, network2, \
                     network3, ..., or all on network1)"
                }
                _ => "",
            };
            return Err(format!(
                "line {}: cluster `{}` must be on network {expected}, not {}{hint}",
                c.line,
                c.name,
                c.network.as_deref().unwrap_or("none")
            ));
        }
    }
    Ok(topology)
}

/// Same-network when every further remote says `network1`; otherwise multi-network
/// (each is then checked against its own network).
fn network_mode(clusters: &[ClusterEntry]) -> NetworkMode {
    let mut further = clusters.iter().filter(|c| c.role == Role::Remote).peekable();
    if further.peek().is_some() && further.all(|c| c.network.as_deref() == Some("network1")) {
        NetworkMode::SameNetwork
    } else {
        NetworkMode::MultiNetwork
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::External => "external",
        Role::Config => "config",
        Role::Remote => "remote",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
- role: external
  name: external
  kubeconfig: ext.kubeconfig
  context: admin@ext
  externalAddress: 192.0.2.10
- role: remote
  clusterName: remote2
  kubeconfig: /abs/kc
  network: network2
- kind: Kubernetes
  role: config
  name: config
  kubeconfig: cfg.kubeconfig
  network: network1
";

    fn parse(text: &str) -> Result<TopologyFile, FileError> {
        TopologyFile::parse(Path::new("/work/topo/clusters.yaml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_gives_the_topology_in_order() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.topology, Topology::new(2, NetworkMode::MultiNetwork).unwrap());
        let names: Vec<_> = f.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["external", "config", "remote2"]);
        let ext = f.cluster("external").unwrap();
        assert_eq!(ext.kubeconfig, Path::new("/work/topo/ext.kubeconfig"));
        assert_eq!(ext.context.as_deref(), Some("admin@ext"));
        assert_eq!(ext.line, 2);
        assert_eq!(f.external_address(), Some("192.0.2.10".parse().unwrap()));
        assert_eq!(f.cluster("remote2").unwrap().kubeconfig, Path::new("/abs/kc"));
        assert_eq!(f.cluster("config").unwrap().context, None);
    }

    #[test]
    fn further_remotes_all_on_network1_are_the_same_network_variant() {
        let text = GOOD.replace("network: network2", "network: network1");
        let f = parse(&text).unwrap();
        assert_eq!(f.topology.network_mode, NetworkMode::SameNetwork);
    }

    #[test]
    fn the_external_address_is_optional() {
        let text = GOOD.replace("  externalAddress: 192.0.2.10\n", "");
        assert_eq!(parse(&text).unwrap().external_address(), None);
    }

    #[test]
    fn unparseable_files_are_named_with_the_line() {
        let e = err("- role: external\n  name: [unclosed\n");
        assert!(e.starts_with("topology file /work/topo/clusters.yaml: not a valid"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn misspelt_keys_are_refused() {
        let e = err(&GOOD.replace("externalAddress", "externalAdress"));
        assert!(e.contains("externalAdress"), "{e}");
        assert!(e.contains("line 5"), "{e}");
    }

    #[test]
    fn an_unknown_role_is_refused() {
        let e = err(&GOOD.replace("role: remote", "role: primary"));
        assert!(e.contains("primary"), "{e}");
    }

    #[test]
    fn an_empty_file_says_what_it_should_hold() {
        for text in ["", "# nothing\n", "[]\n"] {
            let e = err(text);
            assert!(e.contains("no clusters"), "{e}");
        }
    }

    #[test]
    fn roles_names_and_networks_follow_the_topology() {
        let cases = [
            (GOOD.replace("role: config", "role: remote"), "exactly one cluster with role config"),
            (GOOD.replace("name: config", "name: cfg"), "named config in this topology, not `cfg`"),
            (GOOD.replace("clusterName: remote2", "clusterName: remote3"), "not `remote3`"),
            (
                GOOD.replace("network: network1", "network: net-a"),
                "line 12: cluster `config` must be on network network1, not net-a",
            ),
            (GOOD.replace("network: network2", "network: network7"), "must be on network network2"),
            (GOOD.replace("clusterName: remote2", "clusterName: config"), "named twice"),
        ];
        for (text, expected) in cases {
            let e = err(&text);
            assert!(e.contains(expected), "{expected:?} not in {e}");
        }
    }

    #[test]
    fn entries_are_checked_by_themselves_naming_their_line() {
        let cases = [
            (GOOD.replace("kind: Kubernetes", "kind: VM"), "line 12 (cluster `config`): kind `VM`"),
            (
                GOOD.replace("externalAddress: 192.0.2.10", "externalAddress: gw.example"),
                "line 5 (cluster `external`): external address `gw.example` is not an IP",
            ),
            (
                GOOD.replace(
                    "  network: network2\n",
                    "  network: network2\n  externalAddress: 192.0.2.11\n",
                ),
                "(cluster `remote2`): externalAddress belongs to the external cluster only",
            ),
            (
                GOOD.replace("  context: admin@ext\n", "  network: network1\n"),
                "(cluster `external`): the external cluster has no network",
            ),
            (GOOD.replace("  network: network1\n", ""), "(cluster `config`): network is missing"),
            (GOOD.replace("context: admin@ext", "context: ''"), "context is empty"),
        ];
        for (text, expected) in cases {
            let e = err(&text);
            assert!(e.contains(expected), "{expected:?} not in {e}");
        }
    }

    #[test]
    fn too_many_remotes_are_refused() {
        let mut text = GOOD.to_string();
        for k in 3..=9 {
            text.push_str(&format!(
                "- role: remote\n  name: remote{k}\n  kubeconfig: kc\n  network: network{k}\n"
            ));
        }
        let e = err(&text);
        assert!(e.contains("8 clusters with role remote") && e.contains("between 1 and 8"), "{e}");
    }

    #[test]
    fn the_documented_example_is_a_valid_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/existing/clusters.example.yaml");
        let f = TopologyFile::read(&path).unwrap();
        assert_eq!(f.topology, Topology::new(2, NetworkMode::MultiNetwork).unwrap());
        assert_eq!(f.external_address(), Some("192.0.2.10".parse().unwrap()));
        let config = f.cluster("config").unwrap();
        assert!(config.kubeconfig.ends_with(".kube/config") && config.kubeconfig.is_absolute());
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = TopologyFile::read(Path::new("/nonexistent/clusters.yaml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/clusters.yaml: cannot read it"), "{e}");
    }
}
