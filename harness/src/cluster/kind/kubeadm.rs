//! The kubeadm configuration written to `/kind/kubeadm.conf` before `kubeadm init`
//! (kind-node.md "The bootstrap, in kind's order", step 1): kind's settings for a
//! single control-plane node, with the cluster's own pod and service subnets.

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::node::API_SERVER_PORT;

/// The container runtime socket of kind node images.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";
/// Where the bootstrap writes the generated configuration inside the node.
pub const KUBEADM_CONFIG_PATH: &str = "/kind/kubeadm.conf";

/// Why no configuration can be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubeadmError {
    #[error("`{0}` (from /kind/version) is not a Kubernetes version like v1.35.0")]
    Malformed(String),
    #[error(
        "Kubernetes {0} is older than 1.24: the kubelet configuration this provider \
         writes (systemd cgroup driver, no dockershim) needs 1.24 or later; choose a newer \
         node image"
    )]
    TooOld(KubeVersion),
}

/// A Kubernetes version as a node image's `/kind/version` states it (`v1.35.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The text as read, trimmed; kubeadm gets it unchanged (`kubernetesVersion`).
    pub raw: String,
}

impl KubeVersion {
    /// Parses `v1.35.0`, `1.35.0`, and versions with a suffix (`v1.36.0-rc.1+abc`).
    pub fn parse(s: &str) -> Result<Self, KubeadmError> {
        let raw = s.trim();
        let malformed = || KubeadmError::Malformed(raw.to_string());
        let core = raw.strip_prefix('v').unwrap_or(raw);
        let core = core.split(['-', '+']).next().unwrap_or(core);
        let mut parts = core.split('.');
        let mut next = || -> Result<u32, KubeadmError> {
            let p = parts.next().ok_or_else(malformed)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            p.parse().map_err(|_| malformed())
        };
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(Self { major, minor, patch, raw: raw.to_string() })
    }

    fn at_least(&self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest Kubernetes minor this provider bootstraps.
pub const MIN_MINOR: u32 = 24;

/// The kubeadm config API a Kubernetes version reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    /// `kubeadm.k8s.io/v1beta3`: Kubernetes 1.24 ([`MIN_MINOR`]) to 1.35 here (kubeadm
    /// reads it from 1.23); extraArgs are maps.
    V1Beta3,
    /// `kubeadm.k8s.io/v1beta4`: Kubernetes 1.36 on; extraArgs are `{name, value}` lists.
    V1Beta4,
}

impl KubeadmApi {
    pub fn for_version(v: &KubeVersion) -> Result<Self, KubeadmError> {
        if v.at_least(36) {
            Ok(Self::V1Beta4)
        } else if v.at_least(MIN_MINOR) {
            Ok(Self::V1Beta3)
        } else {
            Err(KubeadmError::TooOld(v.clone()))
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1Beta3 => "kubeadm.k8s.io/v1beta3",
            Self::V1Beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

/// Everything the configuration depends on.
#[derive(Debug, Clone)]
pub struct KubeadmConfig {
    /// kind's cluster name (`clusterName`, the provider id).
    pub cluster_name: String,
    /// The node (and container) name: `ecp-<run id>-<cluster>-control-plane`.
    pub node_name: String,
    pub kubernetes_version: KubeVersion,
    /// The node container's address on the shared network.
    pub node_ip: Ipv4Addr,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    /// Further names or addresses the API server certificate must cover, beyond
    /// `localhost`, `127.0.0.1`, the node name and its IP.
    pub extra_cert_sans: Vec<String>,
}

impl KubeadmConfig {
    /// The multi-document YAML for `kubeadm init --config`.
    pub fn render(&self) -> Result<String, KubeadmError> {
        let api = KubeadmApi::for_version(&self.kubernetes_version)?;
        let mut y = String::new();
        // `write!` into a String cannot fail.
        let _ = self.write_cluster_configuration(&mut y, api);
        y.push_str("---\n");
        let _ = self.write_init_configuration(&mut y, api);
        y.push_str("---\n");
        let _ = self.write_kubelet_configuration(&mut y);
        y.push_str("---\n");
        let _ = write_kube_proxy_configuration(&mut y);
        Ok(y)
    }

    fn write_cluster_configuration(&self, y: &mut String, api: KubeadmApi) -> fmt::Result {
        writeln!(y, "apiVersion: {}", api.api_version())?;
        writeln!(y, "kind: ClusterConfiguration")?;
        writeln!(y, "clusterName: \"{}\"", self.cluster_name)?;
        writeln!(y, "kubernetesVersion: \"{}\"", self.kubernetes_version.raw)?;
        writeln!(y, "controlPlaneEndpoint: \"{}:{API_SERVER_PORT}\"", self.node_name)?;
        writeln!(y, "apiServer:")?;
        writeln!(y, "  certSANs:")?;
        for san in self.cert_sans() {
            writeln!(y, "  - \"{san}\"")?;
        }
        writeln!(y, "controllerManager:")?;
        write_extra_args(y, api, "  ", &[("enable-hostpath-provisioner", "true")])?;
        writeln!(y, "networking:")?;
        writeln!(y, "  podSubnet: \"{}\"", self.pod_subnet)?;
        writeln!(y, "  serviceSubnet: \"{}\"", self.service_subnet)
    }

    fn write_init_configuration(&self, y: &mut String, api: KubeadmApi) -> fmt::Result {
        writeln!(y, "apiVersion: {}", api.api_version())?;
        writeln!(y, "kind: InitConfiguration")?;
        writeln!(y, "localAPIEndpoint:")?;
        writeln!(y, "  advertiseAddress: \"{}\"", self.node_ip)?;
        writeln!(y, "  bindPort: {API_SERVER_PORT}")?;
        writeln!(y, "nodeRegistration:")?;
        writeln!(y, "  name: \"{}\"", self.node_name)?;
        writeln!(y, "  criSocket: \"{CRI_SOCKET}\"")?;
        let node_ip = self.node_ip.to_string();
        let provider_id = self.provider_id();
        let args = [("node-ip", node_ip.as_str()), ("provider-id", provider_id.as_str())];
        match api {
            KubeadmApi::V1Beta3 => {
                writeln!(y, "  kubeletExtraArgs:")?;
                for (name, value) in args {
                    writeln!(y, "    {name}: \"{value}\"")?;
                }
            }
            KubeadmApi::V1Beta4 => {
                writeln!(y, "  kubeletExtraArgs:")?;
                for (name, value) in args {
                    writeln!(y, "  - name: {name}")?;
                    writeln!(y, "    value: \"{value}\"")?;
                }
            }
        }
        writeln!(y, "skipPhases:")?;
        writeln!(y, "- preflight")
    }

    fn write_kubelet_configuration(&self, y: &mut String) -> fmt::Result {
        writeln!(y, "apiVersion: kubelet.config.k8s.io/v1beta1")?;
        writeln!(y, "kind: KubeletConfiguration")?;
        writeln!(y, "cgroupDriver: systemd")?;
        writeln!(y, "cgroupRoot: /kubelet")?;
        writeln!(y, "failSwapOn: false")?;
        if self.kubernetes_version.at_least(35) {
            // 1.35+ kubelets refuse cgroup v1 hosts unless told otherwise.
            writeln!(y, "failCgroupV1: false")?;
        }
        // The kubelet sees the host's disk: never garbage-collect images nor evict.
        writeln!(y, "imageGCHighThresholdPercent: 100")?;
        writeln!(y, "evictionHard:")?;
        writeln!(y, "  nodefs.available: \"0%\"")?;
        writeln!(y, "  nodefs.inodesFree: \"0%\"")?;
        writeln!(y, "  imagefs.available: \"0%\"")
    }

    /// `localhost`, `127.0.0.1` (the host's published port), the node name and IP
    /// (peers by name and by address), then the extra ones, without duplicates.
    pub fn cert_sans(&self) -> Vec<String> {
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            self.node_name.clone(),
            self.node_ip.to_string(),
        ];
        for s in &self.extra_cert_sans {
            if !sans.contains(s) {
                sans.push(s.clone());
            }
        }
        sans
    }

    /// `kind://docker/<cluster>/<node>`, as kind registers its nodes.
    pub fn provider_id(&self) -> String {
        format!("kind://docker/{}/{}", self.cluster_name, self.node_name)
    }
}

fn write_kube_proxy_configuration(y: &mut String) -> fmt::Result {
    writeln!(y, "apiVersion: kubeproxy.config.k8s.io/v1alpha1")?;
    writeln!(y, "kind: KubeProxyConfiguration")?;
    writeln!(y, "mode: \"iptables\"")?;
    writeln!(y, "iptables:")?;
    writeln!(y, "  minSyncPeriod: 1s")?;
    // Setting nf_conntrack_max is host-global: kind leaves it alone.
    writeln!(y, "conntrack:")?;
    writeln!(y, "  maxPerCore: 0")
}

fn write_extra_args(
    y: &mut String,
    api: KubeadmApi,
    indent: &str,
    args: &[(&str, &str)],
) -> fmt::Result {
    writeln!(y, "{indent}extraArgs:")?;
    for (name, value) in args {
        match api {
            KubeadmApi::V1Beta3 => writeln!(y, "{indent}  {name}: \"{value}\"")?,
            KubeadmApi::V1Beta4 => {
                writeln!(y, "{indent}- name: {name}")?;
                writeln!(y, "{indent}  value: \"{value}\"")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::Value;

    fn config(version: &str) -> KubeadmConfig {
        KubeadmConfig {
            cluster_name: "config".to_string(),
            node_name: "config-control-plane".to_string(),
            kubernetes_version: KubeVersion::parse(version).unwrap(),
            node_ip: Ipv4Addr::new(172, 18, 0, 3),
            pod_subnet: "10.20.0.0/16".parse().unwrap(),
            service_subnet: "10.255.20.0/24".parse().unwrap(),
            extra_cert_sans: vec!["127.0.0.1".to_string(), "ecp.test".to_string()],
        }
    }

    fn docs(yaml: &str) -> Vec<Value> {
        serde_saphyr::from_multiple(yaml).unwrap()
    }

    #[rstest]
    #[case("v1.35.0", 1, 35, 0)]
    #[case("1.33.1\n", 1, 33, 1)]
    #[case("v1.36.0-rc.1+abc", 1, 36, 0)]
    fn versions_parse(#[case] s: &str, #[case] ma: u32, #[case] mi: u32, #[case] pa: u32) {
        let v = KubeVersion::parse(s).unwrap();
        assert_eq!((v.major, v.minor, v.patch), (ma, mi, pa));
        assert_eq!(v.raw, s.trim());
    }

    #[rstest]
    #[case("")]
    #[case("v1.35")]
    #[case("kind")]
    #[case("v1.35.0.1")]
    fn malformed_versions_are_refused(#[case] s: &str) {
        assert!(matches!(KubeVersion::parse(s), Err(KubeadmError::Malformed(_))), "{s}");
    }

    #[rstest]
    #[case("v1.22.17", None)]
    #[case("v1.23.17", None)]
    #[case("v1.24.0", Some(KubeadmApi::V1Beta3))]
    #[case("v1.35.0", Some(KubeadmApi::V1Beta3))]
    #[case("v1.36.1", Some(KubeadmApi::V1Beta4))]
    #[case("v1.40.0", Some(KubeadmApi::V1Beta4))]
    fn config_api_by_version(#[case] v: &str, #[case] api: Option<KubeadmApi>) {
        let got = KubeadmApi::for_version(&KubeVersion::parse(v).unwrap()).ok();
        assert_eq!(got, api, "{v}");
    }

    #[test]
    fn old_kubernetes_is_refused_with_advice() {
        let err = config("v1.23.17").render().unwrap_err();
        assert!(err.to_string().contains("choose a newer node image"), "{err}");
        assert!(err.to_string().contains("older than 1.24"), "{err}");
    }

    #[test]
    fn v1beta3_documents_carry_kinds_settings() {
        let d = docs(&config("v1.33.1").render().unwrap());
        let kinds: Vec<_> = d.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ClusterConfiguration",
                "InitConfiguration",
                "KubeletConfiguration",
                "KubeProxyConfiguration"
            ]
        );
        let (cc, ic, kc, kp) = (&d[0], &d[1], &d[2], &d[3]);
        assert_eq!(cc["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(cc["clusterName"], "config");
        assert_eq!(cc["kubernetesVersion"], "v1.33.1");
        assert_eq!(cc["controlPlaneEndpoint"], "config-control-plane:6443");
        assert_eq!(
            cc["apiServer"]["certSANs"],
            serde_json::json!([
                "localhost",
                "127.0.0.1",
                "config-control-plane",
                "172.18.0.3",
                "ecp.test"
            ])
        );
        assert_eq!(cc["controllerManager"]["extraArgs"]["enable-hostpath-provisioner"], "true");
        assert_eq!(cc["networking"]["podSubnet"], "10.20.0.0/16");
        assert_eq!(cc["networking"]["serviceSubnet"], "10.255.20.0/24");
        assert_eq!(ic["localAPIEndpoint"]["advertiseAddress"], "172.18.0.3");
        assert_eq!(ic["localAPIEndpoint"]["bindPort"], 6443);
        assert_eq!(ic["nodeRegistration"]["criSocket"], CRI_SOCKET);
        assert_eq!(ic["nodeRegistration"]["kubeletExtraArgs"]["node-ip"], "172.18.0.3");
        assert_eq!(
            ic["nodeRegistration"]["kubeletExtraArgs"]["provider-id"],
            "kind://docker/config/config-control-plane"
        );
        assert_eq!(ic["skipPhases"], serde_json::json!(["preflight"]));
        assert_eq!(kc["cgroupDriver"], "systemd");
        assert_eq!(kc["cgroupRoot"], "/kubelet");
        assert_eq!(kc["failSwapOn"], false);
        assert_eq!(kc["imageGCHighThresholdPercent"], 100);
        assert_eq!(kc["evictionHard"]["nodefs.available"], "0%");
        assert_eq!(kc["evictionHard"]["nodefs.inodesFree"], "0%");
        assert_eq!(kc["evictionHard"]["imagefs.available"], "0%");
        assert!(kc.get("failCgroupV1").is_none(), "only 1.35+ kubelets need failCgroupV1");
        assert_eq!(kp["mode"], "iptables");
    }

    #[test]
    fn kubelets_from_1_35_accept_cgroup_v1() {
        let d = docs(&config("v1.35.0").render().unwrap());
        assert_eq!(d[0]["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(d[2]["failCgroupV1"], false);
    }

    #[test]
    fn v1beta4_turns_extra_args_into_name_value_lists() {
        let d = docs(&config("v1.36.1").render().unwrap());
        assert_eq!(d[0]["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(d[1]["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(
            d[0]["controllerManager"]["extraArgs"],
            serde_json::json!([{"name": "enable-hostpath-provisioner", "value": "true"}])
        );
        assert_eq!(
            d[1]["nodeRegistration"]["kubeletExtraArgs"],
            serde_json::json!([
                {"name": "node-ip", "value": "172.18.0.3"},
                {"name": "provider-id", "value": "kind://docker/config/config-control-plane"}
            ])
        );
        assert_eq!(d[2]["failCgroupV1"], false);
    }

    #[test]
    fn snapshot_v1beta3() {
        insta::assert_snapshot!(config("v1.35.0").render().unwrap());
    }

    #[test]
    fn snapshot_v1beta4() {
        insta::assert_snapshot!(config("v1.36.1").render().unwrap());
    }
}
