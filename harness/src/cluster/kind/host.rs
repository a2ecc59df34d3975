//! What the Docker host asks of the node containers, decided the way kind v0.32's
//! docker provider decides it, from `docker info`, `docker version` and the default
//! bridge network: the host user namespace under userns-remap, `/dev/mapper` on
//! btrfs/ZFS/devicemapper storage, the bridge's MTU for the run's network, and a
//! refusal of rootless engines (kind nodes here need a rootful daemon).
//!
//! The decisions are pure functions of the daemon's answers; [`HostSettings::detect`]
//! asks the daemon, and [`HostSettings::apply`] turns the decisions into container
//! options.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, SystemInfo, SystemVersion};

use super::proxy::ProxyEnv;
use crate::preflight::{Problem, ProblemKind};

/// Docker's network option carrying a bridge's MTU.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// The bind kind adds on btrfs, ZFS and devicemapper hosts (kind issue 1416).
pub const DEV_MAPPER_BIND: &str = "/dev/mapper:/dev/mapper";

/// What the node containers and the run's network need on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// The daemon remaps user namespaces: nodes run with `--userns=host`.
    pub userns_host: bool,
    /// Bind `/dev/mapper` into the nodes.
    pub dev_mapper: bool,
    /// The default bridge's MTU when it is not 1500, for the run's network.
    pub network_mtu: Option<u32>,
    /// The proxy settings of the environment, passed on to the nodes.
    pub proxy: Option<ProxyEnv>,
}

impl HostSettings {
    /// The settings for this daemon and this process's environment.
    pub fn from_facts(
        info: &SystemInfo,
        bridge_options: Option<&HashMap<String, String>>,
        proxy: Option<ProxyEnv>,
    ) -> Self {
        Self {
            userns_host: userns_remap(info),
            dev_mapper: mount_dev_mapper(info),
            network_mtu: bridge_options.and_then(bridge_mtu),
            proxy,
        }
    }

    /// Asks the daemon (`docker info`, `docker network inspect bridge`) and reads the
    /// proxy variables of the environment. A daemon without a `bridge` network (e.g.
    /// `"bridge": "none"` in its configuration) leaves the MTU at Docker's default.
    pub async fn detect(docker: &Docker) -> Result<Self, bollard::errors::Error> {
        let info = docker.info().await?;
        let bridge = docker.inspect_network("bridge", None).await.ok();
        let options = bridge.and_then(|b| b.options);
        Ok(Self::from_facts(&info, options.as_ref(), ProxyEnv::from_env(|k| std::env::var(k).ok())))
    }

    /// The options of the run's network: the MTU where one is to be set.
    pub fn network_options(&self) -> HashMap<String, String> {
        self.network_mtu.map(|m| (MTU_OPTION.to_string(), m.to_string())).into_iter().collect()
    }

    /// Adds the host user namespace and the `/dev/mapper` bind to a node container.
    /// (The proxy variables depend on the run's network; see [`ProxyEnv::node_env`].)
    pub fn apply(&self, body: &mut ContainerCreateBody) {
        let host = body.host_config.get_or_insert_with(Default::default);
        if self.userns_host {
            host.userns_mode = Some("host".to_string());
        }
        if self.dev_mapper {
            host.binds.get_or_insert_with(Vec::new).push(DEV_MAPPER_BIND.to_string());
        }
    }
}

fn security_option(info: &SystemInfo, name: &str) -> bool {
    let want = format!("name={name}");
    info.security_options.iter().flatten().any(|o| o.split(',').any(|field| field == want))
}

/// Docker runs with `userns-remap` (`docker info` lists `name=userns`).
pub fn userns_remap(info: &SystemInfo) -> bool {
    security_option(info, "userns")
}

/// Storage that needs `/dev/mapper` in the nodes: the btrfs, ZFS or devicemapper
/// storage driver, or a btrfs, ZFS or XFS backing filesystem. Never for a rootless
/// daemon (it cannot create device nodes).
pub fn mount_dev_mapper(info: &SystemInfo) -> bool {
    if security_option(info, "rootless") {
        return false;
    }
    let driver = info.driver.as_deref().unwrap_or_default().to_ascii_lowercase();
    if ["btrfs", "zfs", "devicemapper"].contains(&driver.as_str()) {
        return true;
    }
    let backing = info
        .driver_status
        .iter()
        .flatten()
        .find(|pair| pair.first().is_some_and(|k| k == "Backing Filesystem"))
        .and_then(|pair| pair.get(1))
        .map(|v| v.to_ascii_lowercase());
    matches!(backing.as_deref(), Some("btrfs" | "zfs" | "xfs"))
}

/// The default bridge's MTU from its options, when set and not 1500.
pub fn bridge_mtu(options: &HashMap<String, String>) -> Option<u32> {
    let mtu: u32 = options.get(MTU_OPTION)?.trim().parse().ok()?;
    (mtu != 0 && mtu != 1500).then_some(mtu)
}

/// Why a rootless engine cannot run kind nodes here, or `None` for a rootful one.
/// Podman is recognised by its `docker version` component.
pub fn rootless_problem(info: &SystemInfo, version: Option<&SystemVersion>) -> Option<Problem> {
    if !security_option(info, "rootless") {
        return None;
    }
    let podman = version
        .and_then(|v| v.components.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.name.to_ascii_lowercase().contains("podman")));
    let engine = if podman { "Podman" } else { "Docker" };
    Some(Problem::new(
        ProblemKind::Docker,
        format!(
            "{engine} runs rootless here: kind nodes need a rootful daemon (privileged \
             containers with every capability, device nodes, a cgroup tree of their own); the \
             nodes would never become Ready"
        ),
        "point DOCKER_HOST at a rootful daemon (e.g. unix:///var/run/docker.sock)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::SystemVersionComponents;

    fn info(driver: &str, backing: &str, security: &[&str]) -> SystemInfo {
        SystemInfo {
            driver: Some(driver.to_string()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), backing.into()]]),
            security_options: Some(security.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn plain() -> SystemInfo {
        info("overlay2", "extfs", &["name=seccomp,profile=builtin", "name=cgroupns"])
    }

    #[test]
    fn userns_remap_gives_nodes_the_host_user_namespace() {
        assert!(!userns_remap(&plain()));
        let remapped = info("overlay2", "extfs", &["name=seccomp,profile=builtin", "name=userns"]);
        assert!(userns_remap(&remapped));
        let settings = HostSettings::from_facts(&remapped, None, None);
        let mut body = ContainerCreateBody::default();
        settings.apply(&mut body);
        assert_eq!(body.host_config.unwrap().userns_mode.as_deref(), Some("host"));

        let mut body = ContainerCreateBody::default();
        HostSettings::from_facts(&plain(), None, None).apply(&mut body);
        assert_eq!(body.host_config.unwrap().userns_mode, None);
    }

    #[test]
    fn dev_mapper_is_bound_for_btrfs_zfs_devicemapper_and_their_backing_filesystems() {
        for driver in ["btrfs", "zfs", "devicemapper", "BTRFS"] {
            assert!(mount_dev_mapper(&info(driver, "extfs", &[])), "{driver}");
        }
        for backing in ["btrfs", "zfs", "xfs"] {
            assert!(mount_dev_mapper(&info("overlay2", backing, &[])), "{backing}");
        }
        assert!(!mount_dev_mapper(&plain()));
        assert!(!mount_dev_mapper(&SystemInfo::default()));
        assert!(
            !mount_dev_mapper(&info("btrfs", "btrfs", &["name=rootless"])),
            "rootless daemons cannot create device nodes"
        );

        let mut body = ContainerCreateBody {
            host_config: Some(bollard::models::HostConfig {
                binds: Some(vec!["/lib/modules:/lib/modules:ro".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        HostSettings::from_facts(&info("zfs", "zfs", &[]), None, None).apply(&mut body);
        assert_eq!(
            body.host_config.unwrap().binds.unwrap(),
            ["/lib/modules:/lib/modules:ro", "/dev/mapper:/dev/mapper"]
        );
    }

    #[test]
    fn the_run_network_takes_the_bridges_mtu_when_it_is_not_1500() {
        let opts = |mtu: &str| HashMap::from([(MTU_OPTION.to_string(), mtu.to_string())]);
        assert_eq!(bridge_mtu(&opts("1450")), Some(1450));
        assert_eq!(bridge_mtu(&opts("1500")), None);
        assert_eq!(bridge_mtu(&opts("not a number")), None);
        assert_eq!(bridge_mtu(&HashMap::new()), None);
        let settings = HostSettings::from_facts(&plain(), Some(&opts("1400")), None);
        assert_eq!(
            settings.network_options(),
            HashMap::from([(MTU_OPTION.to_string(), "1400".to_string())])
        );
        let settings = HostSettings::from_facts(&plain(), Some(&opts("1500")), None);
        assert!(settings.network_options().is_empty());
    }

    #[test]
    fn rootless_docker_and_podman_are_refused_with_the_engine_named() {
        assert_eq!(rootless_problem(&plain(), None), None);
        let rootless =
            info("overlay2", "extfs", &["name=seccomp,profile=default", "name=rootless"]);
        let problem = rootless_problem(&rootless, None).unwrap();
        assert_eq!(problem.kind, ProblemKind::Docker);
        let msg = problem.to_string();
        assert!(msg.starts_with("Docker runs rootless") && msg.contains("DOCKER_HOST"), "{msg}");
        let podman = SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: "Podman Engine".into(),
                version: "5.2.0".into(),
                details: None,
            }]),
            ..Default::default()
        };
        let msg = rootless_problem(&rootless, Some(&podman)).unwrap().to_string();
        assert!(msg.starts_with("Podman runs rootless"), "{msg}");
    }
}
