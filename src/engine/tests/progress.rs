//! What status displays read: step phases, attempts, times, loop counters, overall progress.

use super::*;

fn view(h: &Harness, path: &str) -> StepView {
    h.state
        .steps(&h.flow)
        .into_iter()
        .find(|s| s.path.as_str() == path)
        .expect("step listed")
}

#[test]
fn steps_show_phases_attempts_times_and_loop_counters() {
    let flow = flow_of(
        json!([
            with(step("a", json!({})), json!({"retry": {"constant": {"attempts": 1, "seconds": 1}}})),
            {"id": "l", "value": {"type": "forloopflow", "iterator": js("[1, 2]"), "parallel": true,
                "modules": [step("b", json!({}))]}},
            step("c", json!({})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let progress = h.state.progress(&h.flow);
    assert_eq!(
        progress,
        RunProgress {
            phase: Phase::Running,
            done: 0,
            total: 3,
            current: Some(StepPath::parse("a"))
        }
    );
    let paths: Vec<String> = h
        .state
        .steps(&h.flow)
        .iter()
        .map(|s| s.path.to_string())
        .collect();
    assert_eq!(paths, vec!["a", "l", "c"]);
    assert_eq!(view(&h, "l").phase, Phase::Pending);

    h.finish("a", Err(boom("x")));
    assert_eq!(
        (view(&h, "a").phase, view(&h, "a").attempts),
        (Phase::Retrying, 1)
    );
    h.tick_at(T0 + 1_000);
    h.now = T0 + 2_000;
    h.finish("a", Ok(json!(1)));
    let a = view(&h, "a");
    assert_eq!(
        (a.phase, a.attempts, a.started_ms, a.finished_ms),
        (Phase::Succeeded, 2, Some(T0), Some(T0 + 2_000))
    );
    let paths: Vec<String> = h
        .state
        .steps(&h.flow)
        .iter()
        .map(|s| s.path.to_string())
        .collect();
    assert_eq!(paths, vec!["a", "l", "l[0]/b", "l[1]/b", "c"]);
    assert_eq!(
        view(&h, "l").progress,
        Some(LoopProgress {
            total: Some(2),
            succeeded: 0,
            failed: 0,
            running: 2
        })
    );
    assert_eq!(
        h.state.progress(&h.flow).current,
        Some(StepPath::parse("l"))
    );

    h.run(echo);
    assert_eq!(h.state.progress(&h.flow).phase, Phase::Succeeded);
    assert_eq!(
        view(&h, "l").progress,
        Some(LoopProgress {
            total: Some(2),
            succeeded: 2,
            failed: 0,
            running: 0
        })
    );
}

#[test]
fn a_suspended_step_keeps_its_attempt_count() {
    let flow = flow_of(
        json!([with(
            step("a", json!({})),
            json!({"suspend": {}, "retry": {"constant": {"attempts": 1, "seconds": 0}}})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Err(boom("x")));
    h.finish("a", Ok(json!(1)));
    assert_eq!(
        (view(&h, "a").phase, view(&h, "a").attempts),
        (Phase::Suspended, 2)
    );
    h.send(Event::Approval {
        step: None,
        approved: true,
        payload: json!(null),
    });
    assert_eq!(
        (view(&h, "a").phase, view(&h, "a").attempts),
        (Phase::Succeeded, 2)
    );
}
