use super::*;
use crate::engine::{self, Env, Event, StepError};
use crate::expr::InProcess;
use crate::k8s::controller::library::Library;
use crate::k8s::controller::resolver::ClusterResolver;
use crate::k8s::controller::secrets::Fetched;
use serde_json::json;

fn flow() -> crate::flow::OpenFlow {
    serde_json::from_value(json!({"summary": "two", "value": {"modules": [
        {"id": "a", "value": {"type": "rawscript", "language": "bash", "content": "echo 1", "input_transforms": {}}},
        {"id": "b", "value": {"type": "rawscript", "language": "bash", "content": "echo 2", "input_transforms": {}}},
    ]}}))
    .unwrap()
}

/// A run of `flow()` after the given outcomes of `a` then `b`.
fn persisted(outcomes: Vec<Result<Value, StepError>>) -> Persisted {
    let flow = flow();
    let evaluator = InProcess::default();
    let env = Env {
        evaluator: &evaluator,
        resolver: &ClusterResolver {
            library: Library::default(),
            secrets: Fetched::default(),
        },
    };
    let (mut state, _) = engine::start(&flow, json!({}), 1, &env, 1_000).unwrap();
    for outcome in outcomes {
        let id = state.running_attempts().remove(0);
        engine::advance(
            &flow,
            &mut state,
            Event::StepFinished { id, outcome },
            &env,
            5_000,
        )
        .unwrap();
    }
    let finished_ms = state.outcome().map(|_| 73_000);
    Persisted {
        flow,
        library: Library::default(),
        runtime: None,
        state,
        approvals_seen: 0,
        started_ms: 1_000,
        finished_ms,
    }
}

#[test]
fn a_running_run_shows_progress_and_its_current_step() {
    let status = compute("r", Some(1), &persisted(vec![Ok(json!(1))]), &[]);
    assert_eq!(status.phase, Some(RunPhase::Running));
    assert_eq!(status.progress.as_deref(), Some("1/2"));
    assert_eq!(status.current_step.as_deref(), Some("b"));
    assert_eq!(status.steps[0].result, Some(json!(1)));
    assert_eq!(status.steps[1].job, Some(naming::job_name("r", "b", 1)));
    let reconciling = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciling")
        .unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.observed_generation),
        ("True", Some(1))
    );
}

#[test]
fn a_finished_run_has_its_result_duration_and_ready_condition() {
    let big = json!("x".repeat(5000));
    let status = compute("r", Some(2), &persisted(vec![Ok(json!(1)), Ok(big)]), &[]);
    assert_eq!(status.phase, Some(RunPhase::Succeeded));
    assert_eq!(status.progress.as_deref(), Some("2/2"));
    assert_eq!(status.duration.as_deref(), Some("1m12s"));
    assert_eq!(status.result, None, "too large to show inline");
    assert_eq!(status.result_ref.unwrap().config_map, "r-state");
    assert_eq!(status.steps[1].result, None);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
}

#[test]
fn a_failed_step_shows_its_error_on_the_step_and_the_run() {
    let status = compute(
        "r",
        Some(1),
        &persisted(vec![Err(StepError::new("ValueError", "bad"))]),
        &[],
    );
    assert_eq!(status.phase, Some(RunPhase::Failed));
    assert_eq!(status.steps[0].error.as_ref().unwrap()["message"], "bad");
    assert_eq!(status.error.unwrap()["name"], "ValueError");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(ready.message.contains("bad"), "{}", ready.message);
}

#[test]
fn unchanged_conditions_keep_their_transition_time() {
    let persisted = persisted(vec![Ok(json!(1))]);
    let first = compute("r", Some(1), &persisted, &[]);
    let mut earlier = first.conditions.clone();
    earlier[0].last_transition_time = time(42_000);
    let again = compute("r", Some(1), &persisted, &earlier);
    assert_eq!(again.conditions[0].last_transition_time, time(42_000));
}
