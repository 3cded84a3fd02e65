//! Fire times on the days the clock changes, worked out by hand from the zones' rules (checked
//! against Python's zoneinfo).

use super::tests::{Case, check, rfc3339, utc};
use croner::parser::{CronParser, Seconds};

pub(super) const TABLE: &[Case] = &[
    // A zone with a half-hour offset.
    (
        "0 0 * * *",
        "Asia/Kolkata",
        "2025-01-01T00:00:00Z",
        &["2025-01-02T00:00:00+05:30"],
    ),
    // Europe/Berlin, spring forward 2025-03-30: 02:00 CET → 03:00 CEST (01:00 UTC).
    // A fixed time in the gap fires at its end; on the other days as written.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2025-03-28T12:00:00Z",
        &[
            "2025-03-29T02:30:00+01:00",
            "2025-03-30T03:00:00+02:00",
            "2025-03-31T02:30:00+02:00",
        ],
    ),
    // Two times in the gap fire once, together (croner alone skips both).
    (
        "0,30 2 * * *",
        "Europe/Berlin",
        "2025-03-29T12:00:00Z",
        &[
            "2025-03-30T03:00:00+02:00",
            "2025-03-31T02:00:00+02:00",
            "2025-03-31T02:30:00+02:00",
        ],
    ),
    // An interval: the gap's times collapse into its end, which the schedule names anyway.
    (
        "*/30 * * * *",
        "Europe/Berlin",
        "2025-03-30T00:10:00Z",
        &[
            "2025-03-30T01:30:00+01:00",
            "2025-03-30T03:00:00+02:00",
            "2025-03-30T03:30:00+02:00",
        ],
    ),
    // Every hour at :05: 02:05 does not exist and fires at 03:00.
    (
        "5 * * * *",
        "Europe/Berlin",
        "2025-03-30T00:00:00Z",
        &[
            "2025-03-30T01:05:00+01:00",
            "2025-03-30T03:00:00+02:00",
            "2025-03-30T03:05:00+02:00",
        ],
    ),
    // Europe/Berlin, fall back 2025-10-26: 03:00 CEST → 02:00 CET (01:00 UTC); 02:xx twice.
    // A fixed time fires once, in the first pass.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2025-10-25T12:00:00Z",
        &["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"],
    ),
    // Named hours fire once each.
    (
        "0 1-3 * * *",
        "Europe/Berlin",
        "2025-10-25T22:00:00Z",
        &[
            "2025-10-26T01:00:00+02:00",
            "2025-10-26T02:00:00+02:00",
            "2025-10-26T03:00:00+01:00",
        ],
    ),
    // From inside the second pass, a named time already fired in the first is not repeated.
    (
        "0,30 2 * * *",
        "Europe/Berlin",
        "2025-10-26T01:10:00Z",
        &["2025-10-27T02:00:00+01:00"],
    ),
    // Hour `*`: both passes, every 20 minutes of real time.
    (
        "*/20 * * * *",
        "Europe/Berlin",
        "2025-10-26T00:30:00Z",
        &[
            "2025-10-26T02:40:00+02:00",
            "2025-10-26T02:00:00+01:00",
            "2025-10-26T02:20:00+01:00",
            "2025-10-26T02:40:00+01:00",
            "2025-10-26T03:00:00+01:00",
        ],
    ),
    (
        "*/20 * * * *",
        "Europe/Berlin",
        "2025-10-26T01:10:00Z",
        &["2025-10-26T02:20:00+01:00", "2025-10-26T02:40:00+01:00"],
    ),
    // From the first pass past the wall time: the second pass's 02:45 comes before 03:45.
    (
        "45 * * * *",
        "Europe/Berlin",
        "2025-10-26T00:50:00Z",
        &["2025-10-26T02:45:00+01:00", "2025-10-26T03:45:00+01:00"],
    ),
    // America/New_York, spring forward 2025-03-09: 02:00 EST → 03:00 EDT (07:00 UTC).
    (
        "30 2 * * *",
        "America/New_York",
        "2025-03-08T12:00:00Z",
        &["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"],
    ),
    (
        "0 2 * * *",
        "America/New_York",
        "2025-03-08T12:00:00Z",
        &["2025-03-09T03:00:00-04:00", "2025-03-10T02:00:00-04:00"],
    ),
    (
        "* * * * * *",
        "America/New_York",
        "2025-03-09T06:59:58Z",
        &[
            "2025-03-09T01:59:59-05:00",
            "2025-03-09T03:00:00-04:00",
            "2025-03-09T03:00:01-04:00",
        ],
    ),
    // America/New_York, fall back 2025-11-02: 02:00 EDT → 01:00 EST (06:00 UTC); 01:xx twice.
    (
        "30 1 * * *",
        "America/New_York",
        "2025-11-01T12:00:00Z",
        &["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"],
    ),
    (
        "*/30 1 * * *",
        "America/New_York",
        "2025-11-02T04:00:00Z",
        &[
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:30:00-04:00",
            "2025-11-03T01:00:00-05:00",
        ],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2025-11-02T04:30:00Z",
        &[
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T02:00:00-05:00",
        ],
    ),
    (
        "* * * * * *",
        "America/New_York",
        "2025-11-02T05:59:58Z",
        &[
            "2025-11-02T01:59:59-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T01:00:01-05:00",
        ],
    ),
    // Southern hemisphere: Sydney springs forward 2025-10-05, 02:00 AEST → 03:00 AEDT.
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2025-10-04T00:00:00Z",
        &["2025-10-05T03:00:00+11:00", "2025-10-06T02:30:00+11:00"],
    ),
];

#[test]
fn fire_times_match_the_daylight_saving_table() {
    check(TABLE);
}

#[test]
fn croner_alone_skips_listed_times_in_a_gap_which_is_why_the_mapping_is_ours() {
    // What croner 4 does by itself for `0,30 2 * * *` on Berlin's spring-forward day: no run
    // that day (a list is an "interval" job to it). The table above expects one at 03:00.
    let raw: croner::Cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse("0,30 2 * * *")
        .unwrap();
    let after = utc("2025-03-29T12:00:00Z").with_timezone(&chrono_tz::Europe::Berlin);
    let next = raw.find_next_occurrence(&after, false).unwrap();
    assert_eq!(rfc3339(&next), "2025-03-31T02:00:00+02:00");
}
