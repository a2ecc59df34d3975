//! Tests of the provider's Docker plumbing against a local busybox image.
