//! What the FlowRun controller records in the metrics beyond its reconciles: the runs by phase,
//! and finished step attempts (by outcome, with their container's run time).

use super::job::RunIdentity;
use crate::engine::Event;
use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::api::naming;
use crate::k8s::api::pod::STEP_CONTAINER;
use crate::k8s::operator::Context;
use crate::k8s::operator::metrics::RunSource;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use std::time::Duration;

/// The phases of the runs in the FlowRun controller's cache (`None` for one it cannot read).
pub fn run_phases(runs: Store<DeserializeGuard<FlowRun>>) -> RunSource {
    Box::new(move || {
        let phase = |run: &DeserializeGuard<FlowRun>| run.0.as_ref().ok()?.status.as_ref()?.phase;
        runs.state().iter().map(|run| phase(run)).collect()
    })
}

/// Records the step attempts of `run` that `events` report finished. `pod_of` finds an
/// attempt's pod by Job name. A reconcile whose state save then conflicts is redone and counts
/// its attempts again; that is rare and the counter errs high by those.
pub fn attempts_finished<'a>(
    ctx: &Context,
    run: &RunIdentity,
    events: &[Event],
    pod_of: impl Fn(&str) -> Option<&'a Pod>,
) {
    for event in events {
        if let Event::StepFinished { id, outcome } = event {
            let job = naming::job_name(&run.name, &run.uid, id.step.as_str(), id.attempt);
            let ran = pod_of(&job).and_then(container_run_time);
            ctx.config.metrics.attempt_finished(outcome.is_ok(), ran);
        }
    }
}

/// How long the step container ran, from its terminated state.
fn container_run_time(pod: &Pod) -> Option<Duration> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let step = statuses.iter().find(|c| c.name == STEP_CONTAINER)?;
    let ended = step.state.as_ref()?.terminated.as_ref()?;
    let (started, finished) = (ended.started_at.as_ref()?, ended.finished_at.as_ref()?);
    let span = finished.0.duration_since(started.0);
    Duration::try_from(span).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_run_time_is_read_from_the_terminated_step_container() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [
                {"name": "other", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0,
                   "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T01:00:00Z"}}},
                {"name": STEP_CONTAINER, "image": "x", "imageID": "", "ready": false,
                 "restartCount": 0,
                 "state": {"terminated": {"exitCode": 1,
                   "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:03Z"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(container_run_time(&pod), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_running_container_has_no_run_time_yet() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [
                {"name": STEP_CONTAINER, "image": "x", "imageID": "", "ready": true,
                 "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(container_run_time(&pod), None);
    }
}
