//! The node container: which `kindest/node` image, and the container options kind
//! itself uses for a control-plane node (kind-node.md "The container").

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptions, CreateContainerOptionsBuilder};

use super::KindOptions;
use super::host::HostSettings;
use crate::cluster::{CLUSTER_LABEL, RunId, docker};
use crate::topology::ClusterSpec;

/// The API server's port inside the node (and on the shared network).
pub const API_SERVER_PORT: u16 = 6443;
/// kind's label naming the cluster a node belongs to.
pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// kind's label naming the node's role.
pub const KIND_ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The value of [`crate::cluster::PROVIDER_LABEL`] on everything this provider creates.
pub const PROVIDER: &str = "kind";
/// The admin kubeconfig kubeadm writes inside the node.
pub const ADMIN_KUBECONFIG: &str = "/etc/kubernetes/admin.conf";

/// The node's container (and host, and Kubernetes node) name:
/// `ecp-<run id>-<cluster>-control-plane`, kind's `<cluster>-control-plane` with the
/// run id in front, so that two runs of one topology on a Docker host do not collide.
pub fn node_name(run_id: &RunId, cluster_name: &str) -> String {
    format!("ecp-{run_id}-{cluster_name}-control-plane")
}

/// A node container to create: its name and the full create request.
#[derive(Debug, Clone)]
pub struct NodeContainerSpec {
    pub name: String,
    pub body: ContainerCreateBody,
}

impl NodeContainerSpec {
    /// kind's control-plane node for `cluster`, on the run's shared network.
    pub fn for_cluster(cluster: &ClusterSpec, opts: &KindOptions) -> Self {
        let name = node_name(&opts.run_id, &cluster.name);
        let mut labels = docker::labels(&opts.run_id, PROVIDER);
        labels.insert(CLUSTER_LABEL.to_string(), cluster.name.clone());
        labels.insert(KIND_CLUSTER_LABEL.to_string(), cluster.name.clone());
        labels.insert(KIND_ROLE_LABEL.to_string(), "control-plane".to_string());
        let port = format!("{API_SERVER_PORT}/tcp");
        let binds =
            opts.mount_lib_modules.then(|| vec!["/lib/modules:/lib/modules:ro".to_string()]);
        let host_config = HostConfig {
            privileged: Some(opts.privileged),
            security_opt: Some(vec![
                "seccomp=unconfined".to_string(),
                "apparmor=unconfined".to_string(),
            ]),
            tmpfs: Some(HashMap::from([
                ("/tmp".to_string(), String::new()),
                ("/run".to_string(), String::new()),
            ])),
            binds,
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            // The image's entrypoint must be PID 1: a daemon-wide `init: true` breaks systemd.
            init: Some(false),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(1),
            }),
            // Docker picks a free host port; it is read back after start.
            port_bindings: Some(HashMap::from([(
                port.clone(),
                Some(vec![PortBinding { host_ip: Some("127.0.0.1".to_string()), host_port: None }]),
            )])),
            network_mode: Some(opts.network.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(opts.node_image.clone()),
            hostname: Some(name.clone()),
            // systemd writes its readiness line to the log only with a TTY.
            tty: Some(true),
            env: Some(vec![
                format!("KUBECONFIG={ADMIN_KUBECONFIG}"),
                "container=docker".to_string(),
            ]),
            labels: Some(labels),
            stop_signal: Some("SIGRTMIN+3".to_string()),
            volumes: Some(vec!["/var".to_string()]),
            exposed_ports: Some(vec![port]),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    opts.network.clone(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        Self { name, body }
    }

    /// What this Docker host needs ([`HostSettings::apply`]) and the proxy variables
    /// ([`super::proxy::ProxyEnv::node_env`]) added to the node.
    pub fn on_host(mut self, host: &HostSettings, proxy_env: &[String]) -> Self {
        host.apply(&mut self.body);
        self.body.env.get_or_insert_with(Vec::new).extend(proxy_env.iter().cloned());
        self
    }

    pub fn create_options(&self) -> CreateContainerOptions {
        CreateContainerOptionsBuilder::new().name(&self.name).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RUN_ID_LABEL;
    use crate::topology::{NetworkMode, Topology};

    fn options() -> KindOptions {
        let mut o = KindOptions::new("kindest/node:v1.35.0", RunId::from_existing("0123456789"));
        o.network = "ecp-kind-0123456789".to_string();
        o
    }

    #[test]
    fn node_container_has_every_option_kind_sets() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let spec = NodeContainerSpec::for_cluster(t.config(), &options());
        assert_eq!(spec.name, "ecp-0123456789-config-control-plane");
        let b = &spec.body;
        assert_eq!(b.image.as_deref(), Some("kindest/node:v1.35.0"));
        assert_eq!(b.hostname.as_deref(), Some("ecp-0123456789-config-control-plane"));
        assert_eq!(b.tty, Some(true));
        assert_eq!(
            b.env.as_deref().unwrap(),
            ["KUBECONFIG=/etc/kubernetes/admin.conf", "container=docker"]
        );
        assert_eq!(b.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        assert_eq!(b.volumes.as_deref().unwrap(), ["/var"]);
        assert_eq!(b.exposed_ports.as_deref().unwrap(), ["6443/tcp"]);
        assert_eq!(b.entrypoint, None, "the image's entrypoint runs as PID 1");
        let labels = b.labels.as_ref().unwrap();
        assert_eq!(labels[RUN_ID_LABEL], "0123456789");
        assert_eq!(labels[KIND_CLUSTER_LABEL], "config");
        assert_eq!(labels[KIND_ROLE_LABEL], "control-plane");
        assert_eq!(labels[CLUSTER_LABEL], "config");
        assert_eq!(labels[crate::cluster::PROVIDER_LABEL], "kind");

        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.privileged, Some(true));
        assert_eq!(
            h.security_opt.as_deref().unwrap(),
            ["seccomp=unconfined", "apparmor=unconfined"]
        );
        let tmpfs = h.tmpfs.as_ref().unwrap();
        assert_eq!(tmpfs.len(), 2);
        assert_eq!(tmpfs["/tmp"], "");
        assert_eq!(tmpfs["/run"], "");
        assert_eq!(h.binds.as_deref().unwrap(), ["/lib/modules:/lib/modules:ro"]);
        assert_eq!(h.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::PRIVATE));
        assert_eq!(h.init, Some(false));
        let restart = h.restart_policy.as_ref().unwrap();
        assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(restart.maximum_retry_count, Some(1));
        let published = h.port_bindings.as_ref().unwrap()["6443/tcp"].as_ref().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(published[0].host_port, None, "Docker picks a free port");
        assert_eq!(h.network_mode.as_deref(), Some("ecp-kind-0123456789"));
        let endpoints = b.networking_config.as_ref().unwrap().endpoints_config.as_ref().unwrap();
        assert_eq!(endpoints.keys().collect::<Vec<_>>(), ["ecp-kind-0123456789"]);
    }

    #[test]
    fn serialized_request_uses_dockers_field_names() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let json =
            serde_json::to_value(&NodeContainerSpec::for_cluster(t.external(), &options()).body)
                .unwrap();
        assert_eq!(json["Tty"], true);
        assert_eq!(json["Volumes"], serde_json::json!({"/var": {}}));
        assert_eq!(json["HostConfig"]["CgroupnsMode"], "private");
        assert_eq!(json["HostConfig"]["Init"], false);
        assert_eq!(
            json["HostConfig"]["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 1})
        );
    }

    #[test]
    fn privilege_can_be_dropped_only_explicitly() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let mut o = options();
        assert!(o.privileged);
        o.privileged = false;
        let spec = NodeContainerSpec::for_cluster(t.external(), &o);
        assert_eq!(spec.body.host_config.unwrap().privileged, Some(false));
    }

    #[test]
    fn lib_modules_can_be_left_out_where_the_host_has_none() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let mut o = options();
        o.mount_lib_modules = false;
        let spec = NodeContainerSpec::for_cluster(t.external(), &o);
        assert_eq!(spec.body.host_config.unwrap().binds, None);
    }

    #[test]
    fn two_runs_of_one_topology_get_different_node_and_network_names() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let a = KindOptions::new("i", RunId::from_existing("aaaaaaaaaa"));
        let b = KindOptions::new("i", RunId::from_existing("bbbbbbbbbb"));
        let (na, nb) = (
            NodeContainerSpec::for_cluster(t.config(), &a),
            NodeContainerSpec::for_cluster(t.config(), &b),
        );
        assert_ne!(na.name, nb.name);
        assert_ne!(a.network, b.network);
        assert_eq!(na.name, "ecp-aaaaaaaaaa-config-control-plane");
        assert_eq!(a.network, "ecp-kind-aaaaaaaaaa");
        // A Kubernetes node name is a DNS label: the longest cluster name still fits.
        assert!(node_name(&RunId::new(), "remote8").len() <= 63);
    }

    #[test]
    fn host_needs_and_proxy_variables_are_added_to_kinds_options() {
        let t = Topology::new(1, NetworkMode::default()).unwrap();
        let host = HostSettings { userns_host: true, dev_mapper: true, ..Default::default() };
        let proxy = ["HTTP_PROXY=http://proxy.example:3128".to_string()];
        let spec = NodeContainerSpec::for_cluster(t.config(), &options()).on_host(&host, &proxy);
        let env = spec.body.env.as_deref().unwrap();
        assert_eq!(
            env,
            [
                "KUBECONFIG=/etc/kubernetes/admin.conf",
                "container=docker",
                "HTTP_PROXY=http://proxy.example:3128"
            ]
        );
        let h = spec.body.host_config.unwrap();
        assert_eq!(h.userns_mode.as_deref(), Some("host"));
        assert_eq!(h.binds.unwrap(), ["/lib/modules:/lib/modules:ro", "/dev/mapper:/dev/mapper"]);
        assert_eq!(h.privileged, Some(true), "kind's own options stay");

        let plain = NodeContainerSpec::for_cluster(t.config(), &options())
            .on_host(&HostSettings::default(), &[]);
        assert_eq!(plain.body, NodeContainerSpec::for_cluster(t.config(), &options()).body);
    }
}
