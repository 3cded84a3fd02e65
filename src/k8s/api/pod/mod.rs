//! A step attempt's Job and pod as everyone reads them: the labels and annotations the operator
//! puts on them, and what they say about the attempt ([`observe`], [`report`], [`pending`]). The operator
//! reads outcomes with it, `millrace logs` finds an attempt's pod and result with it. Building
//! the Job is the FlowRun controller's (`operator::controllers::flowrun::job`).

pub mod outcome;
pub mod pending;
pub mod report;

pub use outcome::{Observation, observe};

/// On every object made for a run: the run's name (as a label value).
pub const RUN_LABEL: &str = "millrace.dev/run";
pub const STEP_LABEL: &str = "millrace.dev/step";
pub const ATTEMPT_LABEL: &str = "millrace.dev/attempt";
/// The exact step path (labels fold it to fit).
pub const STEP_PATH_ANNOTATION: &str = "millrace.dev/step-path";
/// The container that runs the step.
pub const STEP_CONTAINER: &str = "step";
/// The per-attempt nonce framing a large result in the log, kept on the Job.
pub const RESULT_NONCE_ANNOTATION: &str = "millrace.dev/result-nonce";
