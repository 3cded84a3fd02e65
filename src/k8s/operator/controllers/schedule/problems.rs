//! What keeps a Schedule from scheduling, each problem naming its field. Pure.

use super::load::FlowState;
use crate::flow::prepare_inputs;
use crate::k8s::api::Schedule;
use crate::k8s::api::schedule::runs::run_inputs;
use crate::schedule::{Cron, CronError, SkipReason};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The first problem found: the condition reason, what due occurrences are skipped as, and a
/// message that names the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub skip: SkipReason,
    pub message: String,
}

/// The expression and zone, or why they cannot be read.
pub fn cron(schedule: &Schedule) -> Result<Cron, Problem> {
    Cron::parse(&schedule.spec.schedule, &schedule.spec.time_zone).map_err(|error| {
        let reason = match error {
            CronError::Schedule { .. } => "InvalidSchedule",
            CronError::TimeZone { .. } => "InvalidTimeZone",
        };
        Problem {
            reason,
            skip: SkipReason::Invalid,
            message: format!("spec.{error}"),
        }
    })
}

/// Why the Schedule's runs could not start: a Flow it names is missing or unreadable, or its
/// inputs do not fit the Flow's schema.
pub fn runs(schedule: &Schedule, flows: &BTreeMap<String, FlowState>) -> Option<Problem> {
    let spec = &schedule.spec;
    let ns = schedule.metadata.namespace.as_deref().unwrap_or_default();
    let mut named = vec![("spec.flowRef", &spec.flow_ref.name)];
    named.extend(
        spec.on_failure
            .iter()
            .map(|h| ("spec.onFailure.flowRef", &h.flow_ref.name)),
    );
    named.extend(
        spec.on_recovery
            .iter()
            .map(|h| ("spec.onRecovery.flowRef", &h.flow_ref.name)),
    );
    named.extend(
        spec.on_success
            .iter()
            .map(|h| ("spec.onSuccess.flowRef", &h.flow_ref.name)),
    );
    for (field, name) in named {
        match flows.get(name) {
            Some(FlowState::Found(_)) => {}
            Some(FlowState::Unreadable(error)) => {
                return Some(Problem {
                    reason: "FlowUnreadable",
                    skip: SkipReason::Invalid,
                    message: format!("{field}: Flow {name} cannot be read: {error}"),
                });
            }
            None | Some(FlowState::Missing) => {
                let (reason, skip) = if field == "spec.flowRef" {
                    ("FlowNotFound", SkipReason::FlowMissing)
                } else {
                    ("HandlerFlowNotFound", SkipReason::Invalid)
                };
                return Some(Problem {
                    reason,
                    skip,
                    message: format!(
                        "{field}: no Flow {name} in namespace {ns}; create it and the Schedule starts scheduling"
                    ),
                });
            }
        }
    }
    let Some(FlowState::Found(flow)) = flows.get(&spec.flow_ref.name) else {
        unreachable!("checked above");
    };
    inputs(schedule, flow.schema.as_ref())
}

/// The inputs a run would get (any instant stands in for the scheduled one) against `schema`.
fn inputs(schedule: &Schedule, schema: Option<&Value>) -> Option<Problem> {
    let invalid = |message: String| Problem {
        reason: "InvalidInputs",
        skip: SkipReason::Invalid,
        message,
    };
    if !matches!(schedule.spec.inputs, Value::Object(_) | Value::Null) {
        return Some(invalid("spec.inputs must be an object".into()));
    }
    let Value::Object(given) = run_inputs(schedule, DateTime::<Utc>::UNIX_EPOCH) else {
        return Some(invalid("spec.inputs must be an object".into()));
    };
    let checked: Result<Map<String, Value>, _> = prepare_inputs(schema, given);
    checked.err().map(|problems| {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        invalid(format!(
            "spec.inputs do not fit Flow {}'s schema: {}",
            schedule.spec.flow_ref.name,
            listed.join("; ")
        ))
    })
}
