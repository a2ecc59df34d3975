//! What a preflight finds: typed problems, each with what is wrong and what to do.
//! Every check that runs before anything is created (Docker, node images, programs,
//! releases, images, the clusters of the existing-cluster provider) reports
//! [`Problem`]s, so that callers decide by [`ProblemKind`], never by the wording.

use std::fmt;

/// What a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The Docker daemon cannot be reached or cannot do what the run needs.
    Docker,
    /// The kind node image is missing or cannot be pulled.
    NodeImage,
    /// A program (istioctl, helm) is missing, too old or does not run.
    Program,
    /// The Istio release (archive, charts) cannot be had.
    Release,
    /// Images are missing and their registry cannot be reached.
    Images,
    /// A repository or download host the installer needs cannot be reached.
    Repository,
    /// The plan cannot be made for these options.
    Planning,
    /// The topology file of the existing-cluster provider is unreadable or wrong.
    TopologyFile,
    /// A cluster's API server cannot be reached, or its kubeconfig or context is wrong.
    Unreachable,
    /// A cluster's Kubernetes version is outside the Istio version's range.
    KubernetesVersion,
    /// The credentials lack a permission the install needs.
    Permission,
    /// The external cluster has no LoadBalancer support and no address was given.
    LoadBalancer,
    /// Istio is already installed where the plan installs it.
    ExistingInstall,
    /// An operator the installer needs (the Sail operator) is not installed.
    MissingOperator,
    /// Anything else the host lacks (kernel modules, userns settings, ...).
    Host,
}

/// One thing in the way of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What is wrong, naming the cluster, program or object.
    pub message: String,
    /// What to do about it; empty when the message says it all.
    pub remedy: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self { kind, message: message.into(), remedy: remedy.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.remedy.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.message, self.remedy)
        }
    }
}

/// Drops repeated problems (the same one found for several versions), keeping order.
pub fn dedup(problems: &mut Vec<Problem>) {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.kind, p.message.clone(), p.remedy.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_message_then_remedy() {
        let p = Problem::new(ProblemKind::Program, "helm not found on PATH", "install Helm 3.16+");
        assert_eq!(p.to_string(), "helm not found on PATH: install Helm 3.16+");
        let p = Problem::new(ProblemKind::Docker, "Docker is not reachable", "");
        assert_eq!(p.to_string(), "Docker is not reachable");
    }

    #[test]
    fn dedup_keeps_the_first_of_each() {
        let a = Problem::new(ProblemKind::Program, "a", "x");
        let b = Problem::new(ProblemKind::Images, "b", "");
        let mut list = vec![a.clone(), b.clone(), a.clone()];
        dedup(&mut list);
        assert_eq!(list, [a, b]);
    }
}
