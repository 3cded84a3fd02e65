//! The engine's entry points: start a run, advance it by one event, resume it after a restart.

use super::api::{Action, EngineError, Env, Event, RunOutcome, SKIPPED_BY_SKIP_EXPR};
use super::flow_node::{self, FlowStatus};
use super::path::{AttemptId, StepPath};
use super::runtime::{Approval, Runtime, aux_key};
use super::state::{Ended, FlowNode, RunState};
use super::store::ResultStore;
use crate::flow::OpenFlow;
use serde_json::Value;
use std::collections::HashSet;

/// Starts a run of `flow` with `inputs` (already validated against the flow's schema).
/// `seed` seeds retry jitter; derive it from the run's identity so it is stable.
pub fn start(
    flow: &OpenFlow,
    inputs: Value,
    seed: u64,
    env: &Env,
    now_ms: u64,
) -> Result<(RunState, Vec<Action>), EngineError> {
    let mut state = RunState {
        flow: FlowNode::default(),
        ended: None,
        rng: seed,
        yielded_at: None,
        results: ResultStore::default(),
    };
    let root = StepPath::root();
    state.results.insert(aux_key(&root, "input"), inputs);
    let skipped = {
        let rt = Runtime::new(env, now_ms, &mut state.results, &mut state.rng);
        flow_node::skipped(&flow.value, &root, 0, &rt)
    };
    let actions = match skipped {
        Ok(false) => pump(flow, &mut state, env, now_ms, |_| {})?,
        Ok(true) => {
            let result = Value::from(SKIPPED_BY_SKIP_EXPR);
            finish(&mut state, RunOutcome::Skipped(result), Vec::new())
        }
        Err(error) => finish(&mut state, RunOutcome::Failed(error), Vec::new()),
    };
    Ok((state, actions))
}

/// Applies one event at time `now_ms` and returns what to do next. Due timers fire on
/// [`Event::Tick`] (other events may fire some too), so deliver a tick at every `WakeAt`.
pub fn advance(
    flow: &OpenFlow,
    state: &mut RunState,
    event: Event,
    env: &Env,
    now_ms: u64,
) -> Result<Vec<Action>, EngineError> {
    if state.ended.is_some() {
        return Ok(Vec::new());
    }
    match event {
        Event::Cancel => {
            let cancels = state
                .running_attempts()
                .into_iter()
                .map(|id| Action::CancelAttempt { id })
                .collect();
            Ok(finish(state, RunOutcome::Canceled, cancels))
        }
        Event::StepFinished { id, outcome } => pump(flow, state, env, now_ms, |rt| {
            rt.focus = Some(id.step.clone());
            rt.finished = Some((id, outcome));
        }),
        Event::Approval {
            step,
            approved,
            payload,
        } => pump(flow, state, env, now_ms, |rt| {
            rt.focus = step.clone();
            rt.approval = Some(Approval {
                step,
                approved,
                payload,
            });
        }),
        Event::Tick => pump(flow, state, env, now_ms, |_| {}),
    }
}

/// After a restart: fires due timers and re-issues `StartAttempt` for every running attempt not
/// in `started`, `AwaitApproval` for every suspended step and the pending `WakeAt`. Starting is
/// idempotent, so the executor starts only what is not running yet. The attempts in `started`
/// run already: their arguments are not evaluated again, as an evaluation that fails now (a
/// secret gone, the sandbox busy) would fail an attempt that is running well.
pub fn resume(
    flow: &OpenFlow,
    state: &mut RunState,
    env: &Env,
    now_ms: u64,
    started: HashSet<AttemptId>,
) -> Result<Vec<Action>, EngineError> {
    if state.ended.is_some() {
        return Ok(Vec::new());
    }
    pump(flow, state, env, now_ms, |rt| rt.reissue = Some(started))
}

/// Drives the whole run as far as it goes at `now_ms`, then reports the next timer or the end.
fn pump(
    flow: &OpenFlow,
    state: &mut RunState,
    env: &Env,
    now_ms: u64,
    setup: impl FnOnce(&mut Runtime),
) -> Result<Vec<Action>, EngineError> {
    let mut rt = Runtime::new(env, now_ms, &mut state.results, &mut state.rng);
    setup(&mut rt);
    let status = flow_node::drive(&mut state.flow, &flow.value, &StepPath::root(), 0, &mut rt)?;
    state.yielded_at = (rt.budget == 0).then_some(now_ms);
    let mut actions = rt.actions;
    let outcome = match status {
        FlowStatus::Pending => {
            actions.extend(state.next_wake_ms().map(|at_ms| Action::WakeAt { at_ms }));
            return Ok(actions);
        }
        FlowStatus::Succeeded(value) => RunOutcome::Succeeded(value),
        FlowStatus::Failed(error) => RunOutcome::Failed(error),
        FlowStatus::Skipped(value) => RunOutcome::Skipped(value),
    };
    Ok(finish(state, outcome, actions))
}

/// Where the store already holds the run's result (the last step's key, or the inputs of an
/// empty flow), else a new `#result` key.
fn result_key(state: &mut RunState, value: &Value) -> String {
    let last = state
        .flow
        .handler
        .as_ref()
        .unwrap_or(&state.flow.main)
        .done
        .last();
    let candidates = [
        last.map(|r| r.id.clone()),
        Some(aux_key(&StepPath::root(), "input")),
    ];
    if let Some(key) = candidates
        .into_iter()
        .flatten()
        .find(|k| state.results.get(k) == Some(value))
    {
        return key;
    }
    let key = aux_key(&StepPath::root(), "result");
    state.results.insert(key.clone(), value.clone());
    key
}

fn finish(state: &mut RunState, outcome: RunOutcome, mut actions: Vec<Action>) -> Vec<Action> {
    state.ended = Some(match &outcome {
        RunOutcome::Succeeded(value) => Ended::Succeeded {
            result_key: result_key(state, value),
        },
        RunOutcome::Failed(error) => Ended::Failed {
            error: error.clone(),
        },
        RunOutcome::Skipped(value) => Ended::Skipped {
            result_key: result_key(state, value),
        },
        RunOutcome::Canceled => Ended::Canceled,
    });
    actions.push(Action::Finish(outcome));
    actions
}
