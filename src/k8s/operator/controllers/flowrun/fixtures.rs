//! Runs for the unit tests of this controller: a flow of bash steps, started by the engine.

use super::job::RunIdentity;
use super::library::Library;
use super::resolver::ClusterResolver;
use super::saved::Persisted;
use crate::engine::{self, Env, RunState};
use crate::expr::InProcess;
use crate::flow::OpenFlow;
use serde_json::{Value, json};

/// A flow of one bash step per id, in order.
pub fn bash_flow(ids: &[&str]) -> OpenFlow {
    let modules: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "value": {"type": "rawscript", "language": "bash",
                "content": "echo", "input_transforms": {}}})
        })
        .collect();
    serde_json::from_value(json!({"summary": "bash", "value": {"modules": modules}})).unwrap()
}

/// `flow` as the engine starts it at 1 000 ms with `inputs`.
pub fn started(flow: OpenFlow, inputs: Value) -> Persisted {
    let evaluator = InProcess::default();
    let env = Env {
        evaluator: &evaluator,
        resolver: &ClusterResolver::default(),
    };
    let (state, _) = engine::start(&flow, inputs, 7, &env, 1_000).unwrap();
    persisted(flow, state)
}

/// A run of `flow` in `state`, started at 1 000 ms, nothing approved yet.
pub fn persisted(flow: OpenFlow, state: RunState) -> Persisted {
    Persisted {
        flow,
        library: Library::default(),
        runtime: None,
        state,
        approvals_seen: 0,
        started_ms: 1_000,
        finished_ms: None,
    }
}

pub fn identity() -> RunIdentity {
    RunIdentity {
        name: "r".into(),
        namespace: "ns".into(),
        uid: "u".into(),
    }
}
