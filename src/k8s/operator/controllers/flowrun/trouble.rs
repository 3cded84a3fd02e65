//! A reconcile that fails: what the run shows of it and when it is tried again. Logged only, a
//! missing RBAC rule or a quota refusal would leave the FlowRun looking fine while nothing moves;
//! instead its status gets a condition with the reason and what to do (`Stalled` when only a fix
//! helps, `Reconciling` while a retry may), and retries back off exponentially.

use super::Error;
use crate::k8s::api::FlowRunStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry comes after this long, each next one after twice as long as the last.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LONGEST_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
    /// A retry may succeed without anyone changing anything (the API server was away).
    pub retry_helps: bool,
}

/// What failed, in words a user can act on.
pub fn problem(error: &Error) -> Problem {
    let fix = |reason, message: String| Problem {
        reason,
        message,
        retry_helps: false,
    };
    match error {
        Error::Kube(kube::Error::Api(status)) if status.message.contains("exceeded quota") => fix(
            "QuotaExceeded",
            format!(
                "a ResourceQuota refuses an object of the run: {}; raise the quota or lower the run's resource requests",
                status.message
            ),
        ),
        Error::Kube(kube::Error::Api(status)) if status.code == 403 => fix(
            "Forbidden",
            format!(
                "the operator may not do what the run needs: {}; grant it in the operator's Role or ClusterRole (the chart's rbac.yaml has every rule)",
                status.message
            ),
        ),
        Error::Kube(kube::Error::Api(status)) if (400..500).contains(&status.code) => fix(
            "Refused",
            format!(
                "the API server refuses a request of the run ({}): {}; an admission policy or LimitRange may forbid what the Flow asks for",
                status.code, status.message
            ),
        ),
        Error::Kube(error) => Problem {
            reason: "APIUnavailable",
            message: format!("the API server could not be reached or failed: {error}; retrying"),
            retry_helps: true,
        },
        Error::State(error) => fix(
            "StateUnreadable",
            format!(
                "the run's saved state cannot be read: {error}; the run cannot go on from it (delete the run and start it again)"
            ),
        ),
        Error::Engine(error) => fix("EngineError", format!("{error}")),
    }
}

/// How long to wait before retry number `failures` (1 for the first).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY)
}

/// `previous` with the problem as its condition (`Stalled` or `Reconciling`), replacing an
/// earlier one of that type; the rest of the status stays as it was.
pub fn with_problem(
    previous: &FlowRunStatus,
    problem: &Problem,
    generation: Option<i64>,
    failures: u32,
    now: Time,
) -> FlowRunStatus {
    let type_ = if problem.retry_helps {
        "Reconciling"
    } else {
        "Stalled"
    };
    let mut status = previous.clone();
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True" && c.reason == problem.reason)
        .map(|c| c.last_transition_time.clone());
    status.conditions.retain(|c| c.type_ != type_);
    status.conditions.push(Condition {
        type_: type_.into(),
        status: "True".into(),
        reason: problem.reason.into(),
        message: format!(
            "{} (tried {failures} time(s), next in {}s)",
            problem.message,
            backoff(failures).as_secs()
        ),
        observed_generation: generation,
        last_transition_time: since.unwrap_or(now),
    });
    status
}

/// Failed reconciles in a row, by run uid.
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Counts one more failure of `uid`; returns how many in a row.
    pub fn add(&self, uid: &str) -> u32 {
        let mut map = self.0.lock().expect("failures");
        let count = map.entry(uid.to_string()).or_default();
        *count += 1;
        *count
    }

    pub fn count(&self, uid: &str) -> u32 {
        self.0
            .lock()
            .expect("failures")
            .get(uid)
            .copied()
            .unwrap_or(0)
    }

    pub fn clear(&self, uid: &str) {
        self.0.lock().expect("failures").remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> Error {
        Error::Kube(kube::Error::Api(
            Status::failure(message, "").with_code(code).boxed(),
        ))
    }

    #[test]
    fn each_refusal_says_what_to_fix() {
        let forbidden = problem(&api(
            403,
            "jobs.batch is forbidden: User \"op\" cannot create resource \"jobs\"",
        ));
        assert_eq!(forbidden.reason, "Forbidden");
        assert!(
            forbidden
                .message
                .contains("cannot create resource \"jobs\"")
        );
        assert!(forbidden.message.contains("grant it"));
        assert!(!forbidden.retry_helps);
        let quota = problem(&api(403, "pods \"x\" is forbidden: exceeded quota: q"));
        assert_eq!(quota.reason, "QuotaExceeded");
        assert_eq!(problem(&api(422, "invalid")).reason, "Refused");
        assert!(problem(&api(503, "unavailable")).retry_helps);
    }

    #[test]
    fn retries_back_off_to_five_minutes() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), LONGEST_RETRY);
    }

    #[test]
    fn the_problem_is_one_condition_that_keeps_its_time_and_the_rest_stays() {
        let time = |s: i64| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap());
        let ready = Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "Running".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: time(1),
        };
        let previous = FlowRunStatus {
            conditions: vec![ready.clone()],
            ..FlowRunStatus::default()
        };
        let refused = problem(&api(403, "no"));
        let first = with_problem(&previous, &refused, Some(1), 1, time(10));
        let again = with_problem(&first, &refused, Some(1), 2, time(20));
        assert_eq!(again.conditions.len(), 2);
        assert_eq!(again.conditions[0], ready);
        let stalled = &again.conditions[1];
        assert_eq!(
            (stalled.type_.as_str(), stalled.reason.as_str()),
            ("Stalled", "Forbidden")
        );
        assert_eq!(stalled.last_transition_time, time(10));
        assert!(stalled.message.ends_with("(tried 2 time(s), next in 10s)"));
    }

    #[test]
    fn failures_count_in_a_row_per_run() {
        let failures = Failures::default();
        assert_eq!(
            (failures.add("a"), failures.add("a"), failures.add("b")),
            (1, 2, 1)
        );
        failures.clear("a");
        assert_eq!((failures.count("a"), failures.count("b")), (0, 1));
    }
}
