//! What a Schedule reconcile does, from what it loaded and the time: the runs to start (by
//! `crate::schedule::decide`), cancel and delete, the handler runs, the Events, the status and
//! when to look again. Pure.

use super::handlers::{self, ended_at, is_handler_run, outcome};
use super::load::Loaded;
use super::problems::{self, Problem};
use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::api::schedule::runs::{rfc3339, scheduled_run};
use crate::k8s::api::schedule::{
    LastSkip, Schedule, ScheduleSince, ScheduleStatus, from_time, to_time,
};
use crate::schedule::handlers::Outcome;
use crate::schedule::names::run_name;
use crate::schedule::{self, Plan, Policy, Situation, SkipReason};
use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::ResourceExt;
use sha2::{Digest, Sha256};

/// A run to create, and the Event that announces it once it was created (not when it existed).
#[derive(Debug, Clone)]
pub struct Start {
    pub run: FlowRun,
    pub reason: &'static str,
    pub note: String,
}

/// An Event about the Schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct Decision {
    /// Active runs to cancel (`spec.cancel`) before creating (Replace).
    pub cancel: Vec<String>,
    /// Scheduled runs, oldest first.
    pub create: Vec<Start>,
    pub handlers: Vec<Start>,
    /// Finished runs beyond the history limits.
    pub delete: Vec<String>,
    pub notes: Vec<Note>,
    /// The status to write. `created` counts every run of `create`; one that existed already
    /// is taken off again by [`Decision::existed`].
    pub status: ScheduleStatus,
    /// The next fire time: when to decide again.
    pub wake: Option<DateTime<Utc>>,
}

impl Decision {
    /// `n` runs of `create` were there already (created by an earlier or another reconcile).
    pub fn existed(&mut self, n: usize) {
        self.status.created = self.status.created.saturating_sub(n as u64);
    }
}

/// How many upcoming fire times status lists.
const NEXT_TIMES: usize = 3;

pub fn decide(loaded: &Loaded, now: DateTime<Utc>) -> Decision {
    let schedule = &loaded.schedule;
    let previous = schedule.status.clone().unwrap_or_default();
    let mut decision = Decision {
        cancel: Vec::new(),
        create: Vec::new(),
        handlers: Vec::new(),
        delete: Vec::new(),
        notes: Vec::new(),
        status: ScheduleStatus {
            observed_generation: schedule.metadata.generation,
            schedule_since: Some(since(schedule, &previous, now)),
            conditions: Vec::new(),
            ..previous.clone()
        },
        wake: None,
    };
    let own: Vec<&FlowRun> = loaded.runs.iter().filter(|r| !is_handler_run(r)).collect();
    let active: Vec<String> = own
        .iter()
        .filter(|r| outcome(r).is_none())
        .map(|r| r.name_any())
        .collect();
    decision.status.active = active.clone();
    decision
        .status
        .handled
        .retain(|name| own.iter().any(|r| r.name_any() == *name));

    let cron = match problems::cron(schedule) {
        Ok(cron) => cron,
        Err(problem) => {
            decision.status.next_schedule_times.clear();
            decision.stalled(&previous, schedule, &problem, now);
            return decision;
        }
    };
    decision.status.next_schedule_times = cron
        .next_n(now, NEXT_TIMES)
        .into_iter()
        .map(|t| to_time(t.to_utc()))
        .collect();
    let edited = decision
        .status
        .schedule_since
        .as_ref()
        .map_or(now, |s| from_time(&s.time));
    let situation = Situation {
        now,
        last_scheduled: previous.last_schedule_time.as_ref().map(from_time),
        edited,
        active: &active,
    };

    if let Some(problem) = problems::runs(schedule, &loaded.flows) {
        // Nothing starts; occurrences that fall due meanwhile are skipped, none caught up later.
        let held = Policy {
            suspend: true,
            ..policy(schedule)
        };
        let mut plan = schedule::decide(&cron, &held, &situation);
        for skipped in &mut plan.skipped {
            skipped.reason = problem.skip;
        }
        decision.settle(schedule, &plan, Some(&problem.message));
        decision.stalled(&previous, schedule, &problem, now);
        return decision;
    }

    let plan = schedule::decide(&cron, &policy(schedule), &situation);
    decision.settle(schedule, &plan, None);
    decision.handle(schedule, &own, &previous);
    decision.trim(schedule, &loaded.runs);
    let (reason, message) = if schedule.spec.suspend {
        (
            "Suspended",
            "spec.suspend is true: no run starts".to_string(),
        )
    } else {
        (
            "Scheduling",
            format!(
                "runs Flow {} at \"{}\" in {}",
                schedule.spec.flow_ref.name, schedule.spec.schedule, schedule.spec.time_zone
            ),
        )
    };
    decision.status.conditions = conditions(
        &previous.conditions,
        &schedule.metadata,
        None,
        reason,
        &message,
        now,
    );
    decision
}

/// The status of a Schedule that does not fit its type.
pub fn unreadable(meta: &ObjectMeta, error: &str) -> ScheduleStatus {
    let problem = Problem {
        reason: "Unreadable",
        skip: SkipReason::Invalid,
        message: format!("the Schedule cannot be read: {error}"),
    };
    // A stable time keeps the patch the same each time, so writing it wakes nothing.
    let at = meta
        .creation_timestamp
        .as_ref()
        .map(from_time)
        .unwrap_or_default();
    ScheduleStatus {
        observed_generation: meta.generation,
        conditions: conditions(&[], meta, Some(&problem), "", "", at),
        ..ScheduleStatus::default()
    }
}

fn policy(schedule: &Schedule) -> Policy {
    let spec = &schedule.spec;
    Policy {
        concurrency: spec.concurrency_policy,
        starting_deadline: spec.starting_deadline_seconds.map(TimeDelta::seconds),
        catch_up: spec.catch_up as usize,
        suspend: spec.suspend,
        paused_until: spec.paused_until.as_ref().map(from_time),
    }
}

/// Since when `schedule` and `timeZone` hold: kept while they stay, the creation time at first
/// sight, now when they changed.
fn since(schedule: &Schedule, previous: &ScheduleStatus, now: DateTime<Utc>) -> ScheduleSince {
    let digest = Sha256::digest(format!(
        "{}\n{}",
        schedule.spec.schedule, schedule.spec.time_zone
    ));
    let fingerprint: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    match &previous.schedule_since {
        Some(kept) if kept.fingerprint == fingerprint => kept.clone(),
        Some(_) => ScheduleSince {
            fingerprint,
            time: to_time(now),
        },
        None => ScheduleSince {
            fingerprint,
            time: schedule
                .metadata
                .creation_timestamp
                .clone()
                .unwrap_or_else(|| to_time(now)),
        },
    }
}

impl Decision {
    /// The runs, cancels, skips and counters a plan makes.
    fn settle(&mut self, schedule: &Schedule, plan: &Plan, problem: Option<&str>) {
        self.wake = plan.next_wake;
        if let Some(latest) = plan.last_scheduled {
            self.status.last_schedule_time = Some(to_time(latest));
        }
        let name = schedule.name_any();
        let due = plan.create.len()
            + plan.missed.at_least()
            + plan
                .skipped
                .iter()
                .map(|s| s.count.at_least())
                .sum::<usize>();
        for active in &plan.cancel {
            self.cancel.push(active.clone());
            let at = plan.create.last().copied().map(rfc3339).unwrap_or_default();
            self.note(false, "Replaced", format!("canceled FlowRun {active}: concurrencyPolicy is Replace and the occurrence at {at} starts"));
        }
        for &at in &plan.create {
            let run = scheduled_run(schedule, run_name(&name, at), at);
            let (reason, note) = if due > 1 {
                (
                    "CaughtUp",
                    format!(
                        "started FlowRun {} for the occurrence at {}, one of {due} that fell due while the operator was away",
                        run.name_any(),
                        rfc3339(at)
                    ),
                )
            } else {
                (
                    "Created",
                    format!(
                        "started FlowRun {} for the occurrence at {}",
                        run.name_any(),
                        rfc3339(at)
                    ),
                )
            };
            self.create.push(Start { run, reason, note });
        }
        self.status.created += plan.create.len() as u64;
        if !plan.missed.is_zero() {
            self.status.missed += plan.missed.at_least() as u64;
            self.note(true, "Missed", format!("{} occurrence(s) fell due while the operator was away beyond catchUp ({}) and were not started", plan.missed, schedule.spec.catch_up));
        }
        for skipped in &plan.skipped {
            let why = match (skipped.reason, problem) {
                (SkipReason::FlowMissing | SkipReason::Invalid, Some(problem)) => problem.to_string(),
                (SkipReason::ForbidOverlap, _) if !self.status.active.is_empty() => format!("concurrencyPolicy is Forbid and FlowRun {} is active", self.status.active.join(", ")),
                (SkipReason::ForbidOverlap, _) => "concurrencyPolicy is Forbid: only the latest of several due occurrences starts".into(),
                (SkipReason::Superseded, _) => "concurrencyPolicy is Replace: only the latest of several due occurrences starts".into(),
                (SkipReason::MissedDeadline, _) => format!("more than startingDeadlineSeconds ({}) late", schedule.spec.starting_deadline_seconds.unwrap_or_default()),
                (SkipReason::Suspended, _) => "spec.suspend is true".into(),
                (SkipReason::Paused, _) => format!("paused until {}", plan_paused(schedule)),
                (reason, None) => reason.to_string(),
            };
            let message = format!(
                "skipped {} occurrence(s), the latest at {}: {why}",
                skipped.count,
                rfc3339(skipped.latest)
            );
            self.status.skipped += skipped.count.at_least() as u64;
            self.status.last_skip = Some(LastSkip {
                time: to_time(skipped.latest),
                reason: skipped.reason,
                message: message.clone(),
            });
            let quiet = matches!(skipped.reason, SkipReason::Suspended | SkipReason::Paused);
            self.note(!quiet, &skipped.reason.to_string(), message);
        }
        // Runs just created are active until they end.
        let created = self.create.iter().map(|s| s.run.name_any());
        self.status.active.extend(created);
        self.status.active.sort();
        self.status.active.dedup();
    }

    /// Handlers for the own runs that finished since the last reconcile.
    fn handle(&mut self, schedule: &Schedule, own: &[&FlowRun], previous: &ScheduleStatus) {
        let finished: Vec<&FlowRun> = own
            .iter()
            .copied()
            .filter(|r| outcome(r).is_some() && !previous.handled.contains(&r.name_any()))
            .collect();
        let handled = handlers::handle(schedule, &finished, previous.consecutive_failures);
        self.status.consecutive_failures = handled.consecutive_failures;
        self.handlers = handled.starts;
        self.status
            .handled
            .extend(finished.iter().map(|r| r.name_any()));
        self.status.handled.sort();
        let succeeded = own
            .iter()
            .filter(|r| outcome(r) == Some(Outcome::Succeeded))
            .map(|r| ended_at(r));
        let latest = succeeded
            .chain(previous.last_successful_time.as_ref().map(from_time))
            .max();
        self.status.last_successful_time = latest.map(to_time);
    }

    /// Deletes finished runs beyond the history limits, oldest first; handler runs are kept by
    /// the same limits, apart from the Schedule's own runs. Deleted runs stay in `handled` until
    /// they are gone, so that a delete that failed never gets a run handled twice.
    fn trim(&mut self, schedule: &Schedule, runs: &[FlowRun]) {
        let spec = &schedule.spec;
        for handler_runs in [false, true] {
            let mut finished: Vec<&FlowRun> = runs
                .iter()
                .filter(|r| is_handler_run(r) == handler_runs && outcome(r).is_some())
                .collect();
            finished.sort_by_key(|r| std::cmp::Reverse((ended_at(r), r.name_any())));
            let (succeeded, failed): (Vec<_>, Vec<_>) = finished
                .into_iter()
                .partition(|r| outcome(r) == Some(Outcome::Succeeded));
            for (kept, limit) in [
                (succeeded, spec.successful_runs_history_limit),
                (failed, spec.failed_runs_history_limit),
            ] {
                self.delete
                    .extend(kept.iter().skip(limit as usize).map(|r| r.name_any()));
            }
        }
    }

    /// Nothing is scheduled: `Ready` False and `Stalled` True with the problem; a Warning when
    /// the problem is new.
    fn stalled(
        &mut self,
        previous: &ScheduleStatus,
        schedule: &Schedule,
        problem: &Problem,
        now: DateTime<Utc>,
    ) {
        let conditions = conditions(
            &previous.conditions,
            &schedule.metadata,
            Some(problem),
            "",
            "",
            now,
        );
        let was = previous.conditions.iter().find(|c| c.type_ == "Stalled");
        if was.is_none_or(|c| c.status != "True" || c.message != problem.message) {
            self.note(true, problem.reason, problem.message.clone());
        }
        self.status.conditions = conditions;
    }

    fn note(&mut self, warning: bool, reason: &str, note: String) {
        self.notes.push(Note {
            warning,
            reason: reason.to_string(),
            note,
        });
    }
}

fn plan_paused(schedule: &Schedule) -> String {
    schedule
        .spec
        .paused_until
        .as_ref()
        .map(|t| rfc3339(from_time(t)))
        .unwrap_or_default()
}

/// kstatus conditions: with a problem `Ready` False and `Stalled` True (its reason and message),
/// else `Ready` True (`reason`, `message`) and `Stalled` False. A condition whose status stays
/// keeps its transition time.
fn conditions(
    previous: &[Condition],
    meta: &ObjectMeta,
    problem: Option<&Problem>,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let (ready, stalled, reason, message) = match problem {
        Some(problem) => ("False", "True", problem.reason, problem.message.as_str()),
        None => ("True", "False", reason, message),
    };
    [("Ready", ready), ("Stalled", stalled)]
        .into_iter()
        .map(|(type_, status)| {
            let kept = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status);
            Condition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message: message.into(),
                observed_generation: meta.generation,
                last_transition_time: kept
                    .map_or_else(|| to_time(now), |c| c.last_transition_time.clone()),
            }
        })
        .collect()
}
