//! Read-only views of a run for status displays: each step's phase, attempts and times, loop
//! counters, and overall progress. Results and errors are looked up in [`RunState::results`] under
//! the step's path.

use super::api::RunOutcome;
use super::path::{AttemptId, StepPath};
use super::state::{Active, Ended, FlowNode, LeafPhase, Node, RunState, Seq};
use crate::flow::OpenFlow;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    /// Waiting out the module's `sleep`.
    Sleeping,
    Running,
    /// Failed, waiting out the back-off before the next attempt.
    Retrying,
    /// Waiting for approval.
    Suspended,
    Succeeded,
    /// Failed after its retries (the flow may have gone on: `continue_on_error`, `skip_failures`).
    Failed,
    Skipped,
    Canceled,
}

/// Counters of a loop or branchall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopProgress {
    /// Iterations (or branches) in all; `None` for a while loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    pub succeeded: u32,
    pub failed: u32,
    pub running: u32,
}

/// One step as a status display shows it. Its result (or, once failed, its error) is
/// `state.results.get(path.as_str())`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub path: StepPath,
    pub phase: Phase,
    /// Attempts started so far (script steps; 0 for others).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<LoopProgress>,
}

/// The run at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    /// `running` until the run ends, then `succeeded`, `failed`, `skipped` or `canceled`.
    pub phase: Phase,
    /// Top-level steps finished.
    pub done: u32,
    /// Top-level steps in the flow.
    pub total: u32,
    /// The top-level step (or failure module) running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<StepPath>,
}

impl RunState {
    /// How the run ended, once it has.
    pub fn outcome(&self) -> Option<RunOutcome> {
        Some(match self.ended.as_ref()? {
            Ended::Succeeded { result_key } => {
                RunOutcome::Succeeded(self.results.get(result_key).cloned().unwrap_or(Value::Null))
            }
            Ended::Failed { error } => RunOutcome::Failed(error.clone()),
            Ended::Skipped { result_key } => {
                RunOutcome::Skipped(self.results.get(result_key).cloned().unwrap_or(Value::Null))
            }
            Ended::Canceled => RunOutcome::Canceled,
        })
    }

    /// Every top-level step (pending ones included) and, depth first, the steps of the loop
    /// iterations, branches and subflows running now. Finished iterations are only counted (in
    /// their loop's [`LoopProgress`]), so the list stays short for any loop size.
    pub fn steps(&self, flow: &OpenFlow) -> Vec<StepView> {
        let mut out = Vec::new();
        let root = StepPath::root();
        seq_views(&self.flow.main, &root, &mut out);
        let started = self.flow.main.done.len() + usize::from(self.flow.main.current.is_some());
        // Steps the run will not reach any more (it failed or ended early) are skipped.
        let unreached = if self.flow.handler.is_some() || self.ended.is_some() {
            Phase::Skipped
        } else {
            Phase::Pending
        };
        for module in flow.value.modules.iter().skip(started) {
            out.push(StepView {
                path: root.child(&module.id),
                phase: unreached,
                attempts: 0,
                started_ms: None,
                finished_ms: None,
                progress: None,
            });
        }
        if let Some(handler) = &self.flow.handler {
            seq_views(handler, &root, &mut out);
        }
        if self.ended == Some(Ended::Canceled) {
            for view in &mut out {
                if matches!(
                    view.phase,
                    Phase::Running | Phase::Retrying | Phase::Sleeping | Phase::Suspended
                ) {
                    view.phase = Phase::Canceled;
                }
            }
        }
        out
    }

    /// Overall counts and the current top-level step.
    pub fn progress(&self, flow: &OpenFlow) -> RunProgress {
        let current = match &self.flow.handler {
            Some(handler) => handler.current.as_ref(),
            None => self.flow.main.current.as_ref(),
        };
        let phase = match &self.ended {
            None => Phase::Running,
            Some(Ended::Succeeded { .. }) => Phase::Succeeded,
            Some(Ended::Failed { .. }) => Phase::Failed,
            Some(Ended::Skipped { .. }) => Phase::Skipped,
            Some(Ended::Canceled) => Phase::Canceled,
        };
        RunProgress {
            phase,
            done: self.flow.main.done.len() as u32,
            total: flow.value.modules.len() as u32,
            current: current.map(|a| StepPath::root().child(&a.id)),
        }
    }

    /// The attempts running now, e.g. to match them against Jobs after a restart.
    pub fn running_attempts(&self) -> Vec<AttemptId> {
        let mut out = Vec::new();
        flow_attempts(&self.flow, &StepPath::root(), &mut out);
        out
    }

    /// When the engine next wants a [`Event::Tick`](super::Event::Tick): the earliest pending
    /// timer (possibly a little earlier after a timer inside a wide loop went away).
    pub fn next_wake_ms(&self) -> Option<u64> {
        if self.ended.is_some() {
            return None;
        }
        earliest(flow_wake(&self.flow), self.yielded_at)
    }
}

fn seq_views(seq: &Seq, base: &StepPath, out: &mut Vec<StepView>) {
    for record in &seq.done {
        out.push(StepView {
            path: base.child(&record.id),
            phase: record.phase,
            attempts: record.attempts,
            started_ms: Some(record.started_ms),
            finished_ms: Some(record.finished_ms),
            progress: record.progress,
        });
    }
    if let Some(active) = &seq.current {
        active_views(active, &base.child(&active.id), out);
    }
}

fn active_views(active: &Active, path: &StepPath, out: &mut Vec<StepView>) {
    let (phase, attempts, progress) = match &active.node {
        Node::Sleeping { attempts, .. } => (Phase::Sleeping, *attempts, None),
        Node::Script(leaf) => {
            let phase = match leaf.phase {
                LeafPhase::Backoff { .. } => Phase::Retrying,
                LeafPhase::Ready | LeafPhase::Running => Phase::Running,
            };
            (phase, leaf.attempt, None)
        }
        Node::Fan(fan) => (Phase::Running, 0, Some(fan.progress())),
        Node::BranchOne { .. } | Node::Subflow(_) => (Phase::Running, 0, None),
        Node::Suspended { attempts, .. } => (Phase::Suspended, *attempts, None),
    };
    out.push(StepView {
        path: path.clone(),
        phase,
        attempts,
        started_ms: Some(active.started_ms),
        finished_ms: None,
        progress,
    });
    match &active.node {
        Node::Fan(fan) => {
            for (index, body) in &fan.running {
                seq_views(body, &path.indexed(*index), out);
            }
        }
        Node::BranchOne { branch, body } => seq_views(body, &path.indexed(*branch), out),
        Node::Subflow(sub) => {
            seq_views(&sub.main, path, out);
            if let Some(handler) = &sub.handler {
                seq_views(handler, path, out);
            }
        }
        Node::Sleeping { .. } | Node::Script(_) | Node::Suspended { .. } => {}
    }
}

fn flow_attempts(flow: &FlowNode, base: &StepPath, out: &mut Vec<AttemptId>) {
    seq_attempts(&flow.main, base, out);
    if let Some(handler) = &flow.handler {
        seq_attempts(handler, base, out);
    }
}

pub(crate) fn seq_attempts(seq: &Seq, base: &StepPath, out: &mut Vec<AttemptId>) {
    let Some(active) = &seq.current else { return };
    let path = base.child(&active.id);
    match &active.node {
        Node::Script(leaf) if leaf.phase == LeafPhase::Running => {
            out.push(AttemptId {
                step: path,
                attempt: leaf.attempt,
            });
        }
        Node::Fan(fan) => {
            for (index, body) in &fan.running {
                seq_attempts(body, &path.indexed(*index), out);
            }
        }
        Node::BranchOne { branch, body } => seq_attempts(body, &path.indexed(*branch), out),
        Node::Subflow(sub) => flow_attempts(sub, &path, out),
        Node::Script(_) | Node::Sleeping { .. } | Node::Suspended { .. } => {}
    }
}

fn flow_wake(flow: &FlowNode) -> Option<u64> {
    let main = seq_wake(&flow.main);
    let handler = flow.handler.as_ref().and_then(seq_wake);
    earliest(main, handler)
}

pub(crate) fn seq_wake(seq: &Seq) -> Option<u64> {
    let active = seq.current.as_ref()?;
    match &active.node {
        Node::Sleeping { until_ms, .. } => Some(*until_ms),
        Node::Script(leaf) => match leaf.phase {
            LeafPhase::Backoff { until_ms } => Some(until_ms),
            LeafPhase::Ready | LeafPhase::Running => None,
        },
        Node::Suspended { until_ms, .. } => *until_ms,
        Node::Fan(fan) => fan.wake,
        Node::BranchOne { body, .. } => seq_wake(body),
        Node::Subflow(sub) => flow_wake(sub),
    }
}

pub(crate) fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
