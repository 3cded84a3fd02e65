//! Fire times worked out by hand from the calendar and the zones' rules (checked against
//! Python's zoneinfo), never by running the code under test.

use super::*;
use chrono::SecondsFormat;

const TABLE: &[Case] = &[
    // Plain fields, ranges, steps, lists.
    (
        "*/15 * * * *",
        "UTC",
        "2025-01-01T00:07:00Z",
        &[
            "2025-01-01T00:15:00+00:00",
            "2025-01-01T00:30:00+00:00",
            "2025-01-01T00:45:00+00:00",
        ],
    ),
    (
        "0 8-18/2 * * *",
        "UTC",
        "2025-01-01T17:00:00Z",
        &[
            "2025-01-01T18:00:00+00:00",
            "2025-01-02T08:00:00+00:00",
            "2025-01-02T10:00:00+00:00",
        ],
    ),
    (
        "5,35 */6 * * *",
        "UTC",
        "2025-01-01T05:00:00Z",
        &[
            "2025-01-01T06:05:00+00:00",
            "2025-01-01T06:35:00+00:00",
            "2025-01-01T12:05:00+00:00",
        ],
    ),
    (
        "30 4 1,15 * *",
        "UTC",
        "2025-01-02T00:00:00Z",
        &["2025-01-15T04:30:00+00:00", "2025-02-01T04:30:00+00:00"],
    ),
    // Strictly after: an instant on a fire time is not returned, a fraction past it neither.
    (
        "0 * * * *",
        "UTC",
        "2025-01-01T10:00:00Z",
        &["2025-01-01T11:00:00+00:00"],
    ),
    (
        "0 * * * *",
        "UTC",
        "2025-01-01T09:59:59.900Z",
        &["2025-01-01T10:00:00+00:00"],
    ),
    // Names, in any case; 2025-01-03 is a Friday.
    (
        "0 9 * * MON-FRI",
        "UTC",
        "2025-01-03T10:00:00Z",
        &["2025-01-06T09:00:00+00:00", "2025-01-07T09:00:00+00:00"],
    ),
    (
        "0 12 1 JAN,jul *",
        "UTC",
        "2025-01-31T13:00:00Z",
        &["2025-07-01T12:00:00+00:00", "2026-01-01T12:00:00+00:00"],
    ),
    (
        "0 0 * * sun",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"],
    ),
    // Sunday is 0 and 7.
    (
        "0 0 * * 0",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"],
    ),
    (
        "0 0 * * 7",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"],
    ),
    (
        "0 0 * * 5-7",
        "UTC",
        "2025-01-01T00:00:00Z",
        &[
            "2025-01-03T00:00:00+00:00",
            "2025-01-04T00:00:00+00:00",
            "2025-01-05T00:00:00+00:00",
            "2025-01-10T00:00:00+00:00",
        ],
    ),
    // 6 fields: leading seconds; the same time written with 5 and 6 fields.
    (
        "*/20 * * * * *",
        "UTC",
        "2025-01-01T00:00:05Z",
        &[
            "2025-01-01T00:00:20+00:00",
            "2025-01-01T00:00:40+00:00",
            "2025-01-01T00:01:00+00:00",
        ],
    ),
    (
        "30 0 12 * * *",
        "UTC",
        "2025-01-01T12:00:30Z",
        &["2025-01-02T12:00:30+00:00"],
    ),
    (
        "0 12 * * *",
        "UTC",
        "2025-01-01T11:00:00Z",
        &["2025-01-01T12:00:00+00:00", "2025-01-02T12:00:00+00:00"],
    ),
    (
        "0 0 12 * * *",
        "UTC",
        "2025-01-01T11:00:00Z",
        &["2025-01-01T12:00:00+00:00", "2025-01-02T12:00:00+00:00"],
    ),
    // Day of month OR day of week: the 13th (a Monday in January 2025) or any Friday.
    (
        "0 0 13 * FRI",
        "UTC",
        "2025-01-01T00:00:00Z",
        &[
            "2025-01-03T00:00:00+00:00",
            "2025-01-10T00:00:00+00:00",
            "2025-01-13T00:00:00+00:00",
            "2025-01-17T00:00:00+00:00",
        ],
    ),
    // With one of them `*` or `?`, only the other counts.
    (
        "0 0 ? * MON",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-06T00:00:00+00:00", "2025-01-13T00:00:00+00:00"],
    ),
    (
        "0 0 1 * ?",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"],
    ),
    // L: last day of the month, February 29 in a leap year.
    (
        "0 0 L * *",
        "UTC",
        "2024-01-31T01:00:00Z",
        &[
            "2024-02-29T00:00:00+00:00",
            "2024-03-31T00:00:00+00:00",
            "2024-04-30T00:00:00+00:00",
        ],
    ),
    (
        "0 0 L 2 *",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-02-28T00:00:00+00:00", "2026-02-28T00:00:00+00:00"],
    ),
    // 6L: the last Saturday.
    (
        "0 0 * * 6L",
        "UTC",
        "2025-01-01T00:00:00Z",
        &[
            "2025-01-25T00:00:00+00:00",
            "2025-02-22T00:00:00+00:00",
            "2025-03-29T00:00:00+00:00",
        ],
    ),
    // #: the second Friday, the first Monday.
    (
        "0 0 * * FRI#2",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-10T00:00:00+00:00", "2025-02-14T00:00:00+00:00"],
    ),
    (
        "0 0 * * 1#1",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-01-06T00:00:00+00:00", "2025-02-03T00:00:00+00:00"],
    ),
    // The fifth Friday of February: only in a leap year whose February starts on a Friday.
    (
        "0 0 * 2 FRI#5",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2036-02-29T00:00:00+00:00"],
    ),
    // W: the weekday nearest the 15th (Sunday 2025-06-15 → Monday 16th; Tuesday 2025-07-15).
    (
        "0 0 15W * *",
        "UTC",
        "2025-06-01T00:00:00Z",
        &["2025-06-16T00:00:00+00:00", "2025-07-15T00:00:00+00:00"],
    ),
    // 1W when the 1st is a Saturday (2025-02-01) stays in the month: Monday 3rd.
    (
        "0 0 1W 2 *",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-02-03T00:00:00+00:00"],
    ),
    // LW: the last weekday; 2025-05-31 is a Saturday.
    (
        "0 0 LW 5 *",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-05-30T00:00:00+00:00"],
    ),
    // February 29: every four years, and eight across 2100, which is not a leap year.
    (
        "0 0 29 2 *",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
    ),
    (
        "0 0 29 2 *",
        "UTC",
        "2096-03-01T00:00:00Z",
        &["2104-02-29T00:00:00+00:00"],
    ),
    (
        "59 23 L 12 *",
        "UTC",
        "2025-01-01T00:00:00Z",
        &["2025-12-31T23:59:00+00:00"],
    ),
    // Every macro.
    (
        "@hourly",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2025-01-01T01:00:00+00:00", "2025-01-01T02:00:00+00:00"],
    ),
    (
        "@daily",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00"],
    ),
    (
        "@weekly",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"],
    ),
    (
        "@monthly",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"],
    ),
    (
        "@yearly",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"],
    ),
    (
        "@ANNUALLY",
        "UTC",
        "2025-01-01T00:30:00Z",
        &["2026-01-01T00:00:00+00:00"],
    ),
];

/// (expression, zone, after, the next fire times)
pub(super) type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

pub(super) fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(super) fn rfc3339(t: &DateTime<Tz>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Checks every case, reporting all that differ.
pub(super) fn check(table: &[Case]) {
    let mut failures = Vec::new();
    for (expression, zone, after, expected) in table {
        let cron = Cron::parse(expression, zone)
            .unwrap_or_else(|e| panic!("{expression:?} in {zone}: {e}"));
        let got: Vec<String> = cron
            .next_n(utc(after), expected.len())
            .iter()
            .map(rfc3339)
            .collect();
        if got != *expected {
            failures.push(format!(
                "{expression:?} in {zone} after {after}:\n  want {expected:?}\n  got  {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fire_times_match_the_calendar_table() {
    check(TABLE);
    assert!(
        TABLE.len() + super::dst_tests::TABLE.len() >= 40,
        "at least 40 cases in all"
    );
}

#[test]
fn next_after_and_the_iterator_agree() {
    let cron = Cron::parse("*/20 * * * *", "Europe/Berlin").unwrap();
    let mut after = utc("2025-10-25T23:00:00Z");
    for expected in cron.iter_after(after).take(12) {
        let next = cron.next_after(after).unwrap();
        assert_eq!(next, expected);
        after = next.with_timezone(&Utc);
    }
}

/// (expression, zone, the start of the error message)
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "61 * * * *",
        "UTC",
        "schedule \"61 * * * *\": minute field \"61\" is invalid (",
    ),
    (
        "0 24 * * *",
        "UTC",
        "schedule \"0 24 * * *\": hour field \"24\" is invalid (",
    ),
    (
        "0 0 * 13 *",
        "UTC",
        "schedule \"0 0 * 13 *\": month field \"13\" is invalid (",
    ),
    (
        "0 0 * * 8",
        "UTC",
        "schedule \"0 0 * * 8\": day-of-week field \"8\" is invalid (",
    ),
    (
        "0 0 0 * *",
        "UTC",
        "schedule \"0 0 0 * *\": day-of-month field \"0\" is invalid (",
    ),
    (
        "60 0 0 * * *",
        "UTC",
        "schedule \"60 0 0 * * *\": second field \"60\" is invalid (",
    ),
    (
        "0 0 * * FOO",
        "UTC",
        "schedule \"0 0 * * FOO\": day-of-week field \"FOO\" is invalid (",
    ),
    (
        "0 0 1 1 * 2030",
        "UTC",
        "schedule \"0 0 1 1 * 2030\": day-of-week field \"2030\" is invalid (",
    ),
    (
        "0 0 0 1 1 * 2030",
        "UTC",
        "schedule \"0 0 0 1 1 * 2030\": has 7 fields, but a year field is not supported",
    ),
    (
        "* * * *",
        "UTC",
        "schedule \"* * * *\": has 4 field(s); use 5 fields",
    ),
    ("", "UTC", "schedule \"\": is empty; use 5 fields"),
    (
        "@reboot",
        "UTC",
        "schedule \"@reboot\": unknown macro @reboot; use 5 fields",
    ),
    (
        "@every 5m",
        "UTC",
        "schedule \"@every 5m\": unknown macro @every 5m",
    ),
    (
        "0 0 * * +1",
        "UTC",
        "schedule \"0 0 * * +1\": day-of-week field \"+1\": `+`",
    ),
    (
        "0 0 30 2 *",
        "UTC",
        "schedule \"0 0 30 2 *\": can never fire",
    ),
    (
        "0 0 31 4,6,9,11 *",
        "UTC",
        "schedule \"0 0 31 4,6,9,11 *\": can never fire",
    ),
    (
        "0 0 * * *",
        "Mars/Olympus",
        "timeZone \"Mars/Olympus\": is not a known IANA time zone",
    ),
    (
        "0 0 * * *",
        "europe/berlin",
        "timeZone \"europe/berlin\": is not a known IANA time zone",
    ),
    (
        "0 0 * * *",
        "",
        "timeZone \"\": is not a known IANA time zone",
    ),
];

#[test]
fn invalid_expressions_and_zones_are_refused_naming_the_field() {
    let mut failures = Vec::new();
    for (expression, zone, message) in REFUSED {
        match Cron::parse(expression, zone) {
            Ok(cron) => failures.push(format!("{expression:?} in {zone:?} was accepted: {cron:?}")),
            Err(e) if !e.to_string().starts_with(message) => {
                failures.push(format!(
                    "{expression:?} in {zone:?}:\n  want {message}…\n  got  {e}"
                ));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_say_which_field_of_a_schedule_is_wrong() {
    assert_eq!(
        Cron::parse("0 0 30 2 *", "UTC").unwrap_err().field(),
        "schedule"
    );
    assert_eq!(
        Cron::parse("0 0 * * *", "Nowhere").unwrap_err().field(),
        "timeZone"
    );
    let range = Cron::parse("61 * * * *", "UTC").unwrap_err().to_string();
    assert!(range.ends_with("it takes 0-59"), "{range}");
}
