//! The arguments `cargo xtask plan` and `cargo xtask e2e` share: what is installed
//! and on which topology. One definition, so that a plan printed by `plan` is the
//! plan `e2e` runs for the same arguments.

use anyhow::Context;
use ecp_harness::install::{GatewayTls, Installer, Overrides, ValuesFile};
use ecp_harness::topology::NetworkMode;
use ecp_harness::version::NEWEST;

#[derive(clap::Args, Debug, Clone)]
pub struct InstallArgs {
    /// Istio versions, comma-separated (e.g. 1.22.8,1.31.0): every version from
    /// 1.22.0 on, pre-releases included (1.31.0-rc.0); a minor newer than the suite
    /// knows runs with the newest known rules. A build of Istio's main branch:
    /// `--istio 1.32.0-dev --hub H --tag T --istioctl PATH`. `plan` takes one.
    #[arg(long = "istio", value_name = "V1,V2,...", value_delimiter = ',', default_values_t = [NEWEST.to_string()])]
    pub istio: Vec<String>,
    /// Installer backend: `istioctl` (IstioOperator files, the guide's form), `helm`
    /// (Istio's charts with values files) or `sail` (the Sail operator's `Istio` and
    /// `IstioCNI` resources; Istio 1.24.0 to 1.30.3).
    #[arg(long, value_name = "istioctl|helm|sail", default_value_t = Installer::Istioctl)]
    pub installer: Installer,
    /// Remote clusters, the config cluster included (1 = external + config; 2 adds
    /// remote2 running helloworld v2, needed by the multi_remote scenario).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub remotes: usize,
    /// Meshes the external cluster hosts, each with its own istiod (namespace
    /// `external-istiod-mesh<k>` after the first), config cluster, remotes, root CA and
    /// pair of gateway ports (15012/15017, then 16022/16027, ...); 2 is needed by the
    /// multi_mesh scenario.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub meshes: usize,
    /// How the external gateway carries 15012/15017: `passthrough` (TLS to istiod) or
    /// `simple` (TLS terminated at the gateway with a certificate for its address).
    #[arg(long, value_name = "passthrough|simple", default_value = "passthrough")]
    pub gateway_tls: GatewayTls,
    /// Further remotes on their own networks (`multi-network`, with east-west
    /// gateways) or on the config cluster's network (`same-network`).
    #[arg(long, value_name = "multi-network|same-network", default_value = "multi-network", value_parser = parse_network_mode)]
    pub network_mode: NetworkMode,
    /// Short for `--network-mode same-network`.
    #[arg(long, conflicts_with = "network_mode")]
    pub same_network: bool,
    /// Image hub of Istio's images (`global.hub`) and of the samples (default: the
    /// release's hub).
    #[arg(long, value_name = "HUB")]
    pub hub: Option<String>,
    /// Image tag of Istio's images (`global.tag`; default: the Istio version).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// A Helm-style values file merged into the values of the external istiod and
    /// the remote profiles (every backend); `ROLE=FILE` (external, config, remote)
    /// for that role's clusters only. Repeatable: later files win, role files after
    /// the others. Keys the procedure sets are refused (docs/procedure.md
    /// "Distribution overrides").
    #[arg(long = "values", value_name = "[ROLE=]FILE")]
    pub values: Vec<String>,
    /// The revision of the external istiod and the remote profiles (a DNS-1123
    /// label, not `default`); names, labels and the remote webhooks follow it.
    /// Default: none (istioctl, helm), `external-istiod` (sail).
    #[arg(long, value_name = "NAME")]
    pub revision: Option<String>,
    /// A chart repository (http or https URL) replacing the backend's own: Istio's
    /// charts for `helm`, the Sail operator's chart for `sail`; refused for istioctl.
    #[arg(long, value_name = "URL")]
    pub helm_repo: Option<String>,
    /// With `--installer sail`: an `IstioCNI` on every remote, sidecars injected for
    /// the CNI. Off by default on kind; always on OpenShift (found by the existing
    /// provider).
    #[arg(long)]
    pub cni: bool,
}

impl InstallArgs {
    pub fn network_mode(&self) -> NetworkMode {
        if self.same_network { NetworkMode::SameNetwork } else { self.network_mode }
    }

    /// The overrides with every values file read, checked for `installer` (parse
    /// errors and owned keys name the file and key) before anything runs.
    pub fn overrides(&self) -> anyhow::Result<Overrides> {
        let mut values = Vec::new();
        for arg in &self.values {
            let (role, path) = ValuesFile::split_arg(arg);
            let contents = std::fs::read_to_string(path)
                .with_context(|| format!("reading values file {path}"))?;
            values.push(ValuesFile::new(path, role, contents));
        }
        let overrides = Overrides {
            values,
            revision: self.revision.clone(),
            helm_repo: self.helm_repo.clone(),
        };
        overrides.check(self.installer)?;
        Ok(overrides)
    }

    /// `--cni`, refused with an installer other than Sail (only Sail installs the CNI).
    pub fn cni(&self) -> anyhow::Result<bool> {
        if self.cni && self.installer != Installer::Sail {
            anyhow::bail!(
                "--cni needs --installer sail (the {} backend does not install the Istio CNI)",
                self.installer
            );
        }
        Ok(self.cni)
    }
}

fn parse_network_mode(s: &str) -> Result<NetworkMode, String> {
    match s {
        "multi-network" => Ok(NetworkMode::MultiNetwork),
        "same-network" => Ok(NetworkMode::SameNetwork),
        _ => Err(format!("unknown network mode `{s}`: expected multi-network or same-network")),
    }
}
