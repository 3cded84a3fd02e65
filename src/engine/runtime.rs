//! What one call into the engine works with: the injected dependencies, the time, the event being
//! delivered, and the actions collected so far.

use super::api::{Action, Env, ResolveError, StepError};
use super::path::{AttemptId, StepPath};
use super::store::ResultStore;
use crate::flow::OpenFlow;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Modules started (or finished without waiting) in one call before the engine yields with a
/// `WakeAt` now, so a loop that never waits on anything cannot hold the caller forever.
pub(crate) const MODULE_BUDGET: u32 = 100_000;

pub(crate) struct Runtime<'r> {
    pub env: &'r Env<'r>,
    pub now: u64,
    pub store: &'r mut ResultStore,
    pub rng: &'r mut u64,
    pub actions: Vec<Action>,
    /// A `StepFinished` not yet handed to its step.
    pub finished: Option<(AttemptId, Result<Value, StepError>)>,
    /// An `Approval` not yet handed to a suspended step.
    pub approval: Option<Approval>,
    /// Re-issue `StartAttempt` / `AwaitApproval` for what is already running (after a restart),
    /// except `StartAttempt` for the attempts in the set (the executor runs them already).
    pub reissue: Option<HashSet<AttemptId>>,
    pub budget: u32,
    /// The step the event is about, if it names one: wide loops then visit only that iteration.
    pub focus: Option<StepPath>,
    flows: HashMap<String, Arc<OpenFlow>>,
}

/// Which children of a loop or branchall a call needs to visit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Visit {
    Every,
    Only(u32),
    NoChild,
}

pub(crate) struct Approval {
    pub step: Option<StepPath>,
    pub approved: bool,
    pub payload: Value,
}

impl<'r> Runtime<'r> {
    pub fn new(env: &'r Env<'r>, now: u64, store: &'r mut ResultStore, rng: &'r mut u64) -> Self {
        Runtime {
            env,
            now,
            store,
            rng,
            actions: Vec::new(),
            finished: None,
            approval: None,
            reissue: None,
            budget: MODULE_BUDGET,
            focus: None,
            flows: HashMap::new(),
        }
    }

    /// The outcome delivered for this attempt, if the current event is its `StepFinished`.
    pub fn take_finished(
        &mut self,
        step: &StepPath,
        attempt: u32,
    ) -> Option<Result<Value, StepError>> {
        match &self.finished {
            Some((id, _)) if id.attempt == attempt && id.step == *step => {
                self.finished.take().map(|(_, o)| o)
            }
            _ => None,
        }
    }

    /// The approval delivered for this suspended step, if the current event is one.
    pub fn take_approval(&mut self, step: &StepPath) -> Option<Approval> {
        match &self.approval {
            Some(a) if a.step.as_ref().is_none_or(|s| s == step) => self.approval.take(),
            _ => None,
        }
    }

    /// The children of the loop or branchall at `path` that the current event can concern. A
    /// timer can be due anywhere, so ticks (and resumes) visit every child.
    pub fn visit(&self, path: &StepPath) -> Visit {
        let Some(target) = &self.focus else {
            return Visit::Every;
        };
        let index = target
            .as_str()
            .strip_prefix(path.as_str())
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(index, _)| index.parse().ok());
        index.map_or(Visit::NoChild, Visit::Only)
    }

    /// The flow of a `flow` module, resolved once per call.
    pub fn flow(&mut self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        if let Some(flow) = self.flows.get(path) {
            return Ok(flow.clone());
        }
        let flow = self.env.resolver.flow(path)?;
        self.flows.insert(path.to_string(), flow.clone());
        Ok(flow)
    }
}

/// Key of an engine value kept beside a step's result, e.g. `loop#items`.
pub(crate) fn aux_key(path: &StepPath, name: &str) -> String {
    format!("{path}#{name}")
}
