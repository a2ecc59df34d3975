//! The programs the installers run: `istioctl` (given with `--istioctl PATH`, else
//! the one of the downloaded release) and `helm` (given with `--helm PATH`, else found
//! on `PATH`).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `istioctl version --remote=false` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolError {
    #[error("{tool} given as {} does not exist", path.display())]
    Missing { tool: &'static str, path: PathBuf },
    #[error("{tool} given as {} is not an executable file", path.display())]
    NotExecutable { tool: &'static str, path: PathBuf },
    #[error(
        "helm was not found on PATH, and `--installer helm` needs it: install Helm 3 (https://helm.sh/docs/intro/install/) or pass `--helm PATH`"
    )]
    HelmNotFound,
}

/// Checks a binary the user named: it must be an executable file.
pub fn check_executable(tool: &'static str, path: &Path) -> Result<PathBuf, ToolError> {
    let meta = std::fs::metadata(path)
        .map_err(|_| ToolError::Missing { tool, path: path.to_path_buf() })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ToolError::NotExecutable { tool, path: path.to_path_buf() });
    }
    Ok(path.to_path_buf())
}

/// The first executable `name` in the directories of `path_var` (a `PATH` value).
pub fn find_on_path(name: &str, path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| check_executable("", candidate).is_ok())
}

/// `--helm PATH` when given, else `helm` on `PATH`.
pub fn helm(explicit: Option<&Path>) -> Result<PathBuf, ToolError> {
    match explicit {
        Some(path) => check_executable("helm", path),
        None => std::env::var_os("PATH")
            .and_then(|p| find_on_path("helm", &p))
            .ok_or(ToolError::HelmNotFound),
    }
}

/// `--istioctl PATH`, checked. Without it the caller takes the release's istioctl.
pub fn istioctl(explicit: &Path) -> Result<PathBuf, ToolError> {
    check_executable("istioctl", explicit)
}

/// The client version an `istioctl` reports (`istioctl version --remote=false`), if it
/// answers in time. Used to warn when a given istioctl is not the version under test.
pub async fn istioctl_client_version(istioctl: &Path) -> Option<String> {
    let stdout = version_output(istioctl, &["version", "--remote=false"]).await.ok()?;
    parse_client_version(&stdout)
}

/// Runs a program's version query (`<program> <args>`) within [`VERSION_TIMEOUT`]:
/// its standard output, or why there is none.
async fn version_output(program: &Path, args: &[&str]) -> Result<String, String> {
    let command = format!("`{} {}`", program.display(), args.join(" "));
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .map_err(|_| format!("{command} did not answer within {VERSION_TIMEOUT:?}"))?
        .map_err(|e| format!("{command} could not run: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!("{command} failed: {}", stdout.trim()));
    }
    Ok(stdout)
}

/// Reads `1.30.3` or `client version: 1.30.3` (the forms istioctl prints).
pub fn parse_client_version(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let line = line.trim();
        let value = line.strip_prefix("client version:").map(str::trim).unwrap_or(line);
        let looks_like_version = value.split('.').count() >= 3
            && value.chars().next().is_some_and(|c| c.is_ascii_digit());
        looks_like_version.then(|| value.to_string())
    })
}

/// A Helm client version, from `helm version --short` (`v3.18.6+gb76a950`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HelmVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// The oldest Helm Istio's charts support (Istio's Helm install prerequisites).
pub const HELM_MINIMUM: HelmVersion = HelmVersion { major: 3, minor: 6, patch: 0 };
/// The newest Helm the plans were checked with on Istio's real charts.
pub const HELM_NEWEST_CHECKED: HelmVersion = HelmVersion { major: 4, minor: 1, patch: 4 };
/// Which Helm versions are known to work, as preflight says it.
pub const HELM_KNOWN_TO_WORK: &str = "Helm 3.6 to 3.15 as they are; Helm 3.16 and later \
     (Helm 4 included, checked up to 4.1.4) with --skip-schema-validation, which the suite \
     passes where an Istio version's gateway chart fails its own schema (Helm 3.18.5 and \
     later refuse it)";

impl HelmVersion {
    /// Reads `v3.18.6+gb76a950`, `v4.1.4` or `version.BuildInfo{Version:"v3.14.0", ...}`.
    pub fn parse(output: &str) -> Option<HelmVersion> {
        let start = output
            .char_indices()
            .find(|&(i, c)| c == 'v' && output[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?
            .0;
        let rest = &output[start + 1..];
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let mut parts = rest[..end].split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        Some(HelmVersion { major, minor, patch })
    }

    /// Whether this Helm has `--skip-schema-validation` (3.16.0 and later).
    pub fn has_skip_schema_validation(self) -> bool {
        let (major, minor) = crate::install::SKIP_SCHEMA_VALIDATION_SINCE;
        (self.major, self.minor) >= (major, minor)
    }
}

impl std::fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version of a `helm` binary (`helm version --short`), or why it cannot be read.
pub async fn helm_version(helm: &Path) -> Result<HelmVersion, String> {
    let stdout = version_output(helm, &["version", "--short"]).await?;
    HelmVersion::parse(&stdout).ok_or_else(|| {
        format!("`{} version --short` printed no version: {:?}", helm.display(), stdout.trim())
    })
}

/// Whether `helm` can install Istio's charts: a problem for a Helm older than
/// [`HELM_MINIMUM`], else what the run should know (a Helm newer than the plans were
/// checked with is tried, with a warning).
pub fn helm_compatibility(helm: HelmVersion) -> Result<Option<String>, String> {
    if helm < HELM_MINIMUM {
        return Err(format!(
            "helm {helm} is too old for Istio's charts (they need Helm {}.{} or later); \
             known to work: {HELM_KNOWN_TO_WORK}",
            HELM_MINIMUM.major, HELM_MINIMUM.minor
        ));
    }
    let newer = (helm.major, helm.minor) > (HELM_NEWEST_CHECKED.major, HELM_NEWEST_CHECKED.minor);
    Ok(newer.then(|| {
        format!(
            "helm {helm} is newer than the Helm the plans were checked with \
             ({HELM_NEWEST_CHECKED}); known to work: {HELM_KNOWN_TO_WORK}"
        )
    }))
}

/// A stand-in program for tests: a `/bin/sh` script running `body`, executable.
#[cfg(test)]
pub(crate) fn stand_in_program(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("a test writes its stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("a test makes its stand-in executable");
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = stand_in_program(dir, name, "echo 1.30.3");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn an_explicit_istioctl_must_be_an_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "istioctl", 0o755);
        assert_eq!(istioctl(&good).unwrap(), good);

        let plain = write(dir.path(), "not-exec", 0o644);
        let err = istioctl(&plain).unwrap_err();
        assert_eq!(err, ToolError::NotExecutable { tool: "istioctl", path: plain.clone() });
        assert!(err.to_string().contains("not-exec"), "{err}");

        let missing = dir.path().join("nope");
        let err = istioctl(&missing).unwrap_err().to_string();
        assert!(err.contains("does not exist") && err.contains("nope"), "{err}");
        assert!(istioctl(dir.path()).is_err(), "a directory is not a binary");
    }

    #[test]
    fn helm_is_found_on_path_skipping_non_executables() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "helm", 0o644);
        let found = write(b.path(), "helm", 0o755);
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert_eq!(find_on_path("helm", &path), Some(found));
        let only_a = std::env::join_paths([a.path()]).unwrap();
        assert_eq!(find_on_path("helm", &only_a), None);
    }

    #[test]
    fn missing_helm_says_how_to_provide_it() {
        let msg = ToolError::HelmNotFound.to_string();
        assert!(msg.contains("--helm PATH") && msg.contains("helm.sh"), "{msg}");
        let dir = tempfile::tempdir().unwrap();
        let err = helm(Some(&dir.path().join("helm"))).unwrap_err();
        assert!(matches!(err, ToolError::Missing { tool: "helm", .. }), "{err:?}");
    }

    #[test]
    fn client_versions_parse_in_both_forms() {
        assert_eq!(parse_client_version("1.30.3\n").as_deref(), Some("1.30.3"));
        assert_eq!(parse_client_version("client version: 1.22.8\n").as_deref(), Some("1.22.8"));
        assert_eq!(
            parse_client_version("client version: 1.26.0-distro.1\n").as_deref(),
            Some("1.26.0-distro.1")
        );
        assert_eq!(parse_client_version("no running Istio pods\n"), None);
    }

    #[tokio::test]
    async fn the_version_of_a_given_istioctl_is_read_from_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let fake = write(dir.path(), "istioctl", 0o755);
        assert_eq!(istioctl_client_version(&fake).await.as_deref(), Some("1.30.3"));
    }

    #[test]
    fn helm_versions_parse_in_every_form_helm_prints() {
        let v = |major, minor, patch| Some(HelmVersion { major, minor, patch });
        assert_eq!(HelmVersion::parse("v3.18.6+gb76a950\n"), v(3, 18, 6));
        assert_eq!(HelmVersion::parse("v4.1.4"), v(4, 1, 4));
        assert_eq!(
            HelmVersion::parse(r#"version.BuildInfo{Version:"v3.14.0", GitCommit:"3fc9f4b"}"#),
            v(3, 14, 0)
        );
        assert_eq!(HelmVersion::parse("helm: command not found"), None);
        assert_eq!(HelmVersion::parse("v3.x"), None);
    }

    #[test]
    fn skip_schema_validation_exists_from_helm_3_16() {
        let at = |minor| HelmVersion { major: 3, minor, patch: 0 };
        assert!(!at(15).has_skip_schema_validation());
        assert!(at(16).has_skip_schema_validation());
        assert!(HelmVersion { major: 4, minor: 0, patch: 0 }.has_skip_schema_validation());
    }

    #[test]
    fn helm_compatibility_refuses_old_helm_and_says_what_works() {
        let err = helm_compatibility(HelmVersion { major: 3, minor: 5, patch: 4 }).unwrap_err();
        assert!(err.contains("v3.5.4") && err.contains("3.6 or later"), "{err}");
        assert!(err.contains("Helm 4 included"), "{err}");
        assert_eq!(helm_compatibility(HelmVersion { major: 3, minor: 18, patch: 6 }), Ok(None));
        assert_eq!(helm_compatibility(HELM_NEWEST_CHECKED), Ok(None));
        let newer = helm_compatibility(HelmVersion { major: 4, minor: 2, patch: 0 }).unwrap();
        assert!(newer.is_some_and(|w| w.contains("newer")));
    }

    #[tokio::test]
    async fn the_version_of_a_helm_binary_is_read_from_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let body = "[ \"$1 $2\" = 'version --short' ] && echo v3.17.2+gcc0bbbd";
        let path = stand_in_program(dir.path(), "helm", body);
        assert_eq!(helm_version(&path).await, Ok(HelmVersion { major: 3, minor: 17, patch: 2 }));
        std::fs::write(&path, "#!/bin/sh\necho nothing useful\n").unwrap();
        let err = helm_version(&path).await.unwrap_err();
        assert!(err.contains("printed no version"), "{err}");
    }
}
