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
//! after a restart: engine::resume(&flow, &mut state, &env, now, started)? re-issues what must be
//!     running and is not among the attempts already `started`.
//! ```

mod api;
mod branch;
mod eval;
mod fan;
mod flow_node;
mod module;
mod outcome;
mod path;
mod progress;
mod retry;
mod run;
mod runtime;
mod scope;
mod script;
mod seq;
mod state;
mod store;
mod subflow;

pub use api::{
    Action, EngineError, Env, Event, ResolveError, ResolvedScript, Resolver, RunOutcome,
    SKIPPED_BY_SKIP_EXPR, StepError, StepSpec,
};
pub use path::{AttemptId, Segment, StepPath};
pub use progress::{LoopProgress, Phase, RunProgress, StepView};
pub use run::{advance, resume, start};
pub use state::RunState;
pub use store::ResultStore;

#[cfg(test)]
mod tests;
