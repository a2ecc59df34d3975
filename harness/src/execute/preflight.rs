//! What an install needs before anything is created, checked within seconds: the
//! programs its backend declares ([`crate::install::Needs`]: istioctl from
//! `--istioctl PATH` or the release, helm), the release when the backend uses it, and
//! the images (present locally, or their registry reachable). Each problem names what
//! is missing and how to provide it.

use crate::preflight::{Problem, ProblemKind};
use std::net::ToSocketAddrs as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::install::{Needs, Program};
use crate::istio::release::{Release, ReleaseSource};
use crate::istio::tools;
use crate::version::IstioVersion;

use super::command::Programs;

/// Set (non-empty) to try no network at all: every reachability check fails at once.
/// For air-gapped machines, and for tests, which must not contact anything outside.
pub const OFFLINE_ENV: &str = "ECP_OFFLINE";

/// How long a registry may take to resolve and accept a connection.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The programs for a plan: `--istioctl PATH` or the release's istioctl, `--helm PATH`
/// or helm on `PATH`, the release when needed (from the cache, else downloaded and
/// verified). Problems are returned, all of them, in that order.
pub async fn programs(
    version: IstioVersion,
    needs: &Needs,
    istioctl: Option<&std::path::Path>,
    helm: Option<&std::path::Path>,
    source: &ReleaseSource,
) -> Result<(Programs, Option<Release>), Vec<Problem>> {
    let mut problems = Vec::new();
    let release_needed = needs.release || (needs.runs(Program::Istioctl) && istioctl.is_none());
    let release = if release_needed {
        match source.fetch(version).await {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(Problem::new(
                    ProblemKind::Release,
                    format!("Istio {version} release: {e}"),
                    "",
                ));
                None
            }
        }
    } else {
        None
    };
    let istioctl_path = match istioctl {
        Some(path) => match tools::istioctl(path) {
            Ok(p) => {
                if let Some(found) = tools::istioctl_client_version(&p).await
                    && found != version.to_string()
                {
                    tracing::warn!(%found, %version, "the istioctl given reports another version");
                }
                p
            }
            Err(e) => {
                problems.push(Problem::new(
                    ProblemKind::Program,
                    e.to_string(),
                    "pass the path of an istioctl binary",
                ));
                PathBuf::new()
            }
        },
        None => {
            release.as_ref().map(Release::istioctl).unwrap_or_else(|| PathBuf::from("istioctl"))
        }
    };
    let helm_path = if needs.runs(Program::Helm) {
        match tools::helm(helm) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(Problem::new(ProblemKind::Program, e.to_string(), ""));
                None
            }
        }
    } else {
        None
    };
    let mut helm_version = None;
    if let Some(path) = &helm_path {
        match tools::helm_version(path).await.and_then(|v| Ok((v, tools::helm_compatibility(v)?))) {
            Ok((v, warning)) => {
                if let Some(warning) = warning {
                    tracing::warn!("{warning}");
                }
                helm_version = Some(v);
            }
            Err(problem) => problems.push(Problem::new(
                ProblemKind::Program,
                problem.to_string(),
                "pass a working helm with --helm PATH",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let programs = Programs {
        istioctl: istioctl_path,
        helm: helm_path,
        helm_version,
        release_dir: release.as_ref().map(|r| r.root.clone()),
    };
    Ok((programs, release))
}

/// Istio's own images for a hub and tag (`pilot`, `proxyv2`).
pub fn istio_images(version: IstioVersion, hub: Option<&str>, tag: Option<&str>) -> Vec<String> {
    let hub = hub.unwrap_or(version.default_hub()).trim_end_matches('/');
    let tag = tag.map(str::to_string).unwrap_or_else(|| version.to_string());
    ["pilot", "proxyv2"].iter().map(|image| format!("{hub}/{image}:{tag}")).collect()
}

/// The registry host an image is pulled from (`docker.io` images from
/// `registry-1.docker.io`).
pub fn registry_host(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let is_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let host = if is_registry { first.split(':').next().unwrap_or(first) } else { "docker.io" };
    match host {
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Resolves `host` and opens a TCP connection to `port` within `timeout` each
/// (nothing is sent). Fails at once when [`OFFLINE_ENV`] is set.
pub async fn host_reachable(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    if std::env::var_os(OFFLINE_ENV).is_some_and(|v| !v.is_empty()) {
        return Err(format!("{OFFLINE_ENV} is set: no network is tried"));
    }
    let host = host.to_string();
    let addrs = tokio::time::timeout(
        timeout,
        tokio::task::spawn_blocking(move || (host.as_str(), port).to_socket_addrs()),
    )
    .await
    .map_err(|_| format!("name resolution took longer than {timeout:?}"))?
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("name resolution failed: {e}"))?
    .collect::<Vec<_>>();
    let first = addrs.first().ok_or("the name resolves to no address")?;
    tokio::time::timeout(timeout, tokio::net::TcpStream::connect(first))
        .await
        .map_err(|_| format!("no connection to {first} within {timeout:?}"))?
        .map(|_| ())
        .map_err(|e| format!("connecting to {first}: {e}"))
}

/// The problem for images missing locally whose registry cannot be reached.
pub fn missing_images_problem(missing: &[String], host: &str, why: &str) -> Problem {
    Problem::new(
        ProblemKind::Images,
        format!(
            "images not present locally, and their registry {host} is not reachable ({why}): {}",
            missing.join(", ")
        ),
        "pull them where the registry is reachable and bring them here (`docker save IMAGE | \
         docker load`), or point --hub/--tag at images this machine has",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{Installer, PlanOptions};

    fn needs(version: &str, installer: Installer) -> Needs {
        PlanOptions::new(version.parse().unwrap(), installer, 1).needs()
    }

    #[test]
    fn backends_say_what_they_run() {
        let istioctl = needs("1.30.3", Installer::Istioctl);
        assert_eq!(istioctl.programs, [Program::Istioctl]);
        assert!(!istioctl.release && istioctl.repositories.is_empty(), "{istioctl:?}");
        let helm = needs("1.30.3", Installer::Helm);
        assert_eq!(helm.programs, [Program::Helm]);
        assert!(!helm.release, "{helm:?}");
        assert!(
            needs("1.22.8", Installer::Helm).release,
            "1.22's istiod-remote is only in the release"
        );
    }

    #[test]
    fn helm_names_its_chart_repository() {
        let hosts: Vec<String> =
            needs("1.30.3", Installer::Helm).repositories.into_iter().map(|r| r.host).collect();
        assert_eq!(hosts, ["istio-release.storage.googleapis.com"]);
    }

    #[test]
    fn istio_images_follow_hub_and_tag() {
        let v: IstioVersion = "1.29.6".parse().unwrap();
        assert_eq!(
            istio_images(v, None, None),
            ["docker.io/istio/pilot:1.29.6", "docker.io/istio/proxyv2:1.29.6"]
        );
        let v30: IstioVersion = "1.30.3".parse().unwrap();
        assert_eq!(istio_images(v30, None, None)[0], "registry.istio.io/release/pilot:1.30.3");
        assert_eq!(
            istio_images(v30, Some("quay.io/vendor/"), Some("1.30.3-v1")),
            ["quay.io/vendor/pilot:1.30.3-v1", "quay.io/vendor/proxyv2:1.30.3-v1"]
        );
    }

    #[test]
    fn registry_hosts_of_image_references() {
        assert_eq!(registry_host("docker.io/istio/pilot:1.29.6"), "registry-1.docker.io");
        assert_eq!(registry_host("curlimages/curl"), "registry-1.docker.io");
        assert_eq!(registry_host("busybox"), "registry-1.docker.io");
        assert_eq!(registry_host("registry.istio.io/release/pilot:1.30.3"), "registry.istio.io");
        assert_eq!(registry_host("quay.io/metallb/speaker:v0.14.3"), "quay.io");
        assert_eq!(registry_host("localhost:5000/istio/pilot:x"), "localhost");
        assert_eq!(registry_host("kindest/node:v1.35.0"), "registry-1.docker.io");
    }

    #[tokio::test]
    async fn reachability_is_a_resolution_and_a_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        host_reachable("127.0.0.1", port, Duration::from_secs(2)).await.unwrap();
        drop(listener);
        let err = host_reachable("127.0.0.1", port, Duration::from_secs(2)).await.unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }

    #[test]
    fn the_images_problem_says_how_to_provide_them() {
        let p = missing_images_problem(
            &["docker.io/istio/pilot:1.29.6".into()],
            "registry-1.docker.io",
            "name resolution failed",
        );
        assert_eq!(p.kind, ProblemKind::Images);
        assert!(p.message.contains("docker.io/istio/pilot:1.29.6"), "{p}");
        assert!(p.remedy.contains("docker save") && p.remedy.contains("--hub"), "{p}");
    }

    #[tokio::test]
    async fn tools_problems_are_all_reported_and_name_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/r", listener.local_addr().unwrap());
        drop(listener);
        let source = ReleaseSource {
            base_url: base.clone(),
            cache_root: dir.path().to_path_buf(),
            platform: crate::istio::release::Platform::current().unwrap(),
        };
        let v: IstioVersion = "1.22.8".parse().unwrap();
        let needs = Needs { programs: vec![Program::Helm], release: true, ..Needs::default() };
        let missing_helm = dir.path().join("no-helm");
        let err = programs(v, &needs, None, Some(&missing_helm), &source).await.unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert_eq!(err[0].kind, ProblemKind::Release);
        assert!(err[0].message.contains(&format!("{base}/1.22.8/istio-1.22.8-")), "{}", err[0]);
        assert_eq!(err[1].kind, ProblemKind::Program);
        assert!(err[1].message.contains("no-helm"), "{}", err[1]);
    }

    #[tokio::test]
    async fn an_explicit_istioctl_needs_no_release() {
        let dir = tempfile::tempdir().unwrap();
        let istioctl = tools::stand_in_program(dir.path(), "istioctl", "echo 1.30.3");
        let source = ReleaseSource {
            base_url: "http://127.0.0.1:9/unused".into(),
            cache_root: dir.path().join("cache"),
            platform: crate::istio::release::Platform::current().unwrap(),
        };
        let needs = Needs { programs: vec![Program::Istioctl], ..Needs::default() };
        let (found, release) =
            programs("1.30.3".parse().unwrap(), &needs, Some(&istioctl), None, &source)
                .await
                .unwrap();
        assert_eq!(found.istioctl, istioctl);
        assert!(release.is_none() && found.release_dir.is_none() && found.helm.is_none());
        // A main-branch build: no release exists to download, and none is tried.
        let dev = "1.32.0-dev".parse().unwrap();
        let (dev_programs, release) =
            programs(dev, &needs, Some(&istioctl), None, &source).await.unwrap();
        assert_eq!(dev_programs.istioctl, istioctl);
        assert!(release.is_none());
    }

    /// A stand-in `helm` that prints `version` for `helm version --short`.
    fn fake_helm(dir: &std::path::Path, version: &str) -> PathBuf {
        tools::stand_in_program(
            dir,
            &format!("helm-{version}"),
            &format!("echo {version}+g0000000"),
        )
    }

    #[tokio::test]
    async fn the_helm_version_is_read_and_an_old_helm_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = ReleaseSource {
            base_url: "http://127.0.0.1:9/unused".into(),
            cache_root: dir.path().join("cache"),
            platform: crate::istio::release::Platform::current().unwrap(),
        };
        let needs = Needs { programs: vec![Program::Helm], ..Needs::default() };
        let v: IstioVersion = "1.27.0".parse().unwrap();
        let good = fake_helm(dir.path(), "v3.18.6");
        let (found, _) = programs(v, &needs, None, Some(&good), &source).await.unwrap();
        assert_eq!(found.helm_version.map(|h| h.to_string()).as_deref(), Some("v3.18.6"));
        let old = fake_helm(dir.path(), "v3.5.4");
        let err = programs(v, &needs, None, Some(&old), &source).await.unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].kind, ProblemKind::Program);
        assert!(err[0].message.contains("v3.5.4"), "{}", err[0]);
        assert!(err[0].remedy.contains("--helm PATH"), "{}", err[0]);
        assert!(err[0].to_string().contains("Helm 3.16 and later"), "says what works: {}", err[0]);
    }
}
