//! The procedure of procedure.md as ordered, typed steps: [`plan`] turns
//! [`PlanOptions`] into a [`Plan`] (steps, actions, files) for either installer
//! backend, offline. The executor runs a plan against clusters.
//!
//! - [`plan`](mod@plan): the model (options, steps, actions, files, errors).
//! - `values`: the Istio values of procedure.md "Values by Istio version".
//! - `steps`: one function per step of the guide.
//! - `istioctl` / `helm`: how each backend carries the values (IstioOperator files
//!   and `istioctl` command lines; values files and `helm` command lines).
//! - `render`: the plan as text, JSON and files on disk.

pub mod plan;
mod render;

pub use plan::{
    Action, Check, GatewayTls, Installer, Plan, PlanError, PlanFile, PlanOptions, Program,
    RemoteSecretKind, Step, WaitCondition, WebhookKind,
};

use crate::topology::Topology;

/// Plans the whole procedure for `opts`, without touching any cluster.
pub fn plan(opts: &PlanOptions) -> Result<Plan, PlanError> {
    opts.istio.check_supported()?;
    let topology = Topology::new(opts.remotes, opts.network_mode)?;
    Ok(Plan { options: opts.clone(), topology, steps: Vec::new(), files: Vec::new() })
}
