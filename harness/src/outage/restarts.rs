//! Restart counts of pods and their containers (native sidecars included), and
//! their comparison before and after an outage: a pod replaced or a container
//! restarted means the data plane did not ride the outage out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Restart count by `pod/container`.
pub type RestartCounts = BTreeMap<String, i32>;

/// The restart count of every container of `pods`, init containers included.
pub fn restart_counts(pods: &[Pod]) -> RestartCounts {
    let mut counts = RestartCounts::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
        let Some(status) = pod.status.as_ref() else { continue };
        let statuses: Vec<&ContainerStatus> = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .collect();
        for c in statuses {
            counts.insert(format!("{name}/{}", c.name), c.restart_count);
        }
    }
    counts
}

/// Nothing restarted between `before` and `after`: the same containers, no count
/// higher. Names what changed otherwise.
pub fn unchanged(before: &RestartCounts, after: &RestartCounts) -> Result<(), String> {
    if before.is_empty() {
        return Err("no container was seen before the outage".into());
    }
    let mut changes = Vec::new();
    for (container, count) in before {
        match after.get(container) {
            None => changes.push(format!("{container} is gone (pod replaced or deleted)")),
            Some(now) if now > count => {
                changes.push(format!("{container} restarted ({count} -> {now})"))
            }
            Some(_) => {}
        }
    }
    for container in after.keys().filter(|c| !before.contains_key(*c)) {
        changes.push(format!("{container} is new"));
    }
    if changes.is_empty() { Ok(()) } else { Err(changes.join("; ")) }
}

/// No container has restarted at all.
pub fn none_restarted(counts: &RestartCounts) -> Result<(), String> {
    if counts.is_empty() {
        return Err("no container status to read".into());
    }
    let restarted: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} restarted {n}x"))
        .collect();
    if restarted.is_empty() { Ok(()) } else { Err(restarted.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, app: i32, proxy: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app"}],
                     "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}]},
            "status": {
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": app, "image": "", "imageID": ""}],
                "initContainerStatuses": [{"name": "istio-proxy", "ready": true, "restartCount": proxy, "image": "", "imageID": ""}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn counts_cover_containers_and_native_sidecars() {
        let counts = restart_counts(&[pod("hw-1", 0, 2)]);
        assert_eq!(counts.get("hw-1/app"), Some(&0));
        assert_eq!(counts.get("hw-1/istio-proxy"), Some(&2));
    }

    #[test]
    fn the_same_counts_are_unchanged() {
        let before = restart_counts(&[pod("hw-1", 0, 1), pod("curl-1", 0, 0)]);
        assert_eq!(unchanged(&before, &before.clone()), Ok(()));
    }

    #[test]
    fn a_restarted_proxy_or_a_replaced_pod_is_named() {
        let before = restart_counts(&[pod("hw-1", 0, 0)]);
        let err = unchanged(&before, &restart_counts(&[pod("hw-1", 0, 1)])).unwrap_err();
        assert_eq!(err, "hw-1/istio-proxy restarted (0 -> 1)");
        let err = unchanged(&before, &restart_counts(&[pod("hw-2", 0, 0)])).unwrap_err();
        assert!(err.contains("hw-1/app is gone") && err.contains("hw-2/app is new"), "{err}");
        assert!(unchanged(&RestartCounts::new(), &before).is_err(), "nothing seen proves nothing");
    }

    #[test]
    fn none_restarted_at_all() {
        assert_eq!(none_restarted(&restart_counts(&[pod("hw-1", 0, 0)])), Ok(()));
        let err = none_restarted(&restart_counts(&[pod("hw-1", 3, 0)])).unwrap_err();
        assert_eq!(err, "hw-1/app restarted 3x");
        assert!(none_restarted(&RestartCounts::new()).is_err());
    }
}
