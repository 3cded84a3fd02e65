//! Schedule decisions: how long deciding takes after downtime, for dense and sparse schedules.
//!
//! `cargo bench --bench schedule` (or `--profile dev` to reuse the debug build)

use chrono::{DateTime, TimeDelta, Utc};
use millrace::schedule::{Cron, Policy, Situation, decide};
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(1);

fn main() {
    let now: DateTime<Utc> = "2025-03-31T00:00:00.500Z".parse().unwrap();
    let month_ago = now - TimeDelta::days(30);
    let cases = [
        (
            "per second, 30 days down, catchUp 1",
            "* * * * * *",
            "UTC",
            1,
            month_ago,
        ),
        (
            "per second, 30 days down, catchUp 100",
            "* * * * * *",
            "UTC",
            100,
            month_ago,
        ),
        (
            "per second in Berlin across DST, 30 days down",
            "* * * * * *",
            "Europe/Berlin",
            1,
            month_ago,
        ),
        (
            "every 5 min, 30 days down, catchUp 3",
            "*/5 * * * *",
            "America/New_York",
            3,
            month_ago,
        ),
        (
            "daily 02:30 Berlin, 1 year down",
            "30 2 * * *",
            "Europe/Berlin",
            1,
            now - TimeDelta::days(365),
        ),
        (
            "per second, on time (one due)",
            "* * * * * *",
            "UTC",
            1,
            now - TimeDelta::seconds(1),
        ),
    ];
    for (name, expression, zone, catch_up, last) in cases {
        let cron = Cron::parse(expression, zone).expect("a valid expression");
        let policy = Policy {
            catch_up,
            ..Policy::default()
        };
        let at = Situation {
            now,
            last_scheduled: Some(last),
            edited: last,
            active: &[],
        };
        let plan = decide(&cron, &policy, &at);
        report(
            &format!(
                "{name}: creates {}, missed {}",
                plan.create.len(),
                plan.missed
            ),
            || decide(&cron, &policy, &at),
        );
    }
    report("parse `0 0 30 2 *` (never fires, refused)", || {
        Cron::parse("0 0 30 2 *", "UTC").is_err()
    });
    report("parse `0 0 * 2 FRI#5` (fires 2036)", || {
        Cron::parse("0 0 * 2 FRI#5", "UTC").is_ok()
    });
}

/// Runs `work` for about [`RUN_FOR`] and prints the median and the slowest call.
fn report<T>(name: &str, mut work: impl FnMut() -> T) {
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < RUN_FOR || times.len() < 5 {
        let call = Instant::now();
        std::hint::black_box(work());
        times.push(call.elapsed());
    }
    times.sort();
    println!(
        "{name}: median {:.3} ms, max {:.3} ms ({} calls)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}
