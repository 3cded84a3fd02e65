//! Engine decisions per second on a 10,000-iteration loop, and the size of its state.
//!
//! A decision is one `start` / `advance` call. The fake executor finishes attempts in start
//! order at once, so the figures are the engine's own cost. Every transform is static: no
//! expression is evaluated, which is the trivial evaluator path.
//!
//! Run: `cargo bench --bench engine`

use millrace::engine::{
    Action, AttemptId, Env, Event, ResolveError, ResolvedScript, Resolver, RunState, advance, start,
};
use millrace::expr::InProcess;
use millrace::flow::OpenFlow;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

const ITERATIONS: usize = 10_000;

struct NoLibrary;

impl Resolver for NoLibrary {
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "script",
            path: path.into(),
        })
    }
    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "flow",
            path: path.into(),
        })
    }
    fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "variable",
            path: path.into(),
        })
    }
    fn resource(&self, path: &str) -> Result<Value, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "resource",
            path: path.into(),
        })
    }
}

fn loop_flow(parallel: Option<u64>) -> OpenFlow {
    let items: Vec<usize> = (0..ITERATIONS).collect();
    let mut lp = json!({"type": "forloopflow", "iterator": {"type": "static", "value": items},
        "modules": [{"id": "a", "value": {"type": "rawscript", "language": "bash", "content": "echo 1",
            "input_transforms": {"x": {"type": "static", "value": 1}}}}]});
    if let Some(n) = parallel {
        lp["parallel"] = json!(true);
        lp["parallelism"] = json!(n);
    }
    serde_json::from_value(
        json!({"summary": "bench", "value": {"modules": [{"id": "l", "value": lp}]}}),
    )
    .unwrap()
}

fn collect(actions: Vec<Action>, running: &mut VecDeque<AttemptId>) {
    for action in actions {
        if let Action::StartAttempt { id, .. } = action {
            running.push_back(id);
        }
    }
}

/// Serialised sizes in bytes: the control state, and the result store kept apart.
fn sizes(state: &RunState) -> (usize, usize) {
    let mut control = state.clone();
    let results = std::mem::take(&mut control.results);
    (
        serde_json::to_vec(&control).unwrap().len(),
        serde_json::to_vec(&results).unwrap().len(),
    )
}

fn run(name: &str, parallel: Option<u64>) {
    let flow = loop_flow(parallel);
    let evaluator = InProcess::default();
    let env = Env {
        evaluator: &evaluator,
        resolver: &NoLibrary,
    };
    let mut running: VecDeque<AttemptId> = VecDeque::new();
    let begun = Instant::now();
    let (mut state, actions) = start(&flow, json!({}), 1, &env, 0).unwrap();
    collect(actions, &mut running);
    let mut decisions = 1u64;
    let mut mid = (0, 0);
    let mut now = 0;
    while let Some(id) = running.pop_front() {
        now += 1;
        let index = id.step.segments().next().and_then(|s| s.index).unwrap_or(0);
        let actions = advance(
            &flow,
            &mut state,
            Event::StepFinished {
                id,
                outcome: Ok(json!(index)),
            },
            &env,
            now,
        )
        .unwrap();
        collect(actions, &mut running);
        decisions += 1;
        if decisions == ITERATIONS as u64 / 2 {
            mid = sizes(&state);
        }
    }
    let elapsed = begun.elapsed();
    assert!(state.outcome().is_some(), "the run finished");
    let end = sizes(&state);
    println!(
        "{name:<22} {decisions:>6} decisions in {:>7.1} ms = {:>9.0} decisions/s | state mid-loop: control {} B, results {} B | finished: control {} B, results {} B",
        elapsed.as_secs_f64() * 1e3,
        decisions as f64 / elapsed.as_secs_f64(),
        mid.0,
        mid.1,
        end.0,
        end.1
    );
}

fn main() {
    println!("for-loop over {ITERATIONS} items, one script step per iteration");
    run("sequential", None);
    run("parallel, parallelism 10", Some(10));
    run("parallel, unlimited", Some(0));
}
