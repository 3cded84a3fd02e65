//! suspend: approvals, resume payload, disapproval, timeout, continue_on_disapprove_timeout.

use super::*;

fn suspended(suspend: Value) -> OpenFlow {
    flow_of(
        json!([
            with(step("a", json!({})), json!({"suspend": suspend})),
            step(
                "b",
                json!({"x": js("resume"), "prev": js("previous_result")})
            ),
        ]),
        json!({}),
    )
}

fn approve(h: &mut Harness, approved: bool, payload: Value) -> Vec<Action> {
    h.send(Event::Approval {
        step: None,
        approved,
        payload,
    })
}

#[test]
fn suspend_waits_for_approval_and_exposes_the_payload() {
    let mut h = Harness::start(
        suspended(json!({"required_events": 1, "timeout": 60})),
        json!({}),
    );
    let actions = h.finish("a", Ok(json!("A")));
    assert_eq!(
        actions,
        vec![
            Action::AwaitApproval {
                step: StepPath::parse("a"),
                required_events: 1,
                timeout_at_ms: Some(T0 + 60_000),
                resume_form: None
            },
            Action::WakeAt { at_ms: T0 + 60_000 },
        ]
    );
    assert_eq!(h.phase("a"), Phase::Suspended);
    approve(&mut h, true, json!({"ok": "yes"}));
    assert_eq!(h.spec("b").args["x"], json!({"ok": "yes"}));
    assert_eq!(h.spec("b").args["prev"], "A");
}

#[test]
fn suspend_counts_required_events() {
    let mut h = Harness::start(suspended(json!({"required_events": 2})), json!({}));
    h.finish("a", Ok(json!("A")));
    approve(&mut h, true, json!(1));
    assert!(h.running.is_empty());
    approve(&mut h, true, json!(2));
    assert_eq!(h.spec("b").args["x"], 2);
}

#[test]
fn disapproval_fails_the_step() {
    let mut h = Harness::start(suspended(json!({})), json!({}));
    h.finish("a", Ok(json!("A")));
    approve(&mut h, false, json!(null));
    let error = h.error();
    assert_eq!(
        (error.name.as_str(), error.step_id.as_deref()),
        ("Disapproved", Some("a"))
    );
}

#[test]
fn suspend_timeout_fails_the_step_unless_told_to_continue() {
    let mut h = Harness::start(suspended(json!({"timeout": 10})), json!({}));
    h.finish("a", Ok(json!("A")));
    h.tick_at(T0 + 9_999);
    assert!(h.state.outcome().is_none());
    h.tick_at(T0 + 10_000);
    assert_eq!(h.error().name, "SuspendTimeout");

    let flow = flow_of(
        json!([
            with(
                step("a", json!({})),
                json!({"suspend": {"timeout": 10, "continue_on_disapprove_timeout": true}})
            ),
            step(
                "b",
                json!({"prev": js("previous_result"), "resumed": js("typeof resume")})
            ),
        ]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("a", Ok(json!("A")));
    h.tick_at(T0 + 10_000);
    assert_eq!(h.spec("b").args["prev"], "A");
    assert_eq!(
        h.spec("b").args["resumed"],
        "undefined",
        "no approval came, so no `resume`"
    );
}

#[test]
fn approvals_for_another_step_are_ignored() {
    let mut h = Harness::start(suspended(json!({})), json!({}));
    h.finish("a", Ok(json!("A")));
    h.send(Event::Approval {
        step: Some(StepPath::parse("zzz")),
        approved: true,
        payload: json!(null),
    });
    assert_eq!(h.phase("a"), Phase::Suspended);
    h.send(Event::Approval {
        step: Some(StepPath::parse("a")),
        approved: true,
        payload: json!(null),
    });
    assert_eq!(h.running_paths(), vec!["b"]);
}

#[test]
fn a_timer_gone_inside_a_wide_loop_costs_at_most_one_early_tick() {
    let flow = flow_of(
        json!([{"id": "l", "value": {"type": "forloopflow", "iterator": js("[0, 1]"), "parallel": true,
            "modules": [with(step("a", json!({})), json!({"suspend": {"timeout": 10}}))]}}]),
        json!({}),
    );
    let mut h = Harness::start(flow, json!({}));
    h.finish("l[0]/a", Ok(json!(0)));
    h.now = T0 + 5_000;
    h.finish("l[1]/a", Ok(json!(1)));
    assert_eq!(h.wake, Some(T0 + 10_000));
    h.now = T0 + 6_000;
    h.send(Event::Approval {
        step: Some(StepPath::parse("l[0]/a")),
        approved: true,
        payload: json!(null),
    });
    assert_eq!(
        h.wake,
        Some(T0 + 10_000),
        "the approved child's timer may linger"
    );
    h.tick_at(T0 + 10_000);
    assert_eq!(h.wake, Some(T0 + 15_000), "a tick recomputes it exactly");
    assert!(h.state.outcome().is_none());
    h.tick_at(T0 + 15_000);
    assert_eq!(h.error().name, "SuspendTimeout");
}

#[test]
fn sleep_counts_from_the_steps_end_and_overlaps_the_wait_for_approval() {
    let flow = |suspend: Value| {
        flow_of(
            json!([
                with(
                    step("a", json!({})),
                    json!({"suspend": suspend, "sleep": fixed(json!(10))})
                ),
                step("b", json!({})),
            ]),
            json!({}),
        )
    };
    let mut h = Harness::start(flow(json!({"required_events": 1})), json!({}));
    h.finish("a", Ok(json!("A")));
    h.now = T0 + 4_000;
    let actions = approve(&mut h, true, json!({}));
    assert_eq!(actions, vec![Action::WakeAt { at_ms: T0 + 10_000 }]);
    assert_eq!(h.phase("a"), Phase::Sleeping);
    h.tick_at(T0 + 10_000);
    assert_eq!(h.running_paths(), vec!["b"]);

    let mut h = Harness::start(flow(json!({"required_events": 1})), json!({}));
    h.finish("a", Ok(json!("A")));
    h.now = T0 + 12_000;
    approve(&mut h, true, json!({}));
    assert_eq!(h.running_paths(), vec!["b"], "the sleep was over already");
}
