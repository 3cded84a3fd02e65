//! Results too large for the FlowRun status: status points at the run's saved state, which the
//! operator keeps in ConfigMaps owned by the run (one, or several when the results are large).

use super::Cluster;
use crate::engine::{RunOutcome, RunState};
use crate::k8s::api::flowrun::FlowRunStatus;
use crate::k8s::operator;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RefError {
    #[error("the saved state of FlowRun \"{run}\" holds no result for {what}")]
    NoResult { run: String, what: String },
}

/// What a reference stands for: the run's result, or one step's.
pub enum Target<'a> {
    Run,
    Step(&'a str),
}

/// The run's result: inline in status, or read from the run's saved state.
pub async fn run_result(
    cluster: &Cluster,
    run: &str,
    status: &FlowRunStatus,
) -> anyhow::Result<Value> {
    match (&status.result, &status.result_ref) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(_)) => Ok(referenced(&saved(cluster, run).await?, run, Target::Run)?),
        (None, None) => Ok(Value::Null),
    }
}

/// The engine state the operator saved for `run`, results included.
pub async fn saved(cluster: &Cluster, run: &str) -> anyhow::Result<RunState> {
    operator::saved_state(&cluster.client, &cluster.namespace, run)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the saved state of FlowRun \"{run}\": {e}"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "FlowRun \"{run}\" points to its saved state, but the operator has not saved one (yet)"
            )
        })
}

/// The value `target` of run `run` stands for, from its saved state.
pub fn referenced(state: &RunState, run: &str, target: Target) -> Result<Value, RefError> {
    let no_result = |what: String| RefError::NoResult {
        run: run.into(),
        what,
    };
    match target {
        Target::Step(path) => state
            .results
            .get(path)
            .cloned()
            .ok_or_else(|| no_result(format!("step {path}"))),
        Target::Run => match state.outcome() {
            Some(RunOutcome::Succeeded(value) | RunOutcome::Skipped(value)) => Ok(value),
            _ => Err(no_result("the run".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Env, Event};
    use crate::expr::InProcess;
    use crate::flow::OpenFlow;
    use crate::run::resolve::LocalResolver;
    use crate::run::secrets::Secrets;
    use serde_json::json;

    /// The state of a one-step run, after the step returned `{"n": 1}` when `finished`.
    fn state(finished: bool) -> RunState {
        let flow: OpenFlow = serde_json::from_value(json!({"summary": "one", "value": {"modules": [
            {"id": "a", "value": {"type": "rawscript", "language": "bash", "content": "echo", "input_transforms": {}}},
        ]}}))
        .unwrap();
        let (evaluator, resolver) = (
            InProcess::default(),
            LocalResolver::new(".".into(), Secrets::default()),
        );
        let env = Env {
            evaluator: &evaluator,
            resolver: &resolver,
        };
        let (mut state, _) = engine::start(&flow, json!({}), 1, &env, 1_000).unwrap();
        if finished {
            let id = state.running_attempts().remove(0);
            let event = Event::StepFinished {
                id,
                outcome: Ok(json!({"n": 1})),
            };
            engine::advance(&flow, &mut state, event, &env, 2_000).unwrap();
        }
        state
    }

    #[test]
    fn step_and_run_results_are_read_from_the_saved_state() {
        let state = state(true);
        assert_eq!(
            referenced(&state, "r", Target::Step("a")),
            Ok(json!({"n": 1}))
        );
        assert_eq!(referenced(&state, "r", Target::Run), Ok(json!({"n": 1})));
        assert_eq!(
            referenced(&state, "r", Target::Step("b"))
                .unwrap_err()
                .to_string(),
            "the saved state of FlowRun \"r\" holds no result for step b"
        );
    }

    #[test]
    fn a_run_still_going_has_no_result() {
        assert_eq!(
            referenced(&state(false), "r", Target::Run)
                .unwrap_err()
                .to_string(),
            "the saved state of FlowRun \"r\" holds no result for the run"
        );
    }
}
