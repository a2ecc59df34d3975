//! `cargo xtask plan`: the install procedure for a topology, offline. Prints the
//! ordered plan (cluster, step, what is applied or run); with `--out DIR` writes
//! every file the install would apply plus `plan.json`.

use std::path::PathBuf;

use anyhow::bail;
use ecp_harness::install::{self, PlanOptions};
use ecp_harness::topology::{PLACEHOLDER_EXTERNAL_ADDR, parse_external_addr};
use ecp_harness::version::IstioVersion;

use crate::args::InstallArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    install: InstallArgs,
    /// EXTERNAL_ISTIOD_ADDR, an IP address (a hostname cannot serve the webhooks:
    /// istio/istio#45014). Default: a TEST-NET placeholder, never contacted.
    #[arg(long, value_name = "IP")]
    external_addr: Option<String>,
    /// Write every file of the plan and plan.json into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Args {
    /// The plan options, with every user input checked (one-line errors).
    fn options(&self) -> anyhow::Result<PlanOptions> {
        let a = &self.install;
        let [version] = a.istio.as_slice() else {
            bail!("plan takes one Istio version (--istio names {})", a.istio.len());
        };
        let istio = IstioVersion::parse_supported(version)?;
        let external_addr = match &self.external_addr {
            Some(addr) => parse_external_addr(addr)?,
            None => PLACEHOLDER_EXTERNAL_ADDR,
        };
        Ok(PlanOptions {
            network_mode: a.network_mode(),
            gateway_tls: a.gateway_tls,
            external_addr,
            hub: a.hub.clone(),
            tag: a.tag.clone(),
            overrides: a.overrides()?,
            meshes: a.meshes,
            cni: a.cni()?,
            // The operator as on kind: the plan installs it (PlanOptions::new).
            ..PlanOptions::new(istio, a.installer, a.remotes)
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
