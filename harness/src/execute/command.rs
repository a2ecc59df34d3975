//! The installer command lines of a plan's [`Action::Run`]: which binary, which
//! arguments once the placeholders are resolved, run where; and running them with a
//! timeout, standard output optionally kept in a plan file.
//!
//! [`Action::Run`]: crate::install::Action::Run

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::install::plan::resolve_placeholders;
use crate::install::{Program, SKIP_SCHEMA_VALIDATION};
use crate::istio::tools::HelmVersion;

/// How much of an installer's stderr an error quotes.
const STDERR_TAIL_LINES: usize = 30;

/// A fully resolved command: what the executor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The plan directory: file arguments are relative to it.
    pub cwd: PathBuf,
    /// Where standard output goes (absolute), if the plan keeps it.
    pub stdout_file: Option<PathBuf>,
    /// `KUBECONFIG` for the command: the step's cluster, so that a command without
    /// `--kubeconfig` can never reach the user's default cluster.
    pub kubeconfig: Option<PathBuf>,
}

/// The binaries the installers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    pub istioctl: PathBuf,
    /// `None` when the plan uses no helm (istioctl backend).
    pub helm: Option<PathBuf>,
    /// The helm binary's version, when it was read: a Helm older than 3.16 gets no
    /// `--skip-schema-validation` (it has neither the flag nor the bug it avoids).
    pub helm_version: Option<HelmVersion>,
    /// The extracted release (`istio-<v>/`), for `{istio-release}` arguments.
    pub release_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("the plan runs helm, but no helm binary was given or found (pass --helm PATH)")]
    NoHelm,
    #[error("argument `{arg}` names a cluster without a kubeconfig")]
    UnknownKubeconfig { arg: String },
    #[error(
        "argument `{arg}` needs the Istio release directory, but istioctl was given with --istioctl and no release was downloaded"
    )]
    NoRelease { arg: String },
}

/// Resolves a `Run` action into the command the executor starts. `kubeconfig` maps a
/// cluster name to the kubeconfig path the host uses for it.
pub fn invocation(
    program: Program,
    args: &[String],
    stdout_file: Option<&str>,
    programs: &Programs,
    plan_dir: &Path,
    kubeconfig: impl Fn(&str) -> Option<PathBuf>,
) -> Result<Invocation, CommandError> {
    let binary = match program {
        Program::Istioctl => programs.istioctl.clone(),
        Program::Helm => programs.helm.clone().ok_or(CommandError::NoHelm)?,
    };
    let no_release = PathBuf::new();
    let release = programs.release_dir.as_deref().unwrap_or(&no_release);
    let helm_lacks_skip = program == Program::Helm
        && programs.helm_version.is_some_and(|v| !v.has_skip_schema_validation());
    let args = args
        .iter()
        .filter(|arg| !(helm_lacks_skip && *arg == SKIP_SCHEMA_VALIDATION))
        .map(|arg| {
            if programs.release_dir.is_none()
                && arg.contains(crate::install::plan::RELEASE_DIR_PLACEHOLDER)
            {
                return Err(CommandError::NoRelease { arg: arg.clone() });
            }
            resolve_placeholders(arg, &kubeconfig, release)
                .ok_or_else(|| CommandError::UnknownKubeconfig { arg: arg.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Invocation {
        program: binary,
        args,
        cwd: plan_dir.to_path_buf(),
        stdout_file: stdout_file.map(|f| plan_dir.join(f)),
        kubeconfig: None,
    })
}

impl Invocation {
    /// The command line as a shell would read it (for logs and reports; holds paths,
    /// never file contents).
    pub fn display(&self) -> String {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().cloned())
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command to completion within `timeout` (killed after it), standard
    /// output kept in [`Invocation::stdout_file`] when set.
    pub async fn run(&self, timeout: Duration) -> Result<(), RunError> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(kubeconfig) = &self.kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .spawn()
            .map_err(|e| RunError::Spawn { command: self.display(), reason: e.to_string() })?;
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| RunError::Timeout { command: self.display(), timeout })?
            .map_err(|e| RunError::Spawn { command: self.display(), reason: e.to_string() })?;
        if !output.status.success() {
            return Err(RunError::Failed {
                command: self.display(),
                status: output.status.to_string(),
                stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), STDERR_TAIL_LINES),
            });
        }
        if let Some(path) = &self.stdout_file {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| RunError::Output { path: path.clone(), reason: e.to_string() })?;
            }
            std::fs::write(path, &output.stdout)
                .map_err(|e| RunError::Output { path: path.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{command}` could not be started: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` did not finish within {timeout:?} and was stopped")]
    Timeout { command: String, timeout: Duration },
    #[error("`{command}` failed ({status}); its last error output:\n{stderr_tail}")]
    Failed { command: String, status: String, stderr_tail: String },
    #[error("writing the output to {}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
}

/// The last `lines` lines of `text`, redacted (installers may echo values).
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    crate::diag::redact_text(&all[start..].join("\n")).into_owned()
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@{}+".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::plan::kubeconfig_placeholder;
    use crate::install::{Action, Installer, PlanOptions};
    use crate::version::IstioVersion;
    use rstest::rstest;

    const RELEASE: &str = "/cache/istio/1.22.8/istio-1.22.8";

    fn programs(helm: bool, release: bool) -> Programs {
        Programs {
            istioctl: "/opt/istio/bin/istioctl".into(),
            helm: helm.then(|| "/usr/local/bin/helm".into()),
            helm_version: None,
            release_dir: release.then(|| RELEASE.into()),
        }
    }

    fn kubeconfigs(cluster: &str) -> Option<PathBuf> {
        ["external", "config", "remote2"]
            .contains(&cluster)
            .then(|| PathBuf::from(format!("/run/ecp/{cluster}.kubeconfig")))
    }

    fn resolve(action: &Action, programs: &Programs) -> Result<Invocation, CommandError> {
        let Action::Run { program, args, stdout_file } = action else { panic!("not a Run") };
        invocation(
            *program,
            args,
            stdout_file.as_deref(),
            programs,
            Path::new("/plan"),
            kubeconfigs,
        )
    }

    fn run(program: Program, args: &[&str], stdout_file: Option<&str>) -> Action {
        Action::Run {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            stdout_file: stdout_file.map(String::from),
        }
    }

    #[test]
    fn istioctl_install_gets_the_clusters_kubeconfig() {
        let action = run(
            Program::Istioctl,
            &[
                "install",
                "-y",
                "-f",
                "external/control-plane-gateway.yaml",
                "--kubeconfig",
                "{kubeconfig:external}",
            ],
            None,
        );
        assert_eq!(
            resolve(&action, &programs(false, false)).unwrap().display(),
            "/opt/istio/bin/istioctl install -y -f external/control-plane-gateway.yaml \
             --kubeconfig /run/ecp/external.kubeconfig"
        );
    }

    #[test]
    fn stdout_files_land_in_the_plan_dir() {
        let action = run(
            Program::Istioctl,
            &[
                "manifest",
                "generate",
                "-f",
                "config/remote.yaml",
                "--kubeconfig",
                "{kubeconfig:config}",
            ],
            Some("config/remote-manifest.yaml"),
        );
        let inv = resolve(&action, &programs(false, false)).unwrap();
        assert_eq!(
            inv.display(),
            "/opt/istio/bin/istioctl manifest generate -f config/remote.yaml \
             --kubeconfig /run/ecp/config.kubeconfig"
        );
        assert_eq!(inv.stdout_file, Some(PathBuf::from("/plan/config/remote-manifest.yaml")));
        assert_eq!(inv.cwd, PathBuf::from("/plan"));
    }

    #[test]
    fn helm_charts_from_the_release_resolve_to_its_directory() {
        let action = run(
            Program::Helm,
            &[
                "upgrade",
                "--install",
                "istiod-remote",
                "{istio-release}/manifests/charts/istiod-remote",
                "--namespace",
                "external-istiod",
                "--kubeconfig",
                "{kubeconfig:config}",
            ],
            None,
        );
        assert_eq!(
            resolve(&action, &programs(true, true)).unwrap().display(),
            format!(
                "/usr/local/bin/helm upgrade --install istiod-remote {RELEASE}/manifests/charts/istiod-remote \
                 --namespace external-istiod --kubeconfig /run/ecp/config.kubeconfig"
            )
        );
        let err = resolve(&action, &programs(true, false)).unwrap_err();
        assert!(matches!(err, CommandError::NoRelease { .. }), "{err:?}");
        assert_eq!(resolve(&action, &programs(false, true)).unwrap_err(), CommandError::NoHelm);
    }

    /// The plan asks for `--skip-schema-validation`; a Helm older than 3.16 has no
    /// such flag (and no schema bug), so it is dropped there and only there.
    #[test]
    fn skip_schema_validation_is_dropped_for_a_helm_without_it() {
        let action = run(
            Program::Helm,
            &["upgrade", "--install", "istio-ingressgateway", "gateway", SKIP_SCHEMA_VALIDATION],
            None,
        );
        let with = |version: Option<HelmVersion>| {
            let programs = Programs { helm_version: version, ..programs(true, false) };
            resolve(&action, &programs).unwrap().args
        };
        let v = |minor| Some(HelmVersion { major: 3, minor, patch: 0 });
        assert!(with(v(16)).iter().any(|a| a == SKIP_SCHEMA_VALIDATION));
        assert!(
            with(Some(HelmVersion { major: 4, minor: 1, patch: 4 }))
                .contains(&SKIP_SCHEMA_VALIDATION.to_string())
        );
        assert!(with(None).iter().any(|a| a == SKIP_SCHEMA_VALIDATION), "unknown: as planned");
        assert_eq!(with(v(15)), ["upgrade", "--install", "istio-ingressgateway", "gateway"]);
    }

    #[test]
    fn unknown_clusters_are_errors() {
        let action = Action::Run {
            program: Program::Istioctl,
            args: vec!["install".into(), "--kubeconfig".into(), kubeconfig_placeholder("nope")],
            stdout_file: None,
        };
        let err = resolve(&action, &programs(false, false)).unwrap_err();
        assert_eq!(err, CommandError::UnknownKubeconfig { arg: "{kubeconfig:nope}".into() });
    }

    /// Every command line of real plans resolves: the right binary, no placeholder
    /// left, and `--kubeconfig` naming the kubeconfig of the step's own cluster.
    #[rstest]
    #[case("1.22.8", Installer::Istioctl)]
    #[case("1.22.8", Installer::Helm)]
    #[case("1.23.6", Installer::Helm)]
    #[case("1.24.6", Installer::Helm)]
    #[case("1.30.3", Installer::Istioctl)]
    #[case("1.30.3", Installer::Helm)]
    fn every_command_line_of_a_plan_resolves(#[case] version: &str, #[case] installer: Installer) {
        let opts = PlanOptions::new(version.parse::<IstioVersion>().unwrap(), installer, 2);
        let plan = crate::install::plan(&opts).unwrap();
        let programs = programs(true, true);
        let mut lines = 0;
        for step in &plan.steps {
            for action in &step.actions {
                let Action::Run { program, .. } = action else { continue };
                let inv = resolve(action, &programs).unwrap();
                let line = inv.display();
                let binary = match program {
                    Program::Istioctl => "/opt/istio/bin/istioctl",
                    Program::Helm => "/usr/local/bin/helm",
                };
                assert_eq!(inv.program, PathBuf::from(binary), "{line}");
                assert!(
                    !line.contains("{kubeconfig:") && !line.contains("{istio-release}"),
                    "{line}"
                );
                let at = inv.args.iter().position(|a| a == "--kubeconfig").expect(&line);
                assert_eq!(
                    inv.args[at + 1],
                    format!("/run/ecp/{}.kubeconfig", step.cluster),
                    "step {} ({}) runs against its own cluster: {line}",
                    step.number,
                    step.id
                );
                lines += 1;
            }
        }
        assert!(lines > 0, "the plan runs an installer");
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let inv = Invocation {
            program: "/bin/istioctl".into(),
            args: vec!["--set".into(), "values.a=b c".into(), "it's".into()],
            cwd: "/".into(),
            stdout_file: None,
            kubeconfig: None,
        };
        assert_eq!(inv.display(), r"/bin/istioctl --set 'values.a=b c' 'it'\''s'");
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        crate::istio::tools::stand_in_program(dir, "fake-installer", body)
    }

    #[tokio::test]
    async fn run_passes_args_in_the_plan_dir_and_keeps_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let program =
            script(dir.path(), r#"echo "cwd=$(pwd)"; for a in "$@"; do echo "arg=$a"; done"#);
        let inv = Invocation {
            program,
            args: vec!["manifest".into(), "generate".into(), "a b".into()],
            cwd: dir.path().to_path_buf(),
            stdout_file: Some(dir.path().join("out/manifest.yaml")),
            kubeconfig: Some("/run/ecp/config.kubeconfig".into()),
        };
        inv.run(Duration::from_secs(10)).await.unwrap();
        let out = std::fs::read_to_string(dir.path().join("out/manifest.yaml")).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(out, format!("cwd={}\narg=manifest\narg=generate\narg=a b\n", cwd.display()));
    }

    #[tokio::test]
    async fn a_failing_installer_reports_its_stderr_tail_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "i=0; while [ $i -lt 40 ]; do echo line$i >&2; i=$((i+1)); done; \
             echo 'token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' >&2; exit 3",
        );
        let inv = Invocation {
            program,
            args: vec![],
            cwd: dir.path().into(),
            stdout_file: None,
            kubeconfig: None,
        };
        let err = inv.run(Duration::from_secs(10)).await.unwrap_err().to_string();
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("line39") && !err.contains("line5\n"), "only the tail: {err}");
        assert!(!err.contains("c2lnbmF0dXJl"), "the token is redacted: {err}");
    }

    #[tokio::test]
    async fn a_hanging_installer_is_stopped_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "exec sleep 30");
        let inv = Invocation {
            program,
            args: vec![],
            cwd: dir.path().into(),
            stdout_file: None,
            kubeconfig: None,
        };
        let started = std::time::Instant::now();
        let err = inv.run(Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_binary_is_named() {
        let inv = Invocation {
            program: "/nonexistent/istioctl".into(),
            args: vec!["version".into()],
            cwd: "/".into(),
            stdout_file: None,
            kubeconfig: None,
        };
        let err = inv.run(Duration::from_secs(5)).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/istioctl version"), "{err}");
    }
}
