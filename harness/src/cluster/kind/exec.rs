//! What kind does to its node containers that testcontainers cannot: privileged execs
//! fed from stdin, readiness read from the (TTY) container log, and file uploads.
//! Plain bollard calls; callers add the cluster and step to the errors.

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// What an exec reads on its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    None,
    Bytes(Vec<u8>),
    /// Streamed from a file on the host (image archives: too large to hold in memory).
    File(PathBuf),
}

/// Why an exec, a log wait or an upload failed (without the cluster and step: the
/// caller knows them).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("feeding stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("the exec did not attach its output")]
    Detached,
    #[error("the exec's exit code was not known within {0:?} after its output ended")]
    NoExitCode(Duration),
    #[error("no matching line in the container log within {waited:?}; last lines:\n{tail}")]
    LogTimeout { waited: Duration, tail: String },
    #[error(
        "the container log ended (container stopped?) before a matching line; last lines:\n{tail}"
    )]
    LogEnded { tail: String },
    #[error("building the upload archive: {0}")]
    Archive(#[source] std::io::Error),
}

/// The result of a finished exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last lines of stderr (else stdout), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.is_empty() { &self.stdout } else { &self.stderr };
        tail_lines(&String::from_utf8_lossy(text), lines)
    }
}

/// Runs `argv` in the container, without a TTY (stdout and stderr apart), feeding
/// `stdin` and closing it, and waits for the command to end.
pub async fn exec(
    docker: &Docker,
    container: &str,
    argv: &[String],
    stdin: Stdin,
    privileged: bool,
) -> Result<ExecOutput, ExecError> {
    let config = CreateExecOptions {
        attach_stdin: Some(stdin != Stdin::None),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        privileged: Some(privileged),
        cmd: Some(argv.to_vec()),
        ..Default::default()
    };
    let id = docker.create_exec(container, config).await?.id;
    let start = StartExecOptions { detach: false, tty: false, output_capacity: Some(1 << 20) };
    let StartExecResults::Attached { mut output, mut input } =
        docker.start_exec(&id, Some(start)).await?
    else {
        return Err(ExecError::Detached);
    };
    let writer = async move {
        match stdin {
            Stdin::None => {}
            Stdin::Bytes(bytes) => input.write_all(&bytes).await?,
            Stdin::File(path) => {
                let mut file = tokio::fs::File::open(&path).await?;
                tokio::io::copy(&mut file, &mut input).await?;
            }
        }
        // Half-closes the connection: the command reads end-of-file.
        input.shutdown().await
    };
    let reader = async {
        let mut out = ExecOutput::default();
        while let Some(chunk) = output.next().await {
            match chunk? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out.stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => out.stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok::<_, bollard::errors::Error>(out)
    };
    let (written, read) = tokio::join!(writer, reader);
    let mut out = read?;
    out.exit_code = exit_code(docker, &id).await?;
    // A command that exits without reading all its input breaks the pipe: its exit
    // code says more than the write error, so the write error counts only on success.
    if let Err(e) = written
        && out.exit_code == 0
    {
        return Err(ExecError::Stdin(e));
    }
    Ok(out)
}

/// The exit code once Docker reports the exec finished. The output stream ends when
/// the process exits; the daemon records the code a moment later, so this polls a
/// bounded number of times.
async fn exit_code(docker: &Docker, id: &str) -> Result<i64, ExecError> {
    const TRIES: u32 = 200;
    const PAUSE: Duration = Duration::from_millis(10);
    for _ in 0..TRIES {
        let info = docker.inspect_exec(id).await?;
        if info.running != Some(true)
            && let Some(code) = info.exit_code
        {
            return Ok(code);
        }
        tokio::time::sleep(PAUSE).await;
    }
    Err(ExecError::NoExitCode(PAUSE * TRIES))
}

/// kind's systemd readiness check: `Reached target .*Multi-User System.*` or
/// `detected cgroup v1` in the container log (written there only with a TTY).
pub fn systemd_ready_line(line: &str) -> bool {
    let reached =
        line.find("Reached target ").is_some_and(|at| line[at..].contains("Multi-User System"));
    reached || line.contains("detected cgroup v1")
}

/// Follows the container log from its start until a line satisfies `ready`, for at
/// most `timeout`. Returns that line.
pub async fn wait_for_log_line(
    docker: &Docker,
    container: &str,
    timeout: Duration,
    ready: impl Fn(&str) -> bool,
) -> Result<String, ExecError> {
    let opts = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
    let mut stream = docker.logs(container, Some(opts));
    let mut seen = String::new();
    let scan = async {
        let mut pending = String::new();
        while let Some(chunk) = stream.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk?.into_bytes()));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                seen.push_str(&line);
                if ready(&line) {
                    return Ok(Some(line.trim_end().to_string()));
                }
            }
            // A line may also be complete without its newline yet.
            if ready(&pending) {
                return Ok(Some(pending.trim_end().to_string()));
            }
        }
        seen.push_str(&pending);
        Ok::<_, bollard::errors::Error>(None)
    };
    match tokio::time::timeout(timeout, scan).await {
        Ok(Ok(Some(line))) => Ok(line),
        Ok(Ok(None)) => Err(ExecError::LogEnded { tail: tail_lines(&seen, 20) }),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ExecError::LogTimeout { waited: timeout, tail: tail_lines(&seen, 20) }),
    }
}

/// Writes one file into the container (parent directory must exist), with `mode`.
/// Not into tmpfs mounts (`/tmp`, `/run` of a node): Docker extracts archives into the
/// container's own filesystem, beneath such mounts, where nothing sees them; write
/// there through an exec (`cp /dev/stdin <path>`, as the bootstrap does).
pub async fn upload_file(
    docker: &Docker,
    container: &str,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> Result<(), ExecError> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = if dir.is_empty() { "/" } else { dir };
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, contents).map_err(ExecError::Archive)?;
    let archive = builder.into_inner().map_err(ExecError::Archive)?;
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::new().path(dir).build();
    docker.upload_to_container(container, Some(opts), bollard::body_full(archive.into())).await?;
    Ok(())
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_readiness_lines_as_kind_matches_them() {
        assert!(systemd_ready_line(
            "[  OK  ] Reached target multi-user.target - Multi-User System."
        ));
        assert!(systemd_ready_line(
            "\u{1b}[0;32m  OK  \u{1b}[0m] Reached target Multi-User System.\r"
        ));
        assert!(systemd_ready_line("systemd 252 running in system mode ... detected cgroup v1"));
        assert!(!systemd_ready_line("Reached target Basic System."));
        assert!(!systemd_ready_line("Multi-User System. Reached target"));
        assert!(!systemd_ready_line(
            "INFO: ensuring we can execute mount/umount even with userns-remap"
        ));
    }

    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
        let out = ExecOutput { exit_code: 1, stdout: b"x\ny".to_vec(), stderr: vec![] };
        assert_eq!(out.tail(1), "y");
    }
}
