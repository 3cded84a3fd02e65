//! The status a sync leaves: revisions, inventory, file problems and the kstatus conditions.
//! Pure. A sync that changed nothing yields the status it found, so that it writes nothing.

use crate::gitsync::plan::FileError;
use crate::k8s::api::gitsource::{FileProblem, GitSourceStatus, InventoryEntry};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};

/// How a sync ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The spec cannot be used as it is (a duration, the ref): nothing is fetched until it changes.
    Invalid(String),
    /// The revision could not be fetched (network, credentials, host key, ref).
    FetchFailed(String),
    /// Files of the revision have problems: nothing of it was applied or pruned.
    ValidationFailed {
        revision: String,
        errors: Vec<FileError>,
    },
    /// Applying stopped at an object; `inventory` holds what was applied so far besides the
    /// earlier inventory, so that a later revision can prune it.
    ApplyFailed {
        revision: String,
        message: String,
        inventory: Vec<InventoryEntry>,
    },
    /// The revision is applied. `unpruned` are the deletes that failed (kept in `inventory`).
    Synced {
        revision: String,
        inventory: Vec<InventoryEntry>,
        wrote: bool,
        unpruned: Vec<String>,
    },
}

impl Outcome {
    /// True when the sync should be tried again at the retry interval rather than the interval.
    pub fn failed(&self) -> bool {
        match self {
            Outcome::FetchFailed(_) | Outcome::ApplyFailed { .. } => true,
            Outcome::Synced { unpruned, .. } => !unpruned.is_empty(),
            Outcome::Invalid(_) | Outcome::ValidationFailed { .. } => false,
        }
    }
}

/// What the conditions say: the `Ready` one, and whether the failure is retried (`Reconciling`)
/// or waits for a fix (`Stalled`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    ready: bool,
    reason: &'static str,
    message: String,
    retrying: bool,
    stalled: bool,
}

fn verdict(outcome: &Outcome, applied: Option<&str>) -> Verdict {
    let kept = match applied {
        Some(applied) => format!("{applied} stays applied"),
        None => "nothing was applied yet".to_string(),
    };
    let failing = |reason, message: String, retrying| Verdict {
        ready: false,
        reason,
        message,
        retrying,
        stalled: !retrying,
    };
    match outcome {
        Outcome::Invalid(message) => failing("InvalidSpec", message.clone(), false),
        Outcome::FetchFailed(message) => failing("FetchFailed", format!("{message}; {kept}"), true),
        Outcome::ValidationFailed { revision, errors } => {
            let first = errors
                .first()
                .map(|e| format!("; first: {}: {}", located(e), e.message))
                .unwrap_or_default();
            failing(
                "ValidationFailed",
                format!(
                    "revision {revision} has {} problem(s) (status.files lists them); nothing of it is applied, {kept}{first}",
                    errors.len()
                ),
                false,
            )
        }
        Outcome::ApplyFailed {
            revision, message, ..
        } => failing(
            "ApplyFailed",
            format!("revision {revision} was not applied in full: {message}; retrying"),
            true,
        ),
        Outcome::Synced {
            revision, unpruned, ..
        } if !unpruned.is_empty() => failing(
            "PruneFailed",
            format!(
                "revision {revision} is applied, but objects it no longer has could not be deleted (retrying): {}",
                unpruned.join("; ")
            ),
            true,
        ),
        Outcome::Synced {
            revision,
            inventory,
            ..
        } => Verdict {
            ready: true,
            reason: "Succeeded",
            message: format!("revision {revision} is applied: {}", counts(inventory)),
            retrying: false,
            stalled: false,
        },
    }
}

/// The status after a sync. `fetched` is the revision fetched (when the fetch got that far),
/// `requested` the `reconcile-requested-at` annotation this sync answers.
pub fn status(
    previous: &GitSourceStatus,
    meta: &ObjectMeta,
    outcome: &Outcome,
    fetched: Option<&str>,
    requested: Option<&str>,
    now: Time,
) -> GitSourceStatus {
    let mut status = previous.clone();
    status.observed_generation = meta.generation;
    if let Some(fetched) = fetched {
        status.last_fetched_revision = Some(fetched.to_string());
    }
    if requested.is_some() {
        status.last_handled_reconcile_at = requested.map(str::to_string);
    }
    match outcome {
        Outcome::Invalid(_) | Outcome::FetchFailed(_) => {}
        Outcome::ValidationFailed { revision, errors } => {
            status.last_attempted_revision = Some(revision.clone());
            status.files = errors.iter().map(problem).collect();
        }
        Outcome::ApplyFailed {
            revision,
            inventory,
            ..
        } => {
            status.last_attempted_revision = Some(revision.clone());
            status.files.clear();
            if *inventory != status.inventory {
                // Part of the revision was applied before the failure.
                status.inventory = inventory.clone();
                status.last_sync_time = Some(now.clone());
            }
        }
        Outcome::Synced {
            revision,
            inventory,
            wrote,
            ..
        } => {
            status.last_attempted_revision = Some(revision.clone());
            status.last_applied_revision = Some(revision.clone());
            status.files.clear();
            status.inventory = inventory.clone();
            if *wrote || status.last_sync_time.is_none() {
                status.last_sync_time = Some(now.clone());
            }
        }
    }
    let verdict = verdict(outcome, previous.last_applied_revision.as_deref());
    status.conditions = conditions(&previous.conditions, meta.generation, &verdict, now);
    status
}

/// `Ready`, then `Reconciling` and `Stalled` while they hold; a condition that keeps its status
/// keeps its transition time.
fn conditions(
    previous: &[Condition],
    generation: Option<i64>,
    verdict: &Verdict,
    now: Time,
) -> Vec<Condition> {
    let make = |type_: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" };
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time,
        }
    };
    let mut conditions = vec![make(
        "Ready",
        verdict.ready,
        verdict.reason,
        &verdict.message,
    )];
    if verdict.retrying {
        conditions.push(make("Reconciling", true, verdict.reason, &verdict.message));
    }
    if verdict.stalled {
        conditions.push(make("Stalled", true, verdict.reason, &verdict.message));
    }
    conditions
}

fn problem(error: &FileError) -> FileProblem {
    FileProblem {
        path: error.file.clone(),
        line: error.line.and_then(|line| u32::try_from(line).ok()),
        message: error.message.clone(),
    }
}

fn located(error: &FileError) -> String {
    match error.line {
        Some(line) => format!("{}:{line}", error.file),
        None => error.file.clone(),
    }
}

/// `2 Flows, 1 Schedule`: how many objects of each kind the inventory holds.
fn counts(inventory: &[InventoryEntry]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for entry in inventory {
        match counts.iter_mut().find(|(kind, _)| *kind == entry.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((entry.kind.clone(), 1)),
        }
    }
    if counts.is_empty() {
        return "no objects".into();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn meta() -> ObjectMeta {
        ObjectMeta {
            generation: Some(3),
            ..ObjectMeta::default()
        }
    }

    fn entry(kind: &str, name: &str) -> InventoryEntry {
        InventoryEntry {
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// The status `outcome` leaves on a GitSource that had none.
    fn fresh(outcome: &Outcome, fetched: Option<&str>, now: Time) -> GitSourceStatus {
        status(
            &GitSourceStatus::default(),
            &meta(),
            outcome,
            fetched,
            None,
            now,
        )
    }

    fn synced(wrote: bool) -> Outcome {
        Outcome::Synced {
            revision: REV.into(),
            inventory: vec![
                entry("Flow", "a"),
                entry("Flow", "b"),
                entry("Schedule", "s"),
            ],
            wrote,
            unpruned: Vec::new(),
        }
    }

    #[test]
    fn an_unchanged_sync_yields_the_status_it_found() {
        let first = fresh(&synced(true), Some(REV), time(10));
        assert_eq!(first.last_applied_revision.as_deref(), Some(REV));
        assert_eq!(first.last_sync_time, Some(time(10)));
        assert_eq!(first.conditions.len(), 1);
        assert_eq!(
            first.conditions[0].message,
            format!("revision {REV} is applied: 2 Flows, 1 Schedule")
        );
        let again = status(&first, &meta(), &synced(false), Some(REV), None, time(99));
        assert_eq!(again, first);
    }

    #[test]
    fn a_bad_revision_names_its_files_and_keeps_what_is_applied() {
        let applied = fresh(&synced(true), Some(REV), time(10));
        let bad = "main@sha1:ffffffffffffffffffffffffffffffffffffffff";
        let outcome = Outcome::ValidationFailed {
            revision: bad.into(),
            errors: vec![
                FileError::new("flows/a.yaml", Some(4), "bad YAML"),
                FileError::new("s.schedule.yaml", None, "bad cron"),
            ],
        };
        let after = status(
            &applied,
            &meta(),
            &outcome,
            Some(bad),
            Some("now"),
            time(20),
        );
        assert_eq!(after.last_applied_revision.as_deref(), Some(REV));
        assert_eq!(after.last_attempted_revision.as_deref(), Some(bad));
        assert_eq!(after.last_fetched_revision.as_deref(), Some(bad));
        assert_eq!(after.inventory, applied.inventory);
        assert_eq!(after.last_sync_time, Some(time(10)));
        assert_eq!(after.last_handled_reconcile_at.as_deref(), Some("now"));
        assert_eq!(after.files.len(), 2);
        assert_eq!(after.files[0].line, Some(4));
        let types: Vec<_> = after
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("Ready", "False", "ValidationFailed"),
                ("Stalled", "True", "ValidationFailed")
            ]
        );
        assert!(
            after.conditions[0]
                .message
                .contains("flows/a.yaml:4: bad YAML")
        );
        assert!(
            after.conditions[0]
                .message
                .contains(&format!("{REV} stays applied"))
        );
    }

    #[test]
    fn failures_that_are_retried_say_reconciling() {
        let outcome = Outcome::FetchFailed("host key changed".into());
        let after = fresh(&outcome, None, time(5));
        assert!(outcome.failed());
        assert_eq!(after.conditions[1].type_, "Reconciling");
        assert_eq!(after.conditions[1].reason, "FetchFailed");
        assert!(
            after.conditions[0]
                .message
                .contains("nothing was applied yet")
        );
        let pruning = Outcome::Synced {
            revision: REV.into(),
            inventory: vec![entry("Flow", "old")],
            wrote: true,
            unpruned: vec!["Flow old: forbidden".into()],
        };
        let after = fresh(&pruning, None, time(5));
        assert_eq!(after.conditions[0].reason, "PruneFailed");
        assert_eq!(after.inventory, [entry("Flow", "old")]);
    }

    #[test]
    fn a_condition_that_holds_keeps_its_transition_time() {
        let outcome = Outcome::FetchFailed("down".into());
        let first = fresh(&outcome, None, time(5));
        let again = status(&first, &meta(), &outcome, None, None, time(50));
        assert_eq!(again, first);
        let recovered = status(&first, &meta(), &synced(true), Some(REV), None, time(60));
        assert_eq!(recovered.conditions.len(), 1);
        assert_eq!(recovered.conditions[0].last_transition_time, time(60));
    }
}
