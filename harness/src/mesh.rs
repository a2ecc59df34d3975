//! One mesh of several that one external cluster hosts (procedure.md "Several meshes
//! on one external cluster"): its mesh ID, the namespace of its istiod, its pair of
//! ports on the control-plane gateway, the names of its clusters and of its webhook
//! configurations. The first mesh carries the single-mesh names of the guide; the
//! steps, the values and the checks ask a [`Mesh`] instead of naming them.

use serde::{Deserialize, Serialize};

use crate::install::Revision;
use crate::install::values::{INJECTION_WEBHOOK_BASE, VALIDATION_WEBHOOK_BASE};

/// At most this many meshes: each takes a pair of gateway ports of the scheme of
/// [`Mesh::xds_port`], and its clusters take subnets of the ones
/// [`crate::topology::MAX_REMOTES`] bounds.
pub const MAX_MESHES: usize = 8;

/// The istiod namespace of the first mesh (the guide's).
const FIRST_NAMESPACE: &str = crate::topology::EXTERNAL_ISTIOD_NAMESPACE;
/// The first mesh's xDS/CA and webhook ports: the guide's.
const FIRST_PORTS: (u16, u16) = (15012, 15017);
/// Meshes after the first: ports `16000 + 10k + 2` and `16000 + 10k + 7`, outside
/// Istio's own 15000-15099 (proxy, admin, status, DNS, telemetry, 15443), below
/// Kubernetes' NodePort range (30000-32767) and the kernel's ephemeral ports.
const LATER_PORTS_BASE: u16 = 16000;

/// One mesh, numbered from 1. Every name is computed, so a mesh is `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mesh(usize);

impl Mesh {
    /// The first mesh: the guide's names.
    pub const FIRST: Mesh = Mesh(1);

    /// Mesh `index` (1-based); `None` outside 1..=[`MAX_MESHES`].
    pub fn new(index: usize) -> Option<Self> {
        (1..=MAX_MESHES).contains(&index).then_some(Self(index))
    }

    /// Meshes 1 to `count` (at most [`MAX_MESHES`]).
    pub fn all(count: usize) -> impl Iterator<Item = Mesh> {
        (1..=count.min(MAX_MESHES)).map(Mesh)
    }

    pub fn index(self) -> usize {
        self.0
    }

    pub fn is_first(self) -> bool {
        self.0 == 1
    }

    /// The mesh ID (`global.meshID`): `mesh<k>`.
    pub fn id(self) -> String {
        format!("mesh{}", self.0)
    }

    /// The namespace of its istiod in the external cluster and of its remote
    /// profile on its remotes: `external-istiod`, then `external-istiod-mesh<k>`.
    pub fn namespace(self) -> String {
        match self.0 {
            1 => FIRST_NAMESPACE.to_string(),
            k => format!("{FIRST_NAMESPACE}-mesh{k}"),
        }
    }

    /// The gateway port carrying its xDS and CA (istiod's 15012): 15012, then
    /// 16022, 16032, ... (`16000 + 10k + 2`).
    pub fn xds_port(self) -> u16 {
        self.ports().0
    }

    /// The gateway port carrying its webhooks (istiod's 15017, Service port 443):
    /// 15017, then 16027, 16037, ... (`16000 + 10k + 7`).
    pub fn webhook_port(self) -> u16 {
        self.ports().1
    }

    fn ports(self) -> (u16, u16) {
        match self.0 {
            1 => FIRST_PORTS,
            k => {
                // MAX_MESHES keeps this within u16 and below 16100.
                let k = u16::try_from(k).unwrap_or(u16::MAX / 20);
                (LATER_PORTS_BASE + 10 * k + 2, LATER_PORTS_BASE + 10 * k + 7)
            }
        }
    }

    /// Appended to step ids, file directories and port names of meshes after the
    /// first (`-mesh2`); empty for the first, whose names stay the guide's.
    pub fn suffix(self) -> String {
        match self.0 {
            1 => String::new(),
            k => format!("-mesh{k}"),
        }
    }

    /// The prefix of its cluster names, IDs and networks: empty, then `mesh<k>-`.
    fn prefix(self) -> String {
        match self.0 {
            1 => String::new(),
            k => format!("mesh{k}-"),
        }
    }

    /// The provider's name of its remote `r` (1 = its config cluster): `config`,
    /// `remote2`, ...; `mesh2-config`, `mesh2-remote2`, ... after the first.
    pub fn cluster_name(self, r: usize) -> String {
        match r {
            1 => format!("{}config", self.prefix()),
            r => format!("{}remote{r}", self.prefix()),
        }
    }

    /// istiod's name for its remote `r`: `remote<r>`, `mesh<k>-remote<r>`.
    pub fn cluster_id(self, r: usize) -> String {
        format!("{}remote{r}", self.prefix())
    }

    /// The Istio network `n` of the mesh: `network<n>`, `mesh<k>-network<n>`.
    pub fn network(self, n: usize) -> String {
        format!("{}network{n}", self.prefix())
    }

    /// The mutating webhook configuration its remote profile renders on its remotes
    /// (the chart appends the namespace): `istio-sidecar-injector-<namespace>`.
    pub fn injection_webhook_config(self) -> String {
        Revision::default().webhook_config_in(INJECTION_WEBHOOK_BASE, &self.namespace())
    }

    /// The validating one: `istio-validator-<namespace>`.
    pub fn validation_webhook_config(self) -> String {
        Revision::default().webhook_config_in(VALIDATION_WEBHOOK_BASE, &self.namespace())
    }
}

impl std::fmt::Display for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mesh{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_first_mesh_has_the_guides_names() {
        let m = Mesh::FIRST;
        assert_eq!(m.id(), crate::topology::MESH_ID);
        assert_eq!(m.namespace(), crate::topology::EXTERNAL_ISTIOD_NAMESPACE);
        assert_eq!((m.xds_port(), m.webhook_port()), (15012, 15017));
        assert_eq!(m.suffix(), "");
        assert_eq!(
            (m.cluster_name(1), m.cluster_id(1), m.network(1)),
            ("config".into(), "remote1".into(), "network1".into())
        );
        assert_eq!(m.cluster_name(2), "remote2");
        assert_eq!(
            m.injection_webhook_config(),
            crate::install::values::INJECTION_WEBHOOK_CONFIG_NAME
        );
        assert_eq!(
            m.validation_webhook_config(),
            crate::install::values::VALIDATION_WEBHOOK_CONFIG_NAME
        );
    }

    #[test]
    fn later_meshes_carry_their_number() {
        let m = Mesh::new(2).unwrap();
        assert_eq!(m.id(), "mesh2");
        assert_eq!(m.namespace(), "external-istiod-mesh2");
        assert_eq!((m.xds_port(), m.webhook_port()), (16022, 16027));
        assert_eq!(m.cluster_name(1), "mesh2-config");
        assert_eq!(m.cluster_id(1), "mesh2-remote1");
        assert_eq!(m.network(2), "mesh2-network2");
        assert_eq!(m.injection_webhook_config(), "istio-sidecar-injector-external-istiod-mesh2");
        let last = Mesh::new(MAX_MESHES).unwrap();
        assert_eq!((last.xds_port(), last.webhook_port()), (16082, 16087));
        assert_eq!(Mesh::new(0), None);
        assert_eq!(Mesh::new(MAX_MESHES + 1), None);
    }

    /// No two meshes share a port, and no mesh takes one of Istio's (15000-15099
    /// holds every port Istio uses: proxy, admin, status, DNS, telemetry, 15443) but
    /// the first, whose ports are the guide's.
    #[test]
    fn ports_are_unique_and_clear_of_istios_range() {
        let mut seen = BTreeSet::new();
        for m in Mesh::all(MAX_MESHES) {
            for port in [m.xds_port(), m.webhook_port()] {
                assert!(seen.insert(port), "{m} reuses {port}");
                if !m.is_first() {
                    assert!(!(15000..15100).contains(&port), "{m}: {port} is Istio's");
                    assert!(port < 30000, "{m}: {port} is in the NodePort range");
                }
            }
        }
        assert_eq!(seen.len(), 2 * MAX_MESHES);
    }
}
