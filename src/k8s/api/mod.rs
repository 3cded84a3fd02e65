//! The `millrace.dev/v1alpha1` API: what the CLI and the operator share, and nothing of the
//! operator's runtime.
//!
//! - One file per resource ([`flow`], [`flowrun`], [`schedule`], [`script`], [`gitsource`]); their types are re-exported here.
//!   A new resource gets its own file, a line below and one in [`crdgen::all`].
//! - [`naming`]: the names of the objects made for a run (Jobs, Secrets, ConfigMaps) and label values.
//! - [`paths`]: which Flow or Script a Windmill path (`f/team/report`) stands for.
//! - [`document`]: a Flow spec as the engine's OpenFlow document, and its problems.
//! - [`pod`]: how a step attempt's Job and pod are labelled and how they report back.
//! - [`crdgen`]: the CustomResourceDefinitions generated from the types.

pub mod crdgen;
pub mod document;
pub mod flow;
pub mod flowrun;
pub mod gitsource;
pub mod naming;
pub mod paths;
pub mod pod;
pub mod schedule;
mod schema;
pub mod script;

pub use flow::{Flow, FlowSpec, FlowStatus, PodSettings, StepPodSettings};
pub use flowrun::{FlowRun, FlowRunSpec, FlowRunStatus, RunPhase};
pub use gitsource::{GitSource, GitSourceSpec, GitSourceStatus};
pub use schedule::{Schedule, ScheduleSpec, ScheduleStatus};
pub use script::{Script, ScriptSpec};
