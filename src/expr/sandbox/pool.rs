//! A fixed number of worker processes, started on demand and lent out one call at a time.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::SandboxConfig;
use super::process::WorkerProcess;
use super::spawner::Spawner;
use crate::expr::ExprError;

pub(super) struct Pool {
    pub(super) config: SandboxConfig,
    spawner: Spawner,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    /// Lent out in the order they came back, so a worker that just answered has time to
    /// prepare its next context while another serves.
    idle: VecDeque<WorkerProcess>,
    /// Workers idle, lent out or starting; never more than `config.workers`.
    live: usize,
}

impl Pool {
    /// Starts every worker now, so a wrong program or limit shows at once.
    pub(super) fn start(config: SandboxConfig) -> Result<Self, ExprError> {
        let spawner = Spawner::new().map_err(|e| {
            ExprError::Internal(format!("cannot start the expression worker spawner: {e}"))
        })?;
        let idle = (0..config.workers)
            .map(|_| WorkerProcess::start(&config, &spawner))
            .collect::<Result<VecDeque<_>, _>>()?;
        let live = idle.len();
        Ok(Self {
            config,
            spawner,
            state: Mutex::new(State { idle, live }),
            returned: Condvar::new(),
        })
    }

    /// An idle worker, a newly started one if a slot is free, else the next one returned.
    pub(super) fn acquire(&self) -> Result<Lease<'_>, ExprError> {
        let mut state = self.lock();
        loop {
            if let Some(worker) = state.idle.pop_front() {
                return Ok(Lease {
                    pool: self,
                    worker: Some(worker),
                });
            }
            if state.live < self.config.workers {
                state.live += 1;
                drop(state);
                return match WorkerProcess::start(&self.config, &self.spawner) {
                    Ok(worker) => Ok(Lease {
                        pool: self,
                        worker: Some(worker),
                    }),
                    Err(e) => {
                        self.forget_one();
                        Err(e)
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn forget_one(&self) {
        self.lock().live -= 1;
        self.returned.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: every change is a single push, pop or count.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker on loan; it goes back to the pool when the lease drops, unless discarded.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    worker: Option<WorkerProcess>,
}

impl Lease<'_> {
    pub(super) fn worker(&mut self) -> &mut WorkerProcess {
        self.worker
            .as_mut()
            .expect("a lease holds its worker until it drops")
    }

    /// Kills the worker and frees its slot for a fresh one.
    pub(super) fn discard(mut self) {
        drop(self.worker.take());
        self.pool.forget_one();
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.lock().idle.push_back(worker);
            self.pool.returned.notify_one();
        }
    }
}
