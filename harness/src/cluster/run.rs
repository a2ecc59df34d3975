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

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::Docker;

    #[test]
    fn a_run_without_a_state_dir_cannot_be_kept_and_its_directory_goes() {
        let run = Run::new(RunId::new(), None, "ecp-test-", Cleanup::Nothing).unwrap();
        let dir = run.dir().to_path_buf();
        assert!(dir.is_dir());
        let err = run.keep().unwrap_err().to_string();
        assert!(err.contains("without a state directory"), "{err}");
        assert!(!dir.exists(), "the temporary directory outlived the refused keep");
    }

    #[test]
    fn a_kept_run_keeps_its_directory_under_the_state_dir() {
        let state = tempfile::tempdir().unwrap();
        let id = RunId::new();
        let run = Run::new(id.clone(), Some(state.path()), "ecp-test-", Cleanup::Nothing).unwrap();
        assert_eq!(run.dir(), state.path().join(id.as_str()));
        assert_eq!(run.keep().unwrap(), state.path().join(id.as_str()));
        assert!(state.path().join(id.as_str()).is_dir());
    }

    /// `Cleanup::Nothing` (clusters that are not the harness's) leaves alone even what
    /// carries the run's label: a labelled network survives both `down` and drop.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_that_cleans_up_nothing_removes_nothing() {
        let d = docker::connect().await.unwrap();
        let id = RunId::new();
        let filter = docker::run_filter(&id);
        let name = format!("ecp-test-nothing-{id}");
        let labels = docker::labels(&id, "test");
        docker::create_network(&d, &name, true, &labels, &Default::default()).await.unwrap();
        let count = |d: Docker| {
            let filter = filter.clone();
            async move { docker::list_labelled(&d, &filter).await.unwrap().networks.len() }
        };

        let run = Run::new(id.clone(), None, "ecp-test-", Cleanup::Nothing).unwrap();
        run.down().await.unwrap();
        assert_eq!(count(d.clone()).await, 1, "down removed the labelled network");
        drop(Run::new(id.clone(), None, "ecp-test-", Cleanup::Nothing).unwrap());
        assert_eq!(count(d.clone()).await, 1, "drop removed the labelled network");

        // A Docker run with the same id does remove it.
        Run::new(id, None, "ecp-test-", Cleanup::DockerLabelled).unwrap().down().await.unwrap();
        assert_eq!(count(d).await, 0);
    }
}
