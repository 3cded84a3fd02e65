//! The I/O loop around the pure engine: feeds it events (attempts finished, timers, approvals,
//! Ctrl-C, SIGTERM, SIGHUP or SIGQUIT) with the real clock and carries out its actions with an [`Executor`].

use crate::engine::{
    self, Action, AttemptId, EngineError, Env, Event, RunOutcome, RunState, StepPath, StepSpec,
};
use crate::exec::{AttemptOutput, Executor};
use crate::flow::OpenFlow;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How suspended steps get their approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approvals {
    /// Approve every suspended step at once (`--approve`).
    Auto,
    /// Ask on the terminal.
    Ask,
    /// Nobody can answer (no terminal): disapprove, so the run fails with a clear message.
    Refuse,
}

/// Told about the run as it happens, for a live view.
pub trait Observer {
    fn attempt_started(&mut self, id: &AttemptId, spec: &StepSpec);
    fn attempt_finished(&mut self, id: &AttemptId, output: &AttemptOutput, elapsed: Duration);
    /// Called after every engine step, so that progress (loop counters) can be shown.
    fn advanced(&mut self, flow: &OpenFlow, state: &RunState);
    /// A step waits for approval; with [`Approvals::Ask`] the answer is read next.
    fn approval_needed(&mut self, step: &StepPath, approvals: Approvals);
    fn early_return(&mut self, result: &Value);
    fn canceling(&mut self);
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen for Ctrl-C and termination signals: {0}")]
    Signals(#[from] std::io::Error),
    #[error(
        "the engine is waiting for nothing: no step is running, no timer is set and no approval is pending (this is a bug in Millrace)"
    )]
    Stalled,
}

/// Runs `flow` with validated `inputs` to its end.
pub async fn drive<E: Executor + 'static>(
    flow: &OpenFlow,
    inputs: Value,
    env: Env<'_>,
    executor: Arc<E>,
    approvals: Approvals,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, DriveError> {
    let (mut state, mut actions) = engine::start(flow, inputs, rand::random(), &env, now_ms())?;
    let mut attempts: JoinSet<(AttemptId, AttemptOutput, Duration)> = JoinSet::new();
    let mut running: HashSet<AttemptId> = HashSet::new();
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Event>();
    let mut awaiting_answers = 0usize;
    let mut canceling = false;
    // Registered before the first step starts, so that an early Ctrl-C cancels instead of killing.
    // A closed terminal (SIGHUP) and SIGQUIT stop the run the same way.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    loop {
        for action in actions {
            match action {
                Action::StartAttempt { id, spec } => {
                    if running.insert(id.clone()) {
                        observer.attempt_started(&id, &spec);
                        let executor = executor.clone();
                        attempts.spawn(async move {
                            let started = Instant::now();
                            let output = executor.run(id.clone(), spec).await;
                            (id, output, started.elapsed())
                        });
                    }
                }
                Action::CancelAttempt { id } => {
                    running.remove(&id);
                    executor.cancel(&id);
                }
                // The next wake-up is read from the state below, which always has the earliest.
                Action::WakeAt { .. } => {}
                Action::AwaitApproval { step, .. } => {
                    observer.approval_needed(&step, approvals);
                    awaiting_answers += 1;
                    answer(step, approvals, answers_tx.clone());
                }
                Action::EarlyReturn { result } => observer.early_return(&result),
                // Dropping `attempts` aborts what still runs; each attempt kills its processes.
                Action::Finish(outcome) => {
                    observer.advanced(flow, &state);
                    return Ok(outcome);
                }
            }
        }
        observer.advanced(flow, &state);
        let wake = state.next_wake_ms();
        if attempts.is_empty() && wake.is_none() && awaiting_answers == 0 {
            return Err(DriveError::Stalled);
        }
        let event = tokio::select! {
            Some(joined) = attempts.join_next(), if !attempts.is_empty() => {
                let (id, output, elapsed) = match joined {
                    Ok(done) => done,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                };
                if !running.remove(&id) {
                    // Canceled: the engine expects no event for it.
                    actions = Vec::new();
                    continue;
                }
                observer.attempt_finished(&id, &output, elapsed);
                Event::StepFinished { id, outcome: output.result }
            }
            _ = sleep_until_ms(wake) => Event::Tick,
            Some(event) = answers.recv() => {
                awaiting_answers -= 1;
                event
            }
            _ = interrupt.recv(), if !canceling => Event::Cancel,
            _ = terminate.recv(), if !canceling => Event::Cancel,
            _ = hangup.recv(), if !canceling => Event::Cancel,
            _ = quit.recv(), if !canceling => Event::Cancel,
        };
        if matches!(event, Event::Cancel) {
            canceling = true;
            observer.canceling();
        }
        actions = engine::advance(flow, &mut state, event, &env, now_ms())?;
    }
}

/// Answers an approval request according to the policy, on the channel the loop listens to.
fn answer(step: StepPath, approvals: Approvals, answers: mpsc::UnboundedSender<Event>) {
    let send = move |approved: bool| {
        let _ = answers.send(Event::Approval {
            step: Some(step),
            approved,
            payload: Value::Null,
        });
    };
    match approvals {
        Approvals::Auto => send(true),
        Approvals::Refuse => send(false),
        Approvals::Ask => {
            // Reading the terminal blocks, so it happens off the event loop.
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                let approved = std::io::stdin().read_line(&mut line).is_ok()
                    && matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes");
                send(approved);
            });
        }
    }
}

async fn sleep_until_ms(at_ms: Option<u64>) {
    match at_ms {
        Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
