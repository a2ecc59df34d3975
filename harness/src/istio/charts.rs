//! Where the helm backend's charts come from (istio-release.md "Helm").
//!
//! The harness installs the charts of the release archive (`istio-<v>/manifests/
//! charts/`), already downloaded, checksummed and cached with istioctl: one source for
//! every supported version, including 1.22, whose `istiod-remote` chart exists only
//! there, and no second download from the Helm repository. The repository location is
//! kept for reference and for users who point Helm at it themselves.

use std::path::PathBuf;

use super::release::Release;
use crate::version::{IstioVersion, RemoteProfile};

/// Istio's Helm repository (charts `<chart>-<v>.tgz`, chart version = Istio version).
pub const HELM_REPO_URL: &str = "https://istio-release.storage.googleapis.com/charts";

/// A chart the procedure installs, by its published name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Base,
    Istiod,
    /// 1.22 and 1.23 only (removed in 1.24, istio/istio#53294).
    IstiodRemote,
    Gateway,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChartError {
    #[error("unknown chart `{0}`: expected base, istiod, istiod-remote or gateway")]
    Unknown(String),
    #[error(
        "Istio {0} has no istiod-remote chart (removed in 1.24): use `base` and `istiod` with profile=remote"
    )]
    NoIstiodRemote(IstioVersion),
    #[error("the release at {} has no chart {chart} (looked in {})", root.display(), dir.display())]
    NotInRelease { chart: &'static str, root: PathBuf, dir: PathBuf },
}

impl Chart {
    pub fn name(self) -> &'static str {
        match self {
            Chart::Base => "base",
            Chart::Istiod => "istiod",
            Chart::IstiodRemote => "istiod-remote",
            Chart::Gateway => "gateway",
        }
    }

    pub fn from_name(name: &str) -> Result<Self, ChartError> {
        [Chart::Base, Chart::Istiod, Chart::IstiodRemote, Chart::Gateway]
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| ChartError::Unknown(name.to_string()))
    }

    /// The chart's directory under `manifests/charts/` (istiod's source directory is
    /// `istio-control/istio-discovery`).
    pub fn dir_in_release(self) -> &'static str {
        match self {
            Chart::Base => "base",
            Chart::Istiod => "istio-control/istio-discovery",
            Chart::IstiodRemote => "istiod-remote",
            Chart::Gateway => "gateway",
        }
    }

    /// The chart's tarball in [`HELM_REPO_URL`] for a version (`istiod-remote` was
    /// published there only for 1.23).
    pub fn repo_url(self, version: IstioVersion) -> String {
        format!("{HELM_REPO_URL}/{}-{version}.tgz", self.name())
    }

    fn exists_in(self, version: IstioVersion) -> bool {
        self != Chart::IstiodRemote || version.remote_profile() == RemoteProfile::IstiodRemote
    }
}

/// The chart's directory inside an extracted release, checked to exist.
pub fn local_chart(release: &Release, chart: Chart) -> Result<PathBuf, ChartError> {
    if !chart.exists_in(release.version) {
        return Err(ChartError::NoIstiodRemote(release.version));
    }
    let dir = release.charts_dir().join(chart.dir_in_release());
    if !dir.join("Chart.yaml").is_file() {
        return Err(ChartError::NotInRelease {
            chart: chart.name(),
            root: release.root.clone(),
            dir,
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_22: IstioVersion = IstioVersion::new(1, 22, 8);
    const V1_30: IstioVersion = IstioVersion::new(1, 30, 3);

    fn release_with(version: IstioVersion, charts: &[&str]) -> (tempfile::TempDir, Release) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(format!("istio-{version}"));
        for chart in charts {
            let chart_dir = root.join("manifests/charts").join(chart);
            std::fs::create_dir_all(&chart_dir).unwrap();
            std::fs::write(chart_dir.join("Chart.yaml"), "name: x\n").unwrap();
        }
        (dir, Release { version, root })
    }

    #[test]
    fn charts_resolve_to_their_release_directories() {
        let (_d, release) =
            release_with(V1_30, &["base", "istio-control/istio-discovery", "gateway"]);
        let base = local_chart(&release, Chart::Base).unwrap();
        assert!(base.ends_with("istio-1.30.3/manifests/charts/base"), "{}", base.display());
        let istiod = local_chart(&release, Chart::Istiod).unwrap();
        assert!(istiod.ends_with("manifests/charts/istio-control/istio-discovery"));
        assert!(local_chart(&release, Chart::Gateway).unwrap().ends_with("charts/gateway"));
    }

    #[test]
    fn istiod_remote_exists_only_before_1_24() {
        let (_d, old) = release_with(V1_22, &["istiod-remote"]);
        assert!(local_chart(&old, Chart::IstiodRemote).unwrap().ends_with("charts/istiod-remote"));
        let (_d2, new) = release_with(V1_30, &["istiod-remote"]);
        let err = local_chart(&new, Chart::IstiodRemote).unwrap_err();
        assert_eq!(err, ChartError::NoIstiodRemote(V1_30));
        assert!(err.to_string().contains("profile=remote"), "{err}");
    }

    #[test]
    fn a_missing_chart_names_where_it_was_looked_for() {
        let (_d, release) = release_with(V1_30, &["base"]);
        let err = local_chart(&release, Chart::Gateway).unwrap_err().to_string();
        assert!(err.contains("manifests/charts/gateway"), "{err}");
    }

    #[test]
    fn names_and_repository_urls() {
        for chart in [Chart::Base, Chart::Istiod, Chart::IstiodRemote, Chart::Gateway] {
            assert_eq!(Chart::from_name(chart.name()).unwrap(), chart);
        }
        assert!(Chart::from_name("cni").is_err());
        assert_eq!(
            Chart::Istiod.repo_url(V1_30),
            "https://istio-release.storage.googleapis.com/charts/istiod-1.30.3.tgz"
        );
    }
}
