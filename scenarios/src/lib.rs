//! Conformance scenarios: each test reads the topology file written by `cargo xtask e2e`.
