//! Evaluation in worker processes of the same binary, bounded in time and memory.
//!
//! boa has loop and recursion limits but no memory limit and no wall-clock interrupt, so
//! a hostile expression cannot be stopped from inside the process that runs it. Each
//! worker limits its own address space and CPU time; the parent kills a worker that
//! overruns the wall-clock timeout and starts another on demand. Every evaluation runs in
//! a fresh engine context, so nothing leaks from one evaluation into the next.

mod pool;
mod process;
mod protocol;
mod spawner;
mod turns;
mod worker;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use worker::worker_main;

use super::path::plain_path;
use super::scan::reachable_results;
use super::source::strip_windmill_imports;
use super::{Evaluator, ExprError, Limits, Scope};
use pool::Pool;
use process::CallError;
use protocol::{check_line, eval_line};

/// The hidden subcommand that makes the binary serve as a worker ([`worker_main`]).
pub const WORKER_SUBCOMMAND: &str = "__expr-worker";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The binary to run as a worker, and its arguments.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Worker processes; also the number of evaluations that run at once.
    pub workers: usize,
    /// Wall-clock time one evaluation may take, waiting for a worker included.
    pub timeout: Duration,
    /// Memory a worker may allocate beyond its startup footprint.
    pub memory_mib: u64,
    /// Largest result, as JSON text, the parent accepts.
    pub max_result_bytes: usize,
    pub limits: Limits,
}

impl SandboxConfig {
    pub const DEFAULT_WORKERS: usize = 2;
    pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
    pub const DEFAULT_MEMORY_MIB: u64 = 128;

    /// Two workers, 2 s, 128 MiB, results up to 16 MiB.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            args,
            workers: Self::DEFAULT_WORKERS,
            timeout: Duration::from_millis(Self::DEFAULT_TIMEOUT_MS),
            memory_mib: Self::DEFAULT_MEMORY_MIB,
            max_result_bytes: 16 * 1024 * 1024,
            limits: Limits::default(),
        }
    }

    /// Workers that are this very binary, run with [`WORKER_SUBCOMMAND`].
    pub fn current_exe() -> io::Result<Self> {
        // On Linux the running image itself, even if its file was replaced since it started.
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe()?
        };
        Ok(Self::new(program, vec![WORKER_SUBCOMMAND.to_owned()]))
    }
}

/// A pool of worker processes. Blocking: call it from a blocking context (e.g.
/// `tokio::task::spawn_blocking`). Evaluations beyond the number of workers wait for one,
/// queue by queue in turn ([`Evaluator::for_queue`]); evaluations of the sandbox itself share
/// one queue.
pub struct Sandbox {
    pool: Pool,
    shared: Arc<str>,
}

impl Sandbox {
    /// Starts the workers; fails if `program` does not run as a worker.
    pub fn new(config: SandboxConfig) -> Result<Self, ExprError> {
        if config.workers == 0 {
            return Err(ExprError::Internal(
                "the expression sandbox needs at least one worker".into(),
            ));
        }
        Ok(Self {
            pool: Pool::start(config)?,
            shared: Arc::from(""),
        })
    }

    fn eval_in(&self, queue: &Arc<str>, source: &str, scope: &Scope) -> Result<Value, ExprError> {
        let source = strip_windmill_imports(source);
        if let Some(value) = plain_path(source, scope) {
            return Ok(value);
        }
        let reachable = reachable_results(source, &scope.results);
        self.exchange(queue, &eval_line(source, scope, reachable.as_ref()))
    }

    /// Sends one request line, replacing once a worker found dead before it got the
    /// request: that failure says nothing about the expression. Waiting for a worker
    /// counts against the time limit.
    fn exchange(&self, queue: &Arc<str>, request: &[u8]) -> Result<Value, ExprError> {
        let deadline = Instant::now() + self.pool.config.timeout;
        for _ in 0..2 {
            let mut lease = self.pool.acquire(queue, deadline)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match lease.worker().call(request, left) {
                Ok(outcome) => return outcome,
                Err(CallError::Unsent) => lease.discard(),
                Err(CallError::Broken(error)) => {
                    lease.discard();
                    return Err(error);
                }
            }
        }
        Err(ExprError::Internal(
            "no expression worker accepted the request".into(),
        ))
    }
}

impl Evaluator for Sandbox {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError> {
        self.eval_in(&self.shared, source, scope)
    }

    /// Parses in a worker: boa's parser recurses once per nesting level, and a source
    /// nested a few thousand levels deep overflows any thread's stack.
    fn check(&self, source: &str) -> Result<(), ExprError> {
        self.exchange(&self.shared, &check_line(source)).map(drop)
    }

    fn for_queue<'a>(&'a self, queue: &str) -> Box<dyn Evaluator + 'a> {
        Box::new(Queued {
            sandbox: self,
            queue: Arc::from(queue),
        })
    }
}

/// The sandbox seen by one queue's evaluations.
struct Queued<'a> {
    sandbox: &'a Sandbox,
    queue: Arc<str>,
}

impl Evaluator for Queued<'_> {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError> {
        self.sandbox.eval_in(&self.queue, source, scope)
    }

    fn check(&self, source: &str) -> Result<(), ExprError> {
        self.sandbox
            .exchange(&self.queue, &check_line(source))
            .map(drop)
    }

    fn for_queue<'b>(&'b self, queue: &str) -> Box<dyn Evaluator + 'b> {
        self.sandbox.for_queue(queue)
    }
}
