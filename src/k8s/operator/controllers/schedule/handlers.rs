//! The handler runs a Schedule's newly finished runs call for, and the failure streak they
//! leave. Pure. A run is handled once: its name joins `status.handled`, and its handler runs
//! have names of their own, so repeating a reconcile meets them.

use super::decide::Start;
use crate::k8s::api::flowrun::{FlowRun, RunPhase};
use crate::k8s::api::schedule::runs::{self, HANDLER_LABEL, HandlerKind};
use crate::k8s::api::schedule::{Handler, Schedule, from_time};
use crate::schedule::handlers::{Outcome, fired};
use chrono::{DateTime, Utc};
use kube::ResourceExt;

/// How a run ended, if it has.
pub fn outcome(run: &FlowRun) -> Option<Outcome> {
    match run.status.as_ref()?.phase? {
        RunPhase::Succeeded => Some(Outcome::Succeeded),
        RunPhase::Failed => Some(Outcome::Failed),
        RunPhase::Canceled => Some(Outcome::Canceled),
        _ => None,
    }
}

pub fn is_handler_run(run: &FlowRun) -> bool {
    run.labels().contains_key(HANDLER_LABEL)
}

/// When a run ended (or, lacking that, was created): the order runs are handled and kept in.
pub fn ended_at(run: &FlowRun) -> DateTime<Utc> {
    run.status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
        .or(run.metadata.creation_timestamp.as_ref())
        .map(from_time)
        .unwrap_or_default()
}

/// What handling the finished runs not handled yet gives.
pub struct Handled {
    pub starts: Vec<Start>,
    pub consecutive_failures: u32,
}

/// Handles `finished` (the Schedule's own finished runs not handled yet) in the order they
/// ended, from the streak `failures`.
pub fn handle(schedule: &Schedule, finished: &[&FlowRun], failures: u32) -> Handled {
    let mut ordered = finished.to_vec();
    ordered.sort_by_key(|run| (ended_at(run), run.name_any()));
    let spec = &schedule.spec;
    let times = spec.on_failure.as_ref().and_then(|h| h.times).unwrap_or(1) as usize;
    let mut streak = failures as usize;
    let mut starts = Vec::new();
    for run in ordered {
        let Some(outcome) = outcome(run) else {
            continue;
        };
        let mut history = vec![Outcome::Failed; streak];
        history.push(outcome);
        let fired = fired(&history, times);
        streak = match outcome {
            Outcome::Failed => fired.failures,
            Outcome::Succeeded => 0,
            Outcome::Canceled => streak,
        };
        let on_failure = spec.on_failure.as_ref().map(|h| h.handler());
        let chosen = [
            (
                fired.on_failure,
                HandlerKind::OnFailure,
                on_failure.as_ref(),
            ),
            (
                fired.on_recovery,
                HandlerKind::OnRecovery,
                spec.on_recovery.as_ref(),
            ),
            (
                fired.on_success,
                HandlerKind::OnSuccess,
                spec.on_success.as_ref(),
            ),
        ];
        for (kind, handler) in chosen
            .into_iter()
            .filter_map(|(fire, kind, handler)| Some((kind, handler.filter(|_| fire)?)))
        {
            starts.push(start(schedule, run, kind, handler, fired.failures));
        }
    }
    Handled {
        starts,
        consecutive_failures: streak as u32,
    }
}

fn start(
    schedule: &Schedule,
    run: &FlowRun,
    kind: HandlerKind,
    handler: &Handler,
    failures: usize,
) -> Start {
    let scheduled_for = runs::scheduled_for(run).unwrap_or_else(|| ended_at(run));
    let error = run.status.as_ref().and_then(|s| s.error.as_ref());
    let handler_run = runs::handler_run(
        schedule,
        kind,
        handler,
        &run.name_any(),
        scheduled_for,
        error.filter(|_| kind == HandlerKind::OnFailure),
    );
    let why = match kind {
        HandlerKind::OnFailure => {
            format!("FlowRun {} failed ({failures} in a row)", run.name_any())
        }
        HandlerKind::OnRecovery => format!(
            "FlowRun {} succeeded after {failures} failure(s)",
            run.name_any()
        ),
        HandlerKind::OnSuccess => format!("FlowRun {} succeeded", run.name_any()),
    };
    Start {
        note: format!(
            "{}: started FlowRun {} of Flow {}: {why}",
            kind.field(),
            handler_run.name_any(),
            handler.flow_ref.name
        ),
        reason: "HandlerStarted",
        run: handler_run,
    }
}
