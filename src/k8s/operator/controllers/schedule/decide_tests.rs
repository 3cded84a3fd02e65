//! The Schedule controller's decision, from loaded objects and a given time: no API server.

use super::decide::{Decision, decide, unreadable};
use super::load::{FlowState, Loaded};
use crate::k8s::api::flow::FlowSpec;
use crate::k8s::api::flowrun::{FlowRun, FlowRunStatus, RunPhase};
use crate::k8s::api::schedule::runs::{HANDLER_LABEL, scheduled_run};
use crate::k8s::api::schedule::{Schedule, ScheduleStatus, to_time};
use crate::schedule::SkipReason;
use crate::schedule::names::run_name;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A Schedule created at 10:00:00 with `spec` over a per-10-seconds expression.
fn schedule(spec: Value, status: Option<ScheduleStatus>) -> Schedule {
    let mut full = json!({"schedule": "*/10 * * * * *", "flowRef": {"name": "report"}});
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    let mut schedule: Schedule = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": "tick", "namespace": "team", "uid": "u-1", "generation": 1,
                     "creationTimestamp": "2025-03-01T10:00:00Z"},
        "spec": full,
    }))
    .unwrap();
    schedule.status = status;
    schedule
}

fn flow(schema: Option<Value>) -> FlowState {
    let spec: FlowSpec = serde_json::from_value(json!({
        "summary": "report", "value": {"modules": []}, "schema": schema,
    }))
    .unwrap();
    FlowState::Found(Box::new(spec))
}

fn loaded(schedule: Schedule, runs: Vec<FlowRun>) -> Loaded {
    let mut flows = BTreeMap::from([("report".to_string(), flow(None))]);
    flows.insert("alert".into(), flow(None));
    Loaded {
        schedule,
        flows,
        runs,
    }
}

/// A run of `schedule` for `scheduled_for`, in `phase` (ended at `ended`).
fn run(
    schedule: &Schedule,
    scheduled_for: &str,
    phase: Option<RunPhase>,
    ended: Option<&str>,
) -> FlowRun {
    let scheduled_for = at(scheduled_for);
    let mut run = scheduled_run(
        schedule,
        run_name(&schedule.name_any(), scheduled_for),
        scheduled_for,
    );
    run.metadata.creation_timestamp = Some(to_time(scheduled_for));
    run.status = Some(FlowRunStatus {
        phase,
        completion_time: ended.map(|t| to_time(at(t))),
        error: (phase == Some(RunPhase::Failed)).then(|| json!({"message": "boom"})),
        ..FlowRunStatus::default()
    });
    run
}

fn settled(last: &str) -> ScheduleStatus {
    let first = decide(&loaded(schedule(json!({}), None), vec![]), at(last));
    ScheduleStatus {
        last_schedule_time: Some(to_time(at(last))),
        ..first.status
    }
}

fn reasons(decision: &Decision) -> Vec<&str> {
    decision.notes.iter().map(|n| n.reason.as_str()).collect()
}

fn condition<'a>(status: &'a ScheduleStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

#[test]
fn a_due_occurrence_starts_one_run_named_by_its_instant_and_wakes_at_the_next() {
    let d = decide(
        &loaded(schedule(json!({}), None), vec![]),
        at("2025-03-01T10:00:10.2Z"),
    );
    let names: Vec<String> = d.create.iter().map(|s| s.run.name_any()).collect();
    assert_eq!(names, [run_name("tick", at("2025-03-01T10:00:10Z"))]);
    assert_eq!(d.create[0].reason, "Created");
    assert_eq!(d.wake, Some(at("2025-03-01T10:00:20Z")));
    let status = &d.status;
    assert_eq!(
        status.last_schedule_time,
        Some(to_time(at("2025-03-01T10:00:10Z")))
    );
    assert_eq!((status.created, status.skipped, status.missed), (1, 0, 0));
    assert_eq!(status.active, names);
    assert_eq!(status.next_schedule_times.len(), 3);
    assert_eq!(condition(status, "Ready").0, "True");
    assert_eq!(condition(status, "Stalled").0, "False");
    // The same decision again, with what it wrote: nothing more to do.
    let again = decide(
        &loaded(schedule(json!({}), Some(d.status.clone())), vec![]),
        at("2025-03-01T10:00:11Z"),
    );
    assert!(again.create.is_empty() && again.notes.is_empty());
}

#[test]
fn a_run_that_existed_is_not_counted_as_created() {
    let mut d = decide(
        &loaded(schedule(json!({}), None), vec![]),
        at("2025-03-01T10:00:10Z"),
    );
    d.existed(1);
    assert_eq!(d.status.created, 0);
}

#[test]
fn forbid_skips_while_a_run_is_active_and_says_which() {
    let schedule = schedule(
        json!({"concurrencyPolicy": "Forbid"}),
        Some(settled("2025-03-01T10:00:10Z")),
    );
    let active = run(
        &schedule,
        "2025-03-01T10:00:10Z",
        Some(RunPhase::Running),
        None,
    );
    let d = decide(
        &loaded(schedule, vec![active.clone()]),
        at("2025-03-01T10:00:20Z"),
    );
    assert!(d.create.is_empty());
    assert_eq!(reasons(&d), ["ForbidOverlap"]);
    assert!(d.notes[0].warning && d.notes[0].note.contains(&active.name_any()));
    let skip = d.status.last_skip.as_ref().unwrap();
    assert_eq!(skip.reason, SkipReason::ForbidOverlap);
    assert_eq!(d.status.skipped, 1);
    assert_eq!(d.status.active, [active.name_any()]);
}

#[test]
fn replace_cancels_the_active_run_and_starts_the_new_one() {
    let schedule = schedule(
        json!({"concurrencyPolicy": "Replace"}),
        Some(settled("2025-03-01T10:00:10Z")),
    );
    let active = run(&schedule, "2025-03-01T10:00:10Z", None, None);
    let d = decide(
        &loaded(schedule, vec![active.clone()]),
        at("2025-03-01T10:00:20Z"),
    );
    assert_eq!(d.cancel, [active.name_any()]);
    assert_eq!(d.create.len(), 1);
    assert_eq!(reasons(&d), ["Replaced"]);
}

#[test]
fn after_downtime_catch_up_starts_the_latest_and_counts_the_rest_missed() {
    let status = Some(settled("2025-03-01T10:00:10Z"));
    // 10:00:20 … 10:00:50: four occurrences due.
    let now = at("2025-03-01T10:00:55Z");
    let one = decide(&loaded(schedule(json!({}), status.clone()), vec![]), now);
    assert_eq!(one.create.len(), 1);
    assert_eq!(one.create[0].reason, "CaughtUp");
    assert_eq!(one.status.missed, 3);
    assert_eq!(reasons(&one), ["Missed"]);
    let three = decide(
        &loaded(schedule(json!({"catchUp": 3}), status.clone()), vec![]),
        now,
    );
    let names: Vec<String> = three.create.iter().map(|s| s.run.name_any()).collect();
    let expected: Vec<String> = ["10:00:30", "10:00:40", "10:00:50"]
        .iter()
        .map(|t| run_name("tick", at(&format!("2025-03-01T{t}Z"))))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(three.status.missed, 1);
    let none = decide(
        &loaded(schedule(json!({"catchUp": 0}), status), vec![]),
        now,
    );
    assert!(none.create.is_empty());
    assert_eq!(none.status.missed, 4);
}

#[test]
fn suspended_and_paused_skip_without_counting_missed() {
    let status = Some(settled("2025-03-01T10:00:10Z"));
    let now = at("2025-03-01T10:00:35Z");
    let suspended = decide(
        &loaded(schedule(json!({"suspend": true}), status.clone()), vec![]),
        now,
    );
    assert!(suspended.create.is_empty());
    assert_eq!((suspended.status.skipped, suspended.status.missed), (2, 0));
    assert_eq!(reasons(&suspended), ["Suspended"]);
    assert!(!suspended.notes[0].warning);
    assert_eq!(condition(&suspended.status, "Ready").1, "Suspended");
    assert_eq!(suspended.wake, Some(at("2025-03-01T10:00:40Z")));
    let paused = decide(
        &loaded(
            schedule(json!({"pausedUntil": "2025-03-01T11:00:00Z"}), status),
            vec![],
        ),
        now,
    );
    assert!(paused.create.is_empty());
    assert_eq!(reasons(&paused), ["Paused"]);
    assert_eq!(paused.status.missed, 0);
}

#[test]
fn a_missing_flow_stalls_the_schedule_skips_what_falls_due_and_recovers() {
    let mut l = loaded(schedule(json!({}), None), vec![]);
    l.flows.insert("report".into(), FlowState::Missing);
    let d = decide(&l, at("2025-03-01T10:00:10Z"));
    assert!(d.create.is_empty());
    let (status, reason, message) = condition(&d.status, "Stalled");
    assert_eq!((status, reason), ("True", "FlowNotFound"));
    assert!(
        message.contains("spec.flowRef") && message.contains("report"),
        "{message}"
    );
    assert_eq!(condition(&d.status, "Ready").0, "False");
    assert_eq!(reasons(&d), ["FlowMissing", "FlowNotFound"]);
    assert_eq!(d.wake, Some(at("2025-03-01T10:00:20Z")));
    // The Flow appears: what fell due meanwhile is not caught up, the next one starts.
    let fixed = loaded(schedule(json!({}), Some(d.status)), vec![]);
    assert!(decide(&fixed, at("2025-03-01T10:00:15Z")).create.is_empty());
    let later = decide(&fixed, at("2025-03-01T10:00:20Z"));
    assert_eq!(later.create.len(), 1);
    assert_eq!(condition(&later.status, "Ready").0, "True");
}

#[test]
fn a_bad_expression_or_zone_names_its_field_and_schedules_nothing() {
    for (spec, reason, field) in [
        (
            json!({"schedule": "0 0 30 2 *"}),
            "InvalidSchedule",
            "spec.schedule",
        ),
        (
            json!({"timeZone": "Mars/Olympus"}),
            "InvalidTimeZone",
            "spec.timeZone",
        ),
    ] {
        let d = decide(
            &loaded(schedule(spec, None), vec![]),
            at("2025-03-01T10:00:10Z"),
        );
        let (status, got, message) = condition(&d.status, "Stalled");
        assert_eq!((status, got), ("True", reason));
        assert!(message.starts_with(field), "{message}");
        assert!(d.create.is_empty() && d.wake.is_none());
        assert!(d.status.next_schedule_times.is_empty());
    }
}

#[test]
fn inputs_that_do_not_fit_the_flow_schema_stall_the_schedule() {
    let schema = json!({"type": "object", "properties": {"day": {"type": "string", "format": "date-time"},
                        "n": {"type": "integer"}}, "required": ["day", "n"]});
    let spec = json!({"inputs": {"n": "many"}, "scheduledTimeInput": "day"});
    let mut l = loaded(schedule(spec, None), vec![]);
    l.flows.insert("report".into(), flow(Some(schema.clone())));
    let d = decide(&l, at("2025-03-01T10:00:10Z"));
    let (_, reason, message) = condition(&d.status, "Stalled");
    assert_eq!(reason, "InvalidInputs");
    assert!(
        message.contains("spec.inputs") && message.contains("'n'"),
        "{message}"
    );
    // With fitting inputs (the scheduled time filling `day`) it runs.
    let mut l = loaded(
        schedule(
            json!({"inputs": {"n": 2}, "scheduledTimeInput": "day"}),
            None,
        ),
        vec![],
    );
    l.flows.insert("report".into(), flow(Some(schema)));
    let d = decide(&l, at("2025-03-01T10:00:10Z"));
    assert_eq!(
        d.create[0].run.spec.inputs,
        json!({"n": 2, "day": "2025-03-01T10:00:10Z"})
    );
}

#[test]
fn on_failure_with_times_two_runs_only_after_the_second_failure_in_a_row() {
    let spec = json!({"onFailure": {"flowRef": {"name": "alert"}, "times": 2}});
    let first = schedule(spec.clone(), Some(settled("2025-03-01T10:00:20Z")));
    let failed_1 = run(
        &first,
        "2025-03-01T10:00:10Z",
        Some(RunPhase::Failed),
        Some("2025-03-01T10:00:12Z"),
    );
    let d = decide(
        &loaded(first, vec![failed_1.clone()]),
        at("2025-03-01T10:00:21Z"),
    );
    assert!(d.handlers.is_empty());
    assert_eq!(d.status.consecutive_failures, 1);
    assert_eq!(d.status.handled, [failed_1.name_any()]);

    let second = schedule(spec, Some(d.status));
    let failed_2 = run(
        &second,
        "2025-03-01T10:00:20Z",
        Some(RunPhase::Failed),
        Some("2025-03-01T10:00:22Z"),
    );
    let d = decide(
        &loaded(second.clone(), vec![failed_1.clone(), failed_2.clone()]),
        at("2025-03-01T10:00:23Z"),
    );
    assert_eq!(d.status.consecutive_failures, 2);
    let handler = &d.handlers[0];
    assert_eq!(handler.reason, "HandlerStarted");
    assert_eq!(handler.run.labels()[HANDLER_LABEL], "onFailure");
    assert_eq!(handler.run.spec.flow_ref.as_ref().unwrap().name, "alert");
    assert_eq!(
        handler.run.spec.inputs,
        json!({"schedule": "tick", "run": failed_2.name_any(), "error": {"message": "boom"},
               "scheduledFor": "2025-03-01T10:00:20Z"})
    );
    // Handled once: the next reconcile does not start it again.
    let third = schedule(
        json!({"onFailure": {"flowRef": {"name": "alert"}, "times": 2}}),
        Some(d.status),
    );
    let d = decide(
        &loaded(third, vec![failed_1, failed_2]),
        at("2025-03-01T10:00:24Z"),
    );
    assert!(d.handlers.is_empty());
}

#[test]
fn history_beyond_the_limits_is_deleted_oldest_first() {
    let schedule = schedule(
        json!({"successfulRunsHistoryLimit": 2, "failedRunsHistoryLimit": 0}),
        Some(settled("2025-03-01T10:00:50Z")),
    );
    let runs: Vec<FlowRun> = ["10", "20", "30", "40"]
        .iter()
        .map(|s| {
            let t = format!("2025-03-01T10:00:{s}Z");
            run(&schedule, &t, Some(RunPhase::Succeeded), Some(&t))
        })
        .chain([run(
            &schedule,
            "2025-03-01T10:00:50Z",
            Some(RunPhase::Failed),
            Some("2025-03-01T10:00:51Z"),
        )])
        .collect();
    let d = decide(&loaded(schedule, runs.clone()), at("2025-03-01T10:00:52Z"));
    let mut deleted = d.delete.clone();
    deleted.sort();
    let mut expected = vec![runs[0].name_any(), runs[1].name_any(), runs[4].name_any()];
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(
        d.status.last_successful_time,
        Some(to_time(at("2025-03-01T10:00:40Z")))
    );
}

#[test]
fn occurrences_before_an_edit_of_the_expression_are_not_due() {
    let status = settled("2025-03-01T10:00:10Z");
    let edited = schedule(json!({"schedule": "*/5 * * * * *"}), Some(status));
    let d = decide(&loaded(edited, vec![]), at("2025-03-01T10:01:02Z"));
    assert!(d.create.is_empty(), "{:?}", d.create);
    let since = d.status.schedule_since.as_ref().unwrap();
    assert_eq!(since.time, to_time(at("2025-03-01T10:01:02Z")));
    let next = decide(
        &loaded(
            schedule(json!({"schedule": "*/5 * * * * *"}), Some(d.status)),
            vec![],
        ),
        at("2025-03-01T10:01:05Z"),
    );
    assert_eq!(next.create.len(), 1);
}

#[test]
fn an_unreadable_schedule_is_stalled_with_a_stable_time() {
    let meta = schedule(json!({}), None).metadata;
    let status = unreadable(&meta, "spec.catchUp: invalid type");
    assert_eq!(status, unreadable(&meta, "spec.catchUp: invalid type"));
    let (s, reason, message) = condition(&status, "Stalled");
    assert_eq!((s, reason), ("True", "Unreadable"));
    assert!(message.contains("spec.catchUp"));
}
