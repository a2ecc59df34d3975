//! Turning a started node container into a one-node cluster, in kind's order
//! (kind-node.md "The bootstrap, in kind's order"). The order is data ([`plan`]): each
//! [`Step`] is an exec with a fixed argv, or one of the two waits; [`run`] performs them.

use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use k8s_openapi::api::core::v1::Node;

use super::exec::{self, ExecOutput, Stdin};
use super::kubeadm::{KUBEADM_CONFIG_PATH, KubeVersion, KubeadmConfig};
use super::mirror::{self, CONTAINERD_CONFIG, RegistryMirror};
use super::node::ADMIN_KUBECONFIG;
use super::{KindError, KindOptions};
use crate::topology::ClusterSpec;

/// The CNI manifest the node image ships (kindnet).
pub const CNI_MANIFEST: &str = "/kind/manifests/default-cni.yaml";
/// The storage manifest the node image ships.
pub const STORAGE_MANIFEST: &str = "/kind/manifests/default-storage.yaml";
/// The Kubernetes version the node image runs.
pub const VERSION_FILE: &str = "/kind/version";
/// kind's marker for a CNI manifest that wants `{{ .PodSubnet }}` substituted.
pub const TEMPLATE_MARKER: &str = "would you kindly template this file";
/// The taint kubeadm puts on control-plane nodes.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane:NoSchedule";
/// The label that makes MetalLB's speaker (and cloud load balancers) skip the node.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// How long systemd may take to come up (kind: 30 s).
pub const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the node may take to become Ready (Istio's scripts: 180 s).
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(180);

/// One step of the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Follow the container log until systemd reached its multi-user target.
    WaitSystemd,
    ReadContainerdConfig,
    /// Write containerd's configuration with `config_path` patched in.
    WriteContainerdConfig,
    MakeHostsDir(RegistryMirror),
    WriteHostsToml(RegistryMirror),
    RestartContainerd,
    ReadVersion,
    WriteKubeadmConfig,
    KubeadmInit,
    ReadCni,
    ApplyCni,
    /// Reading the image's storage manifest may fail: a hostpath class replaces it.
    ReadStorage,
    ApplyStorage,
    RemoveControlPlaneTaint,
    RemoveExcludeLabel,
    ReadAdminKubeconfig,
    /// Watch the Node until its Ready condition is True.
    WaitNodeReady,
}

fn kubectl(args: &[&str]) -> Vec<String> {
    ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Step {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Step::WaitSystemd => "wait for systemd",
            Step::ReadContainerdConfig => "read containerd config",
            Step::WriteContainerdConfig => "write containerd config",
            Step::MakeHostsDir(_) => "create registry hosts directory",
            Step::WriteHostsToml(_) => "write registry hosts.toml",
            Step::RestartContainerd => "restart containerd",
            Step::ReadVersion => "read Kubernetes version",
            Step::WriteKubeadmConfig => "write kubeadm config",
            Step::KubeadmInit => "kubeadm init",
            Step::ReadCni => "read CNI manifest",
            Step::ApplyCni => "apply CNI manifest",
            Step::ReadStorage => "read storage manifest",
            Step::ApplyStorage => "apply storage manifest",
            Step::RemoveControlPlaneTaint => "remove control-plane taint",
            Step::RemoveExcludeLabel => "remove exclude-from-external-load-balancers label",
            Step::ReadAdminKubeconfig => "read admin kubeconfig",
            Step::WaitNodeReady => "wait for node Ready",
        }
    }

    /// The command run in the node, or `None` for the two waits.
    pub fn argv(&self) -> Option<Vec<String>> {
        Some(match self {
            Step::WaitSystemd | Step::WaitNodeReady => return None,
            Step::ReadContainerdConfig => argv(&["cat", CONTAINERD_CONFIG]),
            Step::WriteContainerdConfig => argv(&["cp", "/dev/stdin", CONTAINERD_CONFIG]),
            Step::MakeHostsDir(m) => argv(&["mkdir", "-p", &m.hosts_dir()]),
            Step::WriteHostsToml(m) => argv(&["cp", "/dev/stdin", &m.hosts_toml_path()]),
            Step::RestartContainerd => argv(&["systemctl", "restart", "containerd"]),
            Step::ReadVersion => argv(&["cat", VERSION_FILE]),
            Step::WriteKubeadmConfig => argv(&["cp", "/dev/stdin", KUBEADM_CONFIG_PATH]),
            Step::KubeadmInit => argv(&[
                "kubeadm",
                "init",
                "--config=/kind/kubeadm.conf",
                "--skip-token-print",
                "--v=6",
            ]),
            Step::ReadCni => argv(&["cat", CNI_MANIFEST]),
            Step::ApplyCni | Step::ApplyStorage => kubectl(&["apply", "-f", "-"]),
            Step::ReadStorage => argv(&["cat", STORAGE_MANIFEST]),
            Step::RemoveControlPlaneTaint => {
                kubectl(&["taint", "nodes", "--all", &format!("{CONTROL_PLANE_TAINT}-")])
            }
            Step::RemoveExcludeLabel => {
                kubectl(&["label", "nodes", "--all", &format!("{EXCLUDE_LB_LABEL}-")])
            }
            Step::ReadAdminKubeconfig => argv(&["cat", ADMIN_KUBECONFIG]),
        })
    }
}

/// Every step, in order. Mirrors, when given, are set up before kubeadm runs so the
/// kubelet's first pulls already use them.
pub fn plan(mirrors: &[RegistryMirror]) -> Vec<Step> {
    let mut steps = vec![Step::WaitSystemd];
    if !mirrors.is_empty() {
        steps.push(Step::ReadContainerdConfig);
        steps.push(Step::WriteContainerdConfig);
        for m in mirrors {
            steps.push(Step::MakeHostsDir(m.clone()));
            steps.push(Step::WriteHostsToml(m.clone()));
        }
        steps.push(Step::RestartContainerd);
    }
    steps.extend([
        Step::ReadVersion,
        Step::WriteKubeadmConfig,
        Step::KubeadmInit,
        Step::ReadCni,
        Step::ApplyCni,
        Step::ReadStorage,
        Step::ApplyStorage,
        Step::RemoveControlPlaneTaint,
        Step::RemoveExcludeLabel,
        Step::ReadAdminKubeconfig,
        Step::WaitNodeReady,
    ]);
    steps
}

/// kind's CNI templating: manifests carrying [`TEMPLATE_MARKER`] get `{{ .PodSubnet }}`
/// replaced (kindnet panics without `POD_SUBNET`); others are applied as they are.
pub fn template_cni(manifest: &str, pod_subnet: &ipnet::Ipv4Net) -> String {
    if !manifest.contains(TEMPLATE_MARKER) {
        return manifest.to_string();
    }
    let subnet = pod_subnet.to_string();
    ["{{ .PodSubnet }}", "{{.PodSubnet}}"]
        .iter()
        .fold(manifest.to_string(), |m, placeholder| m.replace(placeholder, &subnet))
}

/// The StorageClass used when the node image ships no storage manifest: kind's
/// default, a hostpath class named `standard`.
pub const FALLBACK_STORAGE: &str = include_str!("../../../../fixtures/kind/default-storage.yaml");

/// What a bootstrapped node yields.
#[derive(Clone)]
pub struct Bootstrapped {
    pub kubernetes_version: KubeVersion,
    /// `/etc/kubernetes/admin.conf` as kubeadm wrote it (holds a client key: never log it).
    pub admin_kubeconfig: String,
}

impl std::fmt::Debug for Bootstrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrapped")
            .field("kubernetes_version", &self.kubernetes_version)
            .field("admin_kubeconfig", &"(redacted)")
            .finish()
    }
}

/// Where a node is and how the host reaches it.
#[derive(Debug, Clone)]
pub struct NodeTarget<'a> {
    pub cluster: &'a ClusterSpec,
    pub container: &'a str,
    pub ip: Ipv4Addr,
}

/// Performs [`plan`] on one node. `host_client` is called once the admin kubeconfig
/// is known, to get a client the host can use for the Ready wait.
pub async fn run<F, Fut>(
    docker: &Docker,
    node: &NodeTarget<'_>,
    opts: &KindOptions,
    host_client: F,
) -> Result<Bootstrapped, KindError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<kube::Client, KindError>>,
{
    let cluster = node.cluster.name.as_str();
    let mut containerd_config = String::new();
    let mut version = None;
    let mut cni = String::new();
    let mut storage = String::new();
    let mut admin = String::new();
    let mut host_client = Some(host_client);
    for step in plan(&opts.registry_mirrors) {
        // The caller's span names the run and cluster; each step is an event in it.
        tracing::info!(step = step.name(), "kind bootstrap step");
        let stdin = match &step {
            Step::WaitSystemd => {
                exec::wait_for_log_line(
                    docker,
                    node.container,
                    opts.systemd_timeout,
                    exec::systemd_ready_line,
                )
                .await
                .map_err(|source| KindError::exec(cluster, &step, source))?;
                continue;
            }
            Step::WaitNodeReady => {
                let make = host_client.take().ok_or_else(|| KindError::Step {
                    cluster: cluster.to_string(),
                    step: step.name(),
                    detail: "the node Ready wait ran twice".to_string(),
                })?;
                let client = make(admin.clone()).await?;
                wait_node_ready(&client, cluster, node.container, opts.node_ready_timeout).await?;
                continue;
            }
            Step::WriteContainerdConfig => {
                Stdin::Bytes(mirror::patch_containerd_config(&containerd_config).into_bytes())
            }
            Step::WriteHostsToml(m) => Stdin::Bytes(m.hosts_toml().into_bytes()),
            Step::WriteKubeadmConfig => {
                let kubernetes_version = version.clone().ok_or_else(|| KindError::Step {
                    cluster: cluster.to_string(),
                    step: step.name(),
                    detail: "the Kubernetes version was not read first".to_string(),
                })?;
                let config = KubeadmConfig {
                    cluster_name: cluster.to_string(),
                    node_name: node.container.to_string(),
                    kubernetes_version,
                    node_ip: node.ip,
                    pod_subnet: node.cluster.pod_subnet,
                    service_subnet: node.cluster.service_subnet,
                    extra_cert_sans: opts.extra_cert_sans.clone(),
                };
                let text = config.render().map_err(|e| KindError::Step {
                    cluster: cluster.to_string(),
                    step: step.name(),
                    detail: e.to_string(),
                })?;
                Stdin::Bytes(text.into_bytes())
            }
            Step::ApplyCni => {
                Stdin::Bytes(template_cni(&cni, &node.cluster.pod_subnet).into_bytes())
            }
            Step::ApplyStorage => Stdin::Bytes(storage.clone().into_bytes()),
            _ => Stdin::None,
        };
        let argv = step.argv().unwrap_or_default();
        let out = exec::exec(docker, node.container, &argv, stdin, opts.privileged)
            .await
            .map_err(|source| KindError::exec(cluster, &step, source))?;
        if out.exit_code != 0 {
            if step == Step::ReadStorage {
                tracing::info!("no storage manifest in the node image: using a hostpath class");
                storage = FALLBACK_STORAGE.to_string();
                continue;
            }
            return Err(KindError::failed(cluster, &step, &argv, &out));
        }
        match step {
            Step::ReadContainerdConfig => containerd_config = out.stdout_text(),
            Step::ReadVersion => {
                version =
                    Some(KubeVersion::parse(&out.stdout_text()).map_err(|e| KindError::Step {
                        cluster: cluster.to_string(),
                        step: step.name(),
                        detail: e.to_string(),
                    })?)
            }
            Step::ReadCni => cni = out.stdout_text(),
            Step::ReadStorage => storage = out.stdout_text(),
            Step::ReadAdminKubeconfig => admin = out.stdout_text(),
            _ => {}
        }
    }
    let kubernetes_version = version.ok_or_else(|| KindError::Step {
        cluster: cluster.to_string(),
        step: Step::ReadVersion.name(),
        detail: "never read".to_string(),
    })?;
    Ok(Bootstrapped { kubernetes_version, admin_kubeconfig: admin })
}

/// Watches the Node until its Ready condition is True.
pub async fn wait_node_ready(
    client: &kube::Client,
    cluster: &str,
    node: &str,
    timeout: Duration,
) -> Result<Node, KindError> {
    let api: kube::Api<Node> = kube::Api::all(client.clone());
    crate::kube::wait::until(cluster, &api, node, "node Ready", node_is_ready, timeout)
        .await
        .map_err(|e| KindError::NodeNotReady { cluster: cluster.to_string(), source: Box::new(e) })
}

/// The Node's Ready condition is True.
pub fn node_is_ready(node: Option<&Node>) -> bool {
    node.and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// For error messages: the exec's argv, stdout/stderr tail.
pub(crate) fn describe_failure(argv: &[String], out: &ExecOutput) -> String {
    // Redacted: a step's output may be admin.conf with its client key.
    let tail = out.tail(20);
    let tail = crate::diag::redact_text(&tail);
    format!("`{}` exited with {}: {tail}", argv.join(" "), out.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};

    fn argvs(steps: &[Step]) -> Vec<(&'static str, Option<String>)> {
        steps.iter().map(|s| (s.name(), s.argv().map(|a| a.join(" ")))).collect()
    }

    #[test]
    fn bootstrap_follows_kinds_order() {
        let k = "kubectl --kubeconfig=/etc/kubernetes/admin.conf";
        let expected: Vec<(&str, Option<String>)> = vec![
            ("wait for systemd", None),
            ("read Kubernetes version", Some("cat /kind/version".into())),
            ("write kubeadm config", Some("cp /dev/stdin /kind/kubeadm.conf".into())),
            (
                "kubeadm init",
                Some("kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6".into()),
            ),
            ("read CNI manifest", Some("cat /kind/manifests/default-cni.yaml".into())),
            ("apply CNI manifest", Some(format!("{k} apply -f -"))),
            ("read storage manifest", Some("cat /kind/manifests/default-storage.yaml".into())),
            ("apply storage manifest", Some(format!("{k} apply -f -"))),
            (
                "remove control-plane taint",
                Some(format!(
                    "{k} taint nodes --all node-role.kubernetes.io/control-plane:NoSchedule-"
                )),
            ),
            (
                "remove exclude-from-external-load-balancers label",
                Some(format!(
                    "{k} label nodes --all node.kubernetes.io/exclude-from-external-load-balancers-"
                )),
            ),
            ("read admin kubeconfig", Some("cat /etc/kubernetes/admin.conf".into())),
            ("wait for node Ready", None),
        ];
        assert_eq!(argvs(&plan(&[])), expected);
    }

    #[test]
    fn mirrors_are_configured_before_kubeadm() {
        let m: RegistryMirror = "docker.io=http://kind-registry:5000".parse().unwrap();
        let steps = plan(std::slice::from_ref(&m));
        let got = argvs(&steps[..7]);
        assert_eq!(
            got,
            vec![
                ("wait for systemd", None),
                ("read containerd config", Some("cat /etc/containerd/config.toml".into())),
                (
                    "write containerd config",
                    Some("cp /dev/stdin /etc/containerd/config.toml".into())
                ),
                (
                    "create registry hosts directory",
                    Some("mkdir -p /etc/containerd/certs.d/docker.io".into())
                ),
                (
                    "write registry hosts.toml",
                    Some("cp /dev/stdin /etc/containerd/certs.d/docker.io/hosts.toml".into())
                ),
                ("restart containerd", Some("systemctl restart containerd".into())),
                ("read Kubernetes version", Some("cat /kind/version".into())),
            ]
        );
        assert_eq!(steps[7..], plan(&[])[2..]);
    }

    #[test]
    fn cni_is_templated_only_when_marked() {
        let subnet: ipnet::Ipv4Net = "10.30.0.0/16".parse().unwrap();
        let marked = "# would you kindly template this file\n- name: POD_SUBNET\n  value: {{ .PodSubnet }}\n";
        assert_eq!(
            template_cni(marked, &subnet),
            "# would you kindly template this file\n- name: POD_SUBNET\n  value: 10.30.0.0/16\n"
        );
        let plain = "value: {{ .PodSubnet }}\n";
        assert_eq!(template_cni(plain, &subnet), plain);
    }

    #[test]
    fn fallback_storage_is_a_default_hostpath_class_named_standard() {
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(FALLBACK_STORAGE).unwrap();
        let class = docs.iter().find(|d| d["kind"] == "StorageClass").unwrap();
        assert_eq!(class["metadata"]["name"], "standard");
        assert_eq!(
            class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
            "true"
        );
        assert_eq!(class["provisioner"], "kubernetes.io/host-path");
    }

    #[test]
    fn node_readiness_is_the_ready_condition() {
        let node = |status: &str| Node {
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: status.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(node_is_ready(Some(&node("True"))));
        assert!(!node_is_ready(Some(&node("False"))));
        assert!(!node_is_ready(Some(&Node::default())));
        assert!(!node_is_ready(None));
    }

    #[test]
    fn a_failed_steps_output_is_redacted() {
        let out = ExecOutput {
            exit_code: 1,
            stdout: b"users:\n- user:\n    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRF\n"
                .to_vec(),
            stderr: vec![],
        };
        let argv = vec!["cat".to_string(), "/etc/kubernetes/admin.conf".to_string()];
        let detail = describe_failure(&argv, &out);
        assert!(detail.starts_with("`cat /etc/kubernetes/admin.conf` exited with 1"), "{detail}");
        assert!(!detail.contains("LS0tLS1CRUdJTi"), "{detail}");
        assert!(detail.contains("client-key-data"), "{detail}");
    }
}
