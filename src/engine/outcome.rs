//! What driving a module or a sequence yields.

use super::api::StepError;
use serde_json::Value;

#[derive(Debug)]
pub(crate) enum Outcome {
    /// Waiting on an attempt, a timer or an approval.
    Pending,
    /// Finished with a value; its `stop_after_if` and `suspend` still apply.
    Done(Value),
    /// Finished with a value, nothing left to apply; `skipped` records it as skipped.
    Complete { value: Value, skipped: bool },
    /// Failed after its retries.
    Failed(StepError),
    /// A `stop_after_if` fired: ends the enclosing loop, or else the flow, with `value`.
    Stopped { value: Value, skipped: bool },
}

/// What a module becomes when it is entered: a node to drive, or an immediate outcome.
pub(crate) enum Entered {
    Node(super::state::Node),
    Now(Outcome),
}
