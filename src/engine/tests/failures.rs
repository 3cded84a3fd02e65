//! continue_on_error, the failure module and recover, stop_after_if at top level, cancel.

use super::*;

fn handler(transforms: Value) -> Value {
    json!({"failure_module": step("failure", transforms)})
}

#[test]
fn continue_on_error_hands_the_error_to_the_next_step() {
    let flow = flow_of(
        json!([
            with(step("a", json!({})), json!({"continue_on_error": true})),
            step(
                "b",
                json!({"x": js("error.message"), "prev": js("previous_result.error.step_id")})
            ),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Err(boom("bad")));
    assert_eq!(h.spec("b").args["x"], "bad");
    assert_eq!(h.spec("b").args["prev"], "a");
    assert_eq!(h.phase("a"), Phase::Failed);
    h.finish("b", Ok(json!("fine")));
    assert_eq!(h.value(), json!("fine"));
}

#[test]
fn failure_module_sees_the_error_and_the_run_still_fails() {
    let flow = flow_of(
        json!([
            step("a", json!({})),
            step("b", json!({})),
            step("c", json!({}))
        ]),
        handler(json!({"e": js("previous_result"), "err": js("error.name"), "a": js("results.a")})),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!("A")));
    h.finish("b", Err(boom("broken")));
    assert_eq!(
        h.running_paths(),
        vec!["failure"],
        "the remaining steps are skipped"
    );
    let args = h.spec("failure").args.clone();
    assert_eq!(
        args["e"],
        json!({"error": {"name": "Exception", "message": "broken", "stack": "at main", "step_id": "b"}})
    );
    assert_eq!(args["err"], "Exception");
    assert_eq!(args["a"], "A");
    assert_eq!(h.phase("c"), Phase::Skipped);
    h.finish("failure", Ok(json!({"handled": true})));
    let error = h.error();
    assert_eq!(
        (error.message.as_str(), error.step_id.as_deref()),
        ("broken", Some("b"))
    );
}

#[test]
fn failure_module_recovers_the_run_by_returning_recover_true() {
    let flow = flow_of(json!([step("a", json!({}))]), handler(json!({})));
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Err(boom("broken")));
    h.finish("failure", Ok(json!({"recover": true, "note": "ok"})));
    assert_eq!(h.value(), json!({"recover": true, "note": "ok"}));
    assert_eq!(
        h.result("#result"),
        None,
        "the result is not copied: the handler's key holds it"
    );
}

#[test]
fn a_failing_failure_module_leaves_the_original_error() {
    let flow = flow_of(json!([step("a", json!({}))]), handler(json!({})));
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Err(boom("first")));
    h.finish("failure", Err(boom("second")));
    assert_eq!(h.error().message, "first");
}

#[test]
fn stop_after_if_at_top_level_ends_the_flow_with_that_result() {
    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"stop_after_if": {"expr": "result.done"}})
            ),
            step("b", json!({}))
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!({"done": true})));
    assert_eq!(h.value(), json!({"done": true}));
    assert_eq!(h.started(), vec!["a#1"]);
    assert_eq!(h.phase("b"), Phase::Skipped);
}

#[test]
fn stop_after_if_with_skip_if_stopped_marks_the_run_skipped() {
    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"stop_after_if": {"expr": "true", "skip_if_stopped": true}})
            ),
            step("b", json!({}))
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!({"reached": 1})));
    assert_eq!(
        h.state.outcome(),
        Some(RunOutcome::Skipped(json!({"reached": 1}))),
        "the run keeps the stopping step's result"
    );
    assert_eq!(h.phase("b"), Phase::Skipped);
}

#[test]
fn a_skipped_subflow_gives_its_result_to_the_parent() {
    let sub = flow_of(
        json!([with(
            step("s", json!({})),
            json!({"stop_after_if": {"expr": "true", "skip_if_stopped": true}})
        )]),
        json!({}),
    );
    let skipped_by_expr = flow_of(json!([step("t", json!({}))]), json!({"skip_expr": "true"}));
    let mut library = Library::default();
    library.flows.insert("f/sub".into(), Arc::new(sub));
    library
        .flows
        .insert("f/never".into(), Arc::new(skipped_by_expr));
    let call = |id: &str, path: &str| json!({"id": id, "value": {"type": "flow", "path": path, "input_transforms": {}}});
    let flow = flow_of(
        json!([
            call("a", "f/sub"),
            call("b", "f/never"),
            step("c", json!({"x": js("[results.a, results.b]")}))
        ]),
        json!({}),
    );
    let mut h = Harness::start_with(flow, json!({}), library);
    h.finish("a/s", Ok(json!(7)));
    assert_eq!(h.phase("a"), Phase::Skipped);
    assert_eq!(h.spec("c").args["x"], json!([7, "stopped early"]));
}

#[test]
fn stop_after_if_with_an_error_message_fails_the_flow_through_the_failure_module() {
    let flow = flow_of(
        json!([with(
            step("a", json!({})),
            json!({"stop_after_if": {"expr": "true", "error_message": "nothing to do"}})
        )]),
        handler(json!({"m": js("error.message")})),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!(1)));
    assert_eq!(h.spec("failure").args["m"], "nothing to do");
    h.finish("failure", Ok(json!(null)));
    assert_eq!(h.error().message, "nothing to do");
}

#[test]
fn cancel_stops_attempts_and_skips_retries_and_the_failure_module() {
    let flow = flow_of(
        json!([{"id": "l", "value": {"type": "forloopflow", "iterator": js("[1, 2]"), "parallel": true,
            "modules": [with(step("a", json!({})), json!({"retry": {"constant": {"attempts": 3, "seconds": 1}}}))]}}]),
        handler(json!({})),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("l[0]/a", Err(boom("x")));
    assert_eq!(h.wake, Some(T0 + 1_000));
    let actions = h.send(Event::Cancel);
    assert_eq!(
        actions,
        vec![
            Action::CancelAttempt {
                id: AttemptId {
                    step: StepPath::parse("l[1]/a"),
                    attempt: 1
                }
            },
            Action::Finish(RunOutcome::Canceled),
        ]
    );
    assert!(
        h.tick_at(T0 + 1_000).is_empty(),
        "nothing happens after the end"
    );
    assert_eq!(h.phase("l[1]/a"), Phase::Canceled);
    assert_eq!(h.state.progress(&h.flow).phase, Phase::Canceled);
}
