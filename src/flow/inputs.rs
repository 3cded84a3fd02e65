//! The flow's input `schema`: checking that it is a JSON Schema, and checking inputs against it.
//!
//! Windmill writes draft-07-ish schemas with keys of its own (`order`, `nullable`, formats such as
//! `resource-postgresql`); unknown keywords and formats are accepted, the formats Windmill's UI
//! offers (email, hostname, ipv4, ipv6, uri, date-time, …) are checked.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};
use std::fmt;

/// Why one input was refused. `input` is empty for a problem with the inputs as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub input: String,
    pub message: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.input.is_empty() {
            write!(f, "inputs: {}", self.message)
        } else {
            write!(f, "input '{}': {}", self.input, self.message)
        }
    }
}

/// Fills in the schema's defaults for inputs not given, then checks the inputs against the
/// schema. Returns the inputs to run with, or one problem per failing input. Without a schema,
/// the inputs are taken as given.
pub fn prepare_inputs(
    schema: Option<&Value>,
    mut given: Map<String, Value>,
) -> Result<Map<String, Value>, Vec<InputProblem>> {
    let Some(schema) = schema else {
        return Ok(given);
    };
    let validator = compile(schema).map_err(|error| {
        vec![InputProblem {
            input: String::new(),
            message: format!("the flow's schema is not a valid JSON Schema: {error}"),
        }]
    })?;
    fill_defaults(schema, &mut given);
    let inputs = Value::Object(given);
    let problems = group_by_input(validator.iter_errors(&inputs));
    if !problems.is_empty() {
        return Err(problems);
    }
    let Value::Object(inputs) = inputs else {
        unreachable!("built as an object above")
    };
    Ok(inputs)
}

/// Why `schema` is not a usable JSON Schema: every meta-schema violation, or the reason it
/// does not compile (a `pattern` that is not a regular expression, an unresolvable `$ref`).
pub fn schema_errors(schema: &Value) -> Vec<String> {
    let meta = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta,
        Err(error) => return vec![error.to_string()],
    };
    let errors: Vec<String> = meta
        .iter_errors(schema)
        .map(|error| describe(&error))
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    match compile(schema) {
        Ok(_) => Vec::new(),
        Err(error) => vec![describe(&error)],
    }
}

fn compile(schema: &Value) -> Result<Validator, ValidationError<'static>> {
    jsonschema::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(schema)
}

/// A schema error with where it is, e.g. `at /properties/n/type: "number2" is not valid …`.
fn describe(error: &ValidationError<'_>) -> String {
    let at = error.instance_path().as_str();
    if at.is_empty() {
        error.to_string()
    } else {
        format!("at {at}: {error}")
    }
}

/// Top-level `properties.*.default`. Windmill writes `default: null` for "no default", so a null
/// default is not filled in.
fn fill_defaults(schema: &Value, inputs: &mut Map<String, Value>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        match property.get("default") {
            Some(Value::Null) | None => {}
            Some(default) => {
                inputs
                    .entry(name.clone())
                    .or_insert_with(|| default.clone());
            }
        }
    }
}

/// One problem per input, its messages joined, in the order the inputs first failed.
fn group_by_input<'i>(errors: impl Iterator<Item = ValidationError<'i>>) -> Vec<InputProblem> {
    let mut problems: Vec<InputProblem> = Vec::new();
    for error in errors {
        for (input, message) in attribute(&error) {
            match problems.iter_mut().find(|p| p.input == input) {
                Some(problem) => {
                    problem.message.push_str("; ");
                    problem.message.push_str(&message);
                }
                None => problems.push(InputProblem { input, message }),
            }
        }
    }
    problems
}

/// The input(s) an error is about, and what to say about each.
fn attribute(error: &ValidationError<'_>) -> Vec<(String, String)> {
    let mut path = error.instance_path().iter();
    if let Some(first) = path.next() {
        let input = first.to_string();
        let rest: Vec<String> = path.map(|segment| segment.to_string()).collect();
        let message = if rest.is_empty() {
            error.to_string()
        } else {
            format!("at {}: {error}", rest.join("."))
        };
        return vec![(input, message)];
    }
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let input = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            vec![(input, "is required and has no default".to_string())]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|input| (input.clone(), "is not an input of this flow".to_string()))
            .collect(),
        _ => vec![(String::new(), error.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn windmill_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "order": ["email", "days", "mode", "code"],
            "properties": {
                "email": {"type": "string", "format": "email", "description": ""},
                "days": {"type": "integer", "default": 7},
                "mode": {"type": "string", "enum": ["fast", "full"], "default": null},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "db": {"type": "object", "format": "resource-postgresql"},
                "when": {"type": "string", "format": "date-time"},
                "host": {"type": "string", "format": "hostname"},
                "v4": {"type": "string", "format": "ipv4"},
                "v6": {"type": "string", "format": "ipv6"},
                "site": {"type": "string", "format": "uri"}
            },
            "required": ["email", "days"]
        })
    }

    #[test]
    fn fills_defaults_and_accepts_valid_inputs() {
        let given = inputs(json!({"email": "a@example.com", "db": {"host": "x"}}));
        let prepared = prepare_inputs(Some(&windmill_schema()), given).unwrap();
        assert_eq!(
            Value::Object(prepared),
            json!({"email": "a@example.com", "db": {"host": "x"}, "days": 7})
        );
    }

    #[test]
    fn a_null_default_is_not_filled_in() {
        let given = inputs(json!({"email": "a@example.com"}));
        let prepared = prepare_inputs(Some(&windmill_schema()), given).unwrap();
        assert!(!prepared.contains_key("mode"));
    }

    #[test]
    fn without_a_schema_inputs_pass_as_given() {
        let given = inputs(json!({"anything": [1]}));
        assert_eq!(prepare_inputs(None, given.clone()).unwrap(), given);
    }

    #[test]
    fn reports_one_problem_per_failing_input() {
        let given = inputs(json!({
            "days": "seven",
            "mode": "slow",
            "code": "abc",
            "when": "yesterday",
            "host": "-bad-.example",
            "v4": "300.1.1.1",
            "v6": "1::2::3",
            "site": "not a uri"
        }));
        let problems = prepare_inputs(Some(&windmill_schema()), given).unwrap_err();
        let mut names: Vec<&str> = problems.iter().map(|p| p.input.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "code", "days", "email", "host", "mode", "site", "v4", "v6", "when"
            ]
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(&"input 'email': is required and has no default".to_string()),
            "{text:?}"
        );
        assert!(
            text.contains(&r#"input 'days': "seven" is not of type "integer""#.to_string()),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("input 'mode': ") && t.contains("fast")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("input 'code': ") && t.contains("^[A-Z]{3}$")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("input 'when': ") && t.contains("date-time")),
            "{text:?}"
        );
    }

    #[test]
    fn checks_email_format() {
        let given = inputs(json!({"email": "not-an-email", "days": 1}));
        let problems = prepare_inputs(Some(&windmill_schema()), given).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            r#"input 'email': "not-an-email" is not a "email""#
        );
    }

    #[test]
    fn names_nested_locations_and_unexpected_inputs() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {"tags": {"type": "array", "items": {"type": "string"}}}
        });
        let given = inputs(json!({"tags": ["a", 2], "extra": true}));
        let problems = prepare_inputs(Some(&schema), given).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                r#"input 'tags': at 1: 2 is not of type "string""#,
                r#"input 'extra': is not an input of this flow"#
            ]
        );
    }

    #[test]
    fn an_invalid_schema_is_one_problem_about_the_schema() {
        let problems = prepare_inputs(Some(&json!({"type": "number2"})), Map::new()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .to_string()
                .starts_with("inputs: the flow's schema is not a valid JSON Schema")
        );
    }

    #[test]
    fn schema_errors_accept_windmill_schemas() {
        assert_eq!(schema_errors(&windmill_schema()), Vec::<String>::new());
        let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                            "properties": {"f": {"type": "string", "contentEncoding": "base64"}}});
        assert_eq!(schema_errors(&draft7), Vec::<String>::new());
    }

    #[test]
    fn schema_errors_name_the_bad_place() {
        let errors =
            schema_errors(&json!({"type": "object", "properties": {"n": {"type": "number2"}}}));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("at /properties/n/type: "),
            "{errors:?}"
        );
        let errors = schema_errors(
            &json!({"properties": {"c": {"type": "string", "pattern": "(unclosed"}}}),
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("(unclosed"), "{errors:?}");
    }
}
