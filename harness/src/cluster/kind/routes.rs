//! Routes between clusters on the same Istio network (kind-node.md "MetalLB, Istio's
//! way"): pods of such clusters talk to each other directly, so each node routes the
//! other clusters' pod and service ranges to their nodes on the shared Docker network.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::topology::Topology;

/// `ip route add <cidr> via <peer node>` inside the node of `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub cluster: String,
    pub cidr: Ipv4Net,
    pub via: Ipv4Addr,
}

impl Route {
    pub fn argv(&self) -> Vec<String> {
        ["ip", "route", "add", &self.cidr.to_string(), "via", &self.via.to_string()]
            .map(String::from)
            .to_vec()
    }
}

/// Every route needed: for each ordered pair of distinct clusters with the same
/// network (the external cluster has none), the second's pod and service ranges via
/// its node. `node_ips` maps cluster names to node addresses; clusters without one
/// are skipped.
pub fn same_network_routes(
    topology: &Topology,
    node_ips: &BTreeMap<String, Ipv4Addr>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    for a in &topology.clusters {
        for b in &topology.clusters {
            let same = a.name != b.name && a.network.is_some() && a.network == b.network;
            let (Some(_), Some(&via)) = (node_ips.get(&a.name), node_ips.get(&b.name)) else {
                continue;
            };
            if same {
                for cidr in [b.pod_subnet, b.service_subnet] {
                    routes.push(Route { cluster: a.name.clone(), cidr, via });
                }
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::NetworkMode;

    fn ips(t: &Topology) -> BTreeMap<String, Ipv4Addr> {
        t.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), Ipv4Addr::new(172, 18, 0, 2 + i as u8)))
            .collect()
    }

    #[test]
    fn same_network_remotes_route_to_each_other_only() {
        let t = Topology::new(2, NetworkMode::SameNetwork).unwrap();
        let argvs: Vec<(String, String)> = same_network_routes(&t, &ips(&t))
            .iter()
            .map(|r| (r.cluster.clone(), r.argv().join(" ")))
            .collect();
        assert_eq!(
            argvs,
            [
                ("config".to_string(), "ip route add 10.30.0.0/16 via 172.18.0.4".to_string()),
                ("config".to_string(), "ip route add 10.255.30.0/24 via 172.18.0.4".to_string()),
                ("remote2".to_string(), "ip route add 10.20.0.0/16 via 172.18.0.3".to_string()),
                ("remote2".to_string(), "ip route add 10.255.20.0/24 via 172.18.0.3".to_string()),
            ]
        );
    }

    #[test]
    fn multi_network_and_external_need_no_routes() {
        let t = Topology::new(2, NetworkMode::MultiNetwork).unwrap();
        assert!(same_network_routes(&t, &ips(&t)).is_empty());
        let single = Topology::new(1, NetworkMode::SameNetwork).unwrap();
        assert!(same_network_routes(&single, &ips(&single)).is_empty());
    }
}
