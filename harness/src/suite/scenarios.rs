//! The conformance scenarios the suite knows: one test file each in the
//! `ecp-scenarios` crate's `tests/` (a test there checks that this list and the files
//! agree), run by nextest against the clusters the topology file describes, each in
//! one conformance profile.

use crate::conformance::Profile;

/// Tests that pause or cut a node, by scenario: run only where the provider has
/// [`Capabilities::network_faults`](crate::cluster::Capabilities::network_faults).
pub const NODE_FAULT_TESTS: &[(&str, &str)] = &[("outage", "external_cluster_paused")];

/// A scenario: one test file in `tests/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    /// What it checks, in the guide's words.
    pub about: &'static str,
    /// Remotes it needs, the config cluster included.
    pub min_remotes: usize,
    /// Meshes it needs (`--meshes`).
    pub min_meshes: usize,
    /// The conformance profile it belongs to (docs/report.md "Profiles").
    pub profile: Profile,
}

/// Every scenario, in the order of the procedure.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "control_plane_install",
        about: "webhooks, config maps and the istiod address on the config cluster; one \
                fail-closed injector and both validators reaching the external istiod with \
                its CA, not rewritten; the external istiod ready without webhooks of its own",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "sidecar_injection",
        about: "sample pods 2/2 with istio-proxy on every remote, their proxies the \
                external istiod's (cluster ID, discovery and CA address), none restarted",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "in_mesh_traffic",
        about: "the client reaches helloworld v1 inside the mesh; under STRICT mutual TLS \
                it still does and a client without a sidecar is refused",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "ingress_traffic",
        about: "the ingress gateway serves helloworld v1 from outside the mesh",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "validation",
        about: "the external istiod's validating webhook refuses an invalid VirtualService \
                and accepts a valid one",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "multi_remote",
        about: "ten requests through the ingress reach v1 and v2 across two remotes, and \
                so does a client on the second remote",
        min_remotes: 2,
        min_meshes: 1,
        profile: Profile::Extended,
    },
    Scenario {
        name: "outage",
        about: "istiod, the control-plane gateway, then the whole external cluster go away \
                while workloads run: traffic keeps flowing, injection fails closed, \
                nothing restarts; recovery after the restore is measured",
        min_remotes: 1,
        min_meshes: 1,
        profile: Profile::Core,
    },
    Scenario {
        name: "multi_mesh",
        about: "two meshes on one external cluster kept apart: each injected by its own \
                istiod (cluster ID, root certificate), traffic inside each, none across \
                (no shared trust); with one mesh's istiod at zero the other still injects \
                and serves",
        min_remotes: 1,
        min_meshes: 2,
        profile: Profile::Extended,
    },
];

/// The scenario named `name`.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}
