//! JavaScript expressions over a flow's inputs and results (API only; the sandboxed
//! implementation lands with the expression work).

use serde_json::{Map, Value};

/// The names an expression can see. Absent optional names are not bound at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// `flow_input`, including `iter` / `iter_parent`… inside loops.
    pub flow_input: Value,
    pub previous_result: Value,
    /// `results.<id>` for every step that ran before.
    pub results: Map<String, Value>,
    pub flow_env: Map<String, Value>,
    /// `result`: only in predicates, `iterator`, `sleep`, `timeout`, `parallelism`.
    pub result: Option<Value>,
    /// `error`: the error inside `previous_result`, when there is one.
    pub error: Option<Value>,
    /// `resume`: the payload of the last approval.
    pub resume: Option<Value>,
    /// Values of `variable(path)` by path, resolved by the caller before evaluation.
    pub variables: Map<String, Value>,
    /// Values of `resource(path)` by path, resolved by the caller before evaluation.
    pub resources: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("expression does not parse: {0}")]
    Syntax(String),
    #[error("expression threw: {0}")]
    Thrown(String),
    #[error("expression exceeded its time limit of {0} ms")]
    Timeout(u64),
    #[error("expression exceeded its memory limit of {0} MiB")]
    Memory(u64),
    #[error("expression evaluator failed: {0}")]
    Internal(String),
}

/// Evaluates expressions; implementations must keep no state from one call to the next.
pub trait Evaluator: Send + Sync {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError>;
}
