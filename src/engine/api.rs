//! What goes in and out of the engine: events from executors, actions for them, and the
//! dependencies the caller injects ([`Env`]).

use super::path::{AttemptId, StepPath};
use crate::expr::Evaluator;
use crate::flow::OpenFlow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Something that happened to a run. Events that no longer apply (a result for an attempt the
/// engine is not waiting for, an approval when nothing is suspended, anything after the run
/// finished) are ignored, so an executor may deliver an event twice after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An attempt ended: its result, or its error (a script exception, a timeout, a lost Job…).
    StepFinished {
        id: AttemptId,
        outcome: Result<Value, StepError>,
    },
    /// Time passed: timers due at `now` fire (retry back-off, `sleep`, suspend timeout).
    Tick,
    /// An approver answered a suspended step. `step: None` answers the first suspended step.
    Approval {
        step: Option<StepPath>,
        approved: bool,
        payload: Value,
    },
    /// Cancel the run: running attempts are canceled, retries and the failure module are skipped.
    Cancel,
}

/// What the engine wants done. Actions come in the order they should be carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start this attempt unless it already runs (starting must be idempotent on `id`).
    StartAttempt { id: AttemptId, spec: StepSpec },
    /// Stop this attempt; no event is expected for it afterwards.
    CancelAttempt { id: AttemptId },
    /// Call `advance` with [`Event::Tick`] at or after this time. Every `advance` that leaves a
    /// timer pending returns exactly one `WakeAt`, replacing any earlier one; it is the same as
    /// [`RunState::next_wake_ms`](super::RunState::next_wake_ms).
    WakeAt { at_ms: u64 },
    /// The step is suspended until `required_events` approvals arrive (or `timeout_at_ms` passes).
    AwaitApproval {
        step: StepPath,
        required_events: u32,
        timeout_at_ms: Option<u64>,
        resume_form: Option<Value>,
    },
    /// The flow's `early_return` step finished: hand its result to the caller; the run goes on.
    EarlyReturn { result: Value },
    /// The run is over; no further actions follow.
    Finish(RunOutcome),
}

/// Everything an executor needs to run one attempt of a script step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// `python3`, `bash`, `deno`, `bun`, `nativets`, … as written in the flow or returned by the resolver.
    pub language: String,
    /// The code (a `script` module's code comes from [`Resolver::script`]).
    pub content: String,
    /// The evaluated input transforms, by parameter name.
    pub args: Map<String, Value>,
    /// Fail the attempt (with a [`StepError`]) if it runs longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The script's path: a `script` module's `path`, or a `rawscript`'s optional one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_path: Option<String>,
    /// The dependency lock of the script, when the flow or resolver has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// The module's `summary`, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded(Value),
    Failed(StepError),
    /// `skip_expr` was true, or a top-level `stop_after_if` with `skip_if_stopped` fired. The
    /// value is the result reached, as Windmill keeps it: the stopping step's result, or
    /// [`SKIPPED_BY_SKIP_EXPR`] for `skip_expr`.
    Skipped(Value),
    Canceled,
}

/// The result of a flow whose `skip_expr` was true (Windmill's text for it).
pub const SKIPPED_BY_SKIP_EXPR: &str = "stopped early";

/// A step's error, shaped like Windmill's: `{name, message, stack, step_id}`. Executors leave
/// `step_id` empty; the engine fills it with the failing module's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
}

impl StepError {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        StepError {
            name: name.into(),
            message: message.into(),
            stack: None,
            step_id: None,
        }
    }
}

/// A script found by path for a `script` module.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedScript {
    pub language: String,
    pub content: String,
    pub lock: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("{kind} `{path}` not found")]
    NotFound { kind: &'static str, path: String },
    #[error("{kind} `{path}` could not be loaded: {reason}")]
    Invalid {
        kind: &'static str,
        path: String,
        reason: String,
    },
}

/// Looks up what a flow refers to by path. Failures become step errors naming the module.
pub trait Resolver {
    /// The code of a `script` module (`hub/…`, `f/…`, `u/…`, `g/…`).
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError>;
    /// The flow of a `flow` module. Must return the same flow for the whole run.
    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError>;
    /// The value of `variable(path)` in an expression.
    fn variable(&self, path: &str) -> Result<Value, ResolveError>;
    /// The value of `resource(path)` in an expression.
    fn resource(&self, path: &str) -> Result<Value, ResolveError>;
}

/// The engine's injected dependencies. Randomness (retry jitter) comes from a seed kept in the
/// run state, so a resumed run draws the same numbers as an uninterrupted one.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub evaluator: &'a dyn Evaluator,
    pub resolver: &'a dyn Resolver,
}

/// The state does not fit the flow it is advanced with (a different flow, or a corrupted state).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error(
        "run state does not match the flow at `{path}`: {reason}; resume a run with the flow it started with"
    )]
    StateMismatch { path: String, reason: String },
}
