//! A fixed number of worker processes, started on demand and lent out one call at a time,
//! to waiting evaluations in the order [`Turns`] gives.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::SandboxConfig;
use super::process::WorkerProcess;
use super::spawner::Spawner;
use super::turns::Turns;
use crate::expr::ExprError;

pub(super) struct Pool {
    pub(super) config: SandboxConfig,
    spawner: Spawner,
    state: Mutex<State>,
    /// A worker came back or a slot came free, or the turn passed on: waiters look again.
    changed: Condvar,
}

struct State {
    /// Lent out in the order they came back, so a worker that just answered has time to
    /// prepare its next context while another serves.
    idle: VecDeque<WorkerProcess>,
    /// Workers idle, lent out or starting; never more than `config.workers`.
    live: usize,
    turns: Turns,
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
            state: Mutex::new(State {
                idle,
                live,
                turns: Turns::default(),
            }),
            changed: Condvar::new(),
        })
    }

    /// A worker for an evaluation of `queue` when its turn comes: an idle one, or a newly
    /// started one if a slot is free. Waits until `deadline` at most, then says the sandbox
    /// is busy.
    pub(super) fn acquire(
        &self,
        queue: &Arc<str>,
        deadline: Instant,
    ) -> Result<Lease<'_>, ExprError> {
        let mut state = self.lock();
        let ticket = state.turns.join(queue);
        loop {
            let free = !state.idle.is_empty() || state.live < self.config.workers;
            if free && state.turns.next().as_ref() == Some(&ticket) {
                state.turns.start(&ticket);
                // The next in turn may find a free worker too.
                self.changed.notify_all();
                let lease = |worker| Lease {
                    pool: self,
                    queue: queue.clone(),
                    worker: Some(worker),
                };
                if let Some(worker) = state.idle.pop_front() {
                    return Ok(lease(worker));
                }
                state.live += 1;
                drop(state);
                return match WorkerProcess::start(&self.config, &self.spawner) {
                    Ok(worker) => Ok(lease(worker)),
                    Err(e) => {
                        self.forget_one(queue);
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                let waiting = state.turns.waiting();
                state.turns.leave(&ticket);
                self.changed.notify_all();
                return Err(ExprError::Busy {
                    timeout_ms: self.config.timeout.as_millis() as u64,
                    workers: self.config.workers,
                    waiting,
                });
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// A lent worker of `queue` is gone: its slot is free for a fresh one.
    fn forget_one(&self, queue: &Arc<str>) {
        let mut state = self.lock();
        state.live -= 1;
        state.turns.finish(queue);
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic: no change panics halfway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker on loan; it goes back to the pool when the lease drops, unless discarded.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    queue: Arc<str>,
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
        self.pool.forget_one(&self.queue);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            let mut state = self.pool.lock();
            state.idle.push_back(worker);
            state.turns.finish(&self.queue);
            self.pool.changed.notify_all();
        }
    }
}
