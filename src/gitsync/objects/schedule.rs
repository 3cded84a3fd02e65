//! `f/<folder>/<name>.schedule.yaml` as Windmill writes it → a `Schedule`. Windmill fields with
//! no Millrace meaning are refused by name rather than dropped, so nothing is lost unseen.

use super::{Converted, Kind, Workspace, object_name, windmill_object};
use crate::flow::yaml;
use crate::gitsync::plan::{FileError, Ignored};
use serde_json::{Map, Value, json};

/// Fields Windmill writes that change nothing here (bookkeeping, worker tags, the workspace
/// error handler, the cron dialect version).
const WITHOUT_EFFECT: [&str; 12] = [
    "path",
    "summary",
    "description",
    "email",
    "edited_by",
    "edited_at",
    "extra_perms",
    "permissioned_as",
    "tag",
    "ws_error_handler_muted",
    "cron_version",
    "error",
];

pub(super) fn convert(workspace: &Workspace, file: &str, out: &mut Converted) {
    let relative = workspace.relative(file);
    let path = [".schedule.yaml", ".schedule.yml", ".schedule.json"]
        .iter()
        .find_map(|ending| relative.strip_suffix(ending))
        .expect("classified as a schedule by its ending");
    let document = match workspace.text(file).and_then(|text| {
        yaml::to_json(text).map_err(|e| FileError::new(file, e.line(), e.to_string()))
    }) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => {
            let message = "a schedule is a mapping (schedule, timezone, script_path, is_flow, …)";
            return out.errors.push(FileError::new(file, None, message));
        }
        Err(error) => return out.errors.push(error),
    };
    if document.get("is_flow") != Some(&Value::Bool(true)) {
        let reason = "a schedule of a script (is_flow is not true): Millrace schedules flows only";
        return out.ignored.push(Ignored::new(file, reason));
    }
    match spec(document) {
        Ok(spec) => out
            .objects
            .push(windmill_object(workspace, Kind::Schedule, path, file, spec)),
        Err(messages) => out.errors.extend(
            messages
                .into_iter()
                .map(|message| FileError::new(file, None, message)),
        ),
    }
}

/// The Schedule spec, or every field that cannot be represented.
fn spec(mut windmill: Map<String, Value>) -> Result<Value, Vec<String>> {
    let mut spec = Map::new();
    let mut problems = Vec::new();
    for field in WITHOUT_EFFECT {
        windmill.remove(field);
    }
    windmill.remove("is_flow");
    match windmill.remove("schedule") {
        Some(Value::String(cron)) => {
            spec.insert("schedule".into(), cron.into());
        }
        _ => problems.push("schedule: a schedule needs its cron expression (a string)".into()),
    }
    match windmill.remove("timezone") {
        None | Some(Value::Null) => {}
        Some(Value::String(zone)) => {
            spec.insert("timeZone".into(), zone.into());
        }
        Some(_) => problems.push("timezone: must be a string such as Europe/Paris".into()),
    }
    match windmill.remove("script_path") {
        Some(Value::String(path)) if !path.is_empty() => {
            spec.insert("flowRef".into(), json!({"name": object_name(&path)}));
        }
        _ => problems.push("script_path: the path of the flow to run is needed".into()),
    }
    match windmill.remove("args") {
        None | Some(Value::Null) => {}
        Some(args @ Value::Object(_)) => {
            spec.insert("inputs".into(), args);
        }
        Some(_) => problems.push("args: must be a mapping of the flow's inputs".into()),
    }
    match windmill.remove("no_flow_overlap") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {
            spec.insert("concurrencyPolicy".into(), "Allow".into());
        }
        Some(Value::Bool(true)) => {
            spec.insert("concurrencyPolicy".into(), "Forbid".into());
        }
        Some(_) => problems.push("no_flow_overlap: must be true or false".into()),
    }
    match windmill.remove("enabled") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(enabled)) => {
            spec.insert("suspend".into(), (!enabled).into());
        }
        Some(_) => problems.push("enabled: must be true or false".into()),
    }
    match windmill.remove("paused_until") {
        None | Some(Value::Null) => {}
        Some(until) => {
            spec.insert("pausedUntil".into(), until);
        }
    }
    for (windmill_field, field) in [
        ("on_failure", "onFailure"),
        ("on_recovery", "onRecovery"),
        ("on_success", "onSuccess"),
    ] {
        let handler = windmill.remove(windmill_field);
        let times = windmill.remove(&format!("{windmill_field}_times"));
        let extra_args = windmill.remove(&format!("{windmill_field}_extra_args"));
        let exact = windmill.remove(&format!("{windmill_field}_exact"));
        let Some(Value::String(handler)) = handler.filter(|h| !h.is_null()) else {
            continue;
        };
        match handler_flow(windmill_field, &handler) {
            Ok(name) => {
                let mut entry = json!({"flowRef": {"name": name}});
                match (windmill_field, times) {
                    (_, None | Some(Value::Null)) => {}
                    ("on_failure", Some(times)) => entry["times"] = times,
                    (_, Some(times)) if times.as_f64() == Some(1.0) => {}
                    (_, Some(times)) => problems.push(format!(
                        "{windmill_field}_times: {times}: Millrace runs this handler after the first success; remove it"
                    )),
                }
                spec.insert(field.into(), entry);
            }
            Err(problem) => problems.push(problem),
        }
        if extra_args
            .as_ref()
            .is_some_and(|a| !a.is_null() && a.as_object().is_none_or(|m| !m.is_empty()))
        {
            problems.push(format!(
                "{windmill_field}_extra_args: handlers get no extra arguments in Millrace; remove them"
            ));
        }
        if exact.is_some_and(|e| e == Value::Bool(true)) {
            problems.push(format!(
                "{windmill_field}_exact: Millrace runs the handler once the count is reached; remove it"
            ));
        }
    }
    for field in ["retry", "dynamic_skip"] {
        if windmill.remove(field).is_some_and(|v| !v.is_null()) {
            problems.push(format!(
                "{field}: not supported on a Millrace schedule (retries belong to the flow's steps); remove it"
            ));
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(spec))
    } else {
        Err(problems)
    }
}

/// The Flow a handler (`flow/f/x/y`) runs.
fn handler_flow(field: &str, handler: &str) -> Result<String, String> {
    match handler.split_once('/') {
        Some(("flow", path)) if !path.is_empty() => Ok(object_name(path)),
        Some(("script", _)) => Err(format!(
            "{field}: `{handler}` is a script; a Millrace handler is a flow: make it a flow and name it `flow/<path>`"
        )),
        _ => Err(format!(
            "{field}: `{handler}` is not a handler; write `flow/<path of a flow>`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn maps_every_windmill_field() {
        let spec = spec(fields(json!({
            "schedule": "0 0 12 * * *", "timezone": "Europe/Paris", "script_path": "f/reports/daily",
            "is_flow": true, "args": {"team": "a"}, "enabled": false, "paused_until": "2030-01-01T00:00:00Z",
            "no_flow_overlap": true, "on_failure": "flow/f/ops/alert", "on_failure_times": 3,
            "on_recovery": "flow/f/ops/recovered", "on_recovery_times": 1,
            "on_success": "flow/f/ops/done", "summary": "Daily", "cron_version": "v2",
            "ws_error_handler_muted": false, "on_failure_extra_args": {}, "retry": null,
        })))
        .unwrap();
        assert_eq!(
            spec,
            json!({
                "schedule": "0 0 12 * * *", "timeZone": "Europe/Paris",
                "flowRef": {"name": "f-reports-daily"}, "inputs": {"team": "a"},
                "concurrencyPolicy": "Forbid", "suspend": true, "pausedUntil": "2030-01-01T00:00:00Z",
                "onFailure": {"flowRef": {"name": "f-ops-alert"}, "times": 3},
                "onRecovery": {"flowRef": {"name": "f-ops-recovered"}},
                "onSuccess": {"flowRef": {"name": "f-ops-done"}},
            })
        );
    }

    #[test]
    fn fields_without_a_counterpart_are_named() {
        let problems = spec(fields(json!({
            "schedule": "* * * * * *", "script_path": "f/a/b", "is_flow": true,
            "on_failure": "script/f/ops/alert", "on_recovery": "flow/f/ops/ok", "on_recovery_times": 2,
            "on_success": "flow/f/ops/ok", "on_success_extra_args": {"x": 1},
            "retry": {"constant": {"attempts": 2}},
        })))
        .unwrap_err();
        let fields: Vec<_> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "on_failure",
                "on_recovery_times",
                "on_success_extra_args",
                "retry"
            ],
            "{problems:?}"
        );
        assert!(problems[0].contains("is a script"), "{problems:?}");
    }

    #[test]
    fn the_schedule_and_the_flow_are_required() {
        let problems = spec(fields(json!({"is_flow": true}))).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("schedule:"));
        assert!(problems[1].starts_with("script_path:"));
    }
}
