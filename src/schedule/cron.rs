//! A cron expression in a time zone, and its fire times.
//!
//! croner parses the expression and matches it against wall-clock times; the mapping from wall
//! clock to instants is done here, so that the daylight-saving rules are ours and explicit:
//! - a wall time inside a spring-forward gap fires once, at the gap's end (several such times
//!   fire once together; croner alone skips them unless the hour, minute and second are single
//!   values);
//! - a wall time inside a fall-back overlap fires once, at its first occurrence — except when the
//!   hour field is `*`: such a schedule is a frequency, not a clock time, and fires in both passes
//!   of the repeated hour so that real time between runs stays regular.
//!
//! Everything works at whole seconds: fire times always fall on a second.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use std::fmt;

/// A parsed, valid schedule: it fires at least once (see [`Cron::parse`]).
#[derive(Clone)]
pub struct Cron {
    expression: String,
    zone: Tz,
    pattern: croner::Cron,
    /// The hour field is `*`: a fall-back overlap fires in both passes.
    every_hour: bool,
}

/// Why an expression or a zone was refused, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("schedule {expression:?}: {problem}")]
    Schedule { expression: String, problem: String },
    #[error("timeZone {zone:?}: {problem}")]
    TimeZone { zone: String, problem: String },
}

impl CronError {
    /// The field of a Schedule the error is about: `schedule` or `timeZone`.
    pub fn field(&self) -> &'static str {
        match self {
            CronError::Schedule { .. } => "schedule",
            CronError::TimeZone { .. } => "timeZone",
        }
    }
}

const MACROS: [(&str, &str); 6] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W or ?"),
    ("month", "1-12 or JAN-DEC"),
    (
        "day-of-week",
        "0-7 (0 and 7 are Sunday), SUN-SAT, L, # or ?",
    ),
];

const FORMS: &str = "use 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, \
                     or one of @hourly, @daily, @weekly, @monthly, @yearly, @annually";

impl Cron {
    /// Parses `expression` (5 fields, 6 with leading seconds, or a macro) in the IANA `zone`.
    ///
    /// An expression that can never fire is refused here. The check is bounded: the day fields
    /// (month, day of month, day of week with `L`, `W`, `#`) only see a date's month, day, month
    /// length and weekday, which repeat with the shape of its year (leap or not, the weekday of
    /// January 1st). All 14 shapes occur in 2001–2028, so a schedule that matches no date of
    /// those 28 years matches no date at all; one that matches a date fires on it, because every
    /// time field is non-empty and every wall time maps to an instant.
    pub fn parse(expression: &str, zone: &str) -> Result<Cron, CronError> {
        let zone_value: Tz = zone.parse().map_err(|_| CronError::TimeZone {
            zone: zone.to_string(),
            problem: "is not a known IANA time zone; use a name such as UTC, Europe/Berlin \
                      or America/New_York"
                .to_string(),
        })?;
        let invalid = |problem: String| CronError::Schedule {
            expression: expression.to_string(),
            problem,
        };
        let fields = fields_of(expression).map_err(invalid)?;
        let text = fields.join(" ");
        let pattern = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(&text)
            .map_err(|e| invalid(field_problem(&fields, &e)))?;
        let cron = Cron {
            expression: expression.to_string(),
            zone: zone_value,
            every_hour: fields[fields.len() - 4] == "*",
            pattern,
        };
        if !cron.fires_on_some_date() {
            return Err(invalid(
                "can never fire: no date matches its day-of-month, month and day-of-week fields"
                    .to_string(),
            ));
        }
        Ok(cron)
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`; `None` only past year 5000.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let after = floor_to_second(after);
        let overlap = self.overlap_at(after);
        // The highest wall time the clock has shown up to `after`: every wall time above it
        // is still to come (the clock shows it again in a fall-back's second pass).
        let reached = match &overlap {
            Some(o) if after >= o.transition => o.end_wall - TimeDelta::seconds(1),
            _ => self.wall(after),
        };
        let first = self
            .wall_match(reached, false)
            .map(|wall| self.earliest_instant(wall));
        let second_pass = match &overlap {
            Some(o) if self.every_hour => {
                let (from, inclusive) = if after >= o.transition {
                    (self.wall(after), false)
                } else {
                    (o.start_wall, true)
                };
                self.wall_match(from, inclusive)
                    .filter(|wall| *wall < o.end_wall)
                    .map(|wall| wall.and_utc() - TimeDelta::seconds(o.later_offset))
            }
            _ => None,
        };
        let next = match (first, second_pass) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|instant| instant.with_timezone(&self.zone))
    }

    /// Fire times strictly after `after`, in order.
    pub fn iter_after(&self, after: DateTime<Utc>) -> Occurrences<'_> {
        Occurrences { cron: self, after }
    }

    /// The first `n` fire times strictly after `after`.
    pub fn next_n(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        self.iter_after(after).take(n).collect()
    }

    fn wall(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.zone).naive_local()
    }

    fn offset_at(&self, instant: DateTime<Utc>) -> i64 {
        use chrono::Offset;
        let offset = self.zone.offset_from_utc_datetime(&instant.naive_utc());
        i64::from(offset.fix().local_minus_utc())
    }

    /// The first wall time after `from` (or at it) that the expression matches. croner searches
    /// a zone without transitions here, so it sees the plain wall clock.
    fn wall_match(&self, from: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        self.pattern
            .find_next_occurrence(&from.and_utc(), inclusive)
            .ok()
            .map(|found| found.naive_utc())
    }

    /// The first instant whose wall clock shows `wall` or later: the instant itself, the first
    /// pass of an overlap, or the end of a gap.
    fn earliest_instant(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(at) => at.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
            LocalResult::None => {
                // The transition lies within the widest offsets a zone can have (−12 h … +14 h).
                let target = wall.and_utc();
                first_second(
                    target - TimeDelta::hours(15),
                    target + TimeDelta::hours(13),
                    |s| self.wall(s) >= wall,
                )
            }
        }
    }

    /// The fall-back overlap `instant` lies in, if it does.
    fn overlap_at(&self, instant: DateTime<Utc>) -> Option<Overlap> {
        let LocalResult::Ambiguous(earlier, later) =
            self.zone.from_local_datetime(&self.wall(instant))
        else {
            return None;
        };
        let (earlier, later) = (earlier.with_timezone(&Utc), later.with_timezone(&Utc));
        let before = self.offset_at(earlier);
        let after = self.offset_at(later);
        let transition = first_second(earlier, later, |s| self.offset_at(s) != before);
        Some(Overlap {
            transition,
            start_wall: transition.naive_utc() + TimeDelta::seconds(after),
            end_wall: transition.naive_utc() + TimeDelta::seconds(before),
            later_offset: after,
        })
    }

    fn fires_on_some_date(&self) -> bool {
        let Some(mut day) = NaiveDate::from_ymd_opt(2001, 1, 1) else {
            return false;
        };
        while day.year() <= 2028 {
            let weekday =
                croner::time::Weekday::from_days_from_sunday(day.weekday().num_days_from_sunday());
            let p = &self.pattern.pattern;
            let matches = p.month_match(day.month()).unwrap_or(false)
                && p.day_match(day.year(), day.month(), day.day(), weekday)
                    .unwrap_or(false);
            if matches {
                let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
                return self
                    .wall_match(midnight, true)
                    .is_some_and(|found| found.date() == day);
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => return false,
            }
        }
        false
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?} in {})", self.expression, self.zone)
    }
}

/// A fall-back transition: wall times in `start_wall..end_wall` occur twice.
struct Overlap {
    /// The first instant on the later (smaller) offset.
    transition: DateTime<Utc>,
    start_wall: NaiveDateTime,
    end_wall: NaiveDateTime,
    /// The offset after the transition, in seconds.
    later_offset: i64,
}

/// Successive fire times; see [`Cron::iter_after`].
pub struct Occurrences<'a> {
    cron: &'a Cron,
    after: DateTime<Utc>,
}

impl Iterator for Occurrences<'_> {
    type Item = DateTime<Tz>;

    fn next(&mut self) -> Option<DateTime<Tz>> {
        let next = self.cron.next_after(self.after)?;
        self.after = next.with_timezone(&Utc);
        Some(next)
    }
}

/// The fields of an expression, macros expanded; refuses forms croner would misread.
fn fields_of(expression: &str) -> Result<Vec<String>, String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(format!("is empty; {FORMS}"));
    }
    let expanded = if trimmed.starts_with('@') {
        let lower = trimmed.to_ascii_lowercase();
        match MACROS.iter().find(|(name, _)| *name == lower) {
            Some((_, fields)) => *fields,
            None => return Err(format!("unknown macro {trimmed}; {FORMS}")),
        }
    } else {
        trimmed
    };
    let fields: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
    match fields.len() {
        5 | 6 => {}
        7 => {
            return Err(format!(
                "has 7 fields, but a year field is not supported; {FORMS}"
            ));
        }
        n => return Err(format!("has {n} field(s); {FORMS}")),
    }
    let day_of_week = &fields[fields.len() - 1];
    if day_of_week.starts_with('+') {
        return Err(format!(
            "day-of-week field {day_of_week:?}: `+` (day-of-month AND day-of-week) is not \
             supported; a day matches when either field matches"
        ));
    }
    Ok(fields)
}

/// Which field croner refused and why: each field is tried alone among wildcards.
fn field_problem(fields: &[String], error: &croner::errors::CronError) -> String {
    let offset = 6 - fields.len();
    for (i, text) in fields.iter().enumerate() {
        let mut probe = ["*"; 6];
        probe[0] = "0";
        probe[i + offset] = text;
        if let Err(e) = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(&probe.join(" "))
        {
            let (name, allowed) = FIELDS[i + offset];
            return format!(
                "{name} field {text:?} is invalid ({}); it takes {allowed}",
                detail(&e)
            );
        }
    }
    format!("is invalid ({}); {FORMS}", detail(error))
}

/// croner's message without its category prefix.
fn detail(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match error {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => {
            m.trim_end_matches('.').to_string()
        }
        other => other.to_string().trim_end_matches('.').to_string(),
    }
}

fn floor_to_second(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(instant.timestamp(), 0).unwrap_or(instant)
}

/// The first whole second in `(lo, hi]` where `holds` becomes true, for a predicate false at
/// `lo`, true at `hi`, and switching once between them.
fn first_second(
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    holds: impl Fn(DateTime<Utc>) -> bool,
) -> DateTime<Utc> {
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
    let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if holds(at(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "cron_dst_tests.rs"]
mod dst_tests;
