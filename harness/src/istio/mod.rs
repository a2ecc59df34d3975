//! Istio itself: release archives (download, checksum, cache), where the Helm charts
//! come from, and the `istioctl` / `helm` binaries the installers run.

pub mod charts;
pub mod release;
pub mod tools;
