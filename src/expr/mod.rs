//! JavaScript expressions over a flow's inputs and results.
//!
//! [`InProcess`] evaluates in the calling thread; [`Sandbox`] evaluates in a pool of
//! worker processes with time and memory bounds, for expressions from untrusted flows.

mod convert;
mod inprocess;
mod path;
mod sandbox;
mod scan;
mod source;

pub use inprocess::{InProcess, Limits};
pub use sandbox::{Sandbox, SandboxConfig, WORKER_SUBCOMMAND, worker_main};
pub use scan::referenced_secrets;
pub(crate) use source::MAX_NESTING;
pub use source::check_syntax;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The names an expression can see. Absent optional names are not bound at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scope {
    /// `flow_input`, including `iter` / `iter_parent`… inside loops.
    pub flow_input: Value,
    pub previous_result: Value,
    /// `results.<id>` for every step that ran before.
    pub results: Map<String, Value>,
    pub flow_env: Map<String, Value>,
    /// `result`: only in predicates, `iterator`, `sleep`, `timeout`, `parallelism`.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// `error`: the error inside `previous_result`, when there is one.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// `resume`: the payload of the last approval.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub resume: Option<Value>,
    /// Values of `variable(path)` by path, resolved by the caller before evaluation.
    pub variables: Map<String, Value>,
    /// Values of `resource(path)` by path, resolved by the caller before evaluation.
    pub resources: Map<String, Value>,
}

/// A present field is `Some`, even when it is `null`: a step's `result` can be null.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ExprError {
    #[error("expression does not parse: {0}")]
    Syntax(String),
    #[error(
        "expression nests {depth} levels of brackets, braces and template substitutions deep; \
         at most {limit} are allowed: split it into steps or named parts"
    )]
    TooDeep { depth: usize, limit: usize },
    #[error("expression threw: {0}")]
    Thrown(String),
    #[error("expression exceeded its time limit of {0} ms")]
    Timeout(u64),
    #[error(
        "the expression sandbox was busy: its {workers} worker(s) stayed taken for the whole time \
         limit of {timeout_ms} ms, with {waiting} evaluation(s) waiting; give the sandbox more \
         workers or a longer time limit, or find the flows whose expressions time out"
    )]
    Busy {
        timeout_ms: u64,
        workers: usize,
        waiting: usize,
    },
    #[error("expression exceeded its memory limit of {0} MiB")]
    Memory(u64),
    #[error("expression result is larger than the limit of {0} bytes")]
    ResultTooLarge(usize),
    #[error("expression evaluator failed: {0}")]
    Internal(String),
}

/// Evaluates expressions; implementations must keep no state from one call to the next.
pub trait Evaluator: Send + Sync {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError>;

    /// Parses `source` without evaluating it. By default in the calling thread, like
    /// [`check_syntax`]: sources nesting brackets too deeply are refused before parsing, but
    /// other deep shapes (`!!!…x`, long operator chains) can still overflow the stack and
    /// abort the process; [`Sandbox`] parses in a worker, the safe choice.
    fn check(&self, source: &str) -> Result<(), ExprError> {
        check_syntax(source)
    }

    /// This evaluator for the expressions of one queue: one run, or one Flow and its runs.
    /// Where evaluations wait for a shared resource (the [`Sandbox`]'s workers), queues take
    /// turns, so one queue's hostile expressions cannot starve the others. By default the
    /// evaluator itself: nothing waits.
    fn for_queue<'a>(&'a self, queue: &str) -> Box<dyn Evaluator + 'a> {
        let _ = queue;
        Box::new(self)
    }
}

impl<T: Evaluator + ?Sized> Evaluator for &T {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError> {
        (**self).eval(source, scope)
    }

    fn check(&self, source: &str) -> Result<(), ExprError> {
        (**self).check(source)
    }

    fn for_queue<'a>(&'a self, queue: &str) -> Box<dyn Evaluator + 'a> {
        (**self).for_queue(queue)
    }
}

/// JavaScript truthiness of a JSON value, for predicates (`skip_if`, `stop_after_if`, branch `expr`).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_follows_javascript() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(-0.0),
            json!(0.0),
            json!(""),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for truthy_value in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("0"),
            json!("false"),
            json!([]),
            json!({}),
        ] {
            assert!(truthy(&truthy_value), "{truthy_value}");
        }
    }
}
