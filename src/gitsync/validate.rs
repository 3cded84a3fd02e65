//! Checks of every object of a revision, each problem reported on the object's file: Flows as the
//! operator checks them (document and expressions), Scripts (a language Millrace runs), Schedules
//! (structure, and the Flows they name).

use super::objects::{Kind, SyncObject};
use super::plan::FileError;
use crate::exec::Language;
use crate::expr::Evaluator;
use crate::k8s::api::document;
use crate::k8s::api::{FlowSpec, ScriptSpec};
use crate::schedule::{Cron, CronError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;

/// The Flows of the target namespace, when the cluster was asked (the controller); Schedules may
/// name those as well as the revision's own.
pub struct ClusterFlows<'a> {
    pub namespace: &'a str,
    pub names: &'a BTreeSet<String>,
}

/// What the checks found: errors, and references left for the cluster to hold when it was not
/// asked.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub errors: Vec<FileError>,
    pub notes: Vec<FileError>,
}

/// Checks every object. Flow expressions are parsed by `syntax`: the controller passes its
/// sandbox (flows from git are others' input), the command line `InProcess`.
pub fn validate(
    objects: &[SyncObject],
    syntax: &dyn Evaluator,
    cluster: Option<&ClusterFlows>,
) -> Checked {
    let flows: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == Kind::Flow)
        .map(|o| o.name.as_str())
        .collect();
    let mut checked = Checked::default();
    for object in objects {
        let report = |message: String| FileError::new(&object.file, object.line, message);
        let problems = match object.kind {
            Kind::Flow => flow_problems(object, syntax),
            Kind::Script => script_problems(object),
            Kind::Schedule => {
                let (problems, refs) = schedule_problems(object.spec());
                for (field, name) in refs {
                    if flows.contains(name.as_str()) {
                        continue;
                    }
                    match cluster {
                        Some(cluster) if cluster.names.contains(&name) => {}
                        Some(cluster) => checked.errors.push(report(format!(
                            "Schedule {}: {field}: no Flow `{name}` in this revision nor in namespace {}; add it",
                            object.name, cluster.namespace
                        ))),
                        None => checked.notes.push(report(format!(
                            "Schedule {}: {field}: Flow `{name}` is not in this revision; it must be in the namespace when this syncs",
                            object.name
                        ))),
                    }
                }
                problems
            }
        };
        checked.errors.extend(
            problems
                .into_iter()
                .map(|p| report(format!("{} {}: {p}", object.kind.as_str(), object.name))),
        );
    }
    checked
}

/// Checks a Schedule's cron expression and time zone with the parser the Schedule controller
/// runs (a Schedule without `timeZone` runs in UTC).
pub fn check_schedule_expression(schedule: &str, time_zone: Option<&str>) -> Result<(), CronError> {
    Cron::parse(schedule, time_zone.unwrap_or("UTC")).map(drop)
}

/// Deserializes the spec as `T`, naming the field that does not fit.
fn typed<T: DeserializeOwned>(spec: &Value) -> Result<T, String> {
    if spec.is_null() {
        return Err("spec: missing; the object needs a spec".into());
    }
    serde_path_to_error::deserialize(spec.clone()).map_err(|e| match e.path().to_string() {
        path if path == "." => format!("spec: {}", e.inner()),
        path => format!("spec.{path}: {}", e.inner()),
    })
}

fn flow_problems(object: &SyncObject, syntax: &dyn Evaluator) -> Vec<String> {
    match typed::<FlowSpec>(object.spec()) {
        Err(problem) => vec![problem],
        Ok(spec) => document::problems(&spec, syntax),
    }
}

fn script_problems(object: &SyncObject) -> Vec<String> {
    match typed::<ScriptSpec>(object.spec()) {
        Err(problem) => vec![problem],
        Ok(spec) if Language::from_name(&spec.language).is_none() => vec![format!(
            "spec.language: `{}` is not a language Millrace runs ({})",
            spec.language,
            Language::NAMES.join(", ")
        )],
        Ok(_) => Vec::new(),
    }
}

/// The problems of a Schedule spec, and the Flows it names (field, name).
fn schedule_problems(spec: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let mut problems = Vec::new();
    let mut refs = Vec::new();
    let Some(fields) = spec.as_object() else {
        return (
            vec!["spec: missing; a Schedule needs a spec with schedule and flowRef".into()],
            refs,
        );
    };
    let time_zone = match fields.get("timeZone") {
        None => None,
        Some(Value::String(zone)) => Some(zone.as_str()),
        Some(_) => {
            problems.push("spec.timeZone: must be a string such as Europe/Paris".into());
            None
        }
    };
    match fields.get("schedule") {
        Some(Value::String(cron)) if !cron.trim().is_empty() => {
            if let Err(problem) = check_schedule_expression(cron, time_zone) {
                problems.push(format!("spec.{problem}"));
            }
        }
        _ => problems.push("spec.schedule: a cron expression (a string) is needed".into()),
    }
    flow_ref(
        fields.get("flowRef"),
        "spec.flowRef",
        &mut problems,
        &mut refs,
    );
    match fields.get("inputs") {
        None | Some(Value::Object(_)) => {}
        Some(_) => problems.push("spec.inputs: must be a mapping of the flow's inputs".into()),
    }
    match fields.get("concurrencyPolicy") {
        None => {}
        Some(Value::String(p)) if ["Allow", "Forbid", "Replace"].contains(&p.as_str()) => {}
        Some(_) => problems.push("spec.concurrencyPolicy: must be Allow, Forbid or Replace".into()),
    }
    if fields.get("suspend").is_some_and(|s| !s.is_boolean()) {
        problems.push("spec.suspend: must be true or false".into());
    }
    if let Some(until) = fields.get("pausedUntil")
        && serde_json::from_value::<Time>(until.clone()).is_err()
    {
        problems.push(format!(
            "spec.pausedUntil: {until} is not an RFC 3339 time such as 2030-01-31T08:00:00Z"
        ));
    }
    for handler in ["onFailure", "onRecovery", "onSuccess"] {
        let Some(entry) = fields.get(handler) else {
            continue;
        };
        let field = format!("spec.{handler}");
        flow_ref(
            entry.get("flowRef"),
            &format!("{field}.flowRef"),
            &mut problems,
            &mut refs,
        );
        if let Some(times) = entry.get("times")
            && times.as_u64().is_none_or(|t| t < 1)
        {
            problems.push(format!("{field}.times: must be a whole number, 1 or more"));
        }
    }
    (problems, refs)
}

fn flow_ref(
    value: Option<&Value>,
    field: &str,
    problems: &mut Vec<String>,
    refs: &mut Vec<(String, String)>,
) {
    match value.and_then(|r| r.get("name")) {
        Some(Value::String(name)) if !name.is_empty() => refs.push((field.into(), name.clone())),
        _ => problems.push(format!("{field}.name: the name of a Flow is needed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::InProcess;
    use serde_json::json;

    use crate::gitsync::objects::fixture as object;

    fn flow(name: &str) -> SyncObject {
        object(
            Kind::Flow,
            name,
            json!({"summary": "s", "value": {"modules": [{"id": "a", "value": {
                "type": "rawscript", "language": "bash", "content": "echo 1",
                "input_transforms": {"x": {"type": "javascript", "expr": "flow_input.x"}}}}]}}),
        )
    }

    fn schedule(name: &str, spec: Value) -> SyncObject {
        object(Kind::Schedule, name, spec)
    }

    #[test]
    fn good_objects_pass() {
        let objects = [
            flow("daily"),
            object(
                Kind::Script,
                "greet",
                json!({"language": "python3", "content": "def main(): pass"}),
            ),
            schedule(
                "nightly",
                json!({"schedule": "0 3 * * *", "timeZone": "Europe/Paris",
                "flowRef": {"name": "daily"}, "concurrencyPolicy": "Forbid", "suspend": false,
                "pausedUntil": "2030-01-01T00:00:00Z", "onFailure": {"flowRef": {"name": "daily"}, "times": 2}}),
            ),
        ];
        assert_eq!(
            validate(&objects, &InProcess::default(), None),
            Checked::default()
        );
    }

    #[test]
    fn a_flow_is_checked_down_to_its_expressions() {
        let mut bad = flow("broken");
        bad.manifest["spec"]["value"]["modules"][0]["value"]["input_transforms"]["x"]["expr"] =
            json!("flow_input.(");
        let mut shape = flow("shape");
        shape.manifest["spec"]["value"] = json!({"modules": 3});
        let checked = validate(&[bad, shape], &InProcess::default(), None);
        let messages: Vec<_> = checked.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("Flow broken: a: value.input_transforms.x"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("Flow shape: spec.value.modules: invalid type"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_script_needs_a_language_millrace_runs() {
        let checked = validate(
            &[object(
                Kind::Script,
                "q",
                json!({"language": "postgresql", "content": "select 1"}),
            )],
            &InProcess::default(),
            None,
        );
        assert_eq!(checked.errors.len(), 1);
        assert!(
            checked.errors[0]
                .message
                .contains("`postgresql` is not a language Millrace runs")
        );
    }

    #[test]
    fn schedule_structure_is_checked_field_by_field() {
        let checked = validate(
            &[schedule(
                "s",
                json!({"timeZone": 3, "inputs": [], "concurrencyPolicy": "Sometimes",
                "suspend": "no", "pausedUntil": "tomorrow", "onSuccess": {"flowRef": {}},
                "onFailure": {"flowRef": {"name": "x"}, "times": 0}}),
            )],
            &InProcess::default(),
            None,
        );
        let fields: Vec<_> = checked
            .errors
            .iter()
            .map(|e| e.message.split(':').nth(1).unwrap().trim())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.timeZone",
                "spec.schedule",
                "spec.flowRef.name",
                "spec.inputs",
                "spec.concurrencyPolicy",
                "spec.suspend",
                "spec.pausedUntil",
                "spec.onFailure.times",
                "spec.onSuccess.flowRef.name"
            ]
        );
    }

    #[test]
    fn cron_expressions_and_zones_are_parsed() {
        let flow_ref = json!({"name": "x"});
        let objects = [
            schedule(
                "windmill",
                json!({"schedule": "0 0 7 * * 1-5", "timeZone": "Europe/Paris", "flowRef": flow_ref}),
            ),
            schedule(
                "minute",
                json!({"schedule": "61 * * * *", "flowRef": flow_ref}),
            ),
            schedule(
                "zone",
                json!({"schedule": "@daily", "timeZone": "Mars/Olympus", "flowRef": flow_ref}),
            ),
        ];
        let checked = validate(&objects, &InProcess::default(), None);
        let messages: Vec<_> = checked.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("Schedule minute: spec.schedule \"61 * * * *\""),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("Schedule zone: spec.timeZone \"Mars/Olympus\""),
            "{messages:?}"
        );
    }

    #[test]
    fn flows_outside_the_revision_are_noted_or_looked_up_in_the_cluster() {
        let objects = [schedule(
            "s",
            json!({"schedule": "@daily", "flowRef": {"name": "elsewhere"}}),
        )];
        let checked = validate(&objects, &InProcess::default(), None);
        assert!(checked.errors.is_empty());
        assert_eq!(checked.notes.len(), 1);
        assert!(
            checked.notes[0]
                .message
                .contains("Flow `elsewhere` is not in this revision")
        );
        let names = BTreeSet::from(["elsewhere".to_string()]);
        let cluster = ClusterFlows {
            namespace: "team",
            names: &names,
        };
        assert_eq!(
            validate(&objects, &InProcess::default(), Some(&cluster)),
            Checked::default()
        );
        let empty = BTreeSet::new();
        let cluster = ClusterFlows {
            namespace: "team",
            names: &empty,
        };
        let checked = validate(&objects, &InProcess::default(), Some(&cluster));
        assert!(
            checked.errors[0].message.contains("nor in namespace team"),
            "{:?}",
            checked.errors
        );
    }
}
