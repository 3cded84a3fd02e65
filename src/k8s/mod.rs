//! Kubernetes resources of the `millrace.dev` group.

pub mod controller;
pub mod crdgen;
pub mod flow;
pub mod flowrun;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod naming;
pub mod pod;
mod schema;
pub mod script;
pub mod throttle;

pub use flow::{Flow, FlowSpec, FlowStatus};
pub use flowrun::{FlowRun, FlowRunSpec, FlowRunStatus};
pub use script::{Script, ScriptSpec};
