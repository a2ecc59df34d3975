//! `cargo xtask plan`: the install procedure for a topology, offline. Prints the
//! ordered plan (cluster, step, what is applied or run); with `--out DIR` writes
//! every file the install would apply plus `plan.json`.

use std::path::PathBuf;

use ecp_harness::install::{self, GatewayTls, Installer, PlanOptions};
use ecp_harness::topology::{NetworkMode, PLACEHOLDER_EXTERNAL_ADDR, parse_external_addr};
use ecp_harness::version::{IstioVersion, NEWEST};

#[derive(clap::Args)]
pub struct Args {
    /// Istio version: 1.22.0 or later, pre-releases included (1.31.0-rc.0); a minor
    /// newer than the suite knows is planned with the newest known rules.
    #[arg(long, value_name = "VER", default_value_t = NEWEST.to_string())]
    istio: String,
    /// Installer backend.
    #[arg(long, value_name = Installer::value_name(), default_value_t = Installer::default())]
    installer: Installer,
    /// Remote clusters, the config cluster included (1 = external + config).
    #[arg(long, value_name = "N", default_value_t = 1)]
    remotes: usize,
    /// How the external cluster's gateway carries 15012/15017.
    #[arg(long, value_enum, default_value_t = GatewayTlsArg::Passthrough)]
    gateway_tls: GatewayTlsArg,
    /// EXTERNAL_ISTIOD_ADDR, an IP address (a hostname cannot serve the webhooks:
    /// istio/istio#45014). Default: a TEST-NET placeholder, never contacted.
    #[arg(long, value_name = "IP")]
    external_addr: Option<String>,
    /// Further remotes on their own networks (with east-west gateways) or on the
    /// config cluster's network.
    #[arg(long, value_enum, default_value_t = NetworkModeArg::MultiNetwork)]
    network_mode: NetworkModeArg,
    /// Image hub of Istio's images (`global.hub`) and of the helloworld samples.
    #[arg(long)]
    hub: Option<String>,
    /// Image tag of Istio's images (`global.tag`).
    #[arg(long)]
    tag: Option<String>,
    /// Write every file of the plan and plan.json into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GatewayTlsArg {
    Passthrough,
    Simple,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NetworkModeArg {
    MultiNetwork,
    SameNetwork,
}

impl Args {
    /// The plan options, with every user input checked (one-line errors).
    fn options(&self) -> anyhow::Result<PlanOptions> {
        let istio = IstioVersion::parse_supported(&self.istio)?;
        let external_addr = match &self.external_addr {
            Some(addr) => parse_external_addr(addr)?,
            None => PLACEHOLDER_EXTERNAL_ADDR,
        };
        Ok(PlanOptions {
            istio,
            installer: self.installer,
            remotes: self.remotes,
            network_mode: match self.network_mode {
                NetworkModeArg::MultiNetwork => NetworkMode::MultiNetwork,
                NetworkModeArg::SameNetwork => NetworkMode::SameNetwork,
            },
            gateway_tls: match self.gateway_tls {
                GatewayTlsArg::Passthrough => GatewayTls::Passthrough,
                GatewayTlsArg::Simple => GatewayTls::Simple,
            },
            external_addr,
            hub: self.hub.clone(),
            tag: self.tag.clone(),
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = args.options()?;
    let plan = install::plan(&options)?;
    if let Some(dir) = &args.out {
        let written = plan.write(dir)?;
        crate::print_out(&format!(
            "{}\nWrote {} files to {}\n",
            plan.render_text(),
            written.len(),
            dir.display()
        ))?;
    } else {
        crate::print_out(&plan.render_text())?;
    }
    Ok(())
}
