//! What the clusters say about themselves, read after the scenarios and before
//! teardown: each cluster's Kubernetes server version (`/version`) and nodes
//! (`status.nodeInfo`), and the images that ran in the plan's namespaces (pods'
//! `status.containerStatuses[].image` and `imageID`, as the kubelet reports them).

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use serde::{Deserialize, Serialize};

use crate::execute::Clusters;
use crate::install::Plan;

/// One cluster as observed. `error` says what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedCluster {
    pub name: String,
    /// `gitVersion` of the API server's `/version`.
    pub server_version: Option<String>,
    /// `platform` of `/version` (`linux/amd64`).
    pub server_platform: Option<String>,
    pub nodes: Vec<ObservedNode>,
    pub error: Option<String>,
}

/// One node's `status.nodeInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNode {
    pub name: String,
    pub os_image: String,
    pub kubelet_version: String,
    pub container_runtime_version: String,
}

/// A container that ran: the image as the pod asked for it and as the runtime
/// resolved it (`imageID`, a digest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RanImage {
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image: String,
    pub image_id: String,
}

/// Every cluster's version and nodes, in the order of `clusters`.
pub async fn clusters(clusters: &Clusters) -> Vec<ObservedCluster> {
    let mut out = Vec::new();
    for (name, access) in clusters {
        out.push(cluster(name, &access.client).await);
    }
    out
}

async fn cluster(name: &str, client: &kube::Client) -> ObservedCluster {
    let mut observed = ObservedCluster { name: name.into(), ..Default::default() };
    let mut errors = Vec::new();
    match client.apiserver_version().await {
        Ok(v) => {
            observed.server_version = Some(v.git_version);
            observed.server_platform = Some(v.platform);
        }
        Err(e) => errors.push(format!("reading /version: {e}")),
    }
    match Api::<Node>::all(client.clone()).list(&ListParams::default()).await {
        Ok(nodes) => observed.nodes = nodes.items.iter().map(node).collect(),
        Err(e) => errors.push(format!("listing nodes: {e}")),
    }
    if !errors.is_empty() {
        observed.error = Some(errors.join("; "));
    }
    observed
}

fn node(n: &Node) -> ObservedNode {
    let info = n.status.as_ref().and_then(|s| s.node_info.as_ref());
    ObservedNode {
        name: n.metadata.name.clone().unwrap_or_default(),
        os_image: info.map(|i| i.os_image.clone()).unwrap_or_default(),
        kubelet_version: info.map(|i| i.kubelet_version.clone()).unwrap_or_default(),
        container_runtime_version: info
            .map(|i| i.container_runtime_version.clone())
            .unwrap_or_default(),
    }
}

/// The images of every container (init containers included) that ran in the plan's
/// namespaces on each cluster; a namespace that cannot be listed is an error line.
pub async fn images(clusters: &Clusters, plan: &Plan) -> (Vec<RanImage>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, access) in clusters {
        for ns in crate::cluster::existing::access::namespaces(plan, name) {
            let pods = Api::<Pod>::namespaced(access.client.clone(), &ns);
            match pods.list(&ListParams::default()).await {
                Ok(list) => out.extend(list.items.iter().flat_map(|p| ran(name, &ns, p))),
                Err(e) => errors.push(format!("cluster {name}: listing pods in {ns}: {e}")),
            }
        }
    }
    (out, errors)
}

/// The containers of `pod` that have an `imageID` (the runtime pulled and ran them).
pub fn ran(cluster: &str, namespace: &str, pod: &Pod) -> Vec<RanImage> {
    let Some(status) = &pod.status else { return Vec::new() };
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    statuses
        .filter(|c| !c.image_id.is_empty())
        .map(|c| RanImage {
            cluster: cluster.into(),
            namespace: namespace.into(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            container: c.name.clone(),
            image: c.image.clone(),
            image_id: c.image_id.clone(),
        })
        .collect()
}
