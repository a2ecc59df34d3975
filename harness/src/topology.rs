//! The clusters of an external-control-plane mesh: names, roles, networks, subnets,
//! and the addresses known only at run time (procedure.md "Roles and topology").

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::mesh::{MAX_MESHES, Mesh};

/// The namespace of the external istiod, and of the remote profile on remotes.
pub const EXTERNAL_ISTIOD_NAMESPACE: &str = "external-istiod";
/// The mesh ID every istiod of the mesh shares.
pub const MESH_ID: &str = "mesh1";
/// At most this many remotes (the per-cluster subnets are 10.<10k>.0.0/16).
pub const MAX_REMOTES: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error(
        "--remotes must be between 1 and {MAX_REMOTES} (the first remote is the config cluster), got {0}"
    )]
    RemoteCount(usize),
    #[error(
        "--meshes must be between 1 and {MAX_MESHES} (each mesh after the first takes its own pair of control-plane gateway ports, 16022/16027 up to 16082/16087), got {0}"
    )]
    MeshCount(usize),
    #[error(
        "{meshes} meshes of {remotes} remote(s) each make {total} remote clusters: their disjoint pod and service subnets hold at most {MAX_REMOTES}", total = meshes * remotes
    )]
    TooManyClusters { meshes: usize, remotes: usize },
    #[error(
        "external address `{0}` is not an IP address: a hostname as remotePilotAddress renders an ExternalName Service that the webhook client cannot call (istio/istio#45014)"
    )]
    ExternalAddrNotIp(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the control-plane ingress gateway and the mesh's istiod in `external-istiod`.
    External,
    /// The first remote: workloads and the mesh configuration.
    Config,
    /// A further remote: workloads only.
    Remote,
}

/// The names `--values ROLE=FILE` takes.
impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "external" => Ok(Role::External),
            "config" => Ok(Role::Config),
            "remote" => Ok(Role::Remote),
            _ => Err(format!("unknown role `{s}`: expected external, config or remote")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::External => "external",
            Role::Config => "config",
            Role::Remote => "remote",
        })
    }
}

/// How further remotes are networked relative to the config cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Each remote on its own network (`network1`, `network2`, ...), joined by
    /// east-west gateways: the upstream doc test's variant.
    #[default]
    MultiNetwork,
    /// Every remote on `network1`: no east-west gateways.
    SameNetwork,
}

/// One cluster of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Name of the cluster as a provider knows it (container and context names).
    pub name: String,
    /// The cluster's name in istiod's eyes (`CLUSTER_ID`, inject path, remote secrets).
    pub cluster_id: String,
    pub role: Role,
    /// Istio network of the workloads; `None` for the external cluster.
    pub network: Option<String>,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    /// The mesh a remote belongs to (the external cluster's is the first); written
    /// only for meshes after the first.
    #[serde(default = "first_mesh", skip_serializing_if = "is_first_mesh")]
    pub mesh: Mesh,
}

fn first_mesh() -> Mesh {
    Mesh::FIRST
}

fn is_first_mesh(mesh: &Mesh) -> bool {
    mesh.is_first()
}

/// The topology a run installs: the external cluster first, then the config cluster,
/// then further remotes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub clusters: Vec<ClusterSpec>,
    pub network_mode: NetworkMode,
    /// How many meshes the external cluster hosts, each with its own remotes;
    /// written only when more than one.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub meshes: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Addresses known only once clusters run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeAddrs {
    /// `EXTERNAL_ISTIOD_ADDR`: the external gateway's LoadBalancer IP.
    pub external_gateway_ip: Option<IpAddr>,
    /// Each cluster's API server as the other clusters reach it, a URL
    /// (`https://<node IP>:6443`), by cluster name.
    pub api_servers: BTreeMap<String, String>,
    /// Each cluster's kubeconfig for the host, by cluster name.
    pub host_kubeconfigs: BTreeMap<String, PathBuf>,
    /// Each cluster's kubeconfig for peers on the shared network, by cluster name.
    pub peer_kubeconfigs: BTreeMap<String, PathBuf>,
}

impl Topology {
    /// `remotes` counts the config cluster: 1 means external + config.
    pub fn new(remotes: usize, network_mode: NetworkMode) -> Result<Self, TopologyError> {
        Self::with_meshes(1, remotes, network_mode)
    }

    /// `meshes` meshes hosted by one external cluster, each with `remotes` remotes of
    /// its own (its config cluster first). The clusters are numbered on for their
    /// subnets: external 0, the first mesh's remotes 1..=remotes, the next mesh's
    /// after them.
    pub fn with_meshes(
        meshes: usize,
        remotes: usize,
        network_mode: NetworkMode,
    ) -> Result<Self, TopologyError> {
        if !(1..=MAX_REMOTES).contains(&remotes) {
            return Err(TopologyError::RemoteCount(remotes));
        }
        if !(1..=MAX_MESHES).contains(&meshes) {
            return Err(TopologyError::MeshCount(meshes));
        }
        if meshes * remotes > MAX_REMOTES {
            return Err(TopologyError::TooManyClusters { meshes, remotes });
        }
        let mut clusters =
            vec![ClusterSpec::numbered("external", "external", Role::External, None, 0)];
        for (m, mesh) in Mesh::all(meshes).enumerate() {
            for r in 1..=remotes {
                let network = match network_mode {
                    NetworkMode::MultiNetwork => mesh.network(r),
                    NetworkMode::SameNetwork => mesh.network(1),
                };
                let role = if r == 1 { Role::Config } else { Role::Remote };
                let mut spec = ClusterSpec::numbered(
                    &mesh.cluster_name(r),
                    &mesh.cluster_id(r),
                    role,
                    Some(network),
                    m * remotes + r,
                );
                spec.mesh = mesh;
                clusters.push(spec);
            }
        }
        Ok(Self { clusters, network_mode, meshes })
    }

    /// Every mesh, the first first.
    pub fn mesh_list(&self) -> impl Iterator<Item = Mesh> {
        Mesh::all(self.meshes)
    }

    /// The config cluster of `mesh`.
    pub fn config_of(&self, mesh: Mesh) -> Option<&ClusterSpec> {
        self.with_role(Role::Config).find(|c| c.mesh == mesh)
    }

    /// The further remotes of `mesh` (not its config cluster).
    pub fn further_remotes_of(&self, mesh: Mesh) -> impl Iterator<Item = &ClusterSpec> {
        self.with_role(Role::Remote).filter(move |c| c.mesh == mesh)
    }

    pub fn external(&self) -> &ClusterSpec {
        self.with_role(Role::External).next().expect("a topology always has an external cluster")
    }

    /// The first mesh's config cluster.
    pub fn config(&self) -> &ClusterSpec {
        self.with_role(Role::Config).next().expect("a topology always has a config cluster")
    }

    /// The config cluster and every further remote, in order.
    pub fn remotes(&self) -> impl Iterator<Item = &ClusterSpec> {
        self.clusters.iter().filter(|c| c.role != Role::External)
    }

    /// Further remotes only (not the config clusters), of every mesh.
    pub fn further_remotes(&self) -> impl Iterator<Item = &ClusterSpec> {
        self.with_role(Role::Remote)
    }

    pub fn by_name(&self, name: &str) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// True when remotes sit on more than one network (east-west gateways needed).
    pub fn needs_east_west(&self) -> bool {
        self.network_mode == NetworkMode::MultiNetwork && self.further_remotes().next().is_some()
    }

    fn with_role(&self, role: Role) -> impl Iterator<Item = &ClusterSpec> {
        self.clusters.iter().filter(move |c| c.role == role)
    }
}

impl ClusterSpec {
    /// Cluster `k` (0 = external) gets pods 10.<10(k+1)>.0.0/16 and services
    /// 10.255.<10(k+1)>.0/24, the upstream kind topology's disjoint subnets.
    fn numbered(
        name: &str,
        cluster_id: &str,
        role: Role,
        network: Option<String>,
        k: usize,
    ) -> Self {
        let octet = u8::try_from(10 * (k + 1)).expect("MAX_REMOTES keeps the octet below 256");
        Self {
            name: name.to_string(),
            cluster_id: cluster_id.to_string(),
            role,
            network,
            pod_subnet: Ipv4Net::new([10, octet, 0, 0].into(), 16).expect("valid prefix"),
            service_subnet: Ipv4Net::new([10, 255, octet, 0].into(), 24).expect("valid prefix"),
            mesh: Mesh::FIRST,
        }
    }

    /// The inject path of the remote profile: `/inject/cluster/<id>/net/<network>`.
    pub fn injection_path(&self) -> Option<String> {
        self.network.as_ref().map(|n| format!("/inject/cluster/{}/net/{n}", self.cluster_id))
    }
}

/// Parses `--external-addr`: an IP address, never a hostname (istio/istio#45014).
pub fn parse_external_addr(s: &str) -> Result<IpAddr, TopologyError> {
    s.trim().parse().map_err(|_| TopologyError::ExternalAddrNotIp(s.to_string()))
}

/// The placeholder external address `cargo xtask plan` uses when none is given:
/// an address from TEST-NET-1 (RFC 5737), which is never routed.
pub const PLACEHOLDER_EXTERNAL_ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_remote_is_external_plus_config() {
        let t = Topology::new(1, NetworkMode::MultiNetwork).unwrap();
        let names: Vec<_> =
            t.clusters.iter().map(|c| (c.name.as_str(), c.cluster_id.as_str(), c.role)).collect();
        assert_eq!(
            names,
            [("external", "external", Role::External), ("config", "remote1", Role::Config)]
        );
        assert_eq!(
            t.config().injection_path().as_deref(),
            Some("/inject/cluster/remote1/net/network1")
        );
        assert_eq!(t.external().network, None);
        assert!(!t.needs_east_west());
    }

    #[test]
    fn second_remote_is_on_network2_by_default() {
        let t = Topology::new(2, NetworkMode::default()).unwrap();
        let r2 = t.by_name("remote2").unwrap();
        assert_eq!(r2.role, Role::Remote);
        assert_eq!(r2.injection_path().as_deref(), Some("/inject/cluster/remote2/net/network2"));
        assert!(t.needs_east_west());
        assert_eq!(t.remotes().count(), 2);
        assert_eq!(t.further_remotes().count(), 1);
    }

    #[test]
    fn same_network_variant_needs_no_east_west() {
        let t = Topology::new(3, NetworkMode::SameNetwork).unwrap();
        assert!(t.remotes().all(|c| c.network.as_deref() == Some("network1")));
        assert!(!t.needs_east_west());
    }

    #[test]
    fn subnets_follow_upstream_and_never_overlap() {
        let t = Topology::new(MAX_REMOTES, NetworkMode::default()).unwrap();
        assert_eq!(t.clusters[0].pod_subnet.to_string(), "10.10.0.0/16");
        assert_eq!(t.clusters[1].pod_subnet.to_string(), "10.20.0.0/16");
        assert_eq!(t.clusters[2].service_subnet.to_string(), "10.255.30.0/24");
        let all: Vec<Ipv4Net> =
            t.clusters.iter().flat_map(|c| [c.pod_subnet, c.service_subnet]).collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(!a.contains(b) && !b.contains(a), "{a} overlaps {b}");
            }
        }
    }

    #[test]
    fn remote_count_is_bounded() {
        assert_eq!(
            Topology::new(0, NetworkMode::default()).unwrap_err(),
            TopologyError::RemoteCount(0)
        );
        assert!(Topology::new(MAX_REMOTES + 1, NetworkMode::default()).is_err());
        let msg = TopologyError::RemoteCount(0).to_string();
        assert!(msg.contains("between 1 and 8"), "{msg}");
    }

    #[test]
    fn two_meshes_get_their_own_clusters_ids_networks_and_subnets() {
        let t = Topology::with_meshes(2, 2, NetworkMode::default()).unwrap();
        let names: Vec<_> = t
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.cluster_id.as_str(), c.network.as_deref(), c.mesh.index()))
            .collect();
        assert_eq!(
            names,
            [
                ("external", "external", None, 1),
                ("config", "remote1", Some("network1"), 1),
                ("remote2", "remote2", Some("network2"), 1),
                ("mesh2-config", "mesh2-remote1", Some("mesh2-network1"), 2),
                ("mesh2-remote2", "mesh2-remote2", Some("mesh2-network2"), 2),
            ]
        );
        let mesh2 = Mesh::new(2).unwrap();
        assert_eq!(t.config_of(mesh2).unwrap().name, "mesh2-config");
        assert_eq!(t.further_remotes_of(mesh2).count(), 1);
        assert_eq!(t.config().name, "config");
        assert_eq!(t.clusters[4].pod_subnet.to_string(), "10.50.0.0/16");
        assert_eq!(t.mesh_list().count(), 2);
    }

    #[test]
    fn mesh_counts_the_ports_and_subnets_cannot_hold_are_refused() {
        let mm = NetworkMode::default();
        assert_eq!(Topology::with_meshes(0, 1, mm).unwrap_err(), TopologyError::MeshCount(0));
        assert_eq!(Topology::with_meshes(9, 1, mm).unwrap_err(), TopologyError::MeshCount(9));
        assert!(Topology::with_meshes(8, 1, mm).is_ok());
        assert_eq!(
            Topology::with_meshes(3, 3, mm).unwrap_err(),
            TopologyError::TooManyClusters { meshes: 3, remotes: 3 }
        );
        let msg = TopologyError::TooManyClusters { meshes: 3, remotes: 3 }.to_string();
        assert!(msg.contains("9 remote clusters") && msg.contains("at most 8"), "{msg}");
        assert!(TopologyError::MeshCount(0).to_string().contains("between 1 and 8"));
    }

    #[test]
    fn one_mesh_serializes_as_before() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert!(!json.contains("mesh"), "{json}");
        let t2 = Topology::with_meshes(2, 1, NetworkMode::default()).unwrap();
        let back: Topology = serde_json::from_str(&serde_json::to_string(&t2).unwrap()).unwrap();
        assert_eq!(back, t2);
    }

    #[test]
    fn external_addr_must_be_an_ip() {
        assert_eq!(parse_external_addr("172.18.6.66").unwrap().to_string(), "172.18.6.66");
        assert!(parse_external_addr("2001:db8::1").is_ok());
        let err = parse_external_addr("istiod.example.com").unwrap_err();
        assert!(err.to_string().contains("istio/istio#45014"));
    }
}
