//! Step attempts as pods: the Job builder, the in-pod entry script, and reading back what an
//! attempt produced.

pub mod job;
pub mod outcome;
pub mod report;

pub use job::{AttemptPlan, BuildError, PodDefaults, RunIdentity, build};
pub use outcome::{Observation, observe};

/// The container that runs the step.
pub const STEP_CONTAINER: &str = "step";
/// The per-attempt nonce framing a large result in the log, kept on the Job.
pub const RESULT_NONCE_ANNOTATION: &str = "millrace.dev/result-nonce";
/// ConfigMap key of the entry script.
const ENTRY: &str = "entry.sh";
const ENTRY_SCRIPT: &str = include_str!("entry.sh");
