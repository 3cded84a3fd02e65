//! `flow` modules: resolution, inputs, paths under the module, failures, runaway recursion.

use super::*;

fn child_flow() -> OpenFlow {
    flow_of(
        json!([step(
            "inner",
            json!({"x": js("flow_input.v + 1"), "results_seen": js("Object.keys(results)")})
        )]),
        json!({"failure_module": step("failure", json!({"x": fixed(json!({"recover": true}))}))}),
    )
}

fn parent() -> OpenFlow {
    flow_of(
        json!([
            step("a", json!({"x": fixed(json!(1))})),
            {"id": "sub", "value": {"type": "flow", "path": "f/child", "input_transforms": {"v": js("previous_result")}}},
            step("after", json!({"x": js("previous_result")})),
        ]),
        json!({}),
    )
}

fn library() -> Library {
    let mut library = Library::default();
    library
        .flows
        .insert("f/child".into(), Arc::new(child_flow()));
    library
}

#[test]
fn a_subflow_runs_under_the_module_path_with_its_own_inputs() {
    let mut h = Harness::start_with(parent(), json!({}), library());
    h.finish("a", Ok(json!(1)));
    assert_eq!(h.running_paths(), vec!["sub/inner"]);
    assert_eq!(
        h.spec("sub/inner").args["results_seen"],
        json!([]),
        "a subflow sees only its own results"
    );
    h.finish("sub/inner", Ok(json!(2)));
    assert_eq!(h.spec("after").args["x"], 2);
    assert!(
        h.state
            .results
            .iter()
            .all(|(k, _)| !k.starts_with("sub/") && !k.starts_with("sub#"))
    );
}

#[test]
fn a_subflow_has_its_own_failure_module() {
    let mut h = Harness::start_with(parent(), json!({}), library());
    h.finish("a", Ok(json!(1)));
    h.finish("sub/inner", Err(boom("inner")));
    assert_eq!(h.running_paths(), vec!["sub/failure"]);
    h.finish("sub/failure", Ok(json!({"recover": true})));
    assert_eq!(h.spec("after").args["x"], json!({"recover": true}));
}

#[test]
fn an_unknown_subflow_fails_the_step() {
    let mut h = Harness::start(parent(), json!({}));
    h.finish("a", Ok(json!(1)));
    let error = h.error();
    assert_eq!(
        (error.name.as_str(), error.step_id.as_deref()),
        ("ResolveError", Some("sub"))
    );
    assert!(error.message.contains("f/child"), "{}", error.message);
}

#[test]
fn a_flow_that_calls_itself_fails_instead_of_recursing_forever() {
    let looping = flow_of(
        json!([{"id": "again", "value": {"type": "flow", "path": "f/loop"}}]),
        json!({}),
    );
    let mut library = Library::default();
    library
        .flows
        .insert("f/loop".into(), Arc::new(looping.clone()));
    let h = Harness::start_with(looping, json!({}), library);
    let error = h.error();
    assert_eq!(error.name, "SubflowTooDeep");
}
