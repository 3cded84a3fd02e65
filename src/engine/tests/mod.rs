//! The engine driven by a scripted fake executor: no processes, no clock. Each file covers one
//! area of OPENFLOW.md; expressions go through the real in-process evaluator.

mod branches;
mod failures;
mod loops;
mod resume;
mod retries;
mod sequence;
mod subflows;
mod suspend;

use super::*;
use crate::expr::InProcess;
use crate::flow::OpenFlow;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Scripts, flows and secrets a test flow refers to by path.
#[derive(Default)]
pub(super) struct Library {
    pub scripts: HashMap<String, ResolvedScript>,
    pub flows: HashMap<String, Arc<OpenFlow>>,
    pub variables: Map<String, Value>,
}

impl Resolver for Library {
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError> {
        self.scripts
            .get(path)
            .cloned()
            .ok_or(ResolveError::NotFound {
                kind: "script",
                path: path.into(),
            })
    }
    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        self.flows.get(path).cloned().ok_or(ResolveError::NotFound {
            kind: "flow",
            path: path.into(),
        })
    }
    fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        self.variables
            .get(path)
            .cloned()
            .ok_or(ResolveError::NotFound {
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

/// A run and the fake executor around it: what is running, the pending timer, every action.
pub(super) struct Harness {
    pub flow: OpenFlow,
    pub state: RunState,
    pub now: u64,
    pub library: Library,
    evaluator: InProcess,
    /// Started and not yet finished or canceled, in start order.
    pub running: Vec<(AttemptId, StepSpec)>,
    pub actions: Vec<Action>,
    pub wake: Option<u64>,
    pub max_running: usize,
}

pub(super) const T0: u64 = 1_000_000;

impl Harness {
    pub fn start(flow: OpenFlow, inputs: Value) -> Self {
        Self::start_with(flow, inputs, Library::default())
    }

    pub fn start_with(flow: OpenFlow, inputs: Value, library: Library) -> Self {
        let evaluator = InProcess::default();
        let env = Env {
            evaluator: &evaluator,
            resolver: &library,
        };
        let (state, actions) = start(&flow, inputs, 7, &env, T0).expect("the run starts");
        let mut h = Harness {
            flow,
            state,
            now: T0,
            library,
            evaluator,
            running: Vec::new(),
            actions: Vec::new(),
            wake: None,
            max_running: 0,
        };
        h.take(actions);
        h
    }

    /// Records what an executor would do with `actions`; returns them too.
    pub fn take(&mut self, actions: Vec<Action>) -> Vec<Action> {
        self.wake = None;
        for action in &actions {
            match action {
                Action::StartAttempt { id, spec } => {
                    if !self.running.iter().any(|(r, _)| r == id) {
                        self.running.push((id.clone(), spec.clone()));
                    }
                }
                Action::CancelAttempt { id } => self.running.retain(|(r, _)| r != id),
                Action::WakeAt { at_ms } => self.wake = Some(*at_ms),
                Action::AwaitApproval { .. } | Action::EarlyReturn { .. } | Action::Finish(_) => {}
            }
        }
        self.max_running = self.max_running.max(self.running.len());
        self.actions.extend(actions.iter().cloned());
        actions
    }

    pub fn send(&mut self, event: Event) -> Vec<Action> {
        if let Event::StepFinished { id, .. } = &event {
            self.running.retain(|(r, _)| r != id);
        }
        let env = Env {
            evaluator: &self.evaluator,
            resolver: &self.library,
        };
        let actions = advance(&self.flow, &mut self.state, event, &env, self.now).expect("advance");
        self.take(actions)
    }

    /// Moves the clock to `at_ms` and delivers a tick.
    pub fn tick_at(&mut self, at_ms: u64) -> Vec<Action> {
        self.now = at_ms;
        self.send(Event::Tick)
    }

    /// Finishes the running attempt of step `path` (its rendered path).
    pub fn finish(&mut self, path: &str, outcome: Result<Value, StepError>) -> Vec<Action> {
        let id = self.attempt(path);
        self.send(Event::StepFinished { id, outcome })
    }

    pub fn attempt(&self, path: &str) -> AttemptId {
        self.running
            .iter()
            .find(|(id, _)| id.step.as_str() == path)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| {
                panic!(
                    "`{path}` is not running; running: {:?}",
                    self.running_paths()
                )
            })
    }

    pub fn spec(&self, path: &str) -> &StepSpec {
        let id = self.attempt(path);
        &self
            .running
            .iter()
            .find(|(r, _)| *r == id)
            .expect("running")
            .1
    }

    pub fn running_paths(&self) -> Vec<String> {
        self.running
            .iter()
            .map(|(id, _)| id.step.to_string())
            .collect()
    }

    /// Runs to the end: the oldest running attempt finishes first with what `exec` says; when
    /// nothing runs, the clock jumps to the pending timer.
    pub fn run(
        &mut self,
        mut exec: impl FnMut(&AttemptId, &StepSpec) -> Result<Value, StepError>,
    ) -> RunOutcome {
        for _ in 0..100_000 {
            if let Some(outcome) = self.state.outcome() {
                return outcome;
            }
            if let Some((id, spec)) = self.running.first().cloned() {
                let outcome = exec(&id, &spec);
                self.send(Event::StepFinished { id, outcome });
            } else if let Some(at) = self.wake {
                self.tick_at(at.max(self.now));
            } else {
                panic!("the run is stuck: nothing runs and no timer is pending");
            }
        }
        panic!("the run did not end");
    }

    /// Every attempt started so far, rendered, in order.
    pub fn started(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::StartAttempt { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The run's error; panics unless it failed.
    pub fn error(&self) -> StepError {
        failed(&self.state.outcome().expect("the run ended")).clone()
    }

    /// The run's result; panics unless it succeeded.
    pub fn value(&self) -> Value {
        succeeded(&self.state.outcome().expect("the run ended")).clone()
    }

    pub fn result(&self, path: &str) -> Option<&Value> {
        self.state.results.get(path)
    }

    pub fn phase(&self, path: &str) -> Phase {
        self.state
            .steps(&self.flow)
            .into_iter()
            .find(|s| s.path.as_str() == path)
            .unwrap_or_else(|| panic!("no step `{path}` in the status"))
            .phase
    }
}

/// A fake script: returns its arguments as an object.
pub(super) fn echo(_: &AttemptId, spec: &StepSpec) -> Result<Value, StepError> {
    Ok(Value::Object(spec.args.clone()))
}

/// A fake script: returns its `x` argument.
pub(super) fn return_x(_: &AttemptId, spec: &StepSpec) -> Result<Value, StepError> {
    Ok(spec.args.get("x").cloned().unwrap_or(Value::Null))
}

pub(super) fn boom(message: &str) -> StepError {
    StepError {
        name: "Exception".into(),
        message: message.into(),
        stack: Some("at main".into()),
        step_id: None,
    }
}

pub(super) fn succeeded(outcome: &RunOutcome) -> &Value {
    match outcome {
        RunOutcome::Succeeded(v) => v,
        other => panic!("expected success, got {other:?}"),
    }
}

pub(super) fn failed(outcome: &RunOutcome) -> &StepError {
    match outcome {
        RunOutcome::Failed(e) => e,
        other => panic!("expected failure, got {other:?}"),
    }
}

/// A `rawscript` module with these input transforms.
pub(super) fn step(id: &str, transforms: Value) -> Value {
    json!({"id": id, "value": {"type": "rawscript", "language": "python3",
        "content": "def main(**kw): return kw", "input_transforms": transforms}})
}

/// A `javascript` input transform.
pub(super) fn js(expr: &str) -> Value {
    json!({"type": "javascript", "expr": expr})
}

/// A `static` input transform.
pub(super) fn fixed(value: Value) -> Value {
    json!({"type": "static", "value": value})
}

/// `module` with `fields` added (retry, skip_if, …).
pub(super) fn with(mut module: Value, fields: Value) -> Value {
    let (Value::Object(m), Value::Object(f)) = (&mut module, fields) else {
        panic!("objects expected")
    };
    m.extend(f);
    module
}

/// A flow of these modules; `value_fields` adds fields of `value` (failure_module, flow_env, …).
pub(super) fn flow_of(modules: Value, value_fields: Value) -> OpenFlow {
    let value = with(json!({"modules": modules}), value_fields);
    serde_json::from_value(json!({"summary": "test", "value": value})).expect("test flow parses")
}
