//! What a Schedule does now: which occurrences to start, skip or count as missed, which active
//! runs to cancel, and when to look again. Pure: the clock and the cluster's state are inputs.
//!
//! The rules, in order:
//! 1. Due occurrences are those after both the last scheduled time and the last edit (creation,
//!    or a change of `schedule`/`timeZone`), up to now; after a pause, only those from
//!    `pausedUntil` on. Occurrences before an edit or during a pause are never due.
//! 2. Suspended or paused: every due occurrence is skipped with that reason; none is missed.
//! 3. One due occurrence is the regular run (started late if the controller was away). Several
//!    mean the controller was away across fire times: the latest `catchUp` of them are
//!    selected, the older ones are missed.
//! 4. A selected occurrence later than `startingDeadlineSeconds` is skipped (MissedDeadline).
//! 5. `Forbid` with an active run skips all selected ones; `Forbid` and `Replace` start only the
//!    latest selected (the older ones would overlap it), `Replace` cancelling the active runs.
//! 6. The plan settles every due occurrence: the caller records the latest as last scheduled.

use super::cron::Cron;
use super::missed::{self, Count};
use super::policy::{ConcurrencyPolicy, SkipReason};
use chrono::{DateTime, TimeDelta, Utc};

/// A Schedule's settings that shape the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub concurrency: ConcurrencyPolicy,
    /// `startingDeadlineSeconds`: how late an occurrence may still start.
    pub starting_deadline: Option<TimeDelta>,
    /// How many occurrences to start when several fell due at once (at most
    /// [`missed::COUNT_CAP`]).
    pub catch_up: usize,
    pub suspend: bool,
    pub paused_until: Option<DateTime<Utc>>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            concurrency: ConcurrencyPolicy::Allow,
            starting_deadline: None,
            catch_up: 1,
            suspend: false,
            paused_until: None,
        }
    }
}

/// The state the decision starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situation<'a> {
    pub now: DateTime<Utc>,
    /// The latest occurrence an earlier decision settled (status `lastScheduleTime`).
    pub last_scheduled: Option<DateTime<Utc>>,
    /// Creation, or the last change of `schedule` or `timeZone`.
    pub edited: DateTime<Utc>,
    /// Names of this schedule's runs that have not ended.
    pub active: &'a [String],
}

/// Occurrences not started for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub reason: SkipReason,
    pub count: Count,
    pub latest: DateTime<Utc>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Active runs to cancel before creating (Replace).
    pub cancel: Vec<String>,
    /// Scheduled instants to create runs for, oldest first.
    pub create: Vec<DateTime<Utc>>,
    /// At most one entry per reason.
    pub skipped: Vec<Skipped>,
    /// Due occurrences neither started nor skipped: the controller was away and they were
    /// beyond `catchUp`.
    pub missed: Count,
    /// The new last scheduled time: the latest due occurrence, if any fell due.
    pub last_scheduled: Option<DateTime<Utc>>,
    /// The next fire time after now: when to decide again.
    pub next_wake: Option<DateTime<Utc>>,
}

pub fn decide(cron: &Cron, policy: &Policy, at: &Situation) -> Plan {
    let mut plan = Plan {
        cancel: Vec::new(),
        create: Vec::new(),
        skipped: Vec::new(),
        missed: Count::Exact(0),
        last_scheduled: None,
        next_wake: cron.next_after(at.now).map(|t| t.with_timezone(&Utc)),
    };
    let paused = policy.paused_until.filter(|until| at.now < *until);
    let mut after = at.last_scheduled.map_or(at.edited, |t| t.max(at.edited));
    if let Some(until) = policy.paused_until.filter(|_| paused.is_none()) {
        // Occurrences at `pausedUntil` itself are due again.
        after = after.max(until - TimeDelta::nanoseconds(1));
    }
    let catch_up = policy.catch_up.min(missed::COUNT_CAP);
    let due = missed::due(cron, after, at.now, catch_up.max(1));
    let Some(&latest) = due.latest.last() else {
        return plan;
    };
    plan.last_scheduled = Some(latest);

    let held = if policy.suspend {
        Some(SkipReason::Suspended)
    } else if paused.is_some() {
        Some(SkipReason::Paused)
    } else {
        None
    };
    if let Some(reason) = held {
        plan.skipped.push(Skipped {
            reason,
            count: due.count,
            latest,
        });
        return plan;
    }

    let select = if due.count == Count::Exact(1) {
        1
    } else {
        catch_up
    };
    let selected = &due.latest[due.latest.len() - select.min(due.latest.len())..];
    plan.missed = due.count.minus(selected.len());
    let (late, in_time): (Vec<_>, Vec<_>) = selected.iter().partition(|&&t| {
        policy
            .starting_deadline
            .is_some_and(|deadline| at.now - t > deadline)
    });
    plan.skip(SkipReason::MissedDeadline, &late);

    match policy.concurrency {
        ConcurrencyPolicy::Allow => plan.create = in_time,
        ConcurrencyPolicy::Forbid if !at.active.is_empty() => {
            plan.skip(SkipReason::ForbidOverlap, &in_time);
        }
        ConcurrencyPolicy::Forbid | ConcurrencyPolicy::Replace => {
            if let Some((&newest, older)) = in_time.split_last() {
                let reason = if policy.concurrency == ConcurrencyPolicy::Forbid {
                    SkipReason::ForbidOverlap
                } else {
                    plan.cancel = at.active.to_vec();
                    SkipReason::Superseded
                };
                plan.skip(reason, older);
                plan.create = vec![newest];
            }
        }
    }
    plan
}

impl Plan {
    fn skip(&mut self, reason: SkipReason, instants: &[DateTime<Utc>]) {
        if let Some(&latest) = instants.last() {
            self.skipped.push(Skipped {
                reason,
                count: Count::Exact(instants.len()),
                latest,
            });
        }
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
