//! The status a Flow's check results make: its `Ready` condition, written only when it changed.
//! Pure: the time is an argument.

use crate::k8s::api::flow::FlowStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};

/// A Flow as checked.
pub enum Checked<'a> {
    Readable {
        meta: &'a ObjectMeta,
        status: Option<&'a FlowStatus>,
        /// Every problem of its document, one line each; empty when it can run.
        problems: Vec<String>,
    },
    /// A shape the CRD schema lets through but the types do not.
    Unreadable {
        meta: &'a ObjectMeta,
        error: &'a str,
    },
}

impl Checked<'_> {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Checked::Readable { meta, .. } | Checked::Unreadable { meta, .. } => meta,
        }
    }
}

/// The status to write, or `None` when the Flow's `Ready` condition says so already.
pub fn status(checked: &Checked, now: Time) -> Option<FlowStatus> {
    let (meta, status, problems) = match checked {
        Checked::Readable {
            meta,
            status,
            problems,
        } => (*meta, *status, problems.clone()),
        Checked::Unreadable { meta, error } => (
            *meta,
            None,
            vec![format!("the Flow cannot be read: {error}")],
        ),
    };
    let ready = problems.is_empty();
    let (reason, message) = if ready {
        ("Valid", "the flow is valid".to_string())
    } else {
        ("Invalid", problems.join("\n"))
    };
    let desired_status = if ready { "True" } else { "False" };
    let previous = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let unchanged = previous.is_some_and(|c| {
        c.status == desired_status
            && c.message == message
            && c.observed_generation == meta.generation
    });
    if unchanged {
        return None;
    }
    let last_transition_time = match checked {
        Checked::Readable { .. } => previous
            .filter(|c| c.status == desired_status)
            .map(|c| c.last_transition_time.clone()),
        // Its status cannot be read back: a stable time keeps the patch idempotent, so that
        // writing it does not wake this reconcile again and again.
        Checked::Unreadable { .. } => meta.creation_timestamp.clone(),
    }
    .unwrap_or(now);
    Some(FlowStatus {
        observed_generation: meta.generation,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: desired_status.into(),
            reason: reason.into(),
            message,
            observed_generation: meta.generation,
            last_transition_time,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn meta(generation: i64) -> ObjectMeta {
        ObjectMeta {
            name: Some("report".into()),
            generation: Some(generation),
            creation_timestamp: Some(time("2026-01-01T00:00:00Z")),
            ..Default::default()
        }
    }

    fn readable<'a>(
        meta: &'a ObjectMeta,
        status: Option<&'a FlowStatus>,
        problems: &[&str],
    ) -> Checked<'a> {
        Checked::Readable {
            meta,
            status,
            problems: problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_valid_flow_is_ready_from_now() {
        let meta = meta(1);
        let now = time("2026-01-02T00:00:00Z");
        let status = status(&readable(&meta, None, &[]), now.clone()).unwrap();
        let ready = &status.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Valid")
        );
        assert_eq!(ready.last_transition_time, now);
        assert_eq!(status.observed_generation, Some(1));
    }

    #[test]
    fn an_unchanged_condition_is_not_written_again() {
        let meta = meta(1);
        let now = time("2026-01-02T00:00:00Z");
        let written = status(&readable(&meta, None, &["a: bad"]), now.clone()).unwrap();
        assert_eq!(written.conditions[0].message, "a: bad");
        let later = time("2026-01-03T00:00:00Z");
        assert_eq!(
            status(&readable(&meta, Some(&written), &["a: bad"]), later),
            None
        );
    }

    #[test]
    fn a_new_generation_with_the_same_verdict_keeps_the_transition_time() {
        let (first, second) = (meta(1), meta(2));
        let then = time("2026-01-02T00:00:00Z");
        let written = status(&readable(&first, None, &[]), then.clone()).unwrap();
        let later = time("2026-01-03T00:00:00Z");
        let again = status(&readable(&second, Some(&written), &[]), later.clone()).unwrap();
        assert_eq!(again.conditions[0].last_transition_time, then);
        assert_eq!(again.conditions[0].observed_generation, Some(2));
        let broken = status(&readable(&second, Some(&written), &["x"]), later.clone()).unwrap();
        assert_eq!(broken.conditions[0].last_transition_time, later);
    }

    #[test]
    fn an_unreadable_flow_is_stamped_with_its_creation_time() {
        let meta = meta(3);
        let checked = Checked::Unreadable {
            meta: &meta,
            error: "spec.value: invalid type",
        };
        let status = status(&checked, time("2026-05-05T00:00:00Z")).unwrap();
        let ready = &status.conditions[0];
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message,
            "the Flow cannot be read: spec.value: invalid type"
        );
        assert_eq!(ready.last_transition_time, time("2026-01-01T00:00:00Z"));
    }
}
