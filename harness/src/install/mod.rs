//! The procedure of procedure.md as ordered, typed steps: [`plan()`] turns
//! [`PlanOptions`] into a [`Plan`] (steps, actions, files) for any installer
//! backend, offline. The executor runs a plan against clusters.
//!
//! - [`plan`](mod@plan): the model (options, steps, actions, files, errors).
//! - [`values`]: the Istio values of procedure.md "Values by Istio version", neutral.
//! - `steps`: one function per step of the guide; each asks for [`Component`]s.
//! - [`backend`]: the [`InstallerBackend`] trait, [`Component`], [`Needs`], and
//!   [`Installer`], the one mapping from a name to a backend.
//! - `istioctl` / `helm` / [`sail`]: the backends (IstioOperator files and
//!   `istioctl` command lines; values files and `helm` command lines; the Sail
//!   operator's `Istio` and `IstioCNI` resources).
//! - [`overrides`]: a distribution's values files, revision and chart repository,
//!   checked and merged once into the neutral values.
//! - `render`: the plan as text, JSON and files on disk.

pub mod backend;
mod helm;
mod istioctl;
pub mod overrides;
pub mod plan;
mod render;
pub mod sail;
mod steps;
#[cfg(test)]
mod tests;
pub mod values;

pub use backend::{Component, Installer, InstallerBackend, Needs, Repository, Revision, Target};
pub use helm::{SKIP_SCHEMA_VALIDATION, SKIP_SCHEMA_VALIDATION_SINCE};
pub use overrides::{OverrideError, Overrides, ValuesFile};
pub use plan::{
    Action, Check, GatewayTls, OperatorSource, Plan, PlanError, PlanFile, PlanOptions, Program,
    Step, StepPhase, WaitCondition, WebhookKind,
};
pub use steps::{
    CONTROL_PLANE_CLUSTERS_ANNOTATION, EASTWEST_GATEWAY, INGRESS_GATEWAY, ISTIO_SYSTEM,
    NETWORK_LABEL, SAMPLE_NAMESPACE,
};

use crate::topology::Topology;

/// Plans the whole procedure for `opts`, without touching any cluster: steps 1 to 9
/// of procedure.md with every file they apply or pass to the installer.
pub fn plan(opts: &PlanOptions) -> Result<Plan, PlanError> {
    opts.istio.check_supported()?;
    opts.installer.backend().check_version(opts.istio)?;
    opts.overrides.check(opts.installer)?;
    if opts.external_addr.is_ipv6() && !opts.istio.accepts_ipv6_remote_address() {
        return Err(PlanError::Ipv6ExternalAddr { istio: opts.istio, addr: opts.external_addr });
    }
    if opts.meshes > 1 {
        let unsupported = match (opts.installer, opts.gateway_tls) {
            (Installer::Sail, _) => {
                Some("--installer sail (one operator and one revision per cluster)")
            }
            (_, GatewayTls::Simple) => {
                Some("--gateway-tls simple (its plugged-in CA would be every mesh's root)")
            }
            _ => None,
        };
        if let Some(what) = unsupported {
            return Err(PlanError::MeshesNotSupported { meshes: opts.meshes, what: what.into() });
        }
    }
    let topology = Topology::with_meshes(opts.meshes, opts.remotes, opts.network_mode)?;
    let mut planner = steps::Planner::new(opts, topology);
    steps::all_steps(&mut planner)?;
    Ok(planner.finish())
}
