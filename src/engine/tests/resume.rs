//! Restarts: a run continued from its serialised state behaves exactly like the uninterrupted
//! run, and `resume` re-issues what must be running.

use super::*;
use std::collections::HashSet;

fn looped() -> OpenFlow {
    flow_of(
        json!([
            step("a", json!({"x": fixed(json!(3))})),
            {"id": "l", "value": {"type": "forloopflow", "iterator": js("Array.from({length: 12}, (_, i) => i)"),
                "parallel": true, "parallelism": js("results.a"),
                "modules": [
                    with(step("b", json!({"x": js("flow_input.iter.value * 2")})),
                        json!({"retry": {"exponential": {"attempts": 2, "multiplier": 1, "seconds": 2, "random_factor": 40}}})),
                    step("c", json!({"x": js("previous_result + 1")})),
                ]}},
            step("d", json!({"x": js("results.l.reduce((s, v) => s + v, 0)")})),
        ]),
        json!({}),
    )
}

/// b fails on its first attempt for every third iteration; everything else returns `x`.
fn exec(id: &AttemptId, spec: &StepSpec) -> Result<Value, StepError> {
    let x = spec.args["x"].as_i64().unwrap_or(0);
    if id.step.module_id() == "b" && id.attempt == 1 && x % 3 == 0 {
        return Err(boom("flaky"));
    }
    Ok(json!(x))
}

/// Events after which the interrupted run restarts: mid-loop, with retries pending.
const RESTART_AFTER: usize = 15;

/// Runs to the end; after `restart_after` events the state goes through JSON (control state and
/// results apart) and comes back. Returns every action produced after that point.
fn run_with_restart(restart_after: Option<usize>) -> (Vec<Action>, RunOutcome) {
    let mut h = Harness::start(looped(), json!({}));
    let mut events = 0;
    let mut from = usize::MAX;
    while h.state.outcome().is_none() {
        if Some(events) == restart_after {
            let mut control = h.state.clone();
            let results = serde_json::to_string(&std::mem::take(&mut control.results)).unwrap();
            let control = serde_json::to_string(&control).unwrap();
            let mut restored: RunState = serde_json::from_str(&control).unwrap();
            restored.results = serde_json::from_str(&results).unwrap();
            h.state = restored;
        }
        if events == RESTART_AFTER {
            from = h.actions.len();
        }
        if let Some((id, spec)) = h.running.first().cloned() {
            let outcome = exec(&id, &spec);
            h.send(Event::StepFinished { id, outcome });
        } else {
            let at = h.wake.expect("a timer is pending");
            h.tick_at(at);
        }
        events += 1;
    }
    (h.actions[from..].to_vec(), h.state.outcome().unwrap())
}

#[test]
fn a_run_resumed_from_serialised_state_mid_loop_continues_identically() {
    let (uninterrupted, outcome) = run_with_restart(None);
    let (resumed, resumed_outcome) = run_with_restart(Some(RESTART_AFTER));
    assert!(uninterrupted.len() > 20, "the restart happens mid-loop");
    assert_eq!(resumed, uninterrupted);
    assert_eq!(resumed_outcome, outcome);
    // Σ (2i + 1) for i < 12.
    assert_eq!(succeeded(&outcome), &json!(144));
}

#[test]
fn resume_reissues_running_attempts_approvals_and_timers() {
    let flow = flow_of(
        json!([{"id": "ba", "value": {"type": "branchall", "parallel": true, "branches": [
            {"modules": [step("x", json!({"x": js("flow_input.v")}))]},
            {"modules": [with(step("y", json!({})), json!({"suspend": {"timeout": 100}}))]},
            {"modules": [with(step("z", json!({})), json!({"retry": {"constant": {"attempts": 1, "seconds": 5}}}))]},
        ]}}]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({"v": 9}));
    let first_x = h.spec("ba[0]/x").clone();
    h.finish("ba[1]/y", Ok(json!("y")));
    h.finish("ba[2]/z", Err(boom("later")));
    let env = Env {
        evaluator: &InProcess::default(),
        resolver: &Library::default(),
    };
    let actions = resume(&h.flow, &mut h.state, &env, T0 + 1, HashSet::new()).unwrap();
    assert_eq!(
        actions,
        vec![
            Action::StartAttempt {
                id: AttemptId {
                    step: StepPath::parse("ba[0]/x"),
                    attempt: 1
                },
                spec: first_x
            },
            Action::AwaitApproval {
                step: StepPath::parse("ba[1]/y"),
                required_events: 1,
                timeout_at_ms: Some(T0 + 100_000),
                resume_form: None
            },
            Action::WakeAt { at_ms: T0 + 5_000 },
        ]
    );
    assert_eq!(
        h.state.running_attempts(),
        vec![AttemptId {
            step: StepPath::parse("ba[0]/x"),
            attempt: 1
        }]
    );
    assert_eq!(h.state.next_wake_ms(), Some(T0 + 5_000));

    // An attempt the executor runs already is not issued (nor its arguments evaluated) again.
    let x = AttemptId {
        step: StepPath::parse("ba[0]/x"),
        attempt: 1,
    };
    let started = HashSet::from([x.clone()]);
    let actions = resume(&h.flow, &mut h.state, &env, T0 + 2, started).unwrap();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartAttempt { .. })),
        "{actions:?}"
    );
    assert_eq!(h.state.running_attempts(), vec![x]);
}

#[test]
fn a_state_advanced_with_another_flow_is_refused() {
    let mut h = Harness::start(
        flow_of(
            json!([step("a", json!({})), step("b", json!({}))]),
            json!({}),
        ),
        json!({}),
    );
    h.finish("a", Ok(json!(1)));
    let other = flow_of(
        json!([step("a", json!({})), step("x", json!({}))]),
        json!({}),
    );
    let env = Env {
        evaluator: &InProcess::default(),
        resolver: &Library::default(),
    };
    let refused = advance(&other, &mut h.state, Event::Tick, &env, T0);
    let Err(EngineError::StateMismatch { path, reason }) = refused else {
        panic!("expected a mismatch, got {refused:?}")
    };
    assert_eq!(path, "x");
    assert!(reason.contains("`b`"), "{reason}");
}
