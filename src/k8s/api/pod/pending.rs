//! An attempt whose pod never starts: none was created (a ResourceQuota, an admission webhook or
//! a LimitRange refuses it, and the Job controller only records an Event) or it stays unscheduled
//! or waiting. Past the pending timeout the attempt fails with what is known, so that retries
//! apply: it never shows "Running" forever. Pure.

use crate::engine::StepError;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;

/// Why the attempt of `job` failed to start within `timeout`, or `None` while it may still
/// start (or has started).
pub fn pending_too_long(
    job: &Job,
    pod: Option<&Pod>,
    now_ms: u64,
    timeout: Duration,
) -> Option<StepError> {
    let created = job.metadata.creation_timestamp.as_ref()?.0.as_millisecond();
    let waited = now_ms.saturating_sub(u64::try_from(created).ok()?);
    if u128::from(waited) < timeout.as_millis() {
        return None;
    }
    let job_name = job.metadata.name.as_deref().unwrap_or("?");
    let seconds = timeout.as_secs();
    let raise = "or raise the Flow's runtime.podPendingTimeoutSeconds";
    let Some(pod) = pod else {
        return Some(StepError::new(
            "PodNotCreated",
            format!(
                "no pod was created for Job {job_name} within {seconds} s: a ResourceQuota, an admission webhook or a LimitRange may refuse it (`kubectl describe job {job_name}` shows why); fix that, {raise}"
            ),
        ));
    };
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Pending") {
        return None;
    }
    let pod_name = pod.metadata.name.as_deref().unwrap_or("?");
    let unscheduled = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(condition) = unscheduled {
        return Some(StepError::new(
            "PodUnschedulable",
            format!(
                "pod {pod_name} stayed unschedulable for {seconds} s: {}; check the Flow's nodeSelector, tolerations and resources, {raise}",
                condition.message.as_deref().unwrap_or("no message")
            ),
        ));
    }
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref())
        .map(|w| {
            format!(
                "{}: {}",
                w.reason.as_deref().unwrap_or("waiting"),
                w.message.as_deref().unwrap_or("no message")
            )
        })
        .unwrap_or_else(|| "not scheduled yet".to_string());
    Some(StepError::new(
        "PodPending",
        format!("pod {pod_name} did not start within {seconds} s ({waiting}); {raise}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MINUTE: Duration = Duration::from_secs(60);

    fn job() -> Job {
        serde_json::from_value(json!({"metadata": {"name": "run-step-1",
            "creationTimestamp": "2026-01-01T00:00:00Z"}}))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "run-step-1-x"}, "status": status}))
            .unwrap()
    }

    /// Milliseconds since the epoch, `seconds` after the Job was created.
    fn after(seconds: u64) -> u64 {
        1_767_225_600_000 + seconds * 1000
    }

    #[test]
    fn a_job_without_a_pod_fails_only_after_the_timeout() {
        assert_eq!(pending_too_long(&job(), None, after(59), MINUTE), None);
        let error = pending_too_long(&job(), None, after(60), MINUTE).unwrap();
        assert_eq!(error.name, "PodNotCreated");
        assert!(
            error.message.contains("kubectl describe job run-step-1"),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let pending = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "message": "0/3 nodes match the node selector"}]}),
        );
        let error = pending_too_long(&job(), Some(&pending), after(61), MINUTE).unwrap();
        assert_eq!(error.name, "PodUnschedulable");
        assert!(
            error.message.contains("0/3 nodes match"),
            "{}",
            error.message
        );
        let waiting = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "step",
            "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        let error = pending_too_long(&job(), Some(&waiting), after(61), MINUTE).unwrap();
        assert_eq!(error.name, "PodPending");
        assert!(
            error.message.contains("ContainerCreating"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_pod_that_started_is_never_pending_too_long() {
        let running = pod(json!({"phase": "Running"}));
        assert_eq!(
            pending_too_long(&job(), Some(&running), after(3600), MINUTE),
            None
        );
    }
}
