//! for-loops (sequential, parallel, parallelism), while loops, iter / iter_parent, breaks,
//! skip_failures and the size of the state for a big loop.

use super::*;

fn for_loop(id: &str, iterator: &str, modules: Value, fields: Value) -> Value {
    with(
        json!({"id": id, "value": with(json!({"type": "forloopflow", "iterator": js(iterator), "modules": modules}), fields)}),
        json!({}),
    )
}

#[test]
fn sequential_loop_collects_results_in_order() {
    let flow = flow_of(
        json!([
            for_loop(
                "l",
                "flow_input.items",
                json!([
                    step(
                        "a",
                        json!({"x": js("flow_input.iter.value * 10"), "i": js("flow_input.iter.index"),
                    "prev": js("previous_result.iter.value"), "n": js("flow_input.n")})
                    ),
                    step("b", json!({"x": js("previous_result.x + results.a.i")})),
                ]),
                json!({})
            ),
            step("after", json!({"x": js("results.l")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({"items": [1, 2, 3], "n": "kept"}));
    assert_eq!(h.running_paths(), vec!["l[0]/a"]);
    assert_eq!(
        h.spec("l[0]/a").args["prev"],
        1,
        "the first body step starts from the iteration's input"
    );
    assert_eq!(
        h.spec("l[0]/a").args["n"],
        "kept",
        "flow_input keeps the flow's inputs inside the loop"
    );
    let outcome = h.run(|id, spec| {
        if id.step.module_id() == "a" {
            echo(id, spec)
        } else {
            return_x(id, spec)
        }
    });
    assert_eq!(
        h.started(),
        vec![
            "l[0]/a#1", "l[0]/b#1", "l[1]/a#1", "l[1]/b#1", "l[2]/a#1", "l[2]/b#1", "after#1"
        ]
    );
    assert_eq!(succeeded(&outcome), &json!([10, 21, 32]));
    assert_eq!(
        h.state.results.get("l[0]/a"),
        None,
        "a finished iteration's own results are dropped"
    );
}

#[test]
fn empty_iterator_gives_an_empty_array_and_a_non_array_fails() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "[]",
            json!([step("a", json!({}))]),
            json!({})
        )]),
        json!({}),
    );
    let h = Harness::start(flow, json!({}));
    assert_eq!(h.state.outcome(), Some(RunOutcome::Succeeded(json!([]))));

    let flow = flow_of(
        json!([for_loop(
            "l",
            "'abc'",
            json!([step("a", json!({}))]),
            json!({})
        )]),
        json!({}),
    );
    let h = Harness::start(flow, json!({}));
    let error = &h.error();
    assert!(
        error.message.contains("step `l`") && error.message.contains("a string"),
        "{}",
        error.message
    );
}

#[test]
fn nested_loops_see_iter_parent() {
    let inner = for_loop(
        "inner",
        "['x', 'y']",
        json!([step(
            "a",
            json!({"x": js("`${flow_input.iter_parent.value}${flow_input.iter.value}`")})
        ),]),
        json!({}),
    );
    let flow = flow_of(
        json!([for_loop("outer", "[1, 2]", json!([inner]), json!({}))]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(h.running_paths(), vec!["outer[0]/inner[0]/a"]);
    let outcome = h.run(return_x);
    assert_eq!(succeeded(&outcome), &json!([["1x", "1y"], ["2x", "2y"]]));
}

#[test]
fn parallel_loop_over_1000_items_never_runs_more_than_its_parallelism() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "Array.from({length: 1000}, (_, i) => i)",
            json!([step("a", json!({"x": fixed(json!(1))}))]),
            json!({"parallel": true, "parallelism": js("flow_input.p")})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({"p": 10}));
    assert_eq!(h.running.len(), 10);
    // Finish the newest attempts first to shuffle completion order.
    let mut finished = 0;
    while let Some((id, _)) = h.running.last().cloned() {
        let index = id.step.segments().next().unwrap().index.unwrap();
        h.send(Event::StepFinished {
            id,
            outcome: Ok(json!(index)),
        });
        finished += 1;
        assert!(h.running.len() <= 10);
        if finished == 500 {
            let progress = h
                .state
                .steps(&h.flow)
                .into_iter()
                .find(|s| s.path.as_str() == "l")
                .unwrap()
                .progress;
            assert_eq!(
                progress,
                Some(LoopProgress {
                    total: Some(1000),
                    succeeded: 500,
                    failed: 0,
                    running: 10
                })
            );
        }
    }
    assert_eq!(h.max_running, 10);
    let expected: Vec<Value> = (0..1000).map(|i| json!(i)).collect();
    assert_eq!(&h.value(), &Value::Array(expected));
}

#[test]
fn parallel_loop_without_parallelism_starts_everything() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "[1, 2, 3, 4]",
            json!([step("a", json!({"x": js("flow_input.iter.value")}))]),
            json!({"parallel": true})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(h.running.len(), 4);
    assert_eq!(succeeded(&h.run(return_x)), &json!([1, 2, 3, 4]));
}

#[test]
fn a_failing_iteration_fails_the_loop_without_skip_failures() {
    let flow = flow_of(
        json!([
            for_loop(
                "l",
                "[1, 2, 3]",
                json!([step("a", json!({"x": js("flow_input.iter.value")}))]),
                json!({})
            ),
            step("after", json!({})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(|id, spec| {
        if spec.args["x"] == 2 {
            Err(boom("two"))
        } else {
            return_x(id, spec)
        }
    });
    let error = failed(&outcome);
    assert_eq!(
        (error.message.as_str(), error.step_id.as_deref()),
        ("two", Some("a"))
    );
    assert_eq!(
        h.started(),
        vec!["l[0]/a#1", "l[1]/a#1"],
        "no further iteration and no later step"
    );
    assert_eq!(h.phase("l"), Phase::Failed);
}

#[test]
fn a_failing_iteration_is_recorded_with_skip_failures() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "[1, 2, 3]",
            json!([step("a", json!({"x": js("flow_input.iter.value")}))]),
            json!({"skip_failures": true})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(|id, spec| {
        if spec.args["x"] == 2 {
            Err(boom("two"))
        } else {
            return_x(id, spec)
        }
    });
    let results = succeeded(&outcome);
    assert_eq!(results[0], 1);
    assert_eq!(results[1]["error"]["message"], "two");
    assert_eq!(results[1]["error"]["step_id"], "a");
    assert_eq!(results[2], 3);
    let view = h
        .state
        .steps(&h.flow)
        .into_iter()
        .find(|s| s.path.as_str() == "l")
        .unwrap();
    assert_eq!(
        view.progress,
        Some(LoopProgress {
            total: Some(3),
            succeeded: 2,
            failed: 1,
            running: 0
        })
    );
}

#[test]
fn a_failing_parallel_iteration_cancels_the_others() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "[1, 2, 3]",
            json!([step("a", json!({}))]),
            json!({"parallel": true})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let actions = h.finish("l[1]/a", Err(boom("no")));
    let canceled: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CancelAttempt { id } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(canceled, vec!["l[0]/a#1", "l[2]/a#1"]);
    assert!(matches!(h.state.outcome(), Some(RunOutcome::Failed(_))));
}

#[test]
fn stop_after_if_inside_a_sequential_loop_breaks_only_the_loop() {
    let flow = flow_of(
        json!([
            for_loop(
                "l",
                "[1, 2, 3, 4]",
                json!([with(
                    step("a", json!({"x": js("flow_input.iter.value")})),
                    json!({"stop_after_if": {"expr": "result >= 2"}})
                ),]),
                json!({})
            ),
            step("after", json!({"x": js("results.l")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(h.started(), vec!["l[0]/a#1", "l[1]/a#1", "after#1"]);
    assert_eq!(succeeded(&outcome), &json!([1, 2]));
}

#[test]
fn stop_after_if_on_a_for_loop_is_checked_after_every_iteration_and_breaks_only_the_loop() {
    let flow = flow_of(
        json!([
            with(
                for_loop(
                    "l",
                    "[1, 2, 3, 4]",
                    json!([step("a", json!({"x": js("flow_input.iter.value * 10")}))]),
                    json!({})
                ),
                json!({"stop_after_if": {"expr": "result >= 20", "skip_if_stopped": true,
                    "error_message": "loops ignore this"}})
            ),
            step("after", json!({"x": js("results.l")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(h.started(), vec!["l[0]/a#1", "l[1]/a#1", "after#1"]);
    assert_eq!(succeeded(&outcome), &json!([10, 20]));
    assert_eq!(h.phase("l"), Phase::Succeeded);
}

#[test]
fn stop_after_if_on_a_while_loop_ends_it() {
    let flow = flow_of(
        json!([
            with(
                json!({"id": "w", "value": {"type": "whileloopflow", "modules": [
                    step("a", json!({"x": js("flow_input.iter.index")})),
                ]}}),
                json!({"stop_after_if": {"expr": "result == 2"}})
            ),
            step("after", json!({"x": js("results.w")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(
        h.started(),
        vec!["w[0]/a#1", "w[1]/a#1", "w[2]/a#1", "after#1"]
    );
    assert_eq!(succeeded(&outcome), &json!([0, 1, 2]));
}

#[test]
fn stop_after_if_on_a_loop_that_fails_to_evaluate_fails_the_loop() {
    let flow = flow_of(
        json!([with(
            for_loop("l", "[1, 2]", json!([step("a", json!({}))]), json!({})),
            json!({"stop_after_if": {"expr": "result.a.b"}})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("l[0]/a", Ok(json!({})));
    let error = h.error();
    assert_eq!(error.step_id.as_deref(), Some("l"));
    assert!(error.message.contains("stop_after_if"), "{}", error.message);
    assert_eq!(h.started(), vec!["l[0]/a#1"]);
}

#[test]
fn a_parallel_loop_runs_every_iteration_whatever_its_stop_after_if() {
    let flow = flow_of(
        json!([
            with(
                for_loop(
                    "l",
                    "[1, 2, 3]",
                    json!([step("a", json!({"x": js("flow_input.iter.value")}))]),
                    json!({"parallel": true})
                ),
                json!({"stop_after_if": {"expr": "true"}})
            ),
            step("after", json!({"x": js("results.l")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(succeeded(&outcome), &json!([1, 2, 3]));
}

#[test]
fn stop_after_all_iters_if_is_checked_once_after_the_loop() {
    let flow = flow_of(
        json!([
            with(
                for_loop(
                    "l",
                    "[1, 2]",
                    json!([step("a", json!({"x": js("flow_input.iter.value")}))]),
                    json!({})
                ),
                json!({"stop_after_all_iters_if": {"expr": "result.length == 2"}})
            ),
            step("after", json!({})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(return_x);
    assert_eq!(
        h.started(),
        vec!["l[0]/a#1", "l[1]/a#1"],
        "the flow stopped after the loop"
    );
    assert_eq!(succeeded(&outcome), &json!([1, 2]));
}

#[test]
fn while_loop_runs_until_a_stop_inside_breaks_it() {
    let flow = flow_of(
        json!([
            {"id": "w", "value": {"type": "whileloopflow", "modules": [
                with(step("a", json!({"x": js("flow_input.iter.value"), "i": js("flow_input.iter.index")})),
                    json!({"stop_after_if": {"expr": "result.x == 3"}})),
            ]}},
            step("after", json!({"x": js("results.w.length")})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let outcome = h.run(|id, spec| {
        if id.step.module_id() == "a" {
            echo(id, spec)
        } else {
            return_x(id, spec)
        }
    });
    assert_eq!(
        h.started(),
        vec!["w[0]/a#1", "w[1]/a#1", "w[2]/a#1", "w[3]/a#1", "after#1"]
    );
    assert_eq!(succeeded(&outcome), &json!(4));
}

#[test]
fn a_while_loop_that_never_waits_yields_instead_of_spinning() {
    let flow = flow_of(
        json!([{"id": "w", "value": {"type": "whileloopflow", "modules": [{"id": "i", "value": {"type": "identity"}}]}}]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(h.wake, Some(T0), "the engine yields with a wake-up now");
    h.send(Event::Tick);
    assert_eq!(h.wake, Some(T0));
    let progress = h.state.steps(&h.flow)[0].progress.unwrap();
    assert!(progress.succeeded > 100_000, "{progress:?}");
    assert_eq!(h.state.next_wake_ms(), Some(T0), "the state says so too");
    h.send(Event::Cancel);
    assert_eq!(h.state.outcome(), Some(RunOutcome::Canceled));
}

#[test]
fn state_of_a_10000_iteration_loop_stays_small() {
    let flow = flow_of(
        json!([for_loop(
            "l",
            "Array.from({length: 10000}, (_, i) => i)",
            json!([step("a", json!({"x": fixed(json!(1))}))]),
            json!({})
        )]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    let mut largest_control = 0;
    let mut largest_results = 0;
    while let Some((id, _)) = h.running.first().cloned() {
        let index = id.step.segments().next().unwrap().index.unwrap();
        h.send(Event::StepFinished {
            id,
            outcome: Ok(json!(index)),
        });
        if index % 1000 == 999 {
            let mut control = h.state.clone();
            let results = std::mem::take(&mut control.results);
            largest_control = largest_control.max(serde_json::to_vec(&control).unwrap().len());
            largest_results = largest_results.max(serde_json::to_vec(&results).unwrap().len());
        }
    }
    assert!(matches!(h.state.outcome(), Some(RunOutcome::Succeeded(_))));
    assert!(
        largest_control < 1024,
        "control state {largest_control} bytes"
    );
    // The iterator and the results array: about 5 bytes per number each.
    assert!(
        largest_results < 128 * 1024,
        "results {largest_results} bytes"
    );
}
