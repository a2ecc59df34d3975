//! The facts the guide checks (procedure.md "What the anchors check"), shared by the
//! executor's `Verify` actions and the conformance scenarios.

pub mod facts;
pub mod mtls;
pub mod provenance;

pub use facts::*;
