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
    let run = tokio::process::Command::new(istioctl)
        .args(["version", "--remote=false"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    parse_client_version(&String::from_utf8_lossy(&output.stdout))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\necho 1.30.3\n").unwrap();
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
}
