//! Kubernetes Events on a FlowRun (`kubectl describe flowrun`): steps starting, retried and
//! failing, and the run's end. Best effort: an Event that cannot be written is logged, not retried.

use crate::engine::{Event as RunEvent, RunOutcome};
use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::publish;
use kube::runtime::events::EventType;

pub async fn emit(ctx: &Context, run: &FlowRun, type_: EventType, reason: &str, note: String) {
    publish(&ctx.recorder, run, None, type_, reason, note).await;
}

/// A Warning for every attempt among `finished` that failed.
pub async fn announce_failures(ctx: &Context, run: &FlowRun, finished: &[RunEvent]) {
    for event in finished {
        if let RunEvent::StepFinished {
            id,
            outcome: Err(e),
        } = event
        {
            let note = format!(
                "step {} attempt {}: {}: {}",
                id.step, id.attempt, e.name, e.message
            );
            emit(ctx, run, EventType::Warning, "StepFailed", note).await;
        }
    }
}

/// How the run ended.
pub async fn announce_end(ctx: &Context, run: &FlowRun, outcome: RunOutcome) {
    let (type_, reason, note) = match outcome {
        RunOutcome::Succeeded(_) => (
            EventType::Normal,
            "RunSucceeded",
            "the run succeeded".into(),
        ),
        RunOutcome::Skipped(_) => (
            EventType::Normal,
            "RunSkipped",
            "the flow's skip_expr or a stop_after_if with skip_if_stopped ended it early".into(),
        ),
        RunOutcome::Canceled => (
            EventType::Normal,
            "RunCanceled",
            "spec.cancel was set".into(),
        ),
        RunOutcome::Failed(e) => (
            EventType::Warning,
            "RunFailed",
            format!(
                "step {}: {}: {}",
                e.step_id.as_deref().unwrap_or("?"),
                e.name,
                e.message
            ),
        ),
    };
    emit(ctx, run, type_, reason, note).await;
}
