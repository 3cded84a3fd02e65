//! `millrace schedule next` through the binary: output contract and exit codes.

mod support {
    pub mod local;
}

use serde_json::{Value, json};
use std::process::Output;
use support::local::millrace;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn prints_the_next_fire_times_with_the_zones_offset() {
    // Berlin springs forward on 2025-03-30: 02:30 does not exist that day and fires at 03:00.
    let out = millrace(&[
        "schedule",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2025-03-28T12:00:00Z",
        "-n",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2025-03-29T02:30:00+01:00\n2025-03-30T03:00:00+02:00\n2025-03-31T02:30:00+02:00\n"
    );
}

#[test]
fn prints_five_by_default_in_utc() {
    let out = millrace(&[
        "schedule",
        "next",
        "@hourly",
        "--after",
        "2025-01-01T00:30:00+01:00",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2025-01-01T00:00:00+00:00\n2025-01-01T01:00:00+00:00\n2025-01-01T02:00:00+00:00\n\
         2025-01-01T03:00:00+00:00\n2025-01-01T04:00:00+00:00\n"
    );
}

#[test]
fn without_after_the_times_start_from_now() {
    let out = millrace(&["schedule", "next", "*/10 * * * * *", "-n", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let times: Vec<String> = serde_json::from_str(&stdout(&out)).unwrap();
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let (first, second) = (parse(&times[0]), parse(&times[1]));
    assert!(
        first > now - chrono::TimeDelta::seconds(60)
            && first <= now + chrono::TimeDelta::seconds(10)
    );
    assert_eq!(second - first, chrono::TimeDelta::seconds(10));
}

#[test]
fn json_is_an_array_of_the_same_strings() {
    let out = millrace(&[
        "schedule",
        "next",
        "0 1 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2025-11-01T12:00:00Z",
        "-n",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // 01:00 on the fall-back day happens twice; it fires once, at the first (EDT).
    assert_eq!(
        value,
        json!(["2025-11-02T01:00:00-04:00", "2025-11-03T01:00:00-05:00"])
    );
}

#[test]
fn a_bad_expression_exits_2_naming_the_field() {
    let out = millrace(&["schedule", "next", "61 * * * *"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.starts_with("error: schedule \"61 * * * *\": minute field \"61\" is invalid"),
        "{err}"
    );

    let never = millrace(&["schedule", "next", "0 0 30 2 *"]);
    assert_eq!(never.status.code(), Some(2));
    assert!(
        stderr(&never).contains("can never fire"),
        "{}",
        stderr(&never)
    );

    let years = millrace(&["schedule", "next", "0 0 0 1 1 * 2030"]);
    assert_eq!(years.status.code(), Some(2));
    assert!(
        stderr(&years).contains("year field is not supported"),
        "{}",
        stderr(&years)
    );
}

#[test]
fn a_bad_zone_exits_2_naming_the_field() {
    let out = millrace(&["schedule", "next", "@daily", "--tz", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: timeZone \"Mars/Olympus\": is not a known IANA time zone"),
        "{err}"
    );
}

#[test]
fn a_bad_after_exits_2() {
    let out = millrace(&["schedule", "next", "@daily", "--after", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: --after \"yesterday\" is not an RFC 3339 instant"),
        "{err}"
    );
}
