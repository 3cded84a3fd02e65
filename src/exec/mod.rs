//! Executors: where a step attempt actually runs. The engine decides *what* runs; an executor
//! carries it out and reports the result. [`local::LocalExecutor`] runs local processes; a
//! Kubernetes executor implements the same [`Executor`] trait with Jobs.

mod error;
pub mod local;
mod process;
pub mod runners;

use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use error::StepError;
pub use runners::Language;

/// Names one attempt of one step uniquely within a run: the step's path (loop iterations and
/// branches included, e.g. `loop_a/3/fetch`) and the attempt number (0 for the first).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptKey {
    pub step_path: String,
    pub attempt: u32,
}

impl fmt::Display for AttemptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.step_path, self.attempt)
    }
}

impl AttemptKey {
    /// A name usable as a single file name: path separators become `.`, other unsafe bytes `_`.
    pub fn file_stem(&self) -> String {
        let path: String = self
            .step_path
            .chars()
            .map(|c| match c {
                '/' => '.',
                c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' => c,
                _ => '_',
            })
            .collect();
        format!("{path}.attempt-{}", self.attempt)
    }
}

/// Everything an executor needs to run one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub language: Language,
    pub content: String,
    /// The evaluated input transforms, by parameter name.
    pub args: Map<String, Value>,
    /// Wall-clock limit; the whole process tree is killed when it passes.
    pub timeout: Option<Duration>,
}

/// What one attempt produced: its result or error, and where its logs are.
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
    fn line(&self, key: &AttemptKey, stream: Stream, line: &str);
}

/// Runs step attempts. `run` resolves when the attempt has finished, failed, timed out or been
/// canceled; dropping its future also stops the attempt.
pub trait Executor: Send + Sync {
    fn run(&self, key: AttemptKey, spec: StepSpec) -> impl Future<Output = AttemptOutput> + Send;
    /// Stops a running attempt; its `run` then resolves with [`StepError::Canceled`].
    fn cancel(&self, key: &AttemptKey);
}
