//! The FlowRun status, computed from the persisted run (pure). It stays small for any run: small
//! values are shown inline up to a budget, others are referenced in the run's state; steps inside
//! loops are listed up to a number (their loops count them all).

use super::job::RunIdentity;
use super::saved::Persisted;
use crate::engine::{Phase, RunOutcome, StepView};
use crate::k8s::api::flowrun::{FlowRunStatus, LoopStatus, ResultRef, RunPhase, StepStatus};
use crate::k8s::api::naming;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::error_boundary::InvalidObject;
use serde_json::{Value, json};

/// Values up to this size (as JSON) are shown in status.
const INLINE_BYTES: usize = 1024;
/// All values shown inline together stay under this; later ones are referenced.
const INLINE_BUDGET: usize = 32 * 1024;
/// Steps (and loops) inside loops, branches and subflows listed at most: a loop running
/// thousands of iterations at once would otherwise list each.
const MAX_NESTED: usize = 100;
/// Error messages in conditions are cut to this many bytes.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Status of `run` (generation `generation`) whose results are saved at `results`;
/// `previous` conditions keep their transition times when their status did not change.
pub fn compute(
    run: &RunIdentity,
    generation: Option<i64>,
    persisted: &Persisted,
    results: &ResultRef,
    previous: &[Condition],
) -> FlowRunStatus {
    let state = &persisted.state;
    let flow = &persisted.flow;
    let views = state.steps(flow);
    let progress = state.progress(flow);
    let outcome = state.outcome();
    let phase = match &outcome {
        Some(RunOutcome::Succeeded(_) | RunOutcome::Skipped(_)) => RunPhase::Succeeded,
        Some(RunOutcome::Failed(_)) => RunPhase::Failed,
        Some(RunOutcome::Canceled) => RunPhase::Canceled,
        None if views.iter().any(|v| v.phase == Phase::Suspended) => RunPhase::Suspended,
        None => RunPhase::Running,
    };
    let views = listed(views);
    let mut budget = INLINE_BUDGET;
    let steps = views
        .iter()
        .map(|view| {
            let value = state.results.get(view.path.as_str());
            step_status(run, view, value, results, &mut budget)
        })
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
        Some(RunOutcome::Succeeded(value) | RunOutcome::Skipped(value)) => {
            stored(value, results, &mut { INLINE_BYTES })
        }
        _ => (None, None),
    };
    let error = match &outcome {
        Some(RunOutcome::Failed(error)) => serde_json::to_value(error)
            .ok()
            .map(|error| shown_error(&error, &mut { INLINE_BYTES })),
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
                    cut(&e.message, MAX_MESSAGE_BYTES)
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

/// Every top-level step, and the first `MAX_NESTED` steps inside them.
fn listed(views: Vec<StepView>) -> Vec<StepView> {
    let mut nested = 0;
    views
        .into_iter()
        .filter(|view| {
            if view.path.segments().count() <= 1 {
                return true;
            }
            nested += 1;
            nested <= MAX_NESTED
        })
        .collect()
}

fn step_status(
    run: &RunIdentity,
    view: &StepView,
    value: Option<&Value>,
    results_at: &ResultRef,
    budget: &mut usize,
) -> StepStatus {
    let path = view.path.to_string();
    let (mut result, mut result_ref, mut error) = (None, None, None);
    match (view.phase, value) {
        // The engine keeps a failed step's error as Windmill does: `{"error": {name, message, …}}`.
        (Phase::Failed, Some(value)) => {
            error = Some(shown_error(value.get("error").unwrap_or(value), budget))
        }
        (Phase::Succeeded, Some(value)) => (result, result_ref) = stored(value, results_at, budget),
        _ => {}
    }
    StepStatus {
        job: (view.attempts > 0)
            .then(|| naming::job_name(&run.name, &run.uid, &path, view.attempts)),
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

/// A value inline when small and `budget` has room for it, else a reference to the run's saved
/// results (where it is found under its step path).
fn stored(
    value: &Value,
    results: &ResultRef,
    budget: &mut usize,
) -> (Option<Value>, Option<ResultRef>) {
    let bytes = value.to_string().len();
    if bytes <= INLINE_BYTES && bytes <= *budget {
        *budget -= bytes;
        return (Some(value.clone()), None);
    }
    (None, Some(results.clone()))
}

/// A step's error as shown: whole when it fits, else its name and the start of its message
/// (the whole error stays in the run's results).
fn shown_error(error: &Value, budget: &mut usize) -> Value {
    let bytes = error.to_string().len();
    if bytes <= INLINE_BYTES && bytes <= *budget {
        *budget -= bytes;
        return error.clone();
    }
    let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
    let message = cut(text("message"), (*budget).min(MAX_MESSAGE_BYTES));
    *budget = budget.saturating_sub(message.len());
    serde_json::json!({"name": text("name"), "message": message})
}

/// `text` cut to at most `max` bytes, on a character boundary, marked with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Status of a run that could not start, or cannot go on.
pub fn not_started(
    phase: RunPhase,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> FlowRunStatus {
    let condition = |type_: &str, status: bool| {
        self::condition(type_, status, reason, message.clone(), generation, previous)
    };
    FlowRunStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions: vec![condition("Ready", false), condition("Stalled", true)],
        error: Some(json!({"name": reason, "message": message})),
        ..Default::default()
    }
}

/// Status of a FlowRun that does not fit its type: it fails, saying why.
pub fn unreadable(invalid: &InvalidObject) -> FlowRunStatus {
    let name = invalid.metadata.name.clone().unwrap_or_default();
    let mut status = not_started(
        RunPhase::Failed,
        "Invalid",
        format!("FlowRun {name} cannot be read: {}", invalid.error),
        invalid.metadata.generation,
        &[],
    );
    // Its status cannot be read back either: a stable time keeps the patch idempotent, so that
    // writing it does not wake this reconcile again and again.
    if let Some(created) = &invalid.metadata.creation_timestamp {
        for condition in &mut status.conditions {
            condition.last_transition_time = created.clone();
        }
    }
    status
}

fn condition(
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
