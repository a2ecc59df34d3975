//! The topology file: what the suite tells the scenario tests about the clusters it
//! runs (cluster names, roles, kubeconfig paths, addresses; never credentials). The
//! suite writes it beside the report; the scenario tests read it from the path in
//! [`TOPOLOGY_ENV`] (nextest runs each test in its own process).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::install::Installer;
use crate::mesh::Mesh;
use crate::topology::{ClusterSpec, Role, Topology};
use crate::version::IstioVersion;

/// The environment variable holding the topology file's path.
pub const TOPOLOGY_ENV: &str = "ECP_TOPOLOGY";
/// The format of the topology file this crate reads.
pub const FORMAT: u32 = 1;
/// The figures directory of the run whose topology file is in `run_dir`; `cargo
/// xtask e2e` reads it into the report.
pub fn figures_dir_in(run_dir: &Path) -> PathBuf {
    run_dir.join("figures")
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyFileError {
    #[error(
        "{TOPOLOGY_ENV} is not set: the conformance scenarios need running clusters; run them through `cargo xtask e2e`"
    )]
    NotSet,
    #[error("reading the topology file {}: {reason} (run the scenarios through `cargo xtask e2e`)", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("the topology file {} has format {found}; this suite reads format {FORMAT}", path.display())]
    Format { path: PathBuf, found: u32 },
    #[error("the topology file names no kubeconfig for cluster {0}")]
    NoKubeconfig(String),
    #[error("cluster {cluster}: loading kubeconfig {}: {reason}", path.display())]
    Client { cluster: String, path: PathBuf, reason: String },
    #[error("writing the topology file {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// What `cargo xtask e2e` tells the scenarios about the clusters it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyFile {
    pub format: u32,
    /// The run id on the clusters' containers and networks.
    pub run_id: String,
    pub istio: IstioVersion,
    pub installer: Installer,
    pub topology: Topology,
    /// `EXTERNAL_ISTIOD_ADDR`: the external gateway's LoadBalancer IP.
    pub external_addr: IpAddr,
    /// The kubeconfig the host uses, by cluster name.
    pub kubeconfigs: BTreeMap<String, PathBuf>,
    /// The istioctl of the run, if a scenario wants it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istioctl: Option<PathBuf>,
    /// The revision the external istiod runs as (`--revision`, or the backend's);
    /// `None`, and absent in files written before it, is the default revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl TopologyFile {
    /// The names the charts give the external istiod's objects for the run's
    /// revision (`istiod[-<revision>]`, the remote webhooks').
    pub fn revision(&self) -> crate::install::Revision<'_> {
        crate::install::Revision(self.revision.as_deref())
    }

    /// Reads the file named by [`TOPOLOGY_ENV`].
    pub fn from_env() -> Result<Self, TopologyFileError> {
        let path = std::env::var_os(TOPOLOGY_ENV)
            .filter(|p| !p.is_empty())
            .ok_or(TopologyFileError::NotSet)?;
        Self::read(Path::new(&path))
    }

    pub fn read(path: &Path) -> Result<Self, TopologyFileError> {
        let read = |reason: String| TopologyFileError::Read { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        Self::parse(&text).map_err(|e| match e {
            TopologyFileError::Read { reason, .. } => read(reason),
            TopologyFileError::Format { found, .. } => {
                TopologyFileError::Format { path: path.to_path_buf(), found }
            }
            other => other,
        })
    }

    /// Parses the JSON text of a topology file (checks the format first).
    pub fn parse(text: &str) -> Result<Self, TopologyFileError> {
        let read = |reason: String| TopologyFileError::Read { path: PathBuf::new(), reason };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| read(e.to_string()))?;
        let found = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
        if found != u64::from(FORMAT) {
            return Err(TopologyFileError::Format {
                path: PathBuf::new(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let file: Self = serde_json::from_value(value).map_err(|e| read(e.to_string()))?;
        // `external()` and `config()` count on one cluster of each role (one config
        // cluster per mesh).
        for role in [Role::External, Role::Config] {
            let per_mesh = if role == Role::Config { file.topology.meshes.max(1) } else { 1 };
            let count = file.topology.clusters.iter().filter(|c| c.role == role).count();
            if count != per_mesh {
                return Err(read(format!(
                    "the topology has {count} clusters with role {}; it needs exactly one",
                    serde_json::to_string(&role).unwrap_or_default().trim_matches('"')
                )));
            }
        }
        Ok(file)
    }

    /// Writes the file (pretty JSON). Holds paths, never credentials.
    pub fn write(&self, path: &Path) -> Result<(), TopologyFileError> {
        let write = |reason: String| TopologyFileError::Write { path: path.to_path_buf(), reason };
        let text = serde_json::to_string_pretty(self).map_err(|e| write(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| write(e.to_string()))
    }

    pub fn external(&self) -> &ClusterSpec {
        self.topology.external()
    }

    pub fn config(&self) -> &ClusterSpec {
        self.topology.config()
    }

    /// The config cluster and further remotes of the first mesh (the one every
    /// scenario but `multi_mesh` checks).
    pub fn remotes(&self) -> Vec<&ClusterSpec> {
        self.remotes_of(Mesh::FIRST)
    }

    /// Further remotes (not the config cluster) of the first mesh.
    pub fn further_remotes(&self) -> Vec<&ClusterSpec> {
        self.topology.further_remotes_of(Mesh::FIRST).collect()
    }

    /// The config cluster and further remotes of `mesh`.
    pub fn remotes_of(&self, mesh: Mesh) -> Vec<&ClusterSpec> {
        self.topology.remotes().filter(|c| c.mesh == mesh).collect()
    }

    /// The config cluster of `mesh`, if the run has that mesh.
    pub fn config_of(&self, mesh: Mesh) -> Option<&ClusterSpec> {
        self.topology.config_of(mesh)
    }

    /// Every mesh of the run, the first first.
    pub fn meshes(&self) -> Vec<Mesh> {
        self.topology.mesh_list().collect()
    }

    /// The helloworld version deployed on a remote: `v1` on the config cluster, `v2`
    /// on further remotes (procedure.md steps 6 and 8).
    pub fn helloworld_version(cluster: &ClusterSpec) -> &'static str {
        if cluster.role == Role::Config { "v1" } else { "v2" }
    }

    pub fn kubeconfig(&self, cluster: &str) -> Result<&Path, TopologyFileError> {
        self.kubeconfigs
            .get(cluster)
            .map(PathBuf::as_path)
            .ok_or_else(|| TopologyFileError::NoKubeconfig(cluster.to_string()))
    }

    /// A kube client for a cluster of the topology.
    pub async fn client(&self, cluster: &str) -> Result<kube::Client, TopologyFileError> {
        let path = self.kubeconfig(cluster)?;
        let fail = |reason: String| TopologyFileError::Client {
            cluster: cluster.to_string(),
            path: path.to_path_buf(),
            reason,
        };
        crate::install_crypto_provider();
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|e| fail(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| fail(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::Revision;
    use crate::topology::NetworkMode;

    fn sample() -> TopologyFile {
        let topology = Topology::new(2, NetworkMode::MultiNetwork).unwrap();
        let kubeconfigs = topology
            .clusters
            .iter()
            .map(|c| (c.name.clone(), PathBuf::from(format!("/tmp/run/{}.kubeconfig", c.name))))
            .collect();
        TopologyFile {
            format: FORMAT,
            run_id: "ecp-1a2b3c".into(),
            istio: IstioVersion::new(1, 30, 3),
            installer: Installer::Istioctl,
            topology,
            external_addr: "172.18.6.66".parse().unwrap(),
            kubeconfigs,
            istioctl: None,
            revision: None,
        }
    }

    /// A revision round-trips; a file without one reads as the default revision.
    #[test]
    fn the_revision_is_carried_and_defaults_to_none() {
        let t = TopologyFile { revision: Some("external-istiod".into()), ..sample() };
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.contains("\"revision\":\"external-istiod\""), "{text}");
        let back = TopologyFile::parse(&text).unwrap();
        assert_eq!(back.revision().istiod(), "istiod-external-istiod");
        let old = serde_json::to_string(&sample()).unwrap();
        assert!(!old.contains("revision"), "{old}");
        assert_eq!(TopologyFile::parse(&old).unwrap().revision(), Revision(None));
    }

    #[test]
    fn two_meshes_have_a_config_cluster_each_and_remotes_are_the_first_meshs() {
        let mut t = sample();
        t.topology = Topology::with_meshes(2, 1, NetworkMode::MultiNetwork).unwrap();
        let parsed = TopologyFile::parse(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(parsed.meshes().len(), 2);
        let names: Vec<&str> = parsed.remotes().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["config"]);
        let mesh2 = Mesh::new(2).unwrap();
        assert_eq!(parsed.config_of(mesh2).unwrap().name, "mesh2-config");
        assert_eq!(parsed.remotes_of(mesh2).len(), 1);
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.json");
        let t = sample();
        t.write(&path).unwrap();
        assert_eq!(TopologyFile::read(&path).unwrap(), t);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"istio\": \"1.30.3\""), "{text}");
        let canary = TopologyFile { revision: Some("canary".into()), ..t.clone() };
        canary.write(&path).unwrap();
        assert_eq!(TopologyFile::read(&path).unwrap().revision().istiod(), "istiod-canary");
        assert!(text.contains("\"installer\": \"istioctl\""), "{text}");
        assert!(!text.contains("istioctl\":"), "absent istioctl is left out: {text}");
    }

    #[test]
    fn roles_and_helloworld_versions() {
        let t = sample();
        assert_eq!(t.external().name, "external");
        assert_eq!(t.config().cluster_id, "remote1");
        assert_eq!(t.remotes().len(), 2);
        let further = t.further_remotes();
        assert_eq!(further.len(), 1);
        assert_eq!(TopologyFile::helloworld_version(t.config()), "v1");
        assert_eq!(TopologyFile::helloworld_version(further[0]), "v2");
        assert_eq!(t.kubeconfig("remote2").unwrap(), Path::new("/tmp/run/remote2.kubeconfig"));
        assert!(matches!(t.kubeconfig("nope"), Err(TopologyFileError::NoKubeconfig(_))));
    }

    #[test]
    fn a_hand_written_file_parses() {
        let text = r#"{
          "format": 1,
          "run_id": "ecp-x",
          "istio": "1.22.8",
          "installer": "helm",
          "topology": {
            "clusters": [
              {"name": "external", "cluster_id": "external", "role": "external", "network": null,
               "pod_subnet": "10.10.0.0/16", "service_subnet": "10.255.10.0/24"},
              {"name": "config", "cluster_id": "remote1", "role": "config", "network": "network1",
               "pod_subnet": "10.20.0.0/16", "service_subnet": "10.255.20.0/24"}
            ],
            "network_mode": "multi-network"
          },
          "external_addr": "172.18.6.66",
          "kubeconfigs": {"external": "/k/external", "config": "/k/config"},
          "istioctl": "/opt/istio-1.22.8/bin/istioctl"
        }"#;
        let t = TopologyFile::parse(text).unwrap();
        assert_eq!(t.istio, IstioVersion::new(1, 22, 8));
        assert_eq!(t.installer, Installer::Helm);
        assert_eq!(t.config().network.as_deref(), Some("network1"));
        assert!(t.further_remotes().is_empty());
        assert_eq!(t.istioctl.as_deref(), Some(Path::new("/opt/istio-1.22.8/bin/istioctl")));
    }

    #[test]
    fn wrong_formats_and_bad_files_say_what_is_wrong() {
        let err = TopologyFile::parse(r#"{"format": 2}"#).unwrap_err().to_string();
        assert!(err.contains("format 2") && err.contains("format 1"), "{err}");
        let err = TopologyFile::parse("{not json").unwrap_err().to_string();
        assert!(err.contains("cargo xtask e2e"), "{err}");
        let err = TopologyFile::read(Path::new("/nonexistent/topology.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/topology.json"), "{err}");
        let mut unsupported = serde_json::to_value(sample()).unwrap();
        unsupported["istio"] = "1.21.0".into();
        // 1.21 parses as a version; the suite refuses it when planning, not here.
        assert!(TopologyFile::parse(&unsupported.to_string()).is_ok());
    }

    #[test]
    fn a_file_without_an_external_or_a_config_cluster_is_refused() {
        for (role, left) in [(Role::External, "external"), (Role::Config, "config")] {
            let mut t = sample();
            t.topology.clusters.retain(|c| c.role != role);
            let text = serde_json::to_string(&t).unwrap();
            let err = TopologyFile::parse(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("0 clusters with role {left}")), "{err}");
        }
        let mut t = sample();
        t.topology.clusters[2].role = Role::Config;
        let err = TopologyFile::parse(&serde_json::to_string(&t).unwrap()).unwrap_err();
        assert!(err.to_string().contains("2 clusters with role config"), "{err}");
    }

    #[test]
    fn the_unset_message_says_to_use_cargo_xtask_e2e() {
        let msg = TopologyFileError::NotSet.to_string();
        assert!(msg.contains("ECP_TOPOLOGY") && msg.contains("run them through `cargo xtask e2e`"));
    }
}
