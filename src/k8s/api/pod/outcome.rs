//! What a step attempt's Job and pod say about it: still running, finished with a result or an
//! error, or finished with a result too large for the termination message (read the log).

use super::report::{self, Report};
use super::{RESULT_NONCE_ANNOTATION, STEP_CONTAINER};
use crate::engine::StepError;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::Value;

#[derive(Debug, PartialEq)]
pub enum Observation {
    Running,
    Finished(Result<Value, StepError>),
    /// The result is framed in the log of `pod` with `nonce`; decode it with
    /// [`report::from_log`], passing `exit_code`.
    InLog {
        pod: String,
        nonce: String,
        exit_code: i32,
    },
}

/// Waiting reasons after which the container will never start by itself.
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Reads the attempt's state from its Job and (when it exists) its pod.
pub fn observe(job: &Job, pod: Option<&Pod>) -> Observation {
    let verdict = job_failure(job);
    if let Some(pod) = pod
        && let Some(seen) = from_pod(job, pod, verdict.as_ref())
    {
        return seen;
    }
    if let Some(verdict) = verdict {
        return Observation::Finished(Err(verdict.error));
    }
    if condition(job, "Complete") && pod.is_none() {
        return Observation::Finished(Err(StepError::new(
            "ResultLost",
            format!(
                "Job {} completed but its pod is gone, so its result cannot be read",
                name(&job.metadata.name)
            ),
        )));
    }
    Observation::Running
}

/// Why the Job controller failed the Job, if it did.
struct Verdict {
    error: StepError,
    deadline: bool,
}

fn job_failure(job: &Job) -> Option<Verdict> {
    let failed = conditions(job).find(|c| c.type_ == "Failed" && c.status == "True")?;
    let deadline = failed.reason.as_deref() == Some("DeadlineExceeded");
    let error = if deadline {
        StepError::new(
            "TimeoutError",
            format!(
                "the step ran longer than its timeout of {} s; its pod was stopped",
                job.spec
                    .as_ref()
                    .and_then(|s| s.active_deadline_seconds)
                    .unwrap_or_default()
            ),
        )
    } else {
        StepError::new(
            "JobFailed",
            format!(
                "Job {} failed ({}): {}",
                name(&job.metadata.name),
                failed.reason.as_deref().unwrap_or("no reason given"),
                failed.message.as_deref().unwrap_or_default()
            ),
        )
    };
    Some(Verdict { error, deadline })
}

fn conditions(job: &Job) -> impl Iterator<Item = &k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
}

fn condition(job: &Job, type_: &str) -> bool {
    conditions(job).any(|c| c.type_ == type_ && c.status == "True")
}

fn from_pod(job: &Job, pod: &Pod, verdict: Option<&Verdict>) -> Option<Observation> {
    let status = pod.status.as_ref()?;
    if status.reason.as_deref() == Some("Evicted") {
        return Some(Observation::Finished(Err(StepError::new(
            "Evicted",
            format!(
                "the step's pod was evicted: {}",
                status.message.as_deref().unwrap_or("no message")
            ),
        ))));
    }
    let container: &ContainerStatus = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == STEP_CONTAINER)?;
    let state = container.state.as_ref()?;
    if let Some(waiting) = &state.waiting
        && let Some(reason) = waiting.reason.as_deref()
        && STUCK.contains(&reason)
    {
        let what = if reason.contains("Image") {
            format!("image {} cannot be pulled", container.image)
        } else {
            "the container cannot be created".to_string()
        };
        return Some(Observation::Finished(Err(StepError::new(
            reason,
            format!(
                "{what} ({reason}): {}",
                waiting.message.as_deref().unwrap_or("no message")
            ),
        ))));
    }
    let terminated = state.terminated.as_ref()?;
    if terminated.reason.as_deref() == Some("OOMKilled") {
        return Some(Observation::Finished(Err(StepError::new(
            "OOMKilled",
            "the step ran out of memory and was killed (OOMKilled); raise its memory limit in the Flow's runtime.resources or runtime.steps",
        ))));
    }
    let message = terminated.message.as_deref().unwrap_or_default();
    if message.trim().is_empty() {
        // Killed before `entry.sh` could report: a deadline is the Job's to tell; any other
        // kill is known from the exit code once the Job has failed.
        match verdict {
            None => return Some(Observation::Running),
            Some(v) if v.deadline => return Some(Observation::Finished(Err(v.error.clone()))),
            Some(_) => {}
        }
    }
    Some(
        match report::from_termination_message(message, terminated.exit_code) {
            Report::Done(result) => Observation::Finished(result),
            Report::InLog => Observation::InLog {
                pod: name(&pod.metadata.name).to_string(),
                nonce: job
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(RESULT_NONCE_ANNOTATION))
                    .cloned()
                    .unwrap_or_default(),
                exit_code: terminated.exit_code,
            },
        },
    )
}

fn name(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "r-a-a1", "annotations": {RESULT_NONCE_ANNOTATION: "n1"}},
            "spec": {"activeDeadlineSeconds": 5, "template": {}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "r-a-a1-xyz"}, "status": status}))
            .unwrap()
    }

    fn step_state(state: Value) -> Pod {
        pod(json!({"containerStatuses": [{
            "name": "step", "image": "python:3.12-slim", "imageID": "", "ready": false,
            "restartCount": 0, "state": state,
        }]}))
    }

    fn error_of(seen: Observation) -> StepError {
        match seen {
            Observation::Finished(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_terminated_container_gives_its_report() {
        let pod = step_state(json!({"terminated": {
            "exitCode": 0, "message": "envelope\n{\"ok\":true,\"result\":7}"}}));
        assert_eq!(
            observe(&job(json!([])), Some(&pod)),
            Observation::Finished(Ok(json!(7)))
        );
        let pod = step_state(json!({"terminated": {"exitCode": 0, "message": "framed 9000\n"}}));
        assert_eq!(
            observe(&job(json!([])), Some(&pod)),
            Observation::InLog {
                pod: "r-a-a1-xyz".into(),
                nonce: "n1".into(),
                exit_code: 0
            }
        );
    }

    #[test]
    fn running_until_the_container_or_job_ends() {
        assert_eq!(observe(&job(json!([])), None), Observation::Running);
        let pod = step_state(json!({"running": {}}));
        assert_eq!(observe(&job(json!([])), Some(&pod)), Observation::Running);
    }

    #[test]
    fn node_and_kubelet_failures_name_their_reason() {
        let oom = step_state(json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}));
        assert_eq!(
            error_of(observe(&job(json!([])), Some(&oom))).name,
            "OOMKilled"
        );
        let evicted = pod(json!({"reason": "Evicted", "message": "low on memory"}));
        let err = error_of(observe(&job(json!([])), Some(&evicted)));
        assert_eq!(err.name, "Evicted");
        assert!(err.message.contains("low on memory"), "{}", err.message);
        let pull =
            step_state(json!({"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}));
        let err = error_of(observe(&job(json!([])), Some(&pull)));
        assert_eq!(err.name, "ImagePullBackOff");
        assert!(
            err.message
                .contains("image python:3.12-slim cannot be pulled"),
            "{}",
            err.message
        );
        let deadline =
            job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        let err = error_of(observe(&deadline, None));
        assert_eq!(err.name, "TimeoutError");
        assert!(err.message.contains("timeout of 5 s"), "{}", err.message);
    }

    #[test]
    fn a_container_killed_without_a_report_waits_for_the_job_to_say_why() {
        let killed = step_state(json!({"terminated": {"exitCode": 143, "message": ""}}));
        assert_eq!(
            observe(&job(json!([])), Some(&killed)),
            Observation::Running
        );
        let deadline =
            job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        assert_eq!(
            error_of(observe(&deadline, Some(&killed))).name,
            "TimeoutError"
        );
        let failed =
            job(json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]));
        let err = error_of(observe(&failed, Some(&killed)));
        assert!(err.message.contains("code 143"), "{}", err.message);
    }

    #[test]
    fn a_complete_job_without_its_pod_lost_the_result() {
        let done = job(json!([{"type": "Complete", "status": "True"}]));
        assert_eq!(error_of(observe(&done, None)).name, "ResultLost");
    }
}
