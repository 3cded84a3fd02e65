//! branchone (first true branch, default) and branchall (sequential, parallel, skip_failure).

use super::*;

fn branch_one() -> OpenFlow {
    flow_of(
        json!([
            step("a", json!({"x": js("flow_input.n")})),
            {"id": "b", "value": {"type": "branchone",
                "branches": [
                    {"expr": "previous_result > 10", "modules": [step("big", json!({"x": js("'big ' + previous_result")}))]},
                    {"expr": "results.a > 5", "modules": [step("mid", json!({"x": fixed(json!("mid"))}))]},
                ],
                "default": [step("small", json!({"x": js("flow_input.n")}))]}},
            step("after", json!({"x": js("previous_result")})),
        ]),
        json!({}),
    )
}

#[test]
fn branchone_runs_the_first_true_branch() {
    let mut h = Harness::start(branch_one(), json!({"n": 20}));
    let outcome = h.run(return_x);
    assert_eq!(h.started(), vec!["a#1", "b[0]/big#1", "after#1"]);
    assert_eq!(succeeded(&outcome), &json!("big 20"));

    let mut h = Harness::start(branch_one(), json!({"n": 7}));
    h.run(return_x);
    assert_eq!(h.started(), vec!["a#1", "b[1]/mid#1", "after#1"]);
}

#[test]
fn branchone_falls_back_to_default() {
    let mut h = Harness::start(branch_one(), json!({"n": 1}));
    let outcome = h.run(return_x);
    assert_eq!(h.started(), vec!["a#1", "b[2]/small#1", "after#1"]);
    assert_eq!(succeeded(&outcome), &json!(1));
}

#[test]
fn an_empty_default_passes_previous_result_through() {
    let flow = flow_of(
        json!([step("a", json!({"x": fixed(json!(3))})),
            {"id": "b", "value": {"type": "branchone", "branches": [{"expr": "false", "modules": []}], "default": []}}]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    assert_eq!(succeeded(&h.run(return_x)), &json!(3));
}

fn branch_all(parallel: bool, skip_failure: bool) -> OpenFlow {
    flow_of(
        json!([{"id": "ba", "value": {"type": "branchall", "parallel": parallel, "branches": [
            {"modules": [step("x", json!({"x": js("previous_result.start")}))]},
            {"skip_failure": skip_failure, "modules": [step("y", json!({"x": fixed(json!("y"))})), step("y2", json!({"x": fixed(json!("y2"))}))]},
            {"modules": [step("z", json!({"x": fixed(json!("z"))}))]},
        ]}}]),
        json!({}),
    )
}

#[test]
fn branchall_sequential_runs_branches_in_order() {
    let mut h = Harness::start(branch_all(false, false), json!({"start": "s"}));
    assert_eq!(
        h.running_paths(),
        vec!["ba[0]/x"],
        "a branch starts from the module's previous_result"
    );
    let outcome = h.run(return_x);
    assert_eq!(
        h.started(),
        vec!["ba[0]/x#1", "ba[1]/y#1", "ba[1]/y2#1", "ba[2]/z#1"]
    );
    assert_eq!(succeeded(&outcome), &json!(["s", "y2", "z"]));
}

#[test]
fn branchall_parallel_starts_every_branch_and_keeps_branch_order() {
    let mut h = Harness::start(branch_all(true, false), json!({"start": "s"}));
    assert_eq!(h.running_paths(), vec!["ba[0]/x", "ba[1]/y", "ba[2]/z"]);
    h.finish("ba[2]/z", Ok(json!("z")));
    h.finish("ba[1]/y", Ok(json!("y")));
    h.finish("ba[1]/y2", Ok(json!("y2")));
    h.finish("ba[0]/x", Ok(json!("x")));
    assert_eq!(h.value(), json!(["x", "y2", "z"]));
}

#[test]
fn branchall_failure_fails_the_module_unless_skip_failure() {
    let mut h = Harness::start(branch_all(false, false), json!({}));
    let outcome = h.run(|id, spec| {
        if id.step.module_id() == "y" {
            Err(boom("y broke"))
        } else {
            return_x(id, spec)
        }
    });
    assert_eq!(failed(&outcome).message, "y broke");
    assert_eq!(h.started(), vec!["ba[0]/x#1", "ba[1]/y#1"]);

    let mut h = Harness::start(branch_all(false, true), json!({}));
    let outcome = h.run(|id, spec| {
        if id.step.module_id() == "y" {
            Err(boom("y broke"))
        } else {
            return_x(id, spec)
        }
    });
    let results = succeeded(&outcome);
    assert_eq!(results[1]["error"]["message"], "y broke");
    assert_eq!(results[2], "z");
}

#[test]
fn stop_after_if_inside_a_branch_ends_the_flow() {
    let flow = flow_of(
        json!([
            {"id": "b", "value": {"type": "branchone", "branches": [], "default": [
                with(step("d", json!({})), json!({"stop_after_if": {"expr": "true"}})),
            ]}},
            step("after", json!({})),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("b[0]/d", Ok(json!("stopped")));
    assert_eq!(h.value(), json!("stopped"));
    assert_eq!(h.started(), vec!["b[0]/d#1"]);
}
