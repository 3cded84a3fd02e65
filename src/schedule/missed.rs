//! The occurrences that fell due in a window, found without walking all of them.
//!
//! A per-second schedule after a month of downtime has 2.6 million occurrences; a decision only
//! needs how many there were (counted up to [`COUNT_CAP`], then "more than") and the latest few.
//! Counting walks forward at most `COUNT_CAP + 1` occurrences; the latest ones are found by
//! bisection on [`Cron::next_after`], about 22 calls each for a month of seconds.

use super::cron::Cron;
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;

/// Occurrences are counted exactly up to this many; beyond it the count is "more than".
pub const COUNT_CAP: usize = 100;

/// A number of occurrences, exact up to [`COUNT_CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(usize),
    MoreThan(usize),
}

impl Count {
    pub fn is_zero(self) -> bool {
        self == Count::Exact(0)
    }

    /// The smallest number this count can stand for.
    pub fn at_least(self) -> usize {
        match self {
            Count::Exact(n) => n,
            Count::MoreThan(n) => n + 1,
        }
    }

    /// This count less `n` occurrences known to be among it.
    pub fn minus(self, n: usize) -> Count {
        match self {
            Count::Exact(m) => Count::Exact(m.saturating_sub(n)),
            Count::MoreThan(m) => Count::MoreThan(m.saturating_sub(n)),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::MoreThan(n) => write!(f, "more than {n}"),
        }
    }
}

/// The occurrences in a window: how many, and the latest of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub count: Count,
    /// The latest occurrences (at most the `keep` asked for), oldest first.
    pub latest: Vec<DateTime<Utc>>,
}

/// The occurrences strictly after `after` and at or before `until`; `keep` is at most
/// [`COUNT_CAP`] (more is cut to it).
pub fn due(cron: &Cron, after: DateTime<Utc>, until: DateTime<Utc>, keep: usize) -> Due {
    let keep = keep.min(COUNT_CAP);
    let mut seen = Vec::new();
    let mut cursor = after;
    while seen.len() <= COUNT_CAP {
        match cron.next_after(cursor).map(|t| t.with_timezone(&Utc)) {
            Some(at) if at <= until => {
                seen.push(at);
                cursor = at;
            }
            _ => break,
        }
    }
    if seen.len() <= COUNT_CAP {
        let from = seen.len() - keep.min(seen.len());
        return Due {
            count: Count::Exact(seen.len()),
            latest: seen.split_off(from),
        };
    }
    let mut latest = Vec::with_capacity(keep);
    let mut bound = until;
    while latest.len() < keep {
        let Some(at) = latest_at_or_before(cron, after, bound) else {
            break;
        };
        latest.push(at);
        bound = at - TimeDelta::seconds(1);
    }
    latest.reverse();
    Due {
        count: Count::MoreThan(COUNT_CAP),
        latest,
    }
}

/// The latest occurrence in `(after, until]`.
///
/// `next_after(x) > until` holds exactly for the whole seconds `x` at or past that occurrence,
/// so the smallest such `x` is the occurrence itself: a bisection over seconds finds it.
pub fn latest_at_or_before(
    cron: &Cron,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let beyond = |s: i64| {
        DateTime::from_timestamp(s, 0)
            .and_then(|x| cron.next_after(x))
            .is_none_or(|next| next.with_timezone(&Utc) > until)
    };
    let (mut lo, mut hi) = (after.timestamp(), until.timestamp());
    if beyond(lo) {
        return None;
    }
    // `beyond(hi)` holds: the next occurrence after `until`'s second is past `until`.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if beyond(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_short_window_is_counted_exactly_and_keeps_the_latest() {
        let cron = Cron::parse("*/10 * * * * *", "UTC").unwrap();
        let due = due(
            &cron,
            utc("2025-03-01T10:00:00Z"),
            utc("2025-03-01T10:01:00Z"),
            2,
        );
        // 10:00:10 … 10:01:00: six occurrences, the window's start excluded, its end included.
        assert_eq!(due.count, Count::Exact(6));
        assert_eq!(
            due.latest,
            vec![utc("2025-03-01T10:00:50Z"), utc("2025-03-01T10:01:00Z")]
        );
    }

    #[test]
    fn a_month_of_seconds_is_capped_and_the_latest_found_by_bisection() {
        let cron = Cron::parse("* * * * * *", "Europe/Berlin").unwrap();
        let due = due(
            &cron,
            utc("2025-03-01T00:00:00Z"),
            utc("2025-03-31T00:00:00.700Z"),
            3,
        );
        assert_eq!(due.count, Count::MoreThan(COUNT_CAP));
        assert_eq!(
            due.latest,
            vec![
                utc("2025-03-30T23:59:58Z"),
                utc("2025-03-30T23:59:59Z"),
                utc("2025-03-31T00:00:00Z")
            ]
        );
    }

    #[test]
    fn bisection_finds_the_latest_across_a_sparse_stretch() {
        // Every second of the 1st of each month, asked on the 15th: the last second of the 1st.
        let cron = Cron::parse("* * * 1 * *", "UTC").unwrap();
        let latest = latest_at_or_before(
            &cron,
            utc("2025-01-20T00:00:00Z"),
            utc("2025-02-15T12:00:00Z"),
        );
        assert_eq!(latest, Some(utc("2025-02-01T23:59:59Z")));
        let none = latest_at_or_before(
            &cron,
            utc("2025-02-02T00:00:00Z"),
            utc("2025-02-15T12:00:00Z"),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn bisection_agrees_with_walking_forward_across_daylight_saving_changes() {
        // The bisection relies on `next_after` being "the next element of one fixed set"; on
        // the days the clock jumps that set has gap ends and repeated hours.
        for (expression, zone, day) in [
            ("*/20 * * * *", "Europe/Berlin", "2025-10-26"),
            ("0,30 2 * * *", "Europe/Berlin", "2025-10-26"),
            ("5 * * * *", "Europe/Berlin", "2025-03-30"),
            ("* * * * *", "America/New_York", "2025-11-02"),
        ] {
            let cron = Cron::parse(expression, zone).unwrap();
            let start = utc(&format!("{day}T00:00:00Z")) - TimeDelta::hours(6);
            let walked: Vec<DateTime<Utc>> = cron
                .iter_after(start)
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t < start + TimeDelta::hours(36))
                .collect();
            for pair in walked.windows(2) {
                let until = pair[1] - TimeDelta::seconds(1);
                assert_eq!(
                    latest_at_or_before(&cron, start, until),
                    Some(pair[0]),
                    "{expression} in {zone} up to {until}"
                );
            }
        }
    }

    #[test]
    fn counts_read_as_numbers_or_bounds() {
        assert_eq!(Count::MoreThan(100).to_string(), "more than 100");
        assert_eq!(Count::MoreThan(100).minus(1), Count::MoreThan(99));
        assert_eq!(Count::Exact(3).minus(1), Count::Exact(2));
        assert_eq!(Count::MoreThan(100).at_least(), 101);
        assert!(Count::Exact(0).is_zero());
    }
}
