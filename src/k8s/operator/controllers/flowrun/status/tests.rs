use super::super::fixtures;
use super::super::resolver::ClusterResolver;
use super::super::saved::results_ref;
use super::*;
use crate::engine::{self, Env, Event, StepError};
use crate::expr::InProcess;
use serde_json::json;

/// The status of a run whose results are inline in its state ConfigMap.
fn compute(
    name: &str,
    generation: Option<i64>,
    persisted: &Persisted,
    previous: &[Condition],
) -> FlowRunStatus {
    let results = results_ref(name, false);
    let run = RunIdentity {
        name: name.into(),
        namespace: "ns".into(),
        uid: "uid-1".into(),
    };
    super::compute(&run, generation, persisted, &results, previous)
}

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
        resolver: &ClusterResolver::default(),
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
        finished_ms,
        ..fixtures::persisted(flow, state)
    }
}

#[test]
fn a_running_run_shows_progress_and_its_current_step() {
    let status = compute("r", Some(1), &persisted(vec![Ok(json!(1))]), &[]);
    assert_eq!(status.phase, Some(RunPhase::Running));
    assert_eq!(status.progress.as_deref(), Some("1/2"));
    assert_eq!(status.current_step.as_deref(), Some("b"));
    assert_eq!(status.steps[0].result, Some(json!(1)));
    assert_eq!(
        status.steps[1].job,
        Some(naming::job_name("r", "uid-1", "b", 1))
    );
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

/// The status of a run whose loop has 10,000 iterations, all started at once, at several moments:
/// all running, half done, loop done; each must stay far under what one object holds.
#[test]
fn status_stays_small_for_a_loop_of_ten_thousand_iterations() {
    const ITERATIONS: usize = 10_000;
    const MAX_STATUS_BYTES: usize = 256 * 1024;
    let flow: crate::flow::OpenFlow = serde_json::from_value(json!({"summary": "wide", "value": {"modules": [
        {"id": "items", "value": {"type": "rawscript", "language": "bash", "content": "echo", "input_transforms": {}}},
        {"id": "each", "value": {"type": "forloopflow", "parallel": true,
            "parallelism": {"type": "static", "value": ITERATIONS},
            "iterator": {"type": "javascript", "expr": "results.items"},
            "modules": [{"id": "work", "value": {"type": "rawscript", "language": "python3",
                "content": "def main(x): return x", "input_transforms": {}}}]}},
        {"id": "total", "value": {"type": "rawscript", "language": "bash", "content": "echo", "input_transforms": {}}},
    ]}}))
    .unwrap();
    let evaluator = InProcess::default();
    let env = Env {
        evaluator: &evaluator,
        resolver: &ClusterResolver::default(),
    };
    let (mut state, _) = engine::start(&flow, json!({}), 1, &env, 1_000).unwrap();
    let finish = |state: &mut crate::engine::RunState, id, value: Value| {
        let event = Event::StepFinished {
            id,
            outcome: Ok(value),
        };
        engine::advance(&flow, state, event, &env, 2_000).unwrap();
    };
    let items = state.running_attempts().remove(0);
    finish(
        &mut state,
        items,
        json!((0..ITERATIONS).collect::<Vec<_>>()),
    );
    let size = |state: &crate::engine::RunState| {
        let persisted = fixtures::persisted(flow.clone(), state.clone());
        let status = compute("wide", Some(1), &persisted, &[]);
        serde_json::to_string(&status).unwrap().len()
    };
    let running = state.running_attempts();
    assert_eq!(running.len(), ITERATIONS);
    let all_running = size(&state);
    for (i, id) in running.into_iter().enumerate() {
        if i == ITERATIONS / 2 {
            let half = size(&state);
            assert!(half < MAX_STATUS_BYTES, "half done: {half} bytes");
        }
        let result = json!({"item": i, "name": format!("item-{i:06}"), "tags": ["a", "b", "c"],
            "score": i as f64 / 7.0, "note": "x".repeat(100)});
        finish(&mut state, id, result);
    }
    let loop_done = size(&state);
    assert!(
        all_running < MAX_STATUS_BYTES,
        "all running: {all_running} bytes"
    );
    assert!(loop_done < MAX_STATUS_BYTES, "loop done: {loop_done} bytes");
    let total = state.running_attempts().remove(0);
    finish(&mut state, total, json!("y".repeat(2048)));
    let persisted = Persisted {
        finished_ms: Some(9_000),
        ..fixtures::persisted(flow.clone(), state)
    };
    let status = compute("wide", Some(1), &persisted, &[]);
    assert_eq!(status.phase, Some(RunPhase::Succeeded));
    let each = &status.loops[0];
    assert_eq!(
        (each.total, each.succeeded, each.running),
        (10_000, 10_000, 0)
    );
    assert!(status.result.is_none() && status.result_ref.is_some());
    assert!(
        status.steps[1].result_ref.is_some(),
        "the loop's 10,000 results are referenced"
    );
}

#[test]
fn steps_inside_a_wide_loop_are_listed_up_to_a_number() {
    let views = (0..500)
        .map(|i| StepView {
            path: crate::engine::StepPath::parse(&format!("each[{i}]/work")),
            phase: Phase::Running,
            attempts: 1,
            started_ms: Some(1_000),
            finished_ms: None,
            progress: None,
        })
        .collect();
    let shown = listed(views);
    assert_eq!(shown.len(), MAX_NESTED);
    assert_eq!(shown[0].path.as_str(), "each[0]/work");
}

#[test]
fn inline_values_share_a_budget_and_long_errors_are_cut() {
    let mut budget = 1500;
    let value = json!("v".repeat(1000));
    let chunked = results_ref("r", true);
    assert!(stored(&value, &chunked, &mut budget).0.is_some());
    let (inline, reference) = stored(&value, &chunked, &mut budget);
    assert!(inline.is_none(), "over the budget");
    let reference = reference.unwrap();
    assert_eq!(
        (reference.config_map.as_str(), reference.key.as_str()),
        ("r-state", "results-chunks.json")
    );
    let error = json!({"name": "Boom", "message": "é".repeat(5000), "stack": "s"});
    let shown = shown_error(&error, &mut { INLINE_BYTES });
    assert_eq!(shown["name"], "Boom");
    let message = shown["message"].as_str().unwrap();
    assert!(
        message.len() <= INLINE_BYTES && message.ends_with('…'),
        "{message}"
    );
}
