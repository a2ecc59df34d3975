//! Istio versions the suite supports, and every fact that differs between them
//! (procedure.md "Values by Istio version", istio-release.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Oldest supported minor release (1.22).
pub const OLDEST_MINOR: u32 = 22;
/// Newest supported minor release (1.30).
pub const NEWEST_MINOR: u32 = 30;
/// The newest release known to this suite, the default of every command.
pub const NEWEST: IstioVersion = IstioVersion { major: 1, minor: 30, patch: 3 };

/// The supported range as users read it in error messages.
pub const SUPPORTED_RANGE: &str = "1.22.0 to 1.30.x";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("`{0}` is not an Istio version: expected MAJOR.MINOR.PATCH, e.g. 1.30.3")]
    Malformed(String),
    #[error("Istio {0} is not supported: this suite supports Istio {SUPPORTED_RANGE}")]
    Unsupported(IstioVersion),
}

/// A released Istio version, `MAJOR.MINOR.PATCH`, within the supported range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IstioVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
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
    /// `Endpoints` named `istiod` (seen on 1.22-1.24 charts).
    Endpoints,
    /// `EndpointSlice` (`discovery.k8s.io/v1`) with ports 15012 and 15017 (1.29+).
    EndpointSlice,
}

impl IstioVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch }
    }

    /// Parses and checks the supported range. A leading `v` is accepted.
    pub fn parse_supported(s: &str) -> Result<Self, VersionError> {
        let v: IstioVersion = s.parse()?;
        v.check_supported()?;
        Ok(v)
    }

    pub fn check_supported(self) -> Result<(), VersionError> {
        if self.major == 1 && (OLDEST_MINOR..=NEWEST_MINOR).contains(&self.minor) {
            Ok(())
        } else {
            Err(VersionError::Unsupported(self))
        }
    }

    fn minor_at_least(self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }

    pub fn remote_profile(self) -> RemoteProfile {
        if self.minor_at_least(24) { RemoteProfile::Remote } else { RemoteProfile::IstiodRemote }
    }

    /// What the config cluster's chart renders for `EXTERNAL_ISTIOD_ADDR`. Checked on
    /// real charts for 1.22-1.24 (Endpoints) and 1.29+ (EndpointSlice); 1.25-1.28
    /// were not checked, so verification accepts either there.
    pub fn istiod_address_objects(self) -> &'static [IstiodAddressObject] {
        use IstiodAddressObject::*;
        if self.minor_at_least(29) {
            &[EndpointSlice]
        } else if self.minor_at_least(25) {
            &[Endpoints, EndpointSlice]
        } else {
            &[Endpoints]
        }
    }

    /// 1.29+ also render a `values` config map beside `istio` in the config cluster.
    pub fn renders_values_configmap(self) -> bool {
        self.minor_at_least(29)
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

    /// The client sample's image as that release's manifest names it.
    pub fn client_image(self) -> &'static str {
        if self.minor_at_least(29) {
            "docker.io/curlimages/curl:8.16.0"
        } else if self.minor_at_least(28) {
            "curlimages/curl:8.16.0"
        } else {
            "curlimages/curl"
        }
    }

    /// 1.27+ turn native sidecars on (`auto`) when kubelets are 1.33+: the proxy is
    /// then an init container with `restartPolicy: Always`.
    pub fn native_sidecars_auto(self) -> bool {
        self.minor_at_least(27)
    }

    /// Kubernetes minor versions this Istio release supports (release announcements).
    pub fn kubernetes_minors(self) -> (u32, u32) {
        match self.minor {
            22 | 23 => (27, 30),
            24 => (28, 31),
            25 => (29, 32),
            26 => (29, 33),
            27 => (29, 33),
            28 => (29, 34),
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
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for IstioVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed(s.to_string());
        let trimmed = s.trim().strip_prefix('v').unwrap_or(s.trim());
        let mut parts = trimmed.split('.');
        let mut next = || -> Result<u32, VersionError> {
            let p = parts.next().ok_or_else(malformed)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            p.parse().map_err(|_| malformed())
        };
        let v = IstioVersion::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(malformed());
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
    #[case("1.30.3")]
    #[case("v1.29.6")]
    fn supported_versions_parse(#[case] s: &str) {
        assert!(IstioVersion::parse_supported(s).is_ok(), "{s}");
    }

    #[rstest]
    #[case("1.21.0")]
    #[case("1.31.0")]
    #[case("2.0.0")]
    #[case("0.22.1")]
    fn unsupported_versions_name_the_range(#[case] s: &str) {
        let err = IstioVersion::parse_supported(s).unwrap_err();
        assert_eq!(err, VersionError::Unsupported(v(s)));
        let msg = err.to_string();
        assert!(msg.contains("1.22.0 to 1.30.x"), "{msg}");
        assert!(msg.contains(s.trim_start_matches('v')), "{msg}");
    }

    #[rstest]
    #[case("1.30")]
    #[case("1.30.3.1")]
    #[case("latest")]
    #[case("1.30.x")]
    #[case("")]
    #[case("1.-1.0")]
    fn malformed_versions_are_refused(#[case] s: &str) {
        assert!(matches!(s.parse::<IstioVersion>(), Err(VersionError::Malformed(_))), "{s}");
    }

    #[test]
    fn remote_profile_changes_at_1_24() {
        assert_eq!(v("1.22.8").remote_profile(), RemoteProfile::IstiodRemote);
        assert_eq!(v("1.23.6").remote_profile(), RemoteProfile::IstiodRemote);
        assert_eq!(v("1.24.0").remote_profile(), RemoteProfile::Remote);
        assert_eq!(v("1.30.3").remote_profile(), RemoteProfile::Remote);
        assert_eq!(v("1.23.6").remote_charts(), ["istiod-remote"]);
        assert_eq!(v("1.24.6").remote_charts(), ["base", "istiod"]);
        assert!(v("1.23.6").remote_chart_carries_crds());
        assert!(!v("1.24.6").remote_chart_carries_crds());
    }

    #[test]
    fn address_object_by_version() {
        use IstiodAddressObject::*;
        assert_eq!(v("1.22.8").istiod_address_objects(), [Endpoints]);
        assert_eq!(v("1.24.6").istiod_address_objects(), [Endpoints]);
        assert_eq!(v("1.26.0").istiod_address_objects(), [Endpoints, EndpointSlice]);
        assert_eq!(v("1.29.6").istiod_address_objects(), [EndpointSlice]);
        assert!(!v("1.28.0").renders_values_configmap());
        assert!(v("1.29.0").renders_values_configmap());
    }

    #[test]
    fn hubs_samples_and_images_by_version() {
        assert_eq!(v("1.29.6").default_hub(), "docker.io/istio");
        assert_eq!(v("1.30.0").default_hub(), "registry.istio.io/release");
        assert_eq!(v("1.23.6").client_sample(), "sleep");
        assert_eq!(v("1.24.0").client_sample(), "curl");
        assert_eq!(v("1.27.0").client_image(), "curlimages/curl");
        assert_eq!(v("1.28.0").client_image(), "curlimages/curl:8.16.0");
        assert_eq!(v("1.29.0").client_image(), "docker.io/curlimages/curl:8.16.0");
        assert!(!v("1.26.9").native_sidecars_auto());
        assert!(v("1.27.0").native_sidecars_auto());
    }

    #[test]
    fn kubernetes_ranges_follow_the_release_table() {
        assert_eq!(v("1.22.0").kubernetes_minors(), (27, 30));
        assert_eq!(v("1.24.0").kubernetes_minors(), (28, 31));
        assert_eq!(v("1.26.0").kubernetes_minors(), (29, 33));
        assert_eq!(v("1.29.0").kubernetes_minors(), (31, 35));
        assert_eq!(v("1.30.3").kubernetes_minors(), (32, 36));
    }

    #[test]
    fn serde_round_trip_is_a_string() {
        let json = serde_json::to_string(&NEWEST).unwrap();
        assert_eq!(json, "\"1.30.3\"");
        assert_eq!(serde_json::from_str::<IstioVersion>(&json).unwrap(), NEWEST);
    }
}
