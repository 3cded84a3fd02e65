//! Sequential steps, the names expressions see, identity, skip_if, mock, sleep, timeout,
//! early_return, skip_expr, script modules and wm_failure.

use super::*;

#[test]
fn steps_run_in_order_with_previous_result_and_results() {
    let flow = flow_of(
        json!([
            step(
                "a",
                json!({"x": js("flow_input.n + 1"), "first": js("previous_result")})
            ),
            step(
                "b",
                json!({"x": js("previous_result.x * 10"), "env": js("flow_env.region")})
            ),
            step(
                "c",
                json!({"x": js("results.a.x + results['b'].x"), "t": js("`n=${flow_input.n}`")})
            ),
        ]),
        json!({"flow_env": {"region": "eu"}}),
    );
    let mut h = Harness::start(flow, json!({"n": 1}));
    assert_eq!(h.running_paths(), vec!["a"]);
    assert_eq!(
        h.spec("a").args["first"],
        json!({"n": 1}),
        "the first step's previous_result is the inputs"
    );
    let outcome = h.run(echo);
    assert_eq!(h.started(), vec!["a#1", "b#1", "c#1"]);
    assert_eq!(h.result("b").unwrap()["env"], "eu");
    assert_eq!(
        succeeded(&outcome),
        &json!({"x": 22, "t": "n=1"}),
        "the flow's result is the last step's"
    );
    assert_eq!(h.phase("a"), Phase::Succeeded);
}

#[test]
fn static_transforms_and_missing_values() {
    let flow = flow_of(
        json!([step(
            "a",
            json!({"x": fixed(json!([1, 2])), "y": {"type": "static"}})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(
        h.spec("a").args,
        json!({"x": [1, 2], "y": null}).as_object().unwrap().clone()
    );
    assert_eq!(h.spec("a").language, "python3");
    h.run(echo);
}

#[test]
fn identity_passes_previous_result_through() {
    let flow = flow_of(
        json!([step("a", json!({"x": fixed(json!(5))})), {"id": "i", "value": {"type": "identity"}}]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(succeeded(&outcome), &json!(5));
    assert_eq!(h.result("i"), Some(&json!(5)));
}

#[test]
fn skip_if_skips_and_passes_previous_result_through() {
    let flow = flow_of(
        json!([
            step("a", json!({"x": fixed(json!(1))})),
            with(
                step("b", json!({"x": fixed(json!(2))})),
                json!({"skip_if": {"expr": "previous_result === 1"}})
            ),
            step("c", json!({"x": js("previous_result")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(h.started(), vec!["a#1", "c#1"]);
    assert_eq!(succeeded(&outcome), &json!(1));
    assert_eq!(h.phase("b"), Phase::Skipped);
}

#[test]
fn mock_returns_its_value_without_running() {
    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"mock": {"enabled": true, "return_value": {"m": 1}}})
            ),
            with(
                step("b", json!({"x": js("previous_result.m")})),
                json!({"mock": {"enabled": false}})
            ),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(h.running_paths(), vec!["b"]);
    assert_eq!(succeeded(&h.run(return_x)), &json!(1));
}

#[test]
fn sleep_waits_after_its_step_and_reads_the_steps_result() {
    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"sleep": js("result.wait + previous_result.wait")})
            ),
            step("b", json!({"x": js("previous_result")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(h.running_paths(), vec!["a"], "nothing sleeps before a");
    let actions = h.finish("a", Ok(json!({"wait": 1.5})));
    assert_eq!(actions, vec![Action::WakeAt { at_ms: T0 + 3_000 }]);
    assert_eq!(h.phase("a"), Phase::Sleeping);
    assert_eq!(h.result("a"), Some(&json!({"wait": 1.5})));
    assert!(
        h.tick_at(T0 + 2_999)
            .iter()
            .all(|a| !matches!(a, Action::StartAttempt { .. }))
    );
    h.tick_at(T0 + 3_000);
    assert_eq!(h.running_paths(), vec!["b"]);
    assert_eq!(h.spec("b").args["x"], json!({"wait": 1.5}));
    assert_eq!(h.phase("a"), Phase::Succeeded);
}

#[test]
fn sleep_of_the_last_step_does_not_delay_the_end() {
    let flow = flow_of(
        json!([with(
            step("a", json!({})),
            json!({"sleep": fixed(json!(60))})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!(1)));
    assert_eq!(h.state.outcome(), Some(RunOutcome::Succeeded(json!(1))));
    assert_eq!(h.now, T0);
}

#[test]
fn sleep_that_cannot_be_read_fails_its_step() {
    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"sleep": js("result.missing.x")})
            ),
            step("b", json!({})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!({})));
    let error = h.error();
    assert_eq!(error.step_id.as_deref(), Some("a"));
    assert!(error.message.contains("sleep"), "{}", error.message);
}

#[test]
fn timeout_becomes_the_attempt_deadline() {
    let flow = flow_of(
        json!([
            with(step("a", json!({})), json!({"timeout": 30})),
            with(step("b", json!({})), json!({"timeout": js("flow_input.t")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({"t": 2.5}));
    assert_eq!(h.spec("a").timeout_ms, Some(30_000));
    h.finish(
        "a",
        Err(StepError::new("Timeout", "step ran longer than 30 s")),
    );
    let error = &h.error();
    assert_eq!(
        (error.name.as_str(), error.step_id.as_deref()),
        ("Timeout", Some("a"))
    );

    let flow = flow_of(
        json!([with(
            step("b", json!({})),
            json!({"timeout": js("flow_input.t")})
        )]),
        json!({}),
    );
    let h = Harness::start(flow, json!({"t": 2.5}));
    assert_eq!(h.spec("b").timeout_ms, Some(2_500));
}

#[test]
fn early_return_hands_back_a_result_and_the_run_goes_on() {
    let flow = flow_of(
        json!([
            step("a", json!({"x": fixed(json!("early"))})),
            step("b", json!({"x": fixed(json!("late"))}))
        ]),
        json!({"early_return": "a"}),
    );
    let mut h = Harness::start(flow, json!({}));
    let actions = h.finish("a", Ok(json!("early")));
    assert_eq!(
        actions[0],
        Action::EarlyReturn {
            result: json!("early")
        }
    );
    assert_eq!(h.running_paths(), vec!["b"]);
    assert_eq!(succeeded(&h.run(return_x)), &json!("late"));
}

#[test]
fn skip_expr_skips_the_whole_run() {
    let flow = flow_of(
        json!([step("a", json!({}))]),
        json!({"skip_expr": "flow_input.skip"}),
    );
    let h = Harness::start(flow.clone(), json!({"skip": true}));
    assert_eq!(
        h.actions,
        vec![Action::Finish(RunOutcome::Skipped(json!("stopped early")))],
        "a skipped run keeps Windmill's result for skip_expr"
    );
    let h = Harness::start(flow, json!({"skip": false}));
    assert_eq!(h.running_paths(), vec!["a"]);

    let flow = flow_of(
        json!([step("a", json!({}))]),
        json!({"skip_expr": "flow_input.a.b"}),
    );
    let h = Harness::start(flow, json!({}));
    assert!(
        h.error().message.starts_with("the flow: skip_expr: "),
        "{}",
        h.error().message
    );
}

#[test]
fn script_modules_are_resolved_by_path() {
    let flow = flow_of(
        json!([{"id": "a", "value": {"type": "script", "path": "f/lib/add", "input_transforms": {"x": js("1 + 1")}}}]),
        json!({}),
    );
    let mut library = Library::default();
    library.scripts.insert(
        "f/lib/add".into(),
        ResolvedScript {
            language: "bash".into(),
            content: "echo $1".into(),
            lock: None,
        },
    );
    let h = Harness::start_with(flow.clone(), json!({}), library);
    let spec = h.spec("a");
    assert_eq!(
        (spec.language.as_str(), spec.content.as_str()),
        ("bash", "echo $1")
    );
    assert_eq!(spec.script_path.as_deref(), Some("f/lib/add"));
    assert_eq!(spec.args["x"], 2);

    let h = Harness::start(flow, json!({}));
    let error = &h.error();
    assert_eq!(error.name, "ResolveError");
    assert!(
        error.message.contains("step `a`") && error.message.contains("f/lib/add"),
        "{}",
        error.message
    );
}

#[test]
fn variables_are_resolved_before_evaluation() {
    let flow = flow_of(
        json!([step("a", json!({"x": js("variable('u/me/token').length")}))]),
        json!({}),
    );
    let mut library = Library::default();
    library
        .variables
        .insert("u/me/token".into(), json!("secret"));
    let h = Harness::start_with(flow, json!({}), library);
    assert_eq!(h.spec("a").args["x"], 6);
}

#[test]
fn an_expression_error_fails_the_step_naming_the_input() {
    let flow = flow_of(
        json!([step("a", json!({"x": js("nope.nothing")}))]),
        json!({}),
    );
    let h = Harness::start(flow, json!({}));
    let error = &h.error();
    assert_eq!(error.name, "ExpressionError");
    assert!(
        error.message.contains("step `a`: input `x`"),
        "{}",
        error.message
    );
    assert_eq!(error.step_id.as_deref(), Some("a"));
}

#[test]
fn result_is_not_bound_in_input_transforms() {
    let flow = flow_of(
        json!([step("a", json!({"x": js("typeof result")}))]),
        json!({}),
    );
    let h = Harness::start(flow, json!({}));
    let outcome = h.state.outcome();
    // `result` is unbound: a ReferenceError would fail the step, `typeof` reports it undefined.
    assert_eq!(outcome, None);
    assert_eq!(h.spec("a").args["x"], "undefined");
}

#[test]
fn wm_failure_in_a_result_fails_the_step() {
    let flow = flow_of(
        json!([step("a", json!({})), step("b", json!({}))]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!({"wm_failure": "quota exceeded"})));
    let error = &h.error();
    assert_eq!(
        (error.message.as_str(), error.step_id.as_deref()),
        ("quota exceeded", Some("a"))
    );
}

#[test]
fn unknown_module_types_fail_with_their_name() {
    let flow = flow_of(
        json!([{"id": "w", "value": {"type": "aiagent"}}]),
        json!({}),
    );
    let h = Harness::start(flow, json!({}));
    let error = &h.error();
    assert!(
        error.message.contains("`w`") && error.message.contains("aiagent"),
        "{}",
        error.message
    );
}

#[test]
fn duplicate_and_stale_events_are_ignored() {
    let flow = flow_of(
        json!([step("a", json!({})), step("b", json!({}))]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let id = h.attempt("a");
    h.finish("a", Ok(json!(1)));
    let again = h.send(Event::StepFinished {
        id,
        outcome: Ok(json!(2)),
    });
    assert!(again.is_empty());
    assert_eq!(h.result("a"), Some(&json!(1)));
    assert_eq!(h.running_paths(), vec!["b"]);
}

#[test]
fn an_empty_flow_returns_its_inputs() {
    let h = Harness::start(flow_of(json!([]), json!({})), json!({"k": 1}));
    assert_eq!(
        h.actions,
        vec![Action::Finish(RunOutcome::Succeeded(json!({"k": 1})))]
    );
}
