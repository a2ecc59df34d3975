//! One run, whatever provider made its clusters: its id, its directory (a temporary
//! one, or kept under a state directory), and what removes it when the handle drops.

use std::path::{Path, PathBuf};

use super::{ClusterError, RunId, docker};

/// What removes a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Every container, volume and network labelled with the run id (the Docker
    /// providers).
    DockerLabelled,
    /// Nothing: the clusters are not the harness's (the existing-cluster provider).
    /// What the harness created in them is removed by the install's cleanup phase.
    Nothing,
}

/// A run's identity and lifetime. Dropping it removes the run (see [`Cleanup`]) unless
/// [`Run::keep`] or [`Run::down`] disarmed that.
pub struct Run {
    id: RunId,
    dir: PathBuf,
    cleanup: Cleanup,
    armed: bool,
    // Declared last: dropped after the cleanup in `Drop::drop`.
    tempdir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .field("cleanup", &self.cleanup)
            .finish()
    }
}

impl Run {
    /// A run with its directory: `<state_dir>/<run id>` when given (it survives the
    /// process, so the run can be kept), else a temporary directory named
    /// `<prefix><run id>-...`, deleted with the run.
    pub fn new(
        id: RunId,
        state_dir: Option<&Path>,
        prefix: &str,
        cleanup: Cleanup,
    ) -> Result<Self, ClusterError> {
        let (dir, tempdir) = match state_dir {
            Some(state) => {
                let d = state.join(id.as_str());
                std::fs::create_dir_all(&d).map_err(ClusterError::io("create", &d))?;
                (d, None)
            }
            None => {
                let t =
                    tempfile::Builder::new().prefix(&format!("{prefix}{id}-")).tempdir().map_err(
                        ClusterError::io("create a temporary directory", std::env::temp_dir()),
                    )?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Self { id, dir, cleanup, armed: true, tempdir })
    }

    pub fn id(&self) -> &RunId {
        &self.id
    }

    /// The run's directory (kubeconfigs, records).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cleanup(&self) -> Cleanup {
        self.cleanup
    }

    /// Removes the run now (what `Drop` would do), reporting errors.
    pub async fn down(mut self) -> Result<(), ClusterError> {
        self.armed = false;
        match self.cleanup {
            Cleanup::DockerLabelled => {
                let docker = docker::connect().await?;
                docker::remove_labelled(&docker, &docker::run_filter(&self.id)).await.map(|_| ())
            }
            Cleanup::Nothing => Ok(()),
        }
    }

    /// Keeps the run after this process ends (`cargo xtask down --run-id` removes it).
    /// Needs a state directory, so that the kubeconfigs survive; returns it.
    pub fn keep(mut self) -> Result<PathBuf, ClusterError> {
        if self.tempdir.is_some() {
            return Err(ClusterError::Options(format!(
                "cannot keep run {}: it was started without a state directory, so its \
                 kubeconfigs are in a temporary directory deleted with it; the run is removed \
                 instead. Start a run that is to be kept with a state directory (`cargo xtask \
                 up` and `cargo xtask e2e --keep` do)",
                self.id
            )));
        }
        self.armed = false;
        Ok(self.dir.clone())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.armed || self.cleanup == Cleanup::Nothing {
            return;
        }
        match docker::remove_run_blocking(&self.id) {
            Ok(removed) => tracing::debug!(
                run_id = %self.id,
                containers = removed.containers.len(),
                networks = removed.networks.len(),
                "removed the run's containers and network"
            ),
            Err(e) => tracing::warn!(
                run_id = %self.id,
                "cleanup failed ({e}); `cargo xtask down --run-id {}` removes the rest",
                self.id
            ),
        }
    }
}
