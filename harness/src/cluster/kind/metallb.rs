//! LoadBalancer addresses for kind clusters, Istio's way (kind-node.md "MetalLB,
//! Istio's way"): MetalLB's native manifest, then per cluster an `IPAddressPool` of
//! 50 addresses from the tail of the Docker network's subnet, disjoint between
//! clusters, announced by an `L2Advertisement`.

use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};

use super::KindError;
use crate::kube::DiscoveryError;
use crate::kube::apply::{ApplyError, ApplyOptions, apply_yaml};

/// The MetalLB release Istio's scripts install: its images, manifest URL and cached
/// copy all derive from it.
pub const METALLB_VERSION: &str = "v0.14.3";

/// Where [`METALLB_VERSION`]'s native manifest is published.
pub fn native_manifest_url() -> String {
    format!(
        "https://raw.githubusercontent.com/metallb/metallb/{METALLB_VERSION}/config/manifests/metallb-native.yaml"
    )
}

/// Where the verified native manifest is cached between runs.
pub fn cached_manifest_path() -> std::path::PathBuf {
    crate::cluster::cache_dir().join("metallb").join(METALLB_VERSION).join("metallb-native.yaml")
}

/// MetalLB's controller and speaker images, loaded into every node.
pub fn images() -> [String; 2] {
    ["controller", "speaker"].map(|c| format!("quay.io/metallb/{c}:{METALLB_VERSION}"))
}

/// SHA-256 of [`native_manifest_url`]'s content (istio-release.md "Corrections"): a
/// fetched or cached copy is used only when it matches.
pub const NATIVE_MANIFEST_SHA256: &str =
    "df1ca995d3dc7f033cb5424a186ebdde69305e3beb688c5cb4d3271d71b1883c";

/// Checks `text` against [`NATIVE_MANIFEST_SHA256`]; the error names what was found.
pub fn verify_native_manifest(text: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let found = hex::encode(Sha256::digest(text.as_bytes()));
    if found == NATIVE_MANIFEST_SHA256 {
        Ok(())
    } else {
        Err(format!(
            "MetalLB {METALLB_VERSION}'s manifest has SHA-256 {found}, not the published \
             {NATIVE_MANIFEST_SHA256}"
        ))
    }
}
pub const NAMESPACE: &str = "metallb-system";
/// How long MetalLB's pods may take to become Ready (Istio: 120 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Addresses per cluster.
pub const ADDRESSES_PER_CLUSTER: usize = 50;
/// How many addresses at the tail of the candidates are shared out.
pub const KEPT_CANDIDATES: usize = 400;
const FIELD_MANAGER: &str = "ecp-harness";
/// Attempts at applying the pool while MetalLB's webhook is not serving yet, and the
/// pause between them (Istio's script: 10 tries).
const POOL_ATTEMPTS: u32 = 10;
const POOL_RETRY_PAUSE: Duration = Duration::from_secs(3);
/// Each attempt's deadline: the API server gives up on the webhook call after 10 s.
const POOL_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// [`native_manifest_url`], fetched once into the cache directory; fetched and
    /// cached copies are verified against [`NATIVE_MANIFEST_SHA256`].
    #[default]
    Upstream,
    /// A local copy (e.g. Istio's vendored one), the user's choice: used unverified.
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
                let cached = cached_manifest_path();
                if let Ok(text) = tokio::fs::read_to_string(&cached).await {
                    return verify_native_manifest(&text).map(|()| text).map_err(|e| {
                        bad(format!("{e}: remove {} to fetch it again", cached.display()))
                    });
                }
                let url = native_manifest_url();
                let text = fetch(&url).await.map_err(|e| bad(format!("fetch {url}: {e}")))?;
                verify_native_manifest(&text)
                    .map_err(|e| bad(format!("{e} (fetched from {url})")))?;
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
    // bounded retries, as Istio's script does, but only of errors that say the
    // webhook is not serving yet.
    let manifests = pool_manifests(pool);
    let pool_opts = opts.clone().timeout(POOL_APPLY_TIMEOUT);
    let apply = || async {
        apply_yaml(client, &manifests, "metallb-pool.yaml", &pool_opts).await.map(|_| ())
    };
    retry_while_transient(apply, POOL_ATTEMPTS, POOL_RETRY_PAUSE).await.map_err(
        |(attempts, source)| KindError::MetalLbPool {
            cluster: cluster.to_string(),
            pool,
            attempts,
            source: Box::new(source),
        },
    )
}

/// Whether an error applying the pool is one of MetalLB's webhook not serving yet (or
/// of the API server being briefly unavailable), which a later attempt may not meet:
/// server errors (the API server reports a failed webhook call as HTTP 500), conflicts,
/// throttling, transport failures and timeouts. Anything else (an invalid object, a
/// webhook that denied it, a missing kind, no permission) fails the same way again.
pub fn is_transient(error: &ApplyError) -> bool {
    match error {
        ApplyError::Rejected { code, message, .. } => {
            transient_status(*code) || message.contains("failed calling webhook")
        }
        ApplyError::Request { error, .. } => transient_request(error),
        ApplyError::Discovery { error: DiscoveryError::Api(error), .. } => transient_request(error),
        ApplyError::Discovery { error: DiscoveryError::Timeout(_), .. }
        | ApplyError::Timeout { .. } => true,
        ApplyError::Parse { .. }
        | ApplyError::Malformed { .. }
        | ApplyError::NotServed { .. }
        | ApplyError::CrdNotEstablished { .. } => false,
    }
}

fn transient_status(code: u16) -> bool {
    code >= 500 || code == 409 || code == 429
}

fn transient_request(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => transient_status(status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Runs `apply` up to `attempts` times, `pause` apart, while it fails with
/// [`is_transient`] errors; on failure returns the attempts made and the last error.
async fn retry_while_transient<F, Fut>(
    mut apply: F,
    attempts: u32,
    pause: Duration,
) -> Result<(), (u32, ApplyError)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ApplyError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts && is_transient(&e) => {
                tracing::info!(attempt, error = %e, "MetalLB's webhook not serving yet; retrying");
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err((attempt, e)),
        }
    }
}

/// How applying the pool ended, for [`KindError::MetalLbPool`].
pub(crate) fn pool_failure(attempts: u32, error: &ApplyError) -> String {
    if is_transient(error) {
        format!("still failing after {attempts} attempts (MetalLB's webhook not serving?)")
    } else {
        "failed, not retried (not an error of MetalLB's webhook still starting)".to_string()
    }
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

    #[test]
    fn a_manifest_other_than_the_published_one_is_refused_naming_both_digests() {
        let err = verify_native_manifest("apiVersion: v1\nkind: Namespace\n").unwrap_err();
        assert!(err.contains(NATIVE_MANIFEST_SHA256), "{err}");
        assert!(err.contains("v0.14.3"), "{err}");
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(verify_native_manifest("").unwrap_err().contains(empty));
    }

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

    fn rejected(code: u16, reason: &str, message: &str) -> ApplyError {
        ApplyError::Rejected {
            target: Box::new(crate::kube::apply::Target {
                doc: crate::kube::apply::DocRef {
                    file: "metallb-pool.yaml".into(),
                    index: 1,
                    line: 1,
                },
                kind: "IPAddressPool".into(),
                name: "metallb-system/default-pool".into(),
                cluster: "config".into(),
            }),
            reason: reason.into(),
            code,
            message: message.into(),
        }
    }

    const WEBHOOK_DOWN: &str = "Internal error occurred: failed calling webhook \
        \"ipaddresspoolvalidationwebhook.metallb.io\": failed to call webhook: Post \
        \"https://metallb-webhook-service.metallb-system.svc:443/validate\": dial tcp \
        10.96.0.10:443: connect: connection refused";

    #[test]
    fn webhook_not_serving_is_transient_invalid_objects_are_not() {
        assert!(is_transient(&rejected(500, "InternalError", WEBHOOK_DOWN)));
        assert!(is_transient(&rejected(503, "ServiceUnavailable", "try again")));
        assert!(is_transient(&rejected(504, "Timeout", "")));
        assert!(is_transient(&rejected(429, "TooManyRequests", "")));
        assert!(is_transient(&rejected(409, "Conflict", "modified")));
        // A failed webhook call whatever the code the server gives it.
        assert!(is_transient(&rejected(400, "BadRequest", WEBHOOK_DOWN)));
        for (code, reason) in
            [(422, "Invalid"), (400, "BadRequest"), (403, "Forbidden"), (404, "NotFound")]
        {
            assert!(!is_transient(&rejected(code, reason, "spec.addresses: invalid")), "{code}");
        }
        // The webhook answered and denied the pool: permanent.
        let denied = "admission webhook \"ipaddresspoolvalidationwebhook.metallb.io\" denied \
            the request: overlaps with already defined CIDR";
        assert!(!is_transient(&rejected(403, "Forbidden", denied)));

        let target = || match rejected(0, "", "") {
            ApplyError::Rejected { target, .. } => target,
            _ => unreachable!(),
        };
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let transport = kube::Error::Service(Box::new(refused));
        assert!(is_transient(&ApplyError::Request { target: target(), error: transport }));
        let unavailable =
            kube::Error::Api(Box::new(kube::core::Status { code: 503, ..Default::default() }));
        assert!(is_transient(&ApplyError::Request { target: target(), error: unavailable }));
        let invalid =
            kube::Error::Api(Box::new(kube::core::Status { code: 422, ..Default::default() }));
        assert!(!is_transient(&ApplyError::Request { target: target(), error: invalid }));
        let discovery = |error| ApplyError::Discovery {
            file: "metallb-pool.yaml".into(),
            cluster: "config".into(),
            error,
        };
        assert!(is_transient(&discovery(DiscoveryError::Timeout(Duration::from_secs(1)))));
        let timeout = ApplyError::Timeout {
            file: "metallb-pool.yaml".into(),
            cluster: "config".into(),
            timeout: POOL_APPLY_TIMEOUT,
            step: "applying".into(),
        };
        assert!(is_transient(&timeout));
        let not_served = ApplyError::NotServed { target: target(), api_version: "v1".into() };
        assert!(!is_transient(&not_served));
    }

    /// Runs the retry loop over canned answers; returns its outcome and the calls made.
    async fn retried(answers: Vec<Result<(), ApplyError>>) -> (Result<(), (u32, ApplyError)>, u32) {
        let answers = std::sync::Mutex::new(answers.into_iter());
        let calls = std::sync::atomic::AtomicU32::new(0);
        let apply = || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = answers.lock().unwrap().next().expect("called more often than expected");
            async move { next }
        };
        let result = retry_while_transient(apply, 4, Duration::ZERO).await;
        (result, calls.into_inner())
    }

    #[tokio::test]
    async fn a_permanent_error_fails_at_once_naming_cluster_object_and_reason() {
        let (result, calls) =
            retried(vec![Err(rejected(422, "Invalid", "spec.addresses[0]: invalid range"))]).await;
        assert_eq!(calls, 1);
        let (attempts, source) = result.unwrap_err();
        let err = KindError::MetalLbPool {
            cluster: "config".into(),
            pool: range("172.18.6.66", "172.18.6.115"),
            attempts,
            source: Box::new(source),
        };
        let msg = err.to_string();
        assert!(msg.starts_with("cluster config: MetalLB address pool 172.18.6.66-172.18.6.115"));
        assert!(msg.contains("not retried"), "{msg}");
        assert!(msg.contains("IPAddressPool metallb-system/default-pool"), "{msg}");
        assert!(msg.contains("Invalid (HTTP 422): spec.addresses[0]: invalid range"), "{msg}");
    }

    #[tokio::test]
    async fn a_webhook_still_starting_is_retried_a_bounded_number_of_times() {
        let down = || Err(rejected(500, "InternalError", WEBHOOK_DOWN));
        let (result, calls) = retried(vec![down(), down(), Ok(())]).await;
        assert_eq!((result.is_ok(), calls), (true, 3));

        let (result, calls) = retried(vec![down(), down(), down(), down()]).await;
        assert_eq!(calls, 4);
        let (attempts, source) = result.unwrap_err();
        assert_eq!(attempts, 4);
        let why = pool_failure(attempts, &source);
        assert!(why.contains("still failing after 4 attempts"), "{why}");

        // A permanent error after transient ones ends the retries too.
        let (result, calls) =
            retried(vec![down(), Err(rejected(422, "Invalid", "bad")), Ok(())]).await;
        assert_eq!((result.unwrap_err().0, calls), (2, 2));
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
