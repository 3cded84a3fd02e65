//! Decisions for a schedule firing every 10 seconds (unless said otherwise), expected values
//! worked out by hand.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    format!("2025-03-01T{s}Z").parse().unwrap()
}

fn every_ten() -> Cron {
    Cron::parse("*/10 * * * * *", "UTC").unwrap()
}

fn situation<'a>(now: &str, last: Option<&str>, active: &'a [String]) -> Situation<'a> {
    Situation {
        now: t(now),
        last_scheduled: last.map(t),
        edited: t("09:00:00"),
        active,
    }
}

fn skipped(reason: SkipReason, count: usize, latest: &str) -> Skipped {
    Skipped {
        reason,
        count: Count::Exact(count),
        latest: t(latest),
    }
}

fn catch_up(n: usize) -> Policy {
    Policy {
        catch_up: n,
        ..Policy::default()
    }
}

#[test]
fn the_regular_run_is_created_and_the_next_wake_is_the_next_fire_time() {
    let plan = decide(
        &every_ten(),
        &Policy::default(),
        &situation("10:00:10.100", Some("10:00:00"), &[]),
    );
    assert_eq!(
        plan,
        Plan {
            cancel: vec![],
            create: vec![t("10:00:10")],
            skipped: vec![],
            missed: Count::Exact(0),
            last_scheduled: Some(t("10:00:10")),
            next_wake: Some(t("10:00:20")),
        }
    );
}

#[test]
fn nothing_is_due_between_fire_times() {
    let plan = decide(
        &every_ten(),
        &Policy::default(),
        &situation("10:00:15", Some("10:00:10"), &[]),
    );
    assert!(plan.create.is_empty() && plan.skipped.is_empty());
    assert_eq!(plan.last_scheduled, None);
    assert_eq!(plan.missed, Count::Exact(0));
    assert_eq!(plan.next_wake, Some(t("10:00:20")));
}

#[test]
fn after_downtime_across_three_fire_times_catch_up_decides_how_many_start() {
    // Due: 10:00:10, 10:00:20, 10:00:30.
    let at = situation("10:00:35", Some("10:00:00"), &[]);
    let none = decide(&every_ten(), &catch_up(0), &at);
    assert_eq!((none.create, none.missed), (vec![], Count::Exact(3)));
    assert_eq!(none.last_scheduled, Some(t("10:00:30")));

    let latest = decide(&every_ten(), &catch_up(1), &at);
    assert_eq!(
        (latest.create, latest.missed),
        (vec![t("10:00:30")], Count::Exact(2))
    );

    let three = decide(&every_ten(), &catch_up(3), &at);
    assert_eq!(
        (three.create, three.missed),
        (
            vec![t("10:00:10"), t("10:00:20"), t("10:00:30")],
            Count::Exact(0)
        )
    );
    let more = decide(&every_ten(), &catch_up(5), &at);
    assert_eq!(more.create.len(), 3);
    assert!(more.skipped.is_empty());
}

#[test]
fn a_single_due_occurrence_starts_even_with_catch_up_zero() {
    let plan = decide(
        &every_ten(),
        &catch_up(0),
        &situation("10:00:14", Some("10:00:00"), &[]),
    );
    assert_eq!(plan.create, vec![t("10:00:10")]);
}

#[test]
fn occurrences_past_the_deadline_are_skipped_visibly() {
    let policy = Policy {
        catch_up: 3,
        starting_deadline: Some(TimeDelta::seconds(12)),
        ..Policy::default()
    };
    // 10:00:30 is 5 s late, 10:00:20 15 s and 10:00:10 25 s.
    let plan = decide(
        &every_ten(),
        &policy,
        &situation("10:00:35", Some("10:00:00"), &[]),
    );
    assert_eq!(plan.create, vec![t("10:00:30")]);
    assert_eq!(
        plan.skipped,
        vec![skipped(SkipReason::MissedDeadline, 2, "10:00:20")]
    );
    assert_eq!(plan.missed, Count::Exact(0));

    // One occurrence, 30 s late with a 10 s deadline: nothing starts, and it says why.
    let minutely = Cron::parse("0 * * * * *", "UTC").unwrap();
    let policy = Policy {
        starting_deadline: Some(TimeDelta::seconds(10)),
        ..Policy::default()
    };
    let plan = decide(
        &minutely,
        &policy,
        &situation("10:01:30", Some("10:00:00"), &[]),
    );
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.skipped,
        vec![skipped(SkipReason::MissedDeadline, 1, "10:01:00")]
    );
    assert_eq!(plan.last_scheduled, Some(t("10:01:00")));
    // Exactly at the deadline still starts.
    let plan = decide(
        &minutely,
        &policy,
        &situation("10:01:10", Some("10:00:00"), &[]),
    );
    assert_eq!(plan.create, vec![t("10:01:00")]);
}

#[test]
fn forbid_skips_while_a_run_is_active_and_starts_one_at_a_time() {
    let active = vec!["nightly-1740823200".to_string()];
    let policy = Policy {
        concurrency: ConcurrencyPolicy::Forbid,
        catch_up: 3,
        ..Policy::default()
    };
    let busy = decide(
        &every_ten(),
        &policy,
        &situation("10:00:11", Some("10:00:00"), &active),
    );
    assert!(busy.create.is_empty() && busy.cancel.is_empty());
    assert_eq!(
        busy.skipped,
        vec![skipped(SkipReason::ForbidOverlap, 1, "10:00:10")]
    );
    assert_eq!(busy.last_scheduled, Some(t("10:00:10")));

    let idle = decide(
        &every_ten(),
        &policy,
        &situation("10:00:35", Some("10:00:00"), &[]),
    );
    assert_eq!(idle.create, vec![t("10:00:30")]);
    assert_eq!(
        idle.skipped,
        vec![skipped(SkipReason::ForbidOverlap, 2, "10:00:20")]
    );
}

#[test]
fn replace_cancels_the_active_runs_then_starts_the_latest() {
    let active = vec!["a".to_string(), "b".to_string()];
    let policy = Policy {
        concurrency: ConcurrencyPolicy::Replace,
        catch_up: 3,
        ..Policy::default()
    };
    let plan = decide(
        &every_ten(),
        &policy,
        &situation("10:00:35", Some("10:00:00"), &active),
    );
    assert_eq!(plan.cancel, active);
    assert_eq!(plan.create, vec![t("10:00:30")]);
    assert_eq!(
        plan.skipped,
        vec![skipped(SkipReason::Superseded, 2, "10:00:20")]
    );
    // Nothing due: nothing cancelled.
    let quiet = decide(
        &every_ten(),
        &policy,
        &situation("10:00:05", Some("10:00:00"), &active),
    );
    assert!(quiet.cancel.is_empty() && quiet.create.is_empty());
}

#[test]
fn suspend_and_pause_skip_with_their_reason_and_count_nothing_missed() {
    let at = situation("10:00:35", Some("10:00:00"), &[]);
    let suspended = decide(
        &every_ten(),
        &Policy {
            suspend: true,
            ..Policy::default()
        },
        &at,
    );
    assert!(suspended.create.is_empty());
    assert_eq!(
        suspended.skipped,
        vec![skipped(SkipReason::Suspended, 3, "10:00:30")]
    );
    assert_eq!(suspended.missed, Count::Exact(0));
    assert_eq!(suspended.last_scheduled, Some(t("10:00:30")));
    assert_eq!(suspended.next_wake, Some(t("10:00:40")));

    let paused = decide(
        &every_ten(),
        &Policy {
            paused_until: Some(t("10:01:00")),
            ..Policy::default()
        },
        &at,
    );
    assert!(paused.create.is_empty());
    assert_eq!(
        paused.skipped,
        vec![skipped(SkipReason::Paused, 3, "10:00:30")]
    );
    assert_eq!(paused.missed, Count::Exact(0));
}

#[test]
fn occurrences_during_a_pause_are_not_due_after_it() {
    // Paused until 10:00:25; the controller saw nothing since 10:00:00.
    let after_pause = |until: &str| Policy {
        paused_until: Some(t(until)),
        ..Policy::default()
    };
    let at = situation("10:00:35", Some("10:00:00"), &[]);
    let plan = decide(&every_ten(), &after_pause("10:00:25"), &at);
    assert_eq!(
        (plan.create, plan.missed),
        (vec![t("10:00:30")], Count::Exact(0))
    );
    // An occurrence at `pausedUntil` itself is due.
    let plan = decide(&every_ten(), &after_pause("10:00:20"), &at);
    assert_eq!(
        (plan.create, plan.missed),
        (vec![t("10:00:30")], Count::Exact(1))
    );
}

#[test]
fn occurrences_before_the_last_edit_are_never_caught_up() {
    let mut at = situation("10:00:35", Some("10:00:00"), &[]);
    at.edited = t("10:00:25");
    let plan = decide(&every_ten(), &catch_up(3), &at);
    assert_eq!(
        (plan.create, plan.missed),
        (vec![t("10:00:30")], Count::Exact(0))
    );
    // A new schedule counts from its creation.
    at.last_scheduled = None;
    at.edited = t("10:00:05");
    let plan = decide(&every_ten(), &catch_up(3), &at);
    assert_eq!(plan.create.len(), 3);
    // An edit exactly on a fire time does not make that time due.
    at.edited = t("10:00:30");
    assert!(decide(&every_ten(), &catch_up(3), &at).create.is_empty());
}

#[test]
fn a_month_of_per_second_downtime_is_decided_from_a_capped_count() {
    let cron = Cron::parse("* * * * * *", "UTC").unwrap();
    let at = Situation {
        now: "2025-03-31T00:00:00.500Z".parse().unwrap(),
        last_scheduled: Some("2025-03-01T00:00:00Z".parse().unwrap()),
        edited: "2025-02-01T00:00:00Z".parse().unwrap(),
        active: &[],
    };
    let plan = decide(&cron, &catch_up(1), &at);
    let end: DateTime<Utc> = "2025-03-31T00:00:00Z".parse().unwrap();
    assert_eq!(plan.create, vec![end]);
    assert_eq!(plan.missed, Count::MoreThan(99));
    assert_eq!(plan.next_wake, Some(end + TimeDelta::seconds(1)));

    let plan = decide(&cron, &catch_up(3), &at);
    assert_eq!(
        plan.create,
        vec![
            end - TimeDelta::seconds(2),
            end - TimeDelta::seconds(1),
            end
        ]
    );
    assert_eq!(plan.missed, Count::MoreThan(97));
}

#[test]
fn a_last_scheduled_time_ahead_of_the_clock_starts_nothing() {
    let plan = decide(
        &every_ten(),
        &Policy::default(),
        &situation("10:00:35", Some("10:05:00"), &[]),
    );
    assert!(plan.create.is_empty() && plan.last_scheduled.is_none());
}
