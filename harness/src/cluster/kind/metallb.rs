//! LoadBalancer addresses for kind clusters, Istio's way (kind-node.md "MetalLB,
//! Istio's way"): MetalLB's native manifest, then per cluster an `IPAddressPool` of
//! 50 addresses from the tail of the Docker network's subnet, disjoint between
//! clusters, announced by an `L2Advertisement`.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};

use super::KindError;
use crate::kube::apply::{ApplyOptions, apply_yaml};

/// The MetalLB release Istio's scripts install.
pub const METALLB_VERSION: &str = "v0.14.3";
/// Where that release's native manifest is published.
pub const NATIVE_MANIFEST_URL: &str = "https://raw.githubusercontent.com/metallb/metallb/v0.14.3/config/manifests/metallb-native.yaml";
pub const NAMESPACE: &str = "metallb-system";
/// How long MetalLB's pods may take to become Ready (Istio: 120 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Addresses per cluster.
pub const ADDRESSES_PER_CLUSTER: usize = 50;
/// How many addresses at the tail of the candidates are shared out.
pub const KEPT_CANDIDATES: usize = 400;
const FIELD_MANAGER: &str = "ecp-harness";

/// An inclusive range of addresses, written `first-last` as MetalLB reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl AddressRange {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&ip)
    }

    pub fn len(&self) -> usize {
        (u32::from(self.last).saturating_sub(u32::from(self.first)) as usize + 1)
            * usize::from(!self.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "MetalLB pools: subnet {subnet} yields {pools} pools of {ADDRESSES_PER_CLUSTER} addresses; \
     cluster number {cluster} (counting from 0) has none: use a larger network"
)]
pub struct PoolError {
    pub subnet: Ipv4Net,
    pub cluster: usize,
    pub pools: usize,
}

/// The addresses pools are carved from: host indices 1000-1999 of the subnet when it
/// has over 2000 addresses, else its top quarter; of those, the last 400.
pub fn candidates(subnet: Ipv4Net) -> Vec<Ipv4Addr> {
    let prefix = u32::from(subnet.prefix_len());
    let total: u64 = 1 << (32 - prefix);
    let network = u64::from(u32::from(subnet.network()));
    // Host addresses as Python's `ip_network(...).hosts()` lists them: without the
    // network and broadcast addresses, except for /31 and /32.
    let (first_host, hosts) =
        if prefix >= 31 { (network, total) } else { (network + 1, total - 2) };
    let (start, end) = if total > 2000 { (1000, 2000) } else { (total * 3 / 4, total) };
    let end = end.min(hosts);
    let start = start.min(end);
    let all: Vec<Ipv4Addr> = (start..end)
        .filter_map(|i| u32::try_from(first_host + i).ok())
        .map(Ipv4Addr::from)
        .collect();
    all[all.len().saturating_sub(KEPT_CANDIDATES)..].to_vec()
}

/// Cluster `k`'s pool (from 0): candidates `50k+1` to `50k+50` (0-based positions, as
/// Istio's script skips the first candidate).
pub fn pool(subnet: Ipv4Net, k: usize) -> Result<AddressRange, PoolError> {
    let c = candidates(subnet);
    let pools = c.len().saturating_sub(1) / ADDRESSES_PER_CLUSTER;
    let first = ADDRESSES_PER_CLUSTER * k + 1;
    let last = first + ADDRESSES_PER_CLUSTER - 1;
    match (c.get(first), c.get(last)) {
        (Some(&first), Some(&last)) => Ok(AddressRange { first, last }),
        _ => Err(PoolError { subnet, cluster: k, pools }),
    }
}

/// The `IPAddressPool` `default-pool` and `L2Advertisement` `default-l2`.
pub fn pool_manifests(range: AddressRange) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\n\
         kind: IPAddressPool\n\
         metadata:\n  name: default-pool\n  namespace: {NAMESPACE}\n\
         spec:\n  addresses:\n  - {range}\n\
         ---\n\
         apiVersion: metallb.io/v1beta1\n\
         kind: L2Advertisement\n\
         metadata:\n  name: default-l2\n  namespace: {NAMESPACE}\n\
         spec:\n  ipAddressPools:\n  - default-pool\n"
    )
}

/// Where MetalLB's native manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MetalLbManifest {
    /// [`NATIVE_MANIFEST_URL`], fetched once into the cache directory.
    #[default]
    Upstream,
    /// A local copy (e.g. Istio's vendored one).
    Path(PathBuf),
}

impl MetalLbManifest {
    /// The manifest's text, fetching and caching the upstream one when needed.
    pub async fn load(&self) -> Result<String, KindError> {
        let bad = |detail: String| KindError::MetalLb { cluster: "(all)".to_string(), detail };
        match self {
            MetalLbManifest::Path(p) => tokio::fs::read_to_string(p)
                .await
                .map_err(|e| bad(format!("read {}: {e}", p.display()))),
            MetalLbManifest::Upstream => {
                let cached = crate::cluster::cache_dir()
                    .join("metallb")
                    .join(METALLB_VERSION)
                    .join("metallb-native.yaml");
                if let Ok(text) = tokio::fs::read_to_string(&cached).await {
                    return Ok(text);
                }
                let text = fetch(NATIVE_MANIFEST_URL)
                    .await
                    .map_err(|e| bad(format!("fetch {NATIVE_MANIFEST_URL}: {e}")))?;
                if let Some(dir) = cached.parent() {
                    let _ = tokio::fs::create_dir_all(dir).await;
                }
                let _ = tokio::fs::write(&cached, &text).await;
                Ok(text)
            }
        }
    }
}

async fn fetch(url: &str) -> Result<String, reqwest::Error> {
    crate::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    client.get(url).send().await?.error_for_status()?.text().await
}

/// Installs MetalLB in one cluster and gives it `pool`.
pub async fn install(
    client: &kube::Client,
    cluster: &str,
    native: &str,
    pool: AddressRange,
) -> Result<(), KindError> {
    let err = |detail: String| KindError::MetalLb { cluster: cluster.to_string(), detail };
    let opts = ApplyOptions::new(cluster, FIELD_MANAGER);
    apply_yaml(client, native, "metallb-native.yaml", &opts)
        .await
        .map_err(|e| err(e.to_string()))?;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), NAMESPACE);
    crate::kube::wait::until(
        cluster,
        &deployments,
        "controller",
        "MetalLB controller available",
        deployment_available,
        READY_TIMEOUT,
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    let daemonsets: kube::Api<DaemonSet> = kube::Api::namespaced(client.clone(), NAMESPACE);
    crate::kube::wait::until(
        cluster,
        &daemonsets,
        "speaker",
        "MetalLB speaker ready",
        daemonset_ready,
        READY_TIMEOUT,
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    // The pool goes through MetalLB's validating webhook, whose Service may lag the
    // controller's readiness by a moment that nothing observable marks: a few
    // bounded retries, as Istio's script does.
    let manifests = pool_manifests(pool);
    let mut last = String::new();
    for _ in 0..10 {
        match apply_yaml(client, &manifests, "metallb-pool.yaml", &opts).await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Err(err(format!("applying the address pool {pool} kept failing: {last}")))
}

/// The Deployment's `Available` condition is True.
pub fn deployment_available(d: Option<&Deployment>) -> bool {
    d.and_then(|d| d.status.as_ref()).and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
    })
}

/// Every scheduled pod of the DaemonSet is ready, and there is at least one.
pub fn daemonset_ready(d: Option<&DaemonSet>) -> bool {
    d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
        s.desired_number_scheduled > 0 && s.number_ready == s.desired_number_scheduled
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DaemonSetStatus, DeploymentCondition, DeploymentStatus};

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> AddressRange {
        AddressRange { first: a.parse().unwrap(), last: b.parse().unwrap() }
    }

    /// kind-node.md's worked example. Its "cluster 1" is the first cluster, k = 0.
    #[test]
    fn worked_example_for_172_18_0_0_16() {
        let n = net("172.18.0.0/16");
        assert_eq!(pool(n, 0), Ok(range("172.18.6.66", "172.18.6.115")));
        assert_eq!(pool(n, 1), Ok(range("172.18.6.116", "172.18.6.165")));
        assert_eq!(pool(n, 2), Ok(range("172.18.6.166", "172.18.6.215")));
        assert_eq!(pool(n, 0).unwrap().to_string(), "172.18.6.66-172.18.6.115");
    }

    #[test]
    fn candidates_are_host_indices_1000_to_1999_keeping_the_last_400() {
        let c = candidates(net("172.18.0.0/16"));
        assert_eq!(c.len(), 400);
        // Host index i is network + 1 + i: index 1600 is .6.65, index 1999 is .7.208.
        assert_eq!(c[0], "172.18.6.65".parse::<Ipv4Addr>().unwrap());
        assert_eq!(c[399], "172.18.7.208".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn small_subnets_use_their_top_quarter() {
        // /24: hosts .1-.254, top quarter = host indices 192.. = .193-.254 (62 addresses).
        let c = candidates(net("10.89.0.0/24"));
        assert_eq!(c.first(), Some(&"10.89.0.193".parse().unwrap()));
        assert_eq!(c.last(), Some(&"10.89.0.254".parse().unwrap()));
        assert_eq!(pool(net("10.89.0.0/24"), 0), Ok(range("10.89.0.194", "10.89.0.243")));
        let err = pool(net("10.89.0.0/24"), 1).unwrap_err();
        assert_eq!(err.pools, 1);
        assert!(err.to_string().contains("use a larger network"), "{err}");
        assert!(pool(net("10.89.0.0/28"), 0).is_err());
        assert!(candidates(net("10.89.0.1/32")).len() <= 1);
    }

    #[test]
    fn a_20_has_over_2000_addresses() {
        // 4096 addresses: indices 1000-1999 as for a /16.
        assert_eq!(pool(net("172.30.0.0/20"), 0), Ok(range("172.30.6.66", "172.30.6.115")));
    }

    #[test]
    fn seven_disjoint_pools_within_the_subnet() {
        let n = net("172.18.0.0/16");
        let pools: Vec<_> = (0..7).map(|k| pool(n, k).unwrap()).collect();
        for (i, p) in pools.iter().enumerate() {
            assert_eq!(p.len(), 50);
            assert!(n.contains(&p.first) && n.contains(&p.last));
            for q in &pools[i + 1..] {
                assert!(!p.contains(q.first) && !p.contains(q.last), "{p} overlaps {q}");
            }
        }
        assert_eq!(pool(n, 7).unwrap_err(), PoolError { subnet: n, cluster: 7, pools: 7 });
    }

    #[test]
    fn pool_manifests_snapshot() {
        let yaml = pool_manifests(range("172.18.6.66", "172.18.6.115"));
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(docs[0]["kind"], "IPAddressPool");
        assert_eq!(docs[0]["spec"]["addresses"][0], "172.18.6.66-172.18.6.115");
        assert_eq!(docs[1]["kind"], "L2Advertisement");
        assert_eq!(docs[1]["spec"]["ipAddressPools"][0], "default-pool");
        insta::assert_snapshot!(yaml);
    }

    #[test]
    fn readiness_conditions() {
        let dep = |status: &str| Deployment {
            status: Some(DeploymentStatus {
                conditions: Some(vec![DeploymentCondition {
                    type_: Some("Available".into()),
                    status: Some(status.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(deployment_available(Some(&dep("True"))));
        assert!(!deployment_available(Some(&dep("False"))));
        assert!(!deployment_available(None));
        let ds = |desired, ready| DaemonSet {
            status: Some(DaemonSetStatus {
                desired_number_scheduled: desired,
                number_ready: ready,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(daemonset_ready(Some(&ds(1, 1))));
        assert!(!daemonset_ready(Some(&ds(1, 0))));
        assert!(!daemonset_ready(Some(&ds(0, 0))));
    }
}
