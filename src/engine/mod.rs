//! The flow engine: a pure state machine over an OpenFlow document.
//!
//! It does no I/O and reads no clock: callers pass the time (`now_ms`, milliseconds since the
//! Unix epoch), the events that happened, and the dependencies in [`Env`]; the engine updates the
//! [`RunState`] and returns [`Action`]s for an executor to carry out. The local runner and the
//! Kubernetes operator share it, so a flow behaves the same in both.
//!
//! A driver loop looks like:
//! ```text
//! let (mut state, actions) = engine::start(&flow, inputs, seed, &env, now)?;
//! carry out actions; for every event (attempt finished, timer fired, approval, cancel):
//!     let actions = engine::advance(&flow, &mut state, event, &env, now)?;
//!     carry out actions, until Action::Finish
//! after a restart: engine::resume(&flow, &mut state, &env, now)? re-issues what must be running.
//! ```

mod api;
mod path;
mod progress;
mod state;
mod store;

pub use api::{
    Action, EngineError, Env, Event, ResolveError, ResolvedScript, Resolver, RunOutcome, StepError,
    StepSpec,
};
pub use path::{AttemptId, Segment, StepPath};
pub use progress::{LoopProgress, Phase, RunProgress, StepView};
pub use state::RunState;
pub use store::ResultStore;

use crate::flow::OpenFlow;
use serde_json::Value;

/// Starts a run of `flow` with `inputs` (already validated against the flow's schema).
/// `seed` seeds retry jitter; derive it from the run's identity so it is stable.
pub fn start(
    _flow: &OpenFlow,
    _inputs: Value,
    _seed: u64,
    _env: &Env,
    _now_ms: u64,
) -> Result<(RunState, Vec<Action>), EngineError> {
    todo!("engine logic lands in the next commits")
}

/// Applies one event at time `now_ms` and returns what to do next. Timers due at `now_ms` fire
/// whatever the event.
pub fn advance(
    _flow: &OpenFlow,
    _state: &mut RunState,
    _event: Event,
    _env: &Env,
    _now_ms: u64,
) -> Result<Vec<Action>, EngineError> {
    todo!("engine logic lands in the next commits")
}

/// After a restart: fires due timers and re-issues `StartAttempt` for every running attempt,
/// `AwaitApproval` for every suspended step and the pending `WakeAt`. Starting is idempotent, so
/// the executor starts only what is not running yet.
pub fn resume(
    _flow: &OpenFlow,
    _state: &mut RunState,
    _env: &Env,
    _now_ms: u64,
) -> Result<Vec<Action>, EngineError> {
    todo!("engine logic lands in the next commits")
}
