//! The diagnostics of a failed version: the bundle from every cluster (the external
//! cluster and `external-istiod` included), node logs where the provider has them,
//! and Envoy config dumps of the mesh's proxies.

use std::path::Path;
use std::time::Duration;

use super::Say;
use crate::checks;
use crate::cluster::Provided;
use crate::diag::{self, ClusterInput};
use crate::execute::{ClusterAccess, Clusters};
use crate::mesh::Mesh;
use crate::topology::{Role, Topology};

/// Namespaces dumped into the diagnostics bundle, besides each mesh's
/// ([`namespaces_of`]).
const DIAG_NAMESPACES: [&str; 4] = ["istio-system", "sample", "metallb-system", "kube-system"];
/// At most this many Envoy config dumps per cluster.
const MAX_CONFIG_DUMPS: usize = 20;
/// Lines of each node's log.
const NODE_LOG_LINES: usize = 2000;

/// The namespaces dumped on `cluster`: the external cluster holds every mesh's
/// istiod, a remote its own mesh's namespace (`external-istiod`, then
/// `external-istiod-mesh<k>`).
fn namespaces_of(topology: &Topology, cluster: &str) -> Vec<String> {
    let spec = topology.by_name(cluster);
    let meshes: Vec<Mesh> = match spec {
        Some(c) if c.role == Role::External => topology.mesh_list().collect(),
        Some(c) => vec![c.mesh],
        None => vec![Mesh::FIRST],
    };
    let mut namespaces = vec![DIAG_NAMESPACES[0].to_string()];
    namespaces.extend(meshes.into_iter().map(Mesh::namespace));
    namespaces.extend(DIAG_NAMESPACES[1..].iter().map(|n| n.to_string()));
    namespaces
}

pub(super) async fn collect<H: Provided>(
    handle: &H,
    clusters: &Clusters,
    topology: &Topology,
    out: &Path,
    say: Say,
) -> Result<(), diag::DiagError> {
    let node_logs = handle.capabilities().node_logs;
    let mut inputs = Vec::new();
    for c in handle.clusters() {
        let Some(access) = clusters.get(&c.name) else { continue };
        let container_logs = if node_logs {
            handle
                .node_logs(&c.name, NODE_LOG_LINES)
                .await
                .unwrap_or_default()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        inputs.push(ClusterInput {
            name: c.name.clone(),
            client: access.client.clone(),
            namespaces: namespaces_of(topology, &c.name),
            container_logs,
        });
    }
    let bundle = diag::collect(&inputs, out, Duration::from_secs(10)).await?;
    for problem in &bundle.problems {
        say(&format!("    diagnostics: {problem}"));
    }
    for (name, access) in clusters {
        let namespaces = namespaces_of(topology, name);
        config_dumps(name, access, &namespaces, &out.join(name).join("envoy")).await;
    }
    Ok(())
}

/// `pilot-agent request GET config_dump` in every proxy of the dumped namespaces
/// (sidecars and gateways), redacted, at most [`MAX_CONFIG_DUMPS`] per cluster.
async fn config_dumps(cluster: &str, access: &ClusterAccess, namespaces: &[String], out: &Path) {
    let client = &access.client;
    let mut dumped = 0;
    for ns in namespaces.iter().map(String::as_str) {
        let Ok(pods) = checks::pods(cluster, client, ns, "").await else { continue };
        for pod in pods {
            if dumped >= MAX_CONFIG_DUMPS {
                return;
            }
            let has_proxy = checks::sidecar_placement(&pod).is_some()
                || pod
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.containers.iter().any(|c| c.name == checks::ISTIO_PROXY));
            let Some(name) = pod.metadata.name.clone() else { continue };
            if !has_proxy {
                continue;
            }
            let command = ["pilot-agent", "request", "GET", "config_dump"];
            let text = match checks::exec(client, ns, &name, checks::ISTIO_PROXY, &command).await {
                Ok(dump) => dump,
                Err(e) => format!("config dump failed: {e}\n"),
            };
            let path = out.join(format!("{ns}-{name}.json"));
            let _ = std::fs::create_dir_all(out);
            let _ = std::fs::write(&path, diag::redact_text(&text).as_bytes());
            dumped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::NetworkMode;

    #[test]
    fn every_meshs_namespace_is_dumped_where_it_lives() {
        let one = Topology::new(1, NetworkMode::default()).unwrap();
        assert_eq!(
            namespaces_of(&one, "external"),
            ["istio-system", "external-istiod", "sample", "metallb-system", "kube-system"]
        );
        let two = Topology::with_meshes(2, 1, NetworkMode::default()).unwrap();
        let external = namespaces_of(&two, "external");
        assert!(external.contains(&"external-istiod".into()));
        assert!(external.contains(&"external-istiod-mesh2".into()));
        let config2 = namespaces_of(&two, "mesh2-config");
        assert!(config2.contains(&"external-istiod-mesh2".into()));
        assert!(!config2.contains(&"external-istiod".into()));
    }
}
