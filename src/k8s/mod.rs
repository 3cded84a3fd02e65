//! Kubernetes resources of the `millrace.dev` group.

pub mod controller;
pub mod crdgen;
pub mod flow;
pub mod flowrun;
pub mod naming;
pub mod pod;
mod schema;
pub mod script;

pub use flow::{Flow, FlowSpec, FlowStatus};
pub use flowrun::{FlowRun, FlowRunSpec, FlowRunStatus};
pub use script::{Script, ScriptSpec};
