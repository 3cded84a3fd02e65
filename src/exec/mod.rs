//! Executors: where a step attempt actually runs. The engine decides *what* runs; an executor
//! carries it out and reports the result. [`local::LocalExecutor`] runs local processes for
//! `millrace run`. On Kubernetes no [`Executor`] is involved: the FlowRun controller
//! (`k8s::operator::controllers::flowrun`) turns each attempt into a Job and reads its outcome
//! back at a later reconcile.

mod error;
mod guard;
pub mod local;
mod process;
pub mod runners;

use crate::engine::{AttemptId, StepError, StepSpec};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;

pub use error::AttemptError;
pub use guard::{GUARD_SUBCOMMAND, StepGuard, guard_main};
pub use runners::Language;

/// What one attempt produced: its result or error (`{name, message, stack}`), and its logs.
#[derive(Debug)]
pub struct AttemptOutput {
    pub result: Result<Value, StepError>,
    /// Files holding the attempt's stdout and stderr (absent when the attempt printed nothing).
    pub stdout_log: Option<PathBuf>,
    pub stderr_log: Option<PathBuf>,
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives a step's output line by line as it is printed (for a live view).
pub trait LogSink: Send + Sync {
    fn line(&self, id: &AttemptId, stream: Stream, line: &str);
}

/// Runs step attempts. `run` resolves when the attempt has finished, failed, timed out or been
/// canceled; dropping its future also stops the attempt.
pub trait Executor: Send + Sync {
    fn run(&self, id: AttemptId, spec: StepSpec) -> impl Future<Output = AttemptOutput> + Send;
    /// Stops a running attempt; its `run` then resolves with a `Canceled` error.
    fn cancel(&self, id: &AttemptId);
}
