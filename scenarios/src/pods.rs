//! Extra client pods a scenario starts and removes itself: a copy of the client
//! sample's container (its image is on every node already), with or without a
//! sidecar, in a namespace and on a cluster the scenario chooses.

use std::time::Duration;

use ecp_harness::checks::pod_ready;
use ecp_harness::kube::delete::delete_and_wait;
use ecp_harness::kube::wait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

/// How long an extra client pod may take to be Running and ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

/// A pod named `name` (label `app=<name>`) running `container` of `source` (image,
/// its pull policy, so a loaded image is not pulled, command, args). `sidecar: false` opts it out of injection; `true` leaves it to the
/// namespace.
pub fn client_copy(
    source: &Pod,
    container: &str,
    name: &str,
    sidecar: bool,
) -> Result<Pod, String> {
    let found = source
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .ok_or_else(|| format!("the client pod has no container {container}"))?;
    let image = found.image.clone().ok_or_else(|| format!("container {container} has no image"))?;
    let mut labels = json!({"app": name});
    if !sidecar {
        labels["sidecar.istio.io/inject"] = json!("false");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": container, "image": image,
                "imagePullPolicy": found.image_pull_policy,
                "command": found.command, "args": found.args}]
        }
    }))
    .map_err(|e| e.to_string())
}

/// Creates `pod` in `namespace` (replacing a leftover of an earlier attempt) and waits
/// until it is Running with its containers ready (2/2 with `istio-proxy` when
/// `sidecar`).
pub async fn start(
    cluster: &str,
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
    sidecar: bool,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = pod.metadata.name.clone().unwrap_or_default();
    remove(cluster, client, namespace, &name).await?;
    api.create(&PostParams::default(), pod).await.map_err(|e| format!("creating {name}: {e}"))?;
    let containers = if sidecar { 2 } else { 1 };
    let what = format!("pod {namespace}/{name} {containers}/{containers} Running");
    let ready = pod_ready(containers, sidecar);
    wait::until(cluster, &api, &name, &what, ready, START_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deletes the pod if it exists and waits until it is gone.
pub async fn remove(
    cluster: &str,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    delete_and_wait(cluster, &api, name, &DeleteParams::default(), START_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "curl-1", "labels": {"app": "curl"}},
            "spec": {"containers": [
                {"name": "curl", "image": "curlimages/curl:8.16.0", "imagePullPolicy": "IfNotPresent",
                 "command": ["/bin/sleep", "infinity"]},
                {"name": "istio-proxy", "image": "istio/proxyv2"}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn a_copy_without_sidecar_opts_out_of_injection() {
        let p = client_copy(&client(), "curl", "ecp-plaintext", false).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("ecp-plaintext"));
        let labels = p.metadata.labels.unwrap();
        assert_eq!(labels["app"], "ecp-plaintext");
        assert_eq!(labels["sidecar.istio.io/inject"], "false");
        let spec = p.spec.unwrap();
        assert_eq!(spec.containers.len(), 1, "only the client, never the copied proxy");
        assert_eq!(spec.containers[0].image.as_deref(), Some("curlimages/curl:8.16.0"));
        assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            spec.containers[0].command.as_deref(),
            Some(&["/bin/sleep".to_string(), "infinity".to_string()][..])
        );
    }

    #[test]
    fn a_copy_with_sidecar_leaves_injection_to_the_namespace() {
        let p = client_copy(&client(), "curl", "ecp-client", true).unwrap();
        assert!(!p.metadata.labels.unwrap().contains_key("sidecar.istio.io/inject"));
    }

    #[test]
    fn a_client_without_the_container_is_refused() {
        let err = client_copy(&client(), "sleep", "x", true).unwrap_err();
        assert_eq!(err, "the client pod has no container sleep");
    }
}
