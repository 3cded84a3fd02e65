//! The golden table of expressions (tests/data/expressions.json), run against every evaluator.

use millrace::expr::{
    Evaluator, ExprError, InProcess, Sandbox, SandboxConfig, Scope, WORKER_SUBCOMMAND,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Table {
    /// The scope of every case that names none.
    default_scope: Scope,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    expr: String,
    scope: Option<Scope>,
    #[serde(default, deserialize_with = "present")]
    expected: Option<Value>,
    error: Option<ExpectedError>,
}

#[derive(Deserialize)]
struct ExpectedError {
    kind: String,
    contains: String,
}

/// `Some` for a present `expected`, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn table() -> Table {
    let text = include_str!("data/expressions.json");
    serde_json::from_str(text).expect("tests/data/expressions.json holds a default scope and cases")
}

fn kind(error: &ExprError) -> &'static str {
    match error {
        ExprError::Syntax(_) => "syntax",
        ExprError::TooDeep { .. } => "too deep",
        ExprError::Thrown(_) => "thrown",
        ExprError::Timeout(_) => "timeout",
        ExprError::Busy { .. } => "busy",
        ExprError::Memory(_) => "memory",
        ExprError::ResultTooLarge(_) => "too large",
        ExprError::Internal(_) => "internal",
    }
}

/// Why `case` fails on `evaluator`, if it does. Values are compared as text so that
/// object key order counts.
fn check(evaluator: &dyn Evaluator, case: &Case, default_scope: &Scope) -> Option<String> {
    let got = evaluator.eval(&case.expr, case.scope.as_ref().unwrap_or(default_scope));
    match (&case.expected, &case.error, got) {
        (Some(expected), None, Ok(value)) => {
            let (expected, value) = (expected.to_string(), value.to_string());
            (expected != value).then(|| format!("expected {expected}, got {value}"))
        }
        (None, Some(expected), Err(error)) => {
            let message = error.to_string();
            (kind(&error) != expected.kind || !message.contains(&expected.contains)).then(|| {
                format!(
                    "expected a {} error containing {:?}, got {message:?}",
                    expected.kind, expected.contains
                )
            })
        }
        (_, _, got) => Some(format!("unexpected outcome {got:?}")),
    }
}

fn assert_golden(evaluator: &dyn Evaluator) {
    let Table {
        default_scope,
        cases,
    } = table();
    assert!(
        cases.len() >= 60,
        "the golden table needs at least 60 cases"
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(evaluator, case, &default_scope)
                .map(|why| format!("{} ({:?}): {why}", case.name, case.expr))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_table_in_process() {
    assert_golden(&InProcess::default());
}

#[test]
fn golden_table_in_sandbox() {
    let config = SandboxConfig::new(
        env!("CARGO_BIN_EXE_millrace"),
        vec![WORKER_SUBCOMMAND.to_owned()],
    );
    assert_golden(&Sandbox::new(config).expect("the sandbox starts"));
}
