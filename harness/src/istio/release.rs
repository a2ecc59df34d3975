//! Istio release archives (istio-release.md "Release archives"): the URL for a
//! version and platform, the published SHA-256 checked before anything is extracted,
//! and a cache directory per version so a release is downloaded once.
//!
//! Layout of the cache: `<cache root>/istio/<version>/istio-<version>/` holds what the
//! harness needs from the archive (`bin/istioctl`, `manifests/charts/`, `samples/`),
//! and `<cache root>/istio/<version>/complete` names the archive and its checksum. A
//! directory without that marker is an interrupted download and is fetched again.

use std::fmt;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::version::IstioVersion;

/// Where releases are published (`<base>/<version>/<archive>`).
pub const DEFAULT_RELEASE_URL: &str = "https://github.com/istio/istio/releases/download";
/// Overrides [`DEFAULT_RELEASE_URL`], e.g. with a mirror (the same `<version>/<file>` layout).
pub const RELEASE_URL_ENV: &str = "ECP_ISTIO_RELEASE_URL";
/// Overrides the cache root (default `$XDG_CACHE_HOME/ecp-harness`, else
/// `$HOME/.cache/ecp-harness`).
pub const CACHE_DIR_ENV: &str = "ECP_CACHE_DIR";

/// Name of the marker file written once a release is verified and extracted.
const COMPLETE_MARKER: &str = "complete";
/// Connecting gives up quickly: an offline machine must fail fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A stalled transfer (no bytes for this long) is an error, not a hang.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How to get an archive when the network does not allow it.
const OFFLINE_HINT: &str = "without network access, pass `--istioctl PATH` (and `--helm PATH`), \
     point ECP_ISTIO_RELEASE_URL at a mirror, or place the extracted release in the cache";

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "Istio publishes no release archive for {os}/{arch}: supported are linux and osx on x86_64, aarch64 (and linux on armv7)"
    )]
    UnsupportedPlatform { os: String, arch: String },
    #[error("downloading {url} failed: {reason} ({OFFLINE_HINT})")]
    Download { url: String, reason: String },
    #[error("downloading {url} failed: the server answered {status} ({OFFLINE_HINT})")]
    Status { url: String, status: u16 },
    #[error("the checksum file {url} is not `<64 hex digits> {expected_name}`: {reason}")]
    ChecksumFile { url: String, expected_name: String, reason: String },
    #[error(
        "the archive {url} does not match its published SHA-256: expected {expected}, got {actual} (the download was discarded)"
    )]
    ChecksumMismatch { url: String, expected: String, actual: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the archive {url} has no `{missing}`: is it an Istio release archive?")]
    Incomplete { url: String, missing: String },
}

impl ReleaseError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| ReleaseError::Io { action, path: path.to_path_buf(), source }
    }
}

/// Operating system names in archive names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Osx,
}

/// Architecture names in archive names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
    Armv7,
}

/// The platform part of an archive name, e.g. `linux-amd64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    pub arch: Arch,
}

impl Platform {
    /// Maps Rust's names (`std::env::consts::{OS, ARCH}`) to Istio's.
    pub fn from_rust(os: &str, arch: &str) -> Result<Self, ReleaseError> {
        let unsupported =
            || ReleaseError::UnsupportedPlatform { os: os.to_string(), arch: arch.to_string() };
        let os_ = match os {
            "linux" => Os::Linux,
            "macos" => Os::Osx,
            _ => return Err(unsupported()),
        };
        let arch_ = match arch {
            "x86_64" => Arch::Amd64,
            "aarch64" => Arch::Arm64,
            "arm" if os_ == Os::Linux => Arch::Armv7,
            _ => return Err(unsupported()),
        };
        Ok(Self { os: os_, arch: arch_ })
    }

    /// The platform this process runs on.
    pub fn current() -> Result<Self, ReleaseError> {
        Self::from_rust(std::env::consts::OS, std::env::consts::ARCH)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = match self.os {
            Os::Linux => "linux",
            Os::Osx => "osx",
        };
        let arch = match self.arch {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Armv7 => "armv7",
        };
        write!(f, "{os}-{arch}")
    }
}

/// `istio-<v>-<os>-<arch>.tar.gz`
pub fn archive_name(version: IstioVersion, platform: Platform) -> String {
    format!("istio-{version}-{platform}.tar.gz")
}

/// `<base>/<v>/istio-<v>-<os>-<arch>.tar.gz` (a trailing `/` on `base` is ignored).
pub fn archive_url(base: &str, version: IstioVersion, platform: Platform) -> String {
    format!("{}/{version}/{}", base.trim_end_matches('/'), archive_name(version, platform))
}

/// The published checksum beside the archive: `<archive URL>.sha256`.
pub fn checksum_url(archive_url: &str) -> String {
    format!("{archive_url}.sha256")
}

/// Reads a `.sha256` file: 64 hex digits, whitespace, the archive's base name (Istio
/// writes one space, GNU tools two and sometimes `*` for binary mode: all accepted).
/// Returns the digest in lowercase hex.
pub fn parse_checksum(text: &str, expected_name: &str) -> Result<String, String> {
    let mut words = text.split_whitespace();
    let digest = words.next().ok_or("the file is empty")?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{digest}` is not 64 hex digits"));
    }
    match words.next().map(|n| n.trim_start_matches('*')) {
        Some(name) if name == expected_name => {}
        Some(name) => return Err(format!("it names `{name}`")),
        None => return Err("it names no file".to_string()),
    }
    if let Some(extra) = words.next() {
        return Err(format!("unexpected `{extra}` after the file name"));
    }
    Ok(digest.to_ascii_lowercase())
}

/// The default cache root: the harness's one cache directory
/// ([`crate::cluster::cache_dir`]).
pub fn default_cache_root() -> PathBuf {
    crate::cluster::cache_dir()
}

/// An extracted, verified release in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: IstioVersion,
    /// `.../istio-<v>`, the archive's top directory.
    pub root: PathBuf,
}

impl Release {
    pub fn istioctl(&self) -> PathBuf {
        self.root.join("bin").join("istioctl")
    }

    /// `manifests/charts`, the Helm chart tree of this release.
    pub fn charts_dir(&self) -> PathBuf {
        self.root.join("manifests").join("charts")
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.root.join("samples")
    }
}

/// The parts of the archive the harness uses, relative to `istio-<v>/`.
const WANTED: [&str; 3] = ["bin/istioctl", "manifests/charts", "samples"];

/// Where releases come from and where they are kept.
#[derive(Debug, Clone)]
pub struct ReleaseSource {
    pub base_url: String,
    pub cache_root: PathBuf,
    pub platform: Platform,
}

impl ReleaseSource {
    /// The published location (or `ECP_ISTIO_RELEASE_URL`), the default cache root and
    /// this machine's platform.
    pub fn from_env() -> Result<Self, ReleaseError> {
        let base_url = std::env::var(RELEASE_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_RELEASE_URL.to_string());
        Ok(Self { base_url, cache_root: default_cache_root(), platform: Platform::current()? })
    }

    pub fn archive_url(&self, version: IstioVersion) -> String {
        archive_url(&self.base_url, version, self.platform)
    }

    fn version_dir(&self, version: IstioVersion) -> PathBuf {
        self.cache_root.join("istio").join(version.to_string())
    }

    /// The cached release, if a previous fetch completed for this platform.
    pub fn cached(&self, version: IstioVersion) -> Option<Release> {
        let dir = self.version_dir(version);
        let marker = std::fs::read_to_string(dir.join(COMPLETE_MARKER)).ok()?;
        let name = archive_name(version, self.platform);
        if marker.split_whitespace().nth(1) != Some(name.as_str()) {
            return None;
        }
        let release = Release { version, root: dir.join(format!("istio-{version}")) };
        release.istioctl().is_file().then_some(release)
    }

    /// The release from the cache, else downloaded, verified against its published
    /// SHA-256 and extracted into the cache.
    #[tracing::instrument(skip(self), fields(version = %version))]
    pub async fn fetch(&self, version: IstioVersion) -> Result<Release, ReleaseError> {
        if let Some(release) = self.cached(version) {
            tracing::info!(root = %release.root.display(), "Istio release found in the cache");
            return Ok(release);
        }
        let url = self.archive_url(version);
        let sum_url = checksum_url(&url);
        let name = archive_name(version, self.platform);
        let client = http_client(&url)?;

        let started = std::time::Instant::now();
        let sum_text = get_text(&client, &sum_url).await?;
        let expected = parse_checksum(&sum_text, &name).map_err(|reason| {
            ReleaseError::ChecksumFile { url: sum_url.clone(), expected_name: name.clone(), reason }
        })?;

        let dir = self.version_dir(version);
        std::fs::create_dir_all(&dir).map_err(ReleaseError::io("creating", &dir))?;
        let mut archive = tempfile::NamedTempFile::new_in(&dir)
            .map_err(ReleaseError::io("creating a temporary file in", &dir))?;
        let archive_path = archive.path().to_path_buf();
        let actual = download_to(&client, &url, archive.as_file_mut(), &archive_path).await?;
        if actual != expected {
            return Err(ReleaseError::ChecksumMismatch { url, expected, actual });
        }
        tracing::info!(elapsed = ?started.elapsed(), %url, "downloaded and verified");

        let dir_ = dir.clone();
        let url_ = url.clone();
        let root =
            tokio::task::spawn_blocking(move || extract(&archive_path, &dir_, version, &url_))
                .await
                .map_err(|e| ReleaseError::Io {
                    action: "extracting into",
                    path: dir.clone(),
                    source: io::Error::other(e.to_string()),
                })??;
        drop(archive);

        let marker = dir.join(COMPLETE_MARKER);
        std::fs::write(&marker, format!("{expected} {name}\n"))
            .map_err(ReleaseError::io("writing", &marker))?;
        Ok(Release { version, root })
    }
}

fn http_client(url: &str) -> Result<reqwest::Client, ReleaseError> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|e| ReleaseError::Download { url: url.to_string(), reason: reqwest_reason(e) })
}

/// A reqwest error with its causes on one line, without the URL (the error names it).
fn reqwest_reason(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// `e: cause: cause...` on one line (reqwest's own message hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, ReleaseError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| ReleaseError::Download { url: url.to_string(), reason: reqwest_reason(e) })?;
    let status = response.status();
    if !status.is_success() {
        return Err(ReleaseError::Status { url: url.to_string(), status: status.as_u16() });
    }
    Ok(response)
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, ReleaseError> {
    get(client, url)
        .await?
        .text()
        .await
        .map_err(|e| ReleaseError::Download { url: url.to_string(), reason: reqwest_reason(e) })
}

/// Streams `url` into `file` (at `path`), returning the SHA-256 of what was written
/// (lowercase hex).
async fn download_to(
    client: &reqwest::Client,
    url: &str,
    file: &mut std::fs::File,
    path: &Path,
) -> Result<String, ReleaseError> {
    let mut response = get(client, url).await?;
    let mut hasher = Sha256::new();
    let failed = |e: reqwest::Error| ReleaseError::Download {
        url: url.to_string(),
        reason: reqwest_reason(e),
    };
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(ReleaseError::io("writing", path))?;
    }
    file.flush().map_err(ReleaseError::io("writing", path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Extracts the [`WANTED`] parts of a verified archive into `dir/istio-<v>`, through
/// a temporary directory renamed into place, so a half-extracted tree never looks
/// complete. Entries outside `istio-<v>/` or with `..` are skipped.
fn extract(
    archive: &Path,
    dir: &Path,
    version: IstioVersion,
    url: &str,
) -> Result<PathBuf, ReleaseError> {
    let top = format!("istio-{version}");
    let staging =
        tempfile::TempDir::new_in(dir).map_err(ReleaseError::io("creating a directory in", dir))?;
    let file = std::fs::File::open(archive).map_err(ReleaseError::io("opening", archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.set_preserve_permissions(true);
    let bad = |source| ReleaseError::Io { action: "reading the archive", path: url.into(), source };
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        if !is_wanted(&path, &top) {
            continue;
        }
        entry.unpack_in(staging.path()).map_err(|source| ReleaseError::Io {
            action: "extracting",
            path: path.clone(),
            source,
        })?;
    }
    for wanted in WANTED {
        if !staging.path().join(&top).join(wanted).exists() {
            return Err(ReleaseError::Incomplete {
                url: url.to_string(),
                missing: format!("{top}/{wanted}"),
            });
        }
    }
    let root = dir.join(&top);
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(ReleaseError::io("removing", &root))?;
    }
    let staged = staging.path().join(&top);
    std::fs::rename(&staged, &root).map_err(ReleaseError::io("moving into place", &root))?;
    Ok(root)
}

/// True for `[./]istio-<v>/<one of WANTED>[/...]` without `..` or absolute parts.
fn is_wanted(path: &Path, top: &str) -> bool {
    let mut normal = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    let Ok(rest) = normal.strip_prefix(top) else { return false };
    WANTED.iter().any(|w| rest.starts_with(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use rstest::rstest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const V: IstioVersion = IstioVersion::new(1, 30, 3);
    const LINUX_AMD64: Platform = Platform { os: Os::Linux, arch: Arch::Amd64 };

    #[rstest]
    #[case("linux", "x86_64", "linux-amd64")]
    #[case("linux", "aarch64", "linux-arm64")]
    #[case("linux", "arm", "linux-armv7")]
    #[case("macos", "x86_64", "osx-amd64")]
    #[case("macos", "aarch64", "osx-arm64")]
    fn platforms_map_to_istio_names(#[case] os: &str, #[case] arch: &str, #[case] want: &str) {
        assert_eq!(Platform::from_rust(os, arch).unwrap().to_string(), want);
    }

    #[rstest]
    #[case("windows", "x86_64")]
    #[case("linux", "riscv64")]
    #[case("macos", "arm")]
    fn other_platforms_are_refused_by_name(#[case] os: &str, #[case] arch: &str) {
        let err = Platform::from_rust(os, arch).unwrap_err().to_string();
        assert!(err.contains(&format!("{os}/{arch}")), "{err}");
    }

    #[test]
    fn urls_follow_the_release_layout() {
        let url = archive_url(DEFAULT_RELEASE_URL, V, LINUX_AMD64);
        assert_eq!(
            url,
            "https://github.com/istio/istio/releases/download/1.30.3/istio-1.30.3-linux-amd64.tar.gz"
        );
        assert_eq!(
            checksum_url(&url),
            "https://github.com/istio/istio/releases/download/1.30.3/istio-1.30.3-linux-amd64.tar.gz.sha256"
        );
        let osx = Platform { os: Os::Osx, arch: Arch::Arm64 };
        assert_eq!(
            archive_url("http://127.0.0.1:8080/mirror/", IstioVersion::new(1, 22, 8), osx),
            "http://127.0.0.1:8080/mirror/1.22.8/istio-1.22.8-osx-arm64.tar.gz"
        );
    }

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const NAME: &str = "istio-1.30.3-linux-amd64.tar.gz";

    #[rstest]
    #[case::istio_one_space(format!("{HEX} {NAME}\n"))]
    #[case::gnu_two_spaces(format!("{HEX}  {NAME}\n"))]
    #[case::binary_mode_star(format!("{HEX} *{NAME}"))]
    #[case::uppercase(format!("{} {NAME}\n", HEX.to_uppercase()))]
    fn checksum_files_parse(#[case] text: String) {
        assert_eq!(parse_checksum(&text, NAME).unwrap(), HEX);
    }

    #[rstest]
    #[case::empty(String::new(), "empty")]
    #[case::short_digest(format!("{} {NAME}", &HEX[1..]), "64 hex")]
    #[case::not_hex(format!("{}z {NAME}", &HEX[1..]), "64 hex")]
    #[case::other_file(format!("{HEX} istio-1.30.3-osx-arm64.tar.gz"), "osx-arm64")]
    #[case::no_name(HEX.to_string(), "names no file")]
    #[case::trailing(format!("{HEX} {NAME} extra"), "extra")]
    fn bad_checksum_files_say_why(#[case] text: String, #[case] why: &str) {
        let err = parse_checksum(&text, NAME).unwrap_err();
        assert!(err.contains(why), "{err}");
    }

    #[rstest]
    #[case("istio-1.30.3/bin/istioctl", true)]
    #[case("./istio-1.30.3/samples/helloworld/helloworld.yaml", true)]
    #[case("istio-1.30.3/manifests/charts/base/Chart.yaml", true)]
    #[case("istio-1.30.3/manifests/profiles/default.yaml", false)]
    #[case("istio-1.30.3/tools/certs/Makefile", false)]
    #[case("istio-1.30.3/manifest.yaml", false)]
    #[case("istio-1.30.3/samples/../../etc/passwd", false)]
    #[case("/istio-1.30.3/bin/istioctl", false)]
    #[case("istio-1.29.0/bin/istioctl", false)]
    fn only_the_wanted_parts_are_extracted(#[case] path: &str, #[case] wanted: bool) {
        assert_eq!(is_wanted(Path::new(path), "istio-1.30.3"), wanted, "{path}");
    }

    /// A release archive shaped like Istio's, small: istioctl is a shell script.
    fn small_archive(version: IstioVersion, with_istioctl: bool) -> Vec<u8> {
        let top = format!("istio-{version}");
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut add = |path: String, mode: u32, body: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            tar.append_data(&mut header, path, body).unwrap();
        };
        if with_istioctl {
            add(format!("{top}/bin/istioctl"), 0o755, b"#!/bin/sh\necho fake istioctl\n");
        }
        add(format!("{top}/manifests/charts/base/Chart.yaml"), 0o644, b"name: base\n");
        add(format!("{top}/manifests/charts/istiod-remote/Chart.yaml"), 0o644, b"name: r\n");
        add(format!("{top}/samples/helloworld/helloworld.yaml"), 0o644, b"kind: Service\n");
        add(format!("{top}/tools/certs/Makefile"), 0o644, b"all:\n");
        add(format!("{top}/manifest.yaml"), 0o644, b"version: x\n");
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn sha256_line(body: &[u8], name: &str) -> Vec<u8> {
        format!("{} {name}\n", hex::encode(Sha256::digest(body))).into_bytes()
    }

    /// A minimal HTTP/1.1 server on 127.0.0.1 answering GETs from a fixed table and
    /// recording every requested path.
    struct TestServer {
        base_url: String,
        requests: Arc<Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl TestServer {
        async fn start(routes: HashMap<String, (u16, Vec<u8>)>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}/releases", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            let routes = Arc::new(routes);
            let task = tokio::spawn(async move {
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else { return };
                    let routes = routes.clone();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&head);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        seen.lock().unwrap().push(path.clone());
                        let (status, body) =
                            routes.get(&path).cloned().unwrap_or((404, b"not found".to_vec()));
                        let reason = if status == 200 { "OK" } else { "Not Found" };
                        let header = format!(
                            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(header.as_bytes()).await;
                        let _ = stream.write_all(&body).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            Self { base_url, requests, task }
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Serves `archive` for [`V`] with the given checksum file body.
    async fn release_server(archive: Vec<u8>, checksum: Vec<u8>) -> TestServer {
        let name = archive_name(V, LINUX_AMD64);
        let mut routes = HashMap::new();
        routes.insert(format!("/releases/{V}/{name}"), (200, archive));
        routes.insert(format!("/releases/{V}/{name}.sha256"), (200, checksum));
        TestServer::start(routes).await
    }

    fn source(base_url: &str, cache: &Path) -> ReleaseSource {
        ReleaseSource {
            base_url: base_url.to_string(),
            cache_root: cache.to_path_buf(),
            platform: LINUX_AMD64,
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn fetch_verifies_then_extracts_istioctl_charts_and_samples() {
        let archive = small_archive(V, true);
        let sum = sha256_line(&archive, NAME);
        let server = release_server(archive, sum).await;
        let cache = tempfile::tempdir().unwrap();

        let release = source(&server.base_url, cache.path()).fetch(V).await.unwrap();

        assert_eq!(release.root, cache.path().join("istio/1.30.3/istio-1.30.3"));
        let istioctl = std::fs::metadata(release.istioctl()).unwrap();
        assert_eq!(istioctl.permissions().mode() & 0o111, 0o111, "istioctl is executable");
        assert!(release.charts_dir().join("base/Chart.yaml").is_file());
        assert!(release.charts_dir().join("istiod-remote/Chart.yaml").is_file());
        assert!(release.samples_dir().join("helloworld/helloworld.yaml").is_file());
        assert_eq!(names_in(&release.root), ["bin", "manifests", "samples"]);
        assert_eq!(names_in(&cache.path().join("istio/1.30.3")), ["complete", "istio-1.30.3"]);
        assert_eq!(
            server.requests(),
            [format!("/releases/{V}/{NAME}.sha256"), format!("/releases/{V}/{NAME}")]
        );
    }

    #[tokio::test]
    async fn a_second_fetch_uses_the_cache_without_any_request() {
        let archive = small_archive(V, true);
        let sum = sha256_line(&archive, NAME);
        let server = release_server(archive, sum).await;
        let cache = tempfile::tempdir().unwrap();

        let first = source(&server.base_url, cache.path()).fetch(V).await.unwrap();
        assert_eq!(server.requests().len(), 2);
        let second = source(&server.base_url, cache.path()).fetch(V).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(server.requests().len(), 2, "the cached release was downloaded again");
        assert!(source(&server.base_url, cache.path()).cached(V).is_some());
    }

    #[tokio::test]
    async fn an_interrupted_extraction_is_not_taken_from_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("istio/1.30.3/istio-1.30.3/bin");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("istioctl"), "partial").unwrap();
        // No `complete` marker: the cache must not count it.
        assert!(source("http://127.0.0.1:9", cache.path()).cached(V).is_none());
        // A marker for another platform does not count either.
        std::fs::write(
            cache.path().join("istio/1.30.3/complete"),
            format!("{HEX} istio-1.30.3-osx-arm64.tar.gz\n"),
        )
        .unwrap();
        assert!(source("http://127.0.0.1:9", cache.path()).cached(V).is_none());
    }

    #[tokio::test]
    async fn a_wrong_checksum_is_refused_and_nothing_is_extracted() {
        let archive = small_archive(V, true);
        let sum = format!("{HEX} {NAME}\n").into_bytes();
        let server = release_server(archive.clone(), sum).await;
        let cache = tempfile::tempdir().unwrap();

        let err = source(&server.base_url, cache.path()).fetch(V).await.unwrap_err();

        let msg = err.to_string();
        assert!(matches!(err, ReleaseError::ChecksumMismatch { .. }), "{err:?}");
        assert!(msg.contains(&format!("{}/{V}/{NAME}", server.base_url)), "{msg}");
        assert!(msg.contains(HEX), "{msg}");
        assert!(msg.contains(&hex::encode(Sha256::digest(&archive))), "{msg}");
        assert!(names_in(&cache.path().join("istio/1.30.3")).is_empty(), "nothing left behind");
        assert!(source(&server.base_url, cache.path()).cached(V).is_none());
    }

    #[tokio::test]
    async fn a_checksum_for_another_file_is_refused() {
        let archive = small_archive(V, true);
        let sum = sha256_line(&archive, "istio-1.30.3-osx-arm64.tar.gz");
        let server = release_server(archive, sum).await;
        let cache = tempfile::tempdir().unwrap();
        let err = source(&server.base_url, cache.path()).fetch(V).await.unwrap_err();
        assert!(matches!(err, ReleaseError::ChecksumFile { .. }), "{err:?}");
        assert!(err.to_string().contains(".sha256"), "{err}");
        assert_eq!(server.requests().len(), 1, "the archive is not downloaded");
    }

    #[tokio::test]
    async fn a_missing_release_names_the_url_and_status() {
        let server = TestServer::start(HashMap::new()).await;
        let cache = tempfile::tempdir().unwrap();
        let err = source(&server.base_url, cache.path()).fetch(V).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ReleaseError::Status { status: 404, .. }), "{err:?}");
        assert!(msg.contains(&format!("{}/{V}/{NAME}.sha256", server.base_url)), "{msg}");
        assert!(msg.contains("404"), "{msg}");
        assert!(msg.contains("--istioctl PATH"), "{msg}");
    }

    #[tokio::test]
    async fn an_archive_without_istioctl_is_refused() {
        let archive = small_archive(V, false);
        let sum = sha256_line(&archive, NAME);
        let server = release_server(archive, sum).await;
        let cache = tempfile::tempdir().unwrap();
        let err = source(&server.base_url, cache.path()).fetch(V).await.unwrap_err();
        assert!(err.to_string().contains("istio-1.30.3/bin/istioctl"), "{err}");
        assert!(source(&server.base_url, cache.path()).cached(V).is_none());
    }

    #[tokio::test]
    async fn offline_fails_at_once_naming_the_url() {
        // A port that was just free and is closed now: connecting is refused.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/releases", listener.local_addr().unwrap());
        drop(listener);
        let cache = tempfile::tempdir().unwrap();

        let err = source(&base, cache.path()).fetch(V).await.unwrap_err();

        let msg = err.to_string();
        assert!(matches!(err, ReleaseError::Download { .. }), "{err:?}");
        assert!(msg.contains(&format!("{base}/{V}/{NAME}.sha256")), "{msg}");
        assert!(msg.contains("--istioctl PATH"), "{msg}");
        assert!(msg.to_lowercase().contains("connect"), "the cause is named: {msg}");
    }
}
