//! The FlowRun status, computed from the persisted run (pure). Small values are shown inline;
//! larger ones are referenced in the run's state ConfigMap, so status stays small.

use super::store::{Persisted, RESULTS_KEY, config_map_name};
use crate::engine::{Phase, RunOutcome, StepView};
use crate::k8s::flowrun::{FlowRunStatus, LoopStatus, ResultRef, RunPhase, StepStatus};
use crate::k8s::naming;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;

/// Values up to this size (as JSON) are shown in status.
const INLINE_BYTES: usize = 1024;

/// Status of run `name` (generation `generation`) at `now_ms`; `previous` conditions keep
/// their transition times when their status did not change.
pub fn compute(
    name: &str,
    generation: Option<i64>,
    persisted: &Persisted,
    previous: &[Condition],
) -> FlowRunStatus {
    let state = &persisted.state;
    let flow = &persisted.flow;
    let views = state.steps(flow);
    let progress = state.progress(flow);
    let outcome = state.outcome();
    let phase = match &outcome {
        Some(RunOutcome::Succeeded(_) | RunOutcome::Skipped) => RunPhase::Succeeded,
        Some(RunOutcome::Failed(_)) => RunPhase::Failed,
        Some(RunOutcome::Canceled) => RunPhase::Canceled,
        None if views.iter().any(|v| v.phase == Phase::Suspended) => RunPhase::Suspended,
        None => RunPhase::Running,
    };
    let steps = views
        .iter()
        .map(|view| step_status(name, view, state.results.get(view.path.as_str())))
        .collect();
    let loops = views
        .iter()
        .filter_map(|view| {
            let p = view.progress?;
            Some(LoopStatus {
                path: view.path.to_string(),
                total: p.total.unwrap_or(p.succeeded + p.failed + p.running),
                succeeded: p.succeeded,
                failed: p.failed,
                running: p.running,
            })
        })
        .collect();
    let (result, result_ref) = match &outcome {
        Some(RunOutcome::Succeeded(value)) => stored(name, value),
        _ => (None, None),
    };
    let error = match &outcome {
        Some(RunOutcome::Failed(error)) => serde_json::to_value(error).ok(),
        _ => None,
    };
    let done = outcome.is_some();
    let reason = format!("{phase:?}");
    let conditions = vec![
        condition(
            "Ready",
            phase == RunPhase::Succeeded,
            &reason,
            match &outcome {
                Some(RunOutcome::Failed(e)) => format!(
                    "step {}: {}",
                    e.step_id.as_deref().unwrap_or("?"),
                    e.message
                ),
                _ => format!("{} of {} steps done", progress.done, progress.total),
            },
            generation,
            previous,
        ),
        condition(
            "Reconciling",
            !done,
            &reason,
            match &progress.current {
                Some(step) if !done => format!("at step {step}"),
                _ => String::new(),
            },
            generation,
            previous,
        ),
    ];
    FlowRunStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions,
        start_time: Some(time(persisted.started_ms)),
        completion_time: persisted.finished_ms.map(time),
        progress: Some(format!("{}/{}", progress.done, progress.total)),
        current_step: progress.current.filter(|_| !done).map(|p| p.to_string()),
        duration: persisted
            .finished_ms
            .map(|end| duration(end.saturating_sub(persisted.started_ms))),
        steps,
        loops,
        result,
        result_ref,
        error,
    }
}

fn step_status(run: &str, view: &StepView, value: Option<&Value>) -> StepStatus {
    let path = view.path.to_string();
    let (mut result, mut result_ref, mut error) = (None, None, None);
    match (view.phase, value) {
        // The engine keeps a failed step's error as Windmill does: `{"error": {name, message, …}}`.
        (Phase::Failed, Some(value)) => error = Some(value.get("error").unwrap_or(value).clone()),
        (Phase::Succeeded, Some(value)) => (result, result_ref) = stored(run, value),
        _ => {}
    }
    StepStatus {
        job: (view.attempts > 0).then(|| naming::job_name(run, &path, view.attempts)),
        phase: serde_json::to_value(view.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        attempts: view.attempts,
        start_time: view.started_ms.map(time),
        completion_time: view.finished_ms.map(time),
        path,
        result,
        result_ref,
        error,
    }
}

/// A value inline when small, else a reference to the run's results.
fn stored(run: &str, value: &Value) -> (Option<Value>, Option<ResultRef>) {
    if value.to_string().len() <= INLINE_BYTES {
        return (Some(value.clone()), None);
    }
    let reference = ResultRef {
        config_map: config_map_name(run),
        key: RESULTS_KEY.into(),
    };
    (None, Some(reference))
}

pub(super) fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: truncate(last_transition_time),
    }
}

/// API times have whole seconds; anything finer would differ from what is read back.
fn time(ms: u64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second((ms / 1000) as i64).unwrap_or_default())
}

fn truncate(t: Time) -> Time {
    time(t.0.as_millisecond().max(0) as u64)
}

/// `1m12s`, `3h2m`, `4s`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests;
