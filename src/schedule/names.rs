//! Deterministic names of the runs a Schedule creates.
//!
//! A scheduled run's name is a function of the schedule and the instant, so creating it twice
//! (after a restart, a repeated reconcile, or from a second replica) meets the existing run.

use crate::k8s::api::naming::derived_name;
use chrono::{DateTime, Utc};

/// `<schedule>-<unix seconds>`, shortened with a hash when too long for a DNS label.
pub fn run_name(schedule: &str, scheduled_for: DateTime<Utc>) -> String {
    derived_name(schedule, &scheduled_for.timestamp().to_string())
}

/// `<schedule>-manual-<unix seconds>-<6 letters from entropy>`. A scheduled name ends in digits
/// (or in a hash of its exact identity), a manual one in letters: they never meet.
pub fn manual_run_name(schedule: &str, now: DateTime<Utc>, entropy: u64) -> String {
    let mut letters = String::with_capacity(6);
    let mut rest = entropy;
    for _ in 0..6 {
        letters.push(char::from(b'a' + (rest % 26) as u8));
        rest /= 26;
    }
    derived_name(schedule, &format!("manual-{}-{letters}", now.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::api::naming::MAX_NAME;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn scheduled_names_are_the_schedule_and_the_unix_second() {
        // date -u -d 2025-03-30T01:00:00Z +%s
        assert_eq!(
            run_name("nightly", at("2025-03-30T01:00:00Z")),
            "nightly-1743296400"
        );
        assert_eq!(
            run_name("nightly", at("2025-03-30T01:00:00Z")),
            run_name("nightly", at("2025-03-30T01:00:00Z"))
        );
    }

    #[test]
    fn long_names_are_shortened_and_stay_distinct() {
        let schedule = "a-schedule-with-a-very-long-name-that-fills-the-whole-label-alone";
        let one = run_name(schedule, at("2025-03-30T01:00:00Z"));
        let two = run_name(schedule, at("2025-03-30T01:00:01Z"));
        assert!(one.len() <= MAX_NAME, "{one}");
        assert_ne!(one, two);
    }

    #[test]
    fn manual_names_differ_from_scheduled_ones() {
        let now = at("2025-03-30T01:00:00Z");
        let manual = manual_run_name("nightly", now, 0);
        assert_eq!(manual, "nightly-manual-1743296400-aaaaaa");
        assert_ne!(manual_run_name("nightly", now, 1), manual);
        // A schedule named like another's manual prefix still gets digits at the end.
        let scheduled = run_name("nightly-manual-1743296400", now);
        assert!(scheduled.ends_with("1743296400") && !manual.ends_with(char::is_numeric));
    }
}
