//! Kubernetes. Two parts, and the first never depends on the second:
//! - [`api`]: the `millrace.dev/v1alpha1` resources and the rules every reader of them shares
//!   (object naming, the path annotation, how a step pod reports back). The CLI's cluster
//!   commands and the operator both use it.
//! - [`operator`]: the controller process: leader election, health, metrics, API throttling, and
//!   one folder per controller under `operator/controllers/`.

pub mod api;
pub mod operator;
