//! Istio versions the suite supports, and every fact that differs between them
//! (docs/procedure.md "Values by Istio version", docs/istio-release.md).
//!
//! [`RELEASES`] is the one definition of what the suite knows: the newest patch of
//! every supported minor. The default version of every command ([`NEWEST`]), the
//! range messages name, the kind node image per version and the e2e workflow's
//! matrix all derive from it (a test compares the workflow with it).
//!
//! Versions are SemVer: `1.31.0`, and pre-releases such as `1.31.0-rc.0`,
//! `1.32.0-alpha.1` or a dev build's `1.32.0-dev`. Every version from 1.22 on is
//! accepted; a minor newer than the newest known one is run with the newest known
//! release's rules ([`IstioVersion::rules`]), and [`IstioVersion::notice`] says so.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The newest patch of every supported minor, oldest first (Istio's release tags as
/// of 2026-11; docs/istio-release.md).
pub const RELEASES: &[IstioVersion] = &[
    IstioVersion::new(1, 22, 8),
    IstioVersion::new(1, 23, 6),
    IstioVersion::new(1, 24, 6),
    IstioVersion::new(1, 25, 5),
    IstioVersion::new(1, 26, 8),
    IstioVersion::new(1, 27, 9),
    IstioVersion::new(1, 28, 10),
    IstioVersion::new(1, 29, 7),
    IstioVersion::new(1, 30, 4),
    IstioVersion::new(1, 31, 0),
];
/// The newest release known to this suite, the default of every command.
pub const NEWEST: IstioVersion = RELEASES[RELEASES.len() - 1];
/// Oldest supported minor release.
pub const OLDEST_MINOR: u32 = RELEASES[0].minor;
/// Newest minor release whose facts this suite knows.
pub const NEWEST_MINOR: u32 = NEWEST.minor;

/// The supported range as users read it in messages, e.g. "1.22.0 and later (known:
/// 1.22 to 1.31; newer minors run with 1.31's rules)".
pub fn supported_range() -> String {
    format!(
        "1.{OLDEST_MINOR}.0 and later (known: 1.{OLDEST_MINOR} to 1.{NEWEST_MINOR}; newer \
         minors run with 1.{NEWEST_MINOR}'s rules)"
    )
}

/// The longest pre-release part accepted (`-rc.0`, `-alpha.1`, `-dev`, a vendor's
/// build suffix).
pub const MAX_PRE_RELEASE: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error(
        "`{0}` is not an Istio version: expected MAJOR.MINOR.PATCH with an optional \
         pre-release part, e.g. 1.31.0 or 1.32.0-rc.1"
    )]
    Malformed(String),
    #[error("Istio {0} is not supported: this suite supports Istio {range}", range = supported_range())]
    Unsupported(IstioVersion),
}

/// An Istio version, `MAJOR.MINOR.PATCH[-PRE]`. Ordered as SemVer orders versions: a
/// pre-release comes before its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IstioVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The pre-release part after `-` (empty for a release).
    pre: PreRelease,
}

/// A SemVer pre-release part, kept inline so that versions stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PreRelease {
    len: u8,
    bytes: [u8; MAX_PRE_RELEASE],
}

/// How the config cluster's remote profile is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RemoteProfile {
    /// 1.24+: `profile: remote` (Helm: `base` and `istiod` charts with `profile=remote`).
    Remote,
    /// 1.22 and 1.23: `istiodRemote.enabled: true` with base and pilot disabled
    /// (Helm: the separate `istiod-remote` chart, removed in 1.24).
    IstiodRemote,
}

/// The object the remote profile renders to point the `istiod` Service at the
/// external address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IstiodAddressObject {
    /// `Endpoints` named `istiod` (1.22.0 to 1.27.x).
    Endpoints,
    /// `EndpointSlice` (`discovery.k8s.io/v1`) with ports 15012 and 15017 (1.28.0 on).
    EndpointSlice,
}

/// Env names the istiod chart renders itself at 1.22.0: a `pilot.env` entry of the
/// same name is a duplicate that server-side apply refuses. Several are conditional
/// in the template (some skipped when `pilot.env` has them); all count as the
/// chart's.
const CHART_ENV_1_22: &[&str] = &[
    "CLUSTER_ID",
    "GOMAXPROCS",
    "GOMEMLIMIT",
    "KUBECONFIG",
    "PILOT_CERT_PROVIDER",
    "PILOT_ENABLE_ANALYSIS",
    "PILOT_TRACE_SAMPLING",
    "PLATFORM",
    "POD_NAME",
    "POD_NAMESPACE",
    "REVISION",
    "SERVICE_ACCOUNT",
];

/// From `(minor, patch)` on, these names are rendered and those no longer.
type ChartEnvChange = ((u32, u32), &'static [&'static str], &'static [&'static str]);

/// How the chart's own env names changed after 1.22.0, oldest first: from
/// `1.<minor>.<patch>` on, `added` are rendered and `removed` no longer (read off
/// `istio-discovery/templates/deployment.yaml` at every release tag; docs/istio-release.md
/// "Corrections").
const CHART_ENV_CHANGES: &[ChartEnvChange] = &[
    ((23, 0), &["CA_TRUSTED_NODE_ACCOUNTS", "EXTERNAL_ISTIOD"], &[]),
    ((27, 0), &["PILOT_CA_CERT_CONFIGMAP"], &[]),
    ((29, 0), &["PILOT_CRL_CONFIGMAP"], &["GOMEMLIMIT"]),
    ((30, 0), &["PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS"], &[]),
    ((30, 3), &["PILOT_NODE_UNTAINT_CONTROLLERS_TAINT_NAME"], &[]),
    ((31, 0), &["GODEBUG"], &[]),
];

impl IstioVersion {
    /// A release (no pre-release part).
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch, pre: PreRelease::NONE }
    }

    /// The pre-release part (`rc.0` of `1.31.0-rc.0`), if any.
    pub fn pre_release(&self) -> Option<&str> {
        self.pre.as_str()
    }

    /// Parses and checks the supported range. A leading `v` is accepted.
    pub fn parse_supported(s: &str) -> Result<Self, VersionError> {
        let v: IstioVersion = s.parse()?;
        v.check_supported()?;
        Ok(v)
    }

    /// Refuses versions older than 1.22; everything newer is supported, with the
    /// newest known rules where the minor is unknown ([`IstioVersion::rules`]).
    pub fn check_supported(self) -> Result<(), VersionError> {
        if self.major > 1 || (self.major == 1 && self.minor >= OLDEST_MINOR) {
            Ok(())
        } else {
            Err(VersionError::Unsupported(self))
        }
    }

    /// Whether this suite knows the version's minor (1.22 to [`NEWEST_MINOR`]).
    pub fn is_known_minor(self) -> bool {
        self.major == 1 && (OLDEST_MINOR..=NEWEST_MINOR).contains(&self.minor)
    }

    /// The version whose facts apply: the version itself when its minor is known,
    /// else [`NEWEST`] (a release candidate or main-branch build of the next minor is
    /// installed as the newest known release is).
    pub fn rules(self) -> IstioVersion {
        if self.is_known_minor() { self } else { NEWEST }
    }

    /// What a user must be told about this version before it runs, e.g. "Istio 1.32.0-rc.1
    /// is newer than this suite knows; using 1.31's rules". `None` for a known minor.
    pub fn notice(self) -> Option<String> {
        (!self.is_known_minor() && self.check_supported().is_ok()).then(|| {
            format!(
                "Istio {self} is newer than this suite knows; using 1.{NEWEST_MINOR}'s rules \
                 (those of Istio {NEWEST})"
            )
        })
    }

    /// Whether the rules' version is at least `1.<minor>.<patch>` (pre-release parts
    /// ignored: `1.28.0-rc.1` follows 1.28.0's facts).
    fn at_least(self, minor: u32, patch: u32) -> bool {
        let r = self.rules();
        (r.minor, r.patch) >= (minor, patch)
    }

    fn minor_at_least(self, minor: u32) -> bool {
        self.at_least(minor, 0)
    }

    pub fn remote_profile(self) -> RemoteProfile {
        if self.minor_at_least(24) { RemoteProfile::Remote } else { RemoteProfile::IstiodRemote }
    }

    /// What the config cluster's chart renders for `EXTERNAL_ISTIOD_ADDR`: `Endpoints`
    /// up to 1.27.x, an `EndpointSlice` from 1.28.0 (checked on the real charts).
    pub fn istiod_address_object(self) -> IstiodAddressObject {
        if self.minor_at_least(28) {
            IstiodAddressObject::EndpointSlice
        } else {
            IstiodAddressObject::Endpoints
        }
    }

    /// 1.26.0 and later also render a `values` config map beside `istio` in the config
    /// cluster.
    pub fn renders_values_configmap(self) -> bool {
        self.minor_at_least(26)
    }

    /// The 1.22/1.23 `istiod-remote` chart carries the Istio CRDs itself.
    pub fn remote_chart_carries_crds(self) -> bool {
        self.remote_profile() == RemoteProfile::IstiodRemote
    }

    /// Default image hub: `docker.io/istio` to 1.29, `registry.istio.io/release` from 1.30.
    pub fn default_hub(self) -> &'static str {
        if self.minor_at_least(30) { "registry.istio.io/release" } else { "docker.io/istio" }
    }

    /// The client sample: `sleep` in 1.22-1.23, `curl` from 1.24 (same manifest).
    pub fn client_sample(self) -> &'static str {
        if self.minor_at_least(24) { "curl" } else { "sleep" }
    }

    /// The client sample's image as that release's manifest names it (it changed
    /// within the 1.26, 1.27 and 1.28 patch series).
    pub fn client_image(self) -> &'static str {
        const UNTAGGED: &str = "curlimages/curl";
        const TAGGED: &str = "curlimages/curl:8.16.0";
        const QUALIFIED: &str = "docker.io/curlimages/curl:8.16.0";
        let r = self.rules();
        match r.minor {
            ..=25 => UNTAGGED,
            26 if r.patch < 7 => UNTAGGED,
            27 if r.patch < 4 => UNTAGGED,
            28 if r.patch < 1 => TAGGED,
            _ => QUALIFIED,
        }
    }

    /// 1.27+ turn native sidecars on (`auto`) when kubelets are 1.33+: the proxy is
    /// then an init container with `restartPolicy: Always`.
    pub fn native_sidecars_auto(self) -> bool {
        self.minor_at_least(27)
    }

    /// Kubernetes minor versions this Istio release supports: the release
    /// announcements' range, its lower end raised to istioctl's own minimum (what a
    /// real install checks). 1.31's upper end is the newest known kind node image's.
    pub fn kubernetes_minors(self) -> (u32, u32) {
        let r = self.rules();
        match r.minor {
            ..=23 => (27, 30),
            24 => (28, 31),
            25 => (29, 32),
            26 | 27 => (29, 33),
            28 if r.patch < 2 => (29, 34),
            28 => (30, 34),
            29 => (31, 35),
            _ => (32, 36),
        }
    }

    /// The Helm charts the config cluster gets, in install order.
    pub fn remote_charts(self) -> &'static [&'static str] {
        match self.remote_profile() {
            RemoteProfile::Remote => &["base", "istiod"],
            RemoteProfile::IstiodRemote => &["istiod-remote"],
        }
    }

    /// The doc test's `PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING`: the feature was
    /// removed in 1.23.0.
    pub fn has_config_distribution_tracking(self) -> bool {
        !self.minor_at_least(23)
    }

    /// Env names the istiod chart renders itself: never to be set again in
    /// `pilot.env`.
    pub fn chart_env_names(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = CHART_ENV_1_22.to_vec();
        for &((minor, patch), added, removed) in CHART_ENV_CHANGES {
            if self.at_least(minor, patch) {
                names.extend_from_slice(added);
                names.retain(|n| !removed.contains(n));
            }
        }
        names.sort_unstable();
        names
    }

    /// Whether `global.remotePilotAddress` may be an IPv6 address: up to 1.29 the
    /// chart renders an `ExternalName` Service for it, which no webhook client can
    /// call; 1.30 renders an IPv6 EndpointSlice.
    pub fn accepts_ipv6_remote_address(self) -> bool {
        self.minor_at_least(30)
    }

    /// Whether Helm 3.18.5+ and Helm 4 refuse this version's `gateway` chart against
    /// its own schema (`additional properties 'defaults' not allowed`, helm#31160,
    /// istio#57354): 1.22 to 1.24, 1.25.0-1.25.4, 1.26.0-1.26.3 and 1.27.0.
    pub fn gateway_chart_fails_schema(self) -> bool {
        let r = self.rules();
        match r.minor {
            ..=24 => true,
            25 => r.patch <= 4,
            26 => r.patch <= 3,
            27 => r.patch == 0,
            _ => false,
        }
    }
}

impl PreRelease {
    const NONE: PreRelease = PreRelease { len: 0, bytes: [0; MAX_PRE_RELEASE] };

    /// A SemVer pre-release part: dot-separated, non-empty identifiers of ASCII
    /// letters, digits and hyphens; a numeric identifier has no leading zero (so that
    /// `rc.01` is refused rather than ordered equal to, yet unequal to, `rc.1`).
    fn parse(s: &str) -> Option<PreRelease> {
        let identifier = |id: &str| {
            let numeric = id.bytes().all(|b| b.is_ascii_digit());
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(numeric && id.len() > 1 && id.starts_with('0'))
        };
        let valid = !s.is_empty() && s.len() <= MAX_PRE_RELEASE && s.split('.').all(identifier);
        if !valid {
            return None;
        }
        let mut bytes = [0; MAX_PRE_RELEASE];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(PreRelease { len: s.len() as u8, bytes })
    }

    fn as_str(&self) -> Option<&str> {
        let s = std::str::from_utf8(&self.bytes[..usize::from(self.len)]).ok()?;
        (!s.is_empty()).then_some(s)
    }
}

impl fmt::Debug for PreRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str().unwrap_or(""))
    }
}

/// SemVer precedence of two pre-release parts (both present).
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl Ord for IstioVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre_release(), other.pre_release()) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => compare_pre(a, b),
            })
    }
}

impl PartialOrd for IstioVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        match self.pre_release() {
            Some(pre) => write!(f, "-{pre}"),
            None => Ok(()),
        }
    }
}

impl FromStr for IstioVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed(s.to_string());
        let trimmed = s.trim().strip_prefix('v').unwrap_or(s.trim());
        let (core, pre) = match trimmed.split_once('-') {
            Some((core, pre)) => (core, Some(PreRelease::parse(pre).ok_or_else(malformed)?)),
            None => (trimmed, None),
        };
        let mut parts = core.split('.');
        let mut next = || -> Result<u32, VersionError> {
            let p = parts.next().ok_or_else(malformed)?;
            let leading_zero = p.len() > 1 && p.starts_with('0');
            if p.is_empty() || leading_zero || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            p.parse().map_err(|_| malformed())
        };
        let mut v = IstioVersion::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(malformed());
        }
        if let Some(pre) = pre {
            v.pre = pre;
        }
        Ok(v)
    }
}

impl TryFrom<String> for IstioVersion {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<IstioVersion> for String {
    fn from(v: IstioVersion) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    #[rstest]
    #[case("1.22.0")]
    #[case("1.23.6")]
    #[case("1.24.6")]
    #[case("1.30.4")]
    #[case("1.31.0")]
    #[case("v1.29.6")]
    #[case("1.31.0-rc.0")]
    #[case("1.32.0-alpha.1")]
    #[case("1.32.0-dev")]
    #[case("2.0.0")]
    fn supported_versions_parse(#[case] s: &str) {
        assert!(IstioVersion::parse_supported(s).is_ok(), "{s}");
    }

    #[rstest]
    #[case("1.21.9")]
    #[case("1.21.0-rc.1")]
    #[case("0.22.1")]
    fn older_versions_are_refused_naming_the_range(#[case] s: &str) {
        let err = IstioVersion::parse_supported(s).unwrap_err();
        assert_eq!(err, VersionError::Unsupported(v(s)));
        let msg = err.to_string();
        assert!(msg.contains("1.22.0 and later"), "{msg}");
        assert!(msg.contains("1.22 to 1.31"), "{msg}");
        assert!(msg.contains(s), "{msg}");
    }

    #[rstest]
    #[case("1.30")]
    #[case("1.30.3.1")]
    #[case("latest")]
    #[case("1.30.x")]
    #[case("")]
    #[case("1.-1.0")]
    #[case("1.31.0-")]
    #[case("1.31.0-rc..1")]
    #[case("1.31.0-rc_1")]
    #[case("1.031.0")]
    #[case("1.31.0-rc.01")]
    #[case("1.31.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    fn malformed_versions_are_refused(#[case] s: &str) {
        assert!(matches!(s.parse::<IstioVersion>(), Err(VersionError::Malformed(_))), "{s}");
    }

    #[test]
    fn pre_releases_round_trip_and_order_as_semver() {
        let rc = v("1.31.0-rc.0");
        assert_eq!(rc.to_string(), "1.31.0-rc.0");
        assert_eq!(rc.pre_release(), Some("rc.0"));
        assert_eq!(v("v1.32.0-dev").to_string(), "1.32.0-dev");
        assert_eq!(NEWEST.pre_release(), None);
        let ordered: Vec<IstioVersion> = [
            "1.31.0-alpha.0",
            "1.31.0-alpha.1",
            "1.31.0-beta.0",
            "1.31.0-rc.0",
            "1.31.0-rc.4",
            "1.31.0-rc.10",
            "1.31.0",
            "1.31.1",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        let mut sorted = ordered.clone();
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, ordered);
        assert!(v("1.31.0-1") < v("1.31.0-alpha"), "numeric identifiers sort first");
        assert!(v("1.31.0-rc.0") < v("1.31.0-rc.0a"), "rc.0a is alphanumeric");
        assert_ne!(v("1.31.0-rc.0"), v("1.31.0"));
    }

    #[test]
    fn newer_minors_use_the_newest_known_rules_and_say_so() {
        let next = v("1.32.0-rc.1");
        assert_eq!(next.rules(), NEWEST);
        let notice = next.notice().unwrap();
        assert_eq!(
            notice,
            "Istio 1.32.0-rc.1 is newer than this suite knows; using 1.31's rules (those of \
             Istio 1.31.0)"
        );
        assert_eq!(next.kubernetes_minors(), NEWEST.kubernetes_minors());
        assert_eq!(next.default_hub(), NEWEST.default_hub());
        assert_eq!(next.chart_env_names(), NEWEST.chart_env_names());
        assert_eq!(v("1.31.0-rc.0").notice(), None, "a known minor's pre-release");
        assert_eq!(v("1.22.8").notice(), None);
        assert_eq!(v("1.21.0").notice(), None, "refused, not noticed");
    }

    /// The one definition: oldest first, one release per minor, no gap, the newest last.
    #[test]
    fn releases_cover_every_minor_once() {
        let minors: Vec<u32> = RELEASES.iter().map(|r| r.minor).collect();
        assert_eq!(minors, (OLDEST_MINOR..=NEWEST_MINOR).collect::<Vec<_>>());
        assert!(RELEASES.iter().all(|r| r.major == 1 && r.pre_release().is_none()));
        assert_eq!(NEWEST, v("1.31.0"));
        assert_eq!(
            supported_range(),
            "1.22.0 and later (known: 1.22 to 1.31; newer minors run with 1.31's rules)"
        );
    }

    #[test]
    fn remote_profile_changes_at_1_24() {
        assert_eq!(v("1.22.8").remote_profile(), RemoteProfile::IstiodRemote);
        assert_eq!(v("1.23.6").remote_profile(), RemoteProfile::IstiodRemote);
        assert_eq!(v("1.24.0").remote_profile(), RemoteProfile::Remote);
        assert_eq!(v("1.31.0").remote_profile(), RemoteProfile::Remote);
        assert_eq!(v("1.23.6").remote_charts(), ["istiod-remote"]);
        assert_eq!(v("1.24.6").remote_charts(), ["base", "istiod"]);
        assert!(v("1.23.6").remote_chart_carries_crds());
        assert!(!v("1.24.6").remote_chart_carries_crds());
    }

    #[test]
    fn address_object_and_values_configmap_by_version() {
        use IstiodAddressObject::*;
        assert_eq!(v("1.22.8").istiod_address_object(), Endpoints);
        assert_eq!(v("1.27.9").istiod_address_object(), Endpoints);
        assert_eq!(v("1.28.0-rc.0").istiod_address_object(), EndpointSlice);
        assert_eq!(v("1.28.0").istiod_address_object(), EndpointSlice);
        assert_eq!(v("1.31.0").istiod_address_object(), EndpointSlice);
        assert!(!v("1.25.5").renders_values_configmap());
        assert!(v("1.26.0").renders_values_configmap());
        assert!(v("1.29.0").renders_values_configmap());
    }

    #[rstest]
    #[case("1.22.8", "curlimages/curl")]
    #[case("1.24.0", "curlimages/curl")]
    #[case("1.26.6", "curlimages/curl")]
    #[case("1.26.7", "docker.io/curlimages/curl:8.16.0")]
    #[case("1.27.3", "curlimages/curl")]
    #[case("1.27.4", "docker.io/curlimages/curl:8.16.0")]
    #[case("1.28.0", "curlimages/curl:8.16.0")]
    #[case("1.28.1", "docker.io/curlimages/curl:8.16.0")]
    #[case("1.29.0", "docker.io/curlimages/curl:8.16.0")]
    #[case("1.31.0", "docker.io/curlimages/curl:8.16.0")]
    fn client_image_by_patch(#[case] version: &str, #[case] image: &str) {
        assert_eq!(v(version).client_image(), image);
    }

    #[test]
    fn hubs_samples_and_sidecars_by_version() {
        assert_eq!(v("1.29.6").default_hub(), "docker.io/istio");
        assert_eq!(v("1.30.0").default_hub(), "registry.istio.io/release");
        assert_eq!(v("1.23.6").client_sample(), "sleep");
        assert_eq!(v("1.24.0").client_sample(), "curl");
        assert!(!v("1.26.9").native_sidecars_auto());
        assert!(v("1.27.0").native_sidecars_auto());
    }

    /// The release table, each lower end at least istioctl's minimum
    /// (`istioctl/pkg/install/k8sversion`).
    #[rstest]
    #[case("1.22.0", (27, 30), 26)]
    #[case("1.23.6", (27, 30), 26)]
    #[case("1.24.0", (28, 31), 28)]
    #[case("1.25.0", (29, 32), 28)]
    #[case("1.25.5", (29, 32), 29)]
    #[case("1.26.0", (29, 33), 29)]
    #[case("1.27.9", (29, 33), 29)]
    #[case("1.28.0", (29, 34), 29)]
    #[case("1.28.1", (29, 34), 29)]
    #[case("1.28.2", (30, 34), 30)]
    #[case("1.28.10", (30, 34), 30)]
    #[case("1.29.0", (31, 35), 30)]
    #[case("1.30.4", (32, 36), 32)]
    #[case("1.31.0", (32, 36), 32)]
    fn kubernetes_ranges_follow_the_release_table(
        #[case] version: &str,
        #[case] range: (u32, u32),
        #[case] istioctl_minimum: u32,
    ) {
        assert_eq!(v(version).kubernetes_minors(), range);
        assert!(range.0 >= istioctl_minimum, "{version}: {range:?}");
    }

    #[test]
    fn chart_env_names_by_version() {
        let names = |s: &str| v(s).chart_env_names();
        let v122 = names("1.22.8");
        assert!(v122.contains(&"CLUSTER_ID") && v122.contains(&"GOMEMLIMIT"));
        assert!(!v122.contains(&"EXTERNAL_ISTIOD"));
        let v123 = names("1.23.0");
        assert!(v123.contains(&"EXTERNAL_ISTIOD") && v123.contains(&"CA_TRUSTED_NODE_ACCOUNTS"));
        assert_eq!(v123.len(), v122.len() + 2);
        assert!(!names("1.26.8").contains(&"PILOT_CA_CERT_CONFIGMAP"));
        assert!(names("1.27.0").contains(&"PILOT_CA_CERT_CONFIGMAP"));
        assert!(names("1.28.10").contains(&"GOMEMLIMIT"));
        let v129 = names("1.29.0");
        assert!(!v129.contains(&"GOMEMLIMIT") && v129.contains(&"PILOT_CRL_CONFIGMAP"));
        assert!(names("1.30.0").contains(&"PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS"));
        assert!(!names("1.30.2").contains(&"PILOT_NODE_UNTAINT_CONTROLLERS_TAINT_NAME"));
        assert!(names("1.30.3").contains(&"PILOT_NODE_UNTAINT_CONTROLLERS_TAINT_NAME"));
        assert!(!names("1.30.4").contains(&"GODEBUG"));
        assert!(names("1.31.0-rc.0").contains(&"GODEBUG"));
        assert_eq!(names("1.31.0").len(), 18);
    }

    #[test]
    fn smaller_facts_by_version() {
        assert!(v("1.22.8").has_config_distribution_tracking());
        assert!(!v("1.23.0").has_config_distribution_tracking());
        assert!(!v("1.29.7").accepts_ipv6_remote_address());
        assert!(v("1.30.0").accepts_ipv6_remote_address());
        for (version, fails) in [
            ("1.22.8", true),
            ("1.24.6", true),
            ("1.25.4", true),
            ("1.25.5", false),
            ("1.26.3", true),
            ("1.26.4", false),
            ("1.27.0", true),
            ("1.27.1", false),
            ("1.31.0", false),
        ] {
            assert_eq!(v(version).gateway_chart_fails_schema(), fails, "{version}");
        }
    }

    #[test]
    fn serde_round_trip_is_a_string() {
        let json = serde_json::to_string(&NEWEST).unwrap();
        assert_eq!(json, "\"1.31.0\"");
        assert_eq!(serde_json::from_str::<IstioVersion>(&json).unwrap(), NEWEST);
        let rc = v("1.32.0-rc.1");
        let json = serde_json::to_string(&rc).unwrap();
        assert_eq!(serde_json::from_str::<IstioVersion>(&json).unwrap(), rc);
    }
}
