//! ecp-harness: everything the external-control-plane suite does against Docker,
//! clusters and Istio. The procedure itself is in [`install`], one function per step
//! of the guide; the rest are the means it needs.

pub mod checks;
pub mod cluster;
pub mod conformance;
pub mod diag;
pub mod execute;
pub mod fault;
pub mod files;
pub mod install;
pub mod istio;
pub mod kube;
pub mod mesh;
pub mod outage;
pub mod preflight;
pub mod remote_secret;
pub mod report;
pub mod samples;
pub mod suite;
pub mod tls;
pub mod topology;
pub mod version;
pub mod yaml;

/// Installs the process-wide rustls crypto provider (ring), once. kube and rcgen use
/// ring; reqwest 0.13 also brings aws-lc-rs, so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
