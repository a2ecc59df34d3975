//! The Kubernetes binaries of the apiserver provider: `etcd`, `kube-apiserver`,
//! `kube-controller-manager` (plus a static `busybox` for the container's shell).
//!
//! Where they come from, first that works ([`Assets::ensure`]):
//! 1. `$ECP_K8S_ASSETS` (what `cargo xtask test` hands to the tests) or
//!    `$KUBEBUILDER_ASSETS` (the envtest convention): a directory with the three.
//! 2. The cache (`<cache>/assets/k8s-*`, see [`super::cache_dir`]) when a previous run
//!    filled it.
//! 3. The official release binaries (dl.k8s.io, GitHub for etcd), checked against
//!    their published SHA-256 sums, when the network allows; tried with a short
//!    connect timeout.
//! 4. On Debian: a build from Debian's own `kubernetes` source package
//!    (architecture.md's recipe: deb-src entry, `apt-get source kubernetes`,
//!    `make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"` with
//!    `CGO_ENABLED=0`, `etcd` from `etcd-server`). About 3 to 10 minutes once.
//!
//! Tests only ever call [`Assets::locate`], which neither downloads nor builds: a
//! missing binary fails the test with a message naming `cargo xtask test`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ClusterError;

/// The directory `cargo xtask test` passes to the tests.
pub const ASSETS_ENV: &str = "ECP_K8S_ASSETS";
/// The envtest convention for a directory with the three binaries.
pub const KUBEBUILDER_ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";
/// The binaries a cluster needs, by file name.
pub const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];
/// Written last into a cache directory: its binaries are complete.
const COMPLETE_MARKER: &str = ".complete";

/// Official release versions tried when the network allows.
const RELEASE_KUBERNETES: &str = "v1.30.0";
const RELEASE_ETCD: &str = "v3.5.12";

/// A progress callback: one human-readable line per step.
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Where a set of binaries came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetSource {
    EnvDir,
    Kubebuilder,
    Cache,
}

/// A Kubernetes version as `kube-apiserver --version` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KubeVersion {
    /// Parses `Kubernetes v1.20.2` (or `v1.20.2`, `1.30.0-rc.1`).
    pub fn parse(s: &str) -> Option<Self> {
        let v = s.split_whitespace().last()?.trim_start_matches('v');
        let mut parts = v.split(['.', '-', '+']);
        Some(Self {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
            patch: parts.next()?.parse().ok()?,
        })
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A directory holding the three binaries, and the busybox to put next to them.
#[derive(Debug, Clone)]
pub struct Assets {
    pub dir: PathBuf,
    pub source: AssetSource,
    pub kube_version: KubeVersion,
    pub busybox: PathBuf,
}

impl Assets {
    pub fn binary(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Finds binaries without downloading or building anything: `$ECP_K8S_ASSETS`,
    /// `$KUBEBUILDER_ASSETS`, then the cache.
    pub fn locate() -> Result<Self, ClusterError> {
        for (var, source) in
            [(ASSETS_ENV, AssetSource::EnvDir), (KUBEBUILDER_ASSETS_ENV, AssetSource::Kubebuilder)]
        {
            if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return Self::from_dir(PathBuf::from(dir), source)
                    .map_err(|e| ClusterError::Assets(format!("${var}: {e}")));
            }
        }
        if let Some(dir) = cached_dir() {
            return Self::from_dir(dir, AssetSource::Cache).map_err(ClusterError::Assets);
        }
        Err(ClusterError::Assets(format!(
            "no etcd/kube-apiserver/kube-controller-manager found: ${ASSETS_ENV} and \
             ${KUBEBUILDER_ASSETS_ENV} are unset and the cache {} is empty",
            assets_cache_root().display()
        )))
    }

    /// [`Assets::locate`], else the official release binaries, else a build from
    /// Debian's source package; the last two fill the cache.
    pub async fn ensure(progress: Progress<'_>) -> Result<Self, ClusterError> {
        if !is_executable(Path::new("/bin/busybox")) && Path::new("/etc/debian_version").exists() {
            debian::install(progress, &["busybox-static"]).await?;
        }
        match Self::locate() {
            Ok(a) => {
                progress(&format!(
                    "kubernetes binaries: {} ({:?}) in {}",
                    a.kube_version,
                    a.source,
                    a.dir.display()
                ));
                return Ok(a);
            }
            // A set but broken env directory is the user's to fix, not to paper over.
            Err(e) if env_dir_set() => return Err(e),
            Err(_) => {}
        }
        let release_dir = assets_cache_root().join(format!("k8s-{RELEASE_KUBERNETES}-release"));
        progress(&format!(
            "kubernetes binaries: trying the official release {RELEASE_KUBERNETES} (etcd {RELEASE_ETCD})"
        ));
        match download_release(&release_dir, progress).await {
            Ok(()) => {
                return Self::from_dir(release_dir, AssetSource::Cache)
                    .map_err(ClusterError::Assets);
            }
            Err(e) => progress(&format!("official release not available: {e}")),
        }
        progress("kubernetes binaries: building from Debian's source package (once; cached)");
        let dir = debian::build(progress).await?;
        Self::from_dir(dir, AssetSource::Cache).map_err(ClusterError::Assets)
    }

    fn from_dir(dir: PathBuf, source: AssetSource) -> Result<Self, String> {
        for b in BINARIES {
            let p = dir.join(b);
            if !is_executable(&p) {
                return Err(format!("{} is missing or not executable", p.display()));
            }
        }
        let kube_version = apiserver_version(&dir.join("kube-apiserver"))?;
        let busybox = [dir.join("busybox"), "/bin/busybox".into(), "/usr/bin/busybox".into()]
            .into_iter()
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                "no busybox next to the binaries nor in /bin: install Debian's busybox-static"
                    .to_string()
            })?;
        Ok(Self { dir, source, kube_version, busybox })
    }
}

fn env_dir_set() -> bool {
    [ASSETS_ENV, KUBEBUILDER_ASSETS_ENV]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// `<cache>/assets`.
pub fn assets_cache_root() -> PathBuf {
    super::cache_dir().join("assets")
}

/// The newest complete cache directory, if any.
fn cached_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(assets_cache_root())
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(COMPLETE_MARKER).is_file())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.ends_with("-release") || name.ends_with(debian::DEBIAN_BUILD)
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn apiserver_version(bin: &Path) -> Result<KubeVersion, String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    KubeVersion::parse(text.trim())
        .ok_or_else(|| format!("{} --version printed `{}`", bin.display(), text.trim()))
}

/// Copies `files` (name, source) into `dir`, executable, then marks it complete.
fn fill_cache_dir(dir: &Path, files: &[(&str, PathBuf)]) -> Result<(), ClusterError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(ClusterError::io("create", dir))?;
    for (name, src) in files {
        let dst = dir.join(name);
        let tmp = dir.join(format!(".{name}.partial"));
        std::fs::copy(src, &tmp).map_err(ClusterError::io("copy into the cache", src))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(ClusterError::io("chmod", &tmp))?;
        std::fs::rename(&tmp, &dst).map_err(ClusterError::io("rename", &dst))?;
    }
    let marker = dir.join(COMPLETE_MARKER);
    std::fs::write(&marker, b"").map_err(ClusterError::io("write", marker))
}

/// Downloads the official binaries into `dir` (verified by SHA-256), fails fast when
/// the network is not there.
async fn download_release(dir: &Path, progress: Progress<'_>) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let get = |url: String| {
        let client = client.clone();
        async move {
            let resp =
                client.get(&url).send().await.map_err(|e| format!("{url}: {}", chain(&e)))?;
            let resp = resp.error_for_status().map_err(|e| format!("{url}: {e}"))?;
            resp.bytes().await.map_err(|e| format!("{url}: {e}"))
        }
    };
    let staging = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for name in ["kube-apiserver", "kube-controller-manager"] {
        let url = format!("https://dl.k8s.io/release/{RELEASE_KUBERNETES}/bin/linux/amd64/{name}");
        let sum = get(format!("{url}.sha256")).await?;
        progress(&format!("downloading {url}"));
        let body = get(url.clone()).await?;
        let expected =
            String::from_utf8_lossy(&sum).split_whitespace().next().unwrap_or("").to_string();
        if hex::encode(Sha256::digest(&body)) != expected {
            return Err(format!("{url}: SHA-256 does not match the published sum"));
        }
        let p = staging.path().join(name);
        std::fs::write(&p, &body).map_err(|e| e.to_string())?;
        files.push((name, p));
    }
    let base = format!("https://github.com/etcd-io/etcd/releases/download/{RELEASE_ETCD}");
    let tarball = format!("etcd-{RELEASE_ETCD}-linux-amd64.tar.gz");
    let sums = get(format!("{base}/SHA256SUMS")).await?;
    progress(&format!("downloading {base}/{tarball}"));
    let body = get(format!("{base}/{tarball}")).await?;
    let sums = String::from_utf8_lossy(&sums);
    let expected = sums
        .lines()
        .find(|l| l.ends_with(&tarball))
        .and_then(|l| l.split_whitespace().next())
        .ok_or_else(|| format!("{tarball} not in SHA256SUMS"))?;
    if hex::encode(Sha256::digest(&body)) != expected {
        return Err(format!("{tarball}: SHA-256 does not match the published sum"));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
    let etcd = staging.path().join("etcd");
    let mut found = false;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path.file_name().is_some_and(|n| n == "etcd") {
            entry.unpack(&etcd).map_err(|e| e.to_string())?;
            found = true;
            break;
        }
    }
    if !found {
        return Err(format!("{tarball} holds no etcd binary"));
    }
    files.push(("etcd", etcd));
    fill_cache_dir(dir, &files).map_err(|e| e.to_string())
}

/// An error and its causes on one line (reqwest's message alone omits the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The Debian source build (architecture.md), step by step.
mod debian {
    use std::path::{Path, PathBuf};

    use super::{ClusterError, Progress, fill_cache_dir};

    /// Suffix of the cache directory of this recipe; a new revision of the recipe
    /// (r2: reflect2 v1.0.2) makes older builds unused.
    pub(super) const DEBIAN_BUILD: &str = "debian-r2";
    /// Where Debian's golang-github-modern-go-reflect2-dev puts the source.
    const REFLECT2_SRC: &str = "/usr/share/gocode/src/github.com/modern-go/reflect2";
    const REFLECT2_OLD: &str = "github.com/modern-go/reflect2 v1.0.1";
    const REFLECT2_NEW: &str = "github.com/modern-go/reflect2 v1.0.2";

    const SOURCES_FILE: &str = "/etc/apt/sources.list.d/ecp-harness-src.sources";
    const BUILD_PACKAGES: [&str; 6] =
        ["golang-go", "rsync", "etcd-server", "busybox-static", "make", "dpkg-dev"];
    const OUTPUT: &str = "_output/local/bin/linux/amd64";

    pub(super) async fn build(progress: Progress<'_>) -> Result<PathBuf, ClusterError> {
        if !Path::new("/etc/debian_version").exists() {
            return Err(ClusterError::Assets(
                "no binaries and no way to get them: no network for the official release and \
                 not a Debian host; set KUBEBUILDER_ASSETS to a directory with etcd, \
                 kube-apiserver and kube-controller-manager"
                    .to_string(),
            ));
        }
        let src_root = super::super::cache_dir().join("k8s-src");
        std::fs::create_dir_all(&src_root).map_err(ClusterError::io("create", &src_root))?;
        let log = src_root.join("build.log");

        if add_deb_src_entry(progress)? || !has_source_package(&log).await {
            progress("apt-get update");
            run(&log, "apt-get update", &src_root, "apt-get", &["update"], &[]).await?;
        }
        install(progress, &BUILD_PACKAGES).await?;

        let tree = match source_tree(&src_root) {
            Some(t) => t,
            None => {
                progress(&format!("apt-get source kubernetes (into {})", src_root.display()));
                run(
                    &log,
                    "apt-get source kubernetes",
                    &src_root,
                    "apt-get",
                    &["source", "kubernetes"],
                    &[],
                )
                .await?;
                source_tree(&src_root).ok_or_else(|| ClusterError::AssetStep {
                    step: "apt-get source kubernetes".to_string(),
                    detail: format!("no kubernetes-* source tree in {}", src_root.display()),
                })?
            }
        };
        let out = tree.join(OUTPUT);
        patch_reflect2(&tree, progress).await?;
        let built =
            ["kube-apiserver", "kube-controller-manager"].iter().all(|b| out.join(b).is_file());
        if built {
            progress(&format!("reusing the build in {}", out.display()));
        } else {
            make(&tree, &log, progress).await?;
        }
        let version =
            super::apiserver_version(&out.join("kube-apiserver")).map_err(ClusterError::Assets)?;
        let dir = super::assets_cache_root().join(format!("k8s-{version}-{DEBIAN_BUILD}"));
        progress(&format!("caching the binaries in {}", dir.display()));
        fill_cache_dir(
            &dir,
            &[
                ("kube-apiserver", out.join("kube-apiserver")),
                ("kube-controller-manager", out.join("kube-controller-manager")),
                ("etcd", PathBuf::from("/usr/bin/etcd")),
                ("busybox", PathBuf::from("/bin/busybox")),
            ],
        )?;
        Ok(dir)
    }

    /// `apt-get install -y` the packages (already installed ones cost a second).
    pub(super) async fn install(
        progress: Progress<'_>,
        packages: &[&str],
    ) -> Result<(), ClusterError> {
        let root = super::super::cache_dir().join("k8s-src");
        std::fs::create_dir_all(&root).map_err(ClusterError::io("create", &root))?;
        progress(&format!("apt-get install {}", packages.join(" ")));
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(packages);
        let env = [("DEBIAN_FRONTEND", "noninteractive")];
        run(&root.join("build.log"), "apt-get install", &root, "apt-get", &args, &env).await?;
        Ok(())
    }

    /// Adds a `deb-src` entry with the mirror and suite of the existing `deb` entry,
    /// unless one exists. Returns whether it added one.
    fn add_deb_src_entry(progress: Progress<'_>) -> Result<bool, ClusterError> {
        let mut sources = Vec::new();
        for p in apt_source_files() {
            if let Ok(text) = std::fs::read_to_string(&p) {
                sources.push((p, text));
            }
        }
        if sources.iter().any(|(_, t)| has_deb_src(t)) {
            return Ok(false);
        }
        let (uri, suite) =
            sources.iter().find_map(|(_, t)| main_deb_entry(t)).ok_or_else(|| {
                ClusterError::AssetStep {
                    step: "add a deb-src entry".to_string(),
                    detail: "no Debian `deb` entry found in /etc/apt/sources.list{,.d}".to_string(),
                }
            })?;
        let entry = format!(
            "Types: deb-src\nURIs: {uri}\nSuites: {suite}\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        progress(&format!("adding a deb-src entry for {uri} {suite} in {SOURCES_FILE}"));
        std::fs::write(SOURCES_FILE, entry).map_err(ClusterError::io("write", SOURCES_FILE))?;
        Ok(true)
    }

    fn apt_source_files() -> Vec<PathBuf> {
        let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
        if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut more: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
                .collect();
            more.sort();
            files.extend(more);
        }
        files
    }

    /// True if the text has an active deb-src entry (one-line or deb822 format).
    pub(super) fn has_deb_src(text: &str) -> bool {
        text.lines().map(str::trim).any(|l| {
            l.starts_with("deb-src ")
                || (l.starts_with("Types:") && l.split_whitespace().any(|w| w == "deb-src"))
        })
    }

    /// The mirror and suite of the first non-security `deb` entry.
    pub(super) fn main_deb_entry(text: &str) -> Option<(String, String)> {
        // One-line format: `deb [options] URI SUITE COMPONENTS...`
        for l in text.lines().map(str::trim) {
            if let Some(rest) = l.strip_prefix("deb ") {
                let words: Vec<&str> =
                    rest.split_whitespace().filter(|w| !w.starts_with('[')).collect();
                let words: Vec<&str> =
                    words.into_iter().filter(|w| !w.ends_with(']') || w.contains("://")).collect();
                if let [uri, suite, ..] = words[..]
                    && !suite.contains("security")
                    && !suite.contains('-')
                {
                    return Some((uri.to_string(), suite.to_string()));
                }
            }
        }
        // deb822 format: stanzas separated by blank lines.
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            let types = field("Types:")?;
            if !types.split_whitespace().any(|w| w == "deb") {
                continue;
            }
            let (Some(uri), Some(suites)) = (field("URIs:"), field("Suites:")) else { continue };
            let uri = uri.split_whitespace().next()?.to_string();
            if let Some(suite) =
                suites.split_whitespace().find(|s| !s.contains("security") && !s.contains('-'))
            {
                return Some((uri, suite.to_string()));
            }
        }
        None
    }

    async fn has_source_package(log: &Path) -> bool {
        let dir = log.parent().unwrap_or(Path::new("/"));
        run(log, "apt-cache showsrc", dir, "apt-cache", &["showsrc", "kubernetes"], &[])
            .await
            .is_ok_and(|out| out.contains("Package: kubernetes"))
    }

    fn source_tree(root: &Path) -> Option<PathBuf> {
        let mut trees: Vec<PathBuf> = std::fs::read_dir(root)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kubernetes-"))
                    && p.join("Makefile").exists()
            })
            .collect();
        trees.sort();
        trees.pop()
    }

    /// Kubernetes 1.20 vendors reflect2 v1.0.1, which reads Go runtime internals
    /// that changed in Go 1.18: an API server built with bookworm's Go 1.19 dies
    /// ("fatal error") on the first custom resource it serves. reflect2 v1.0.2 fixes
    /// it; Debian packages it. Swaps the vendored copy for Debian's and updates the
    /// module metadata (`-mod=vendor` checks it), and removes binaries built before.
    async fn patch_reflect2(tree: &Path, progress: Progress<'_>) -> Result<(), ClusterError> {
        let modules = tree.join("vendor/modules.txt");
        let text = std::fs::read_to_string(&modules).map_err(ClusterError::io("read", &modules))?;
        if !text.contains(REFLECT2_OLD) {
            return Ok(());
        }
        install(progress, &["golang-github-modern-go-reflect2-dev"]).await?;
        progress("replacing the vendored reflect2 v1.0.1 with Debian's v1.0.2 (Go >= 1.18 fix)");
        let vendored = tree.join("vendor/github.com/modern-go/reflect2");
        let entries =
            std::fs::read_dir(REFLECT2_SRC).map_err(ClusterError::io("read", REFLECT2_SRC))?;
        std::fs::remove_dir_all(&vendored).map_err(ClusterError::io("remove", &vendored))?;
        std::fs::create_dir_all(&vendored).map_err(ClusterError::io("create", &vendored))?;
        for entry in entries.filter_map(Result::ok) {
            let src = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let source_file = name.ends_with(".go") || name.ends_with(".s") || name == "LICENSE";
            if src.is_file() && source_file && !name.ends_with("_test.go") {
                let dst = vendored.join(&name);
                std::fs::copy(&src, &dst).map_err(ClusterError::io("copy", &src))?;
            }
        }
        for file in [tree.join("go.mod"), modules] {
            let text = std::fs::read_to_string(&file).map_err(ClusterError::io("read", &file))?;
            std::fs::write(&file, text.replace(REFLECT2_OLD, REFLECT2_NEW))
                .map_err(ClusterError::io("write", &file))?;
        }
        for bin in ["kube-apiserver", "kube-controller-manager"] {
            let built = tree.join(OUTPUT).join(bin);
            if built.exists() {
                std::fs::remove_file(&built).map_err(ClusterError::io("remove", &built))?;
            }
        }
        Ok(())
    }

    async fn make(tree: &Path, log: &Path, progress: Progress<'_>) -> Result<(), ClusterError> {
        let gopath = tree.join(".go");
        let link_dir = gopath.join("src/k8s.io");
        std::fs::create_dir_all(&link_dir).map_err(ClusterError::io("create", &link_dir))?;
        let link = link_dir.join("kubernetes");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("../../..", &link)
                .map_err(ClusterError::io("symlink", &link))?;
        }
        progress(&format!(
            "make WHAT=\"cmd/kube-apiserver cmd/kube-controller-manager\" in {} (several minutes; log: {})",
            tree.display(),
            log.display()
        ));
        let gopath = gopath.to_string_lossy().into_owned();
        run(
            log,
            "make kube-apiserver kube-controller-manager",
            tree,
            "make",
            &["WHAT=cmd/kube-apiserver cmd/kube-controller-manager"],
            &[("GOPATH", gopath.as_str()), ("CGO_ENABLED", "0"), ("GOFLAGS", "-mod=vendor")],
        )
        .await
        .map(|_| ())
    }

    /// Runs a command, appending its output to `log`; on failure the error carries
    /// the output's tail. Returns stdout.
    async fn run(
        log: &Path,
        step: &str,
        dir: &Path,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<String, ClusterError> {
        use std::io::Write;
        let out = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| ClusterError::AssetStep {
                step: step.to_string(),
                detail: format!("cannot run {program}: {e}"),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "$ {program} {}\n{stdout}{stderr}", args.join(" "));
        }
        if out.status.success() {
            return Ok(stdout);
        }
        let all = format!("{stdout}{stderr}");
        let tail: Vec<&str> = all.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(ClusterError::AssetStep {
            step: step.to_string(),
            detail: format!("{} ({}); last lines:\n{}", out.status, log.display(), tail.join("\n")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_apiserver_output() {
        assert_eq!(
            KubeVersion::parse("Kubernetes v1.20.2"),
            Some(KubeVersion { major: 1, minor: 20, patch: 2 })
        );
        assert_eq!(KubeVersion::parse("v1.30.0-rc.1").map(|v| v.minor), Some(30));
        assert_eq!(KubeVersion::parse("Kubernetes"), None);
        assert_eq!(KubeVersion { major: 1, minor: 20, patch: 2 }.to_string(), "v1.20.2");
    }

    #[test]
    fn deb_src_entries_are_recognised_in_both_formats() {
        assert!(debian::has_deb_src("Types: deb-src\nURIs: http://deb.debian.org/debian\n"));
        assert!(debian::has_deb_src("Types: deb deb-src\n"));
        assert!(debian::has_deb_src("deb-src http://deb.debian.org/debian bookworm main\n"));
        assert!(!debian::has_deb_src("# deb-src http://x bookworm main\nTypes: deb\n"));
    }

    #[test]
    fn the_main_deb_entry_gives_mirror_and_suite() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n\
                      Suites: bookworm-security\n";
        assert_eq!(
            debian::main_deb_entry(deb822),
            Some(("http://deb.debian.org/debian".to_string(), "bookworm".to_string()))
        );
        let one_line =
            "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror/debian bookworm main\n";
        assert_eq!(
            debian::main_deb_entry(one_line),
            Some(("http://mirror/debian".to_string(), "bookworm".to_string()))
        );
        assert_eq!(
            debian::main_deb_entry("deb http://m/debian-security bookworm-security main"),
            None
        );
    }
}
