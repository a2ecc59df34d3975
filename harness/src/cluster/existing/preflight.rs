//! The preflight of existing clusters: every check that runs before anything is
//! created, each cluster checked in parallel, every problem reported at once
//! (docs/existing-clusters.md "Preflight"):
//!
//! 1. reachable: `GET /version` within the request timeout, with the context's
//!    credentials (an unreachable server, a refused credential or a kubeconfig that
//!    yields no client is named with the cluster, URL and context);
//! 2. its Kubernetes version within the Istio version's range;
//! 3. every permission the plan needs ([`super::access`]), one
//!    SelfSubjectAccessReview each;
//! 4. no Istio and none of the plan's namespaces already there
//!    ([`super::installed`]): a problem, or with `force` a warning;
//! 5. for a Sail plan that finds the operator installed, its CRDs
//!    ([`super::platform`]).
//!
//! Warnings are what the provider cannot know: whether the clusters have a
//! LoadBalancer implementation (none given, no external address), and whether they
//! can pull the images (nothing is loaded into existing clusters).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::discovery::Scope;

use super::access::{self, Access, Resolved};
use super::kubeconfig::ClusterCredentials;
use super::{installed, platform};
use crate::install::{Action, Installer, OperatorSource, Plan, WaitCondition};
use crate::kube::error_chain;
use crate::preflight::{Problem, ProblemKind};
use crate::version::IstioVersion;

/// At most this many access reviews in flight per cluster.
const REVIEWS_IN_FLIGHT: usize = 8;

/// What the preflight found: problems stop the run, warnings go into the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl Preflight {
    fn merge(&mut self, other: Preflight) {
        self.problems.extend(other.problems);
        self.warnings.extend(other.warnings);
    }
}

/// What the checks of one cluster need to know.
pub(super) struct Settings<'a> {
    pub istio: IstioVersion,
    pub kubernetes_minors: (u32, u32),
    pub force: bool,
    pub request_timeout: Duration,
    pub cluster_timeout: Duration,
    pub plan: &'a Plan,
}

/// Checks every cluster, in parallel.
pub(super) async fn clusters(
    clusters: &[ClusterCredentials],
    settings: &Settings<'_>,
) -> Preflight {
    let checks = clusters.iter().map(|c| bounded(c, settings));
    let mut out = Preflight::default();
    for one in futures::future::join_all(checks).await {
        out.merge(one);
    }
    out
}

async fn bounded(cluster: &ClusterCredentials, settings: &Settings<'_>) -> Preflight {
    let span = tracing::info_span!("preflight", cluster = %cluster.name);
    let check = tracing::Instrument::instrument(one(cluster, settings), span);
    match tokio::time::timeout(settings.cluster_timeout, check).await {
        Ok(p) => p,
        Err(_) => Preflight {
            problems: vec![Problem::new(
                ProblemKind::Unreachable,
                format!(
                    "cluster {}: the checks of its API server {} did not finish within {:?}",
                    cluster.name, cluster.server, settings.cluster_timeout
                ),
                "check that this machine reaches it quickly (VPN, proxy, firewall)",
            )],
            warnings: vec![],
        },
    }
}

async fn one(cluster: &ClusterCredentials, settings: &Settings<'_>) -> Preflight {
    let mut out = Preflight::default();
    let client = match reachable(cluster, settings.request_timeout).await {
        Ok((client, info)) => {
            if let Some(p) = version_problem(cluster, &info, settings) {
                out.problems.push(p);
            }
            client
        }
        Err(p) => {
            out.problems.push(p);
            return out;
        }
    };
    let plan = settings.plan;
    out.problems.extend(permissions(cluster, &client, plan, settings.request_timeout).await);
    out.merge(existing_install(cluster, &client, plan, settings.force).await);
    let o = &plan.options;
    if o.installer == Installer::Sail && o.operator == OperatorSource::Preinstalled {
        let timeout = settings.request_timeout;
        out.problems.extend(platform::sail_operator_problems(cluster, &client, timeout).await);
    }
    out
}

fn unreachable(cluster: &ClusterCredentials, what: String) -> Problem {
    Problem::new(
        ProblemKind::Unreachable,
        format!("cluster {}: {what}", cluster.name),
        format!(
            "check that this machine reaches it (VPN, proxy, firewall) and that context `{}` \
             of {} is the right one, with valid credentials",
            cluster.context,
            cluster.source.display()
        ),
    )
}

/// A client that got an answer from `GET /version`.
async fn reachable(
    cluster: &ClusterCredentials,
    timeout: Duration,
) -> Result<(Client, Info), Problem> {
    let client = cluster
        .client(timeout)
        .await
        .map_err(|e| unreachable(cluster, format!("no client: {e}")))?;
    let server = &cluster.server;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(info)) => Ok((client, info)),
        Ok(Err(kube::Error::Api(s))) if s.code == 401 => Err(unreachable(
            cluster,
            format!("the API server {server} refused the credentials (401 Unauthorized)"),
        )),
        Ok(Err(e)) => Err(unreachable(
            cluster,
            format!("the API server {server} cannot be reached: {}", error_chain(&e)),
        )),
        Err(_) => Err(unreachable(
            cluster,
            format!("the API server {server} did not answer within {timeout:?}"),
        )),
    }
}

/// The Kubernetes minor of a `/version` answer: `minor` without a vendor's `+`
/// (`"28+"` on some managed clusters), else the `gitVersion` (`v1.28.3-eks-...`).
pub fn kubernetes_version(info: &Info) -> Option<(u32, u32)> {
    let number = |s: &str| -> Option<u32> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if let (Some(major), Some(minor)) = (number(&info.major), number(&info.minor)) {
        return Some((major, minor));
    }
    let mut parts = info.git_version.trim_start_matches('v').split('.');
    Some((number(parts.next()?)?, number(parts.next()?)?))
}

fn version_problem(
    cluster: &ClusterCredentials,
    info: &Info,
    settings: &Settings<'_>,
) -> Option<Problem> {
    let (low, high) = settings.kubernetes_minors;
    let istio = settings.istio;
    match kubernetes_version(info) {
        Some((1, minor)) if (low..=high).contains(&minor) => None,
        found => {
            let version = match found {
                Some((major, minor)) => format!("{major}.{minor} ({})", info.git_version),
                None => format!("`{}` (unreadable)", info.git_version),
            };
            Some(Problem::new(
                ProblemKind::KubernetesVersion,
                format!(
                    "cluster {}: Kubernetes {version} is outside Istio {istio}'s supported \
                     range 1.{low} to 1.{high}",
                    cluster.name
                ),
                format!(
                    "use a cluster running Kubernetes 1.{low} to 1.{high}, or another Istio version"
                ),
            ))
        }
    }
}

/// One problem per resource and scope the credentials may not use, naming the verbs.
async fn permissions(
    cluster: &ClusterCredentials,
    client: &Client,
    plan: &Plan,
    timeout: Duration,
) -> Vec<Problem> {
    let discovery = match crate::kube::discover(client, timeout).await {
        Ok(d) => d,
        Err(e) => return vec![unreachable(cluster, format!("API discovery failed: {e}"))],
    };
    let resolve = |api_version: &str, kind: &str| {
        crate::kube::resolve(&discovery, api_version, kind).map(|(r, caps)| Resolved {
            group: r.group,
            resource: r.plural,
            namespaced: caps.scope == Scope::Namespaced,
        })
    };
    let needed = access::required(plan, &cluster.name, &resolve);
    tracing::debug!(accesses = needed.len(), "checking permissions");
    let reviews = futures::stream::iter(needed)
        .map(|a| async move {
            let verdict = tokio::time::timeout(timeout, review(client, &a)).await;
            (a, verdict)
        })
        .buffer_unordered(REVIEWS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;

    let mut missing: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut failed = None;
    for (a, verdict) in reviews {
        match verdict {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                missing.entry((a.resource_name(), a.scope())).or_default().insert(a.verb.clone());
            }
            Ok(Err(e)) => failed = Some(format!("asking about `{a}`: {}", error_chain(&e))),
            Err(_) => failed = Some(format!("asking about `{a}`: no answer within {timeout:?}")),
        }
    }
    let mut problems: Vec<Problem> = missing
        .into_iter()
        .map(|((resource, scope), verbs)| permission_problem(cluster, &resource, &scope, &verbs))
        .collect();
    if let Some(detail) = failed {
        problems.push(Problem::new(
            ProblemKind::Permission,
            format!("cluster {}: the permission check did not complete: {detail}", cluster.name),
            "the credentials must be allowed to create SelfSubjectAccessReviews (every \
             authenticated user is, through the system:basic-user ClusterRole)",
        ));
    }
    problems
}

fn permission_problem(
    cluster: &ClusterCredentials,
    resource: &str,
    scope: &str,
    verbs: &BTreeSet<String>,
) -> Problem {
    let verbs: Vec<&str> = verbs.iter().map(String::as_str).collect();
    let ns = scope.strip_prefix("in namespace ").map(|n| format!(" -n {n}")).unwrap_or_default();
    Problem::new(
        ProblemKind::Permission,
        format!(
            "cluster {}: the credentials of context `{}` may not {} {resource} {scope}, which the \
             install needs",
            cluster.name,
            cluster.context,
            verbs.join(", ")
        ),
        format!(
            "grant it to that user (a Role in the namespace or a ClusterRole); `kubectl auth \
             can-i {} {resource}{ns} --context {}` shows the answer",
            verbs[0], cluster.context
        ),
    )
}

/// Asks the API server whether the credentials may do `a`.
pub async fn review(client: &Client, a: &Access) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(a.verb.clone()),
                group: Some(a.group.clone()),
                resource: Some(a.resource.clone()),
                subresource: a.subresource.clone(),
                namespace: a.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn existing_install(
    cluster: &ClusterCredentials,
    client: &Client,
    plan: &Plan,
    force: bool,
) -> Preflight {
    let namespaces = access::namespaces(plan, &cluster.name);
    let found = match installed::find(client, &namespaces).await {
        Ok(f) => f,
        Err(e) => {
            return Preflight {
                problems: vec![unreachable(
                    cluster,
                    format!("looking for an existing Istio install: {}", error_chain(&e)),
                )],
                warnings: vec![],
            };
        }
    };
    let mut findings = Vec::new();
    if !found.istio.is_empty() {
        findings.push((
            format!(
                "cluster {}: Istio is already installed: {}",
                cluster.name,
                found.istio.join(", ")
            ),
            "uninstall it, or use a cluster without Istio",
        ));
    }
    if !found.namespaces.is_empty() {
        findings.push((
            format!(
                "cluster {}: the plan's namespaces {} already exist, and the cleanup deletes \
                 the namespaces the plan creates with everything in them",
                cluster.name,
                found.namespaces.join(", ")
            ),
            "delete them first, or use another cluster",
        ));
    }
    let mut out = Preflight::default();
    for (message, remedy) in findings {
        if force {
            out.warnings.push(format!("{message} (going ahead: --force)"));
        } else {
            out.problems.push(Problem::new(
                ProblemKind::ExistingInstall,
                message,
                format!("{remedy}; --force installs anyway"),
            ));
        }
    }
    out
}

/// What the provider cannot check: a LoadBalancer implementation where the plan
/// waits for a LoadBalancer IP, and images the clusters must pull themselves.
pub(super) fn warnings(
    clusters: &[ClusterCredentials],
    external: &str,
    external_address: Option<std::net::IpAddr>,
    plan: &Plan,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut needs_lb: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for step in &plan.steps {
        for action in &step.actions {
            if let Action::WaitFor {
                condition: WaitCondition::LoadBalancerIp { namespace, service },
                ..
            } = action
            {
                needs_lb.entry(&step.cluster).or_default().insert(format!("{namespace}/{service}"));
            }
        }
    }
    for c in clusters {
        let Some(services) = needs_lb.get(c.name.as_str()) else { continue };
        let services: Vec<&str> = services.iter().map(String::as_str).collect();
        let which = if services.is_empty() {
            String::new()
        } else {
            format!(" (Services {})", services.join(", "))
        };
        let note = match (c.name == external, external_address) {
            (true, Some(addr)) => format!(
                "cluster {}: the remotes reach the control plane at the given externalAddress \
                 {addr}, which must lead to the control-plane gateway{which}",
                c.name
            ),
            _ => format!(
                "cluster {}: a LoadBalancer implementation is required{which}; the harness \
                 cannot check for one before the install",
                c.name
            ),
        };
        out.push(note);
    }
    let o = &plan.options;
    let hub = o.hub.as_deref().unwrap_or(o.istio.default_hub());
    let tag = o.tag.clone().unwrap_or_else(|| o.istio.to_string());
    let images = format!("hub {hub}, tag {tag}");
    out.push(format!(
        "images are not loaded into existing clusters: every cluster must pull Istio's images \
         ({images}) and the samples' images itself, from the registry or a mirror it reaches"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(major: &str, minor: &str, git: &str) -> Info {
        Info {
            major: major.into(),
            minor: minor.into(),
            git_version: git.into(),
            ..Default::default()
        }
    }

    #[test]
    fn kubernetes_versions_are_read_as_vendors_write_them() {
        assert_eq!(kubernetes_version(&info("1", "20", "v1.20.2")), Some((1, 20)));
        assert_eq!(kubernetes_version(&info("1", "28+", "v1.28.3-eks-4f4795d")), Some((1, 28)));
        assert_eq!(kubernetes_version(&info("", "", "v1.31.1+k3s1")), Some((1, 31)));
        assert_eq!(kubernetes_version(&info("", "", "unknown")), None);
    }
}
