//! What an existing cluster already brings that the plan counts on
//! (docs/existing-clusters.md "Sail operator and OpenShift"):
//!
//! - the Sail operator, which the plan does not install on clusters it does not own:
//!   its CRDs ([`sail::CRDS`]) must be served, else one problem per missing CRD;
//! - whether the cluster is OpenShift: it serves the API group
//!   [`OPENSHIFT_GROUP`] (`security.openshift.io`, its SecurityContextConstraints).
//!   Those constraints are why OpenShift needs the Istio CNI: the restricted ones
//!   refuse `istio-init`'s `NET_ADMIN`, so a Sail plan turns its `IstioCNI` on there.
//!
//! Both ask API discovery (`GET /apis/<group>/<version>`, `GET /apis`), which every
//! authenticated user may read.

use std::time::Duration;

use kube::Client;

use super::kubeconfig::ClusterCredentials;
use crate::install::sail;
use crate::kube::error_chain;
use crate::preflight::{Problem, ProblemKind};

/// The API group only OpenShift serves, whose constraints make the CNI necessary.
pub const OPENSHIFT_GROUP: &str = "security.openshift.io";

/// The resources of `group_version` the server serves (their plural names); an empty
/// list when it does not serve that group version.
async fn served_resources(
    client: &Client,
    group_version: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    match tokio::time::timeout(timeout, client.list_api_group_resources(group_version)).await {
        Ok(Ok(list)) => Ok(list.resources.into_iter().map(|r| r.name).collect()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(Vec::new()),
        Ok(Err(e)) => Err(error_chain(&e)),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// One problem per CRD of [`sail::CRDS`] the cluster does not serve (as
/// `sailoperator.io/v1`), naming the cluster and the CRD.
pub async fn sail_operator_problems(
    cluster: &ClusterCredentials,
    client: &Client,
    timeout: Duration,
) -> Vec<Problem> {
    let group_version = format!("{}/{}", sail::GROUP, sail::VERSION);
    let served = match served_resources(client, &group_version, timeout).await {
        Ok(served) => served,
        Err(why) => {
            return vec![Problem::new(
                ProblemKind::Unreachable,
                format!(
                    "cluster {}: looking for the Sail operator's CRDs ({group_version}): {why}",
                    cluster.name
                ),
                "",
            )];
        }
    };
    sail::CRDS
        .iter()
        .filter(|crd| {
            let plural = crd.split('.').next().unwrap_or(crd);
            !served.iter().any(|r| r == plural)
        })
        .map(|crd| {
            Problem::new(
                ProblemKind::MissingOperator,
                format!(
                    "cluster {}: the CRD {crd} ({group_version}) is not there: --installer sail \
                     on existing clusters needs the Sail operator installed first",
                    cluster.name
                ),
                "install the Sail operator on every cluster (OLM on OpenShift, or its Helm \
                 chart; procedure.md \"Sail operator backend\"), then run again",
            )
        })
        .collect()
}

/// Whether the cluster serves [`OPENSHIFT_GROUP`]. A cluster that cannot be asked
/// is taken as not OpenShift: its preflight names why it cannot be reached.
pub async fn is_openshift(client: &Client, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, client.list_api_groups()).await {
        Ok(Ok(groups)) => groups.groups.iter().any(|g| g.name == OPENSHIFT_GROUP),
        Ok(Err(e)) => {
            tracing::debug!(error = %error_chain(&e), "listing API groups failed");
            false
        }
        Err(_) => false,
    }
}
