//! The FlowRuns a Schedule starts (scheduled, triggered by hand, or a handler's) and how they
//! are marked: a label with the Schedule's name, the scheduled instant as an annotation, and the
//! Schedule as their controlling owner, so that deleting it deletes its history.

use super::{Handler, Schedule};
use crate::k8s::api::flowrun::{FlowRun, FlowRunSpec};
use crate::k8s::api::naming::{derived_name, label_value};
use chrono::{DateTime, SecondsFormat, Utc};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// On every run of a Schedule: the Schedule's name (as a label value).
pub const SCHEDULE_LABEL: &str = "millrace.dev/schedule";
/// On a handler's run: which handler (`onFailure`, `onRecovery`, `onSuccess`).
pub const HANDLER_LABEL: &str = "millrace.dev/schedule-handler";
/// On a run triggered by hand: `manual`.
pub const TRIGGER_LABEL: &str = "millrace.dev/trigger";
/// The occurrence a run is for, RFC 3339 (for a manual run: when it was triggered; for a
/// handler's run: the occurrence of the run it handles).
pub const SCHEDULED_FOR_ANNOTATION: &str = "millrace.dev/scheduled-for";

/// Which handler a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    OnFailure,
    OnRecovery,
    OnSuccess,
}

impl HandlerKind {
    /// The field's name, also the label value.
    pub fn field(self) -> &'static str {
        match self {
            HandlerKind::OnFailure => "onFailure",
            HandlerKind::OnRecovery => "onRecovery",
            HandlerKind::OnSuccess => "onSuccess",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            HandlerKind::OnFailure => "on-failure",
            HandlerKind::OnRecovery => "on-recovery",
            HandlerKind::OnSuccess => "on-success",
        }
    }
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The spec's inputs, with `scheduledTimeInput` set to `scheduled_for`.
pub fn run_inputs(schedule: &Schedule, scheduled_for: DateTime<Utc>) -> Value {
    let mut inputs = match &schedule.spec.inputs {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if let Some(name) = &schedule.spec.scheduled_time_input {
        inputs.insert(name.clone(), Value::String(rfc3339(scheduled_for)));
    }
    Value::Object(inputs)
}

/// The run of `schedule` named `name` for the occurrence `scheduled_for`.
pub fn scheduled_run(schedule: &Schedule, name: String, scheduled_for: DateTime<Utc>) -> FlowRun {
    let spec = FlowRunSpec {
        flow_ref: Some(schedule.spec.flow_ref.clone()),
        flow: None,
        inputs: run_inputs(schedule, scheduled_for),
        cancel: false,
        approvals: Vec::new(),
    };
    owned_run(schedule, name, scheduled_for, BTreeMap::new(), spec)
}

/// A run started by hand now: named so it never meets a scheduled one, marked `manual`.
pub fn manual_run(schedule: &Schedule, name: String, now: DateTime<Utc>) -> FlowRun {
    let mut run = scheduled_run(schedule, name, now);
    run.labels_mut()
        .insert(TRIGGER_LABEL.into(), "manual".into());
    run
}

/// The run of handler `kind` for the finished run `handled`: the handler's inputs with
/// `{schedule, run, error?, scheduledFor}` over them.
pub fn handler_run(
    schedule: &Schedule,
    kind: HandlerKind,
    handler: &Handler,
    handled: &str,
    scheduled_for: DateTime<Utc>,
    error: Option<&Value>,
) -> FlowRun {
    let mut inputs = match &handler.inputs {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    inputs.insert("schedule".into(), Value::String(schedule.name_any()));
    inputs.insert("run".into(), Value::String(handled.into()));
    if let Some(error) = error {
        inputs.insert("error".into(), error.clone());
    }
    inputs.insert("scheduledFor".into(), Value::String(rfc3339(scheduled_for)));
    let spec = FlowRunSpec {
        flow_ref: Some(handler.flow_ref.clone()),
        flow: None,
        inputs: Value::Object(inputs),
        cancel: false,
        approvals: Vec::new(),
    };
    let labels = BTreeMap::from([(HANDLER_LABEL.to_string(), kind.field().to_string())]);
    owned_run(
        schedule,
        handler_run_name(handled, kind),
        scheduled_for,
        labels,
        spec,
    )
}

/// One name per (handled run, handler): a repeated reconcile meets the run it created.
pub fn handler_run_name(handled: &str, kind: HandlerKind) -> String {
    derived_name(handled, kind.suffix())
}

fn owned_run(
    schedule: &Schedule,
    name: String,
    scheduled_for: DateTime<Utc>,
    mut labels: BTreeMap<String, String>,
    spec: FlowRunSpec,
) -> FlowRun {
    labels.insert(SCHEDULE_LABEL.into(), label_value(&schedule.name_any()));
    let mut run = FlowRun::new(&name, spec);
    run.metadata.namespace = schedule.namespace();
    run.metadata.labels = Some(labels);
    run.metadata.annotations = Some(BTreeMap::from([(
        SCHEDULED_FOR_ANNOTATION.to_string(),
        rfc3339(scheduled_for),
    )]));
    run.metadata.owner_references = schedule.controller_owner_ref(&()).map(|owner| vec![owner]);
    run
}

/// The occurrence a run is for, from its annotation.
pub fn scheduled_for(run: &FlowRun) -> Option<DateTime<Utc>> {
    let text = run.annotations().get(SCHEDULED_FOR_ANNOTATION)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule(spec: Value) -> Schedule {
        let mut schedule: Schedule = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "nightly", "namespace": "team", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap();
        schedule.metadata.uid = Some("u-1".into());
        schedule
    }

    #[test]
    fn a_scheduled_run_is_labelled_annotated_owned_and_gets_its_instant() {
        let schedule = schedule(json!({
            "schedule": "0 2 * * *", "flowRef": {"name": "report"},
            "inputs": {"region": "eu"}, "scheduledTimeInput": "day",
        }));
        let at: DateTime<Utc> = "2025-03-30T01:00:00Z".parse().unwrap();
        let run = scheduled_run(&schedule, "nightly-1743296400".into(), at);
        assert_eq!(
            run.spec.inputs,
            json!({"region": "eu", "day": "2025-03-30T01:00:00Z"})
        );
        assert_eq!(run.labels()[SCHEDULE_LABEL], "nightly");
        assert_eq!(scheduled_for(&run), Some(at));
        let owner = &run.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Schedule", Some(true))
        );
        assert_eq!(run.metadata.namespace.as_deref(), Some("team"));
    }

    #[test]
    fn a_handler_run_gets_the_schedule_the_run_and_its_error() {
        let schedule = schedule(json!({"schedule": "@daily", "flowRef": {"name": "report"}}));
        let handler = Handler {
            flow_ref: crate::k8s::api::flowrun::FlowRef {
                name: "alert".into(),
            },
            inputs: Some(json!({"channel": "#ops"})),
        };
        let at: DateTime<Utc> = "2025-03-30T00:00:00Z".parse().unwrap();
        let error = json!({"name": "Error", "message": "boom"});
        let run = handler_run(
            &schedule,
            HandlerKind::OnFailure,
            &handler,
            "nightly-1",
            at,
            Some(&error),
        );
        assert_eq!(run.name_any(), "nightly-1-on-failure");
        assert_eq!(
            run.spec.inputs,
            json!({"channel": "#ops", "schedule": "nightly", "run": "nightly-1",
                   "error": error, "scheduledFor": "2025-03-30T00:00:00Z"})
        );
        assert_eq!(run.labels()[HANDLER_LABEL], "onFailure");
    }
}
