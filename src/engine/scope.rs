//! Where a module stands in the run ([`Ctx`]) and the expression scope that follows from it.
//!
//! A `Ctx` describes one sequence of modules (the flow, a subflow, a loop iteration, a branch, the
//! failure module) and links to the sequence around it, so a scope is assembled only when an
//! expression is actually evaluated.

use super::api::{Env, StepError};
use super::path::StepPath;
use super::store::ResultStore;
use crate::expr::{Scope, referenced_secrets};
use crate::flow::{FlowModule, FlowValue};
use serde_json::{Map, Value, json};
use std::cell::Cell;

pub(crate) struct Ctx<'a> {
    pub parent: Option<&'a Ctx<'a>>,
    /// Path of the sequence: its modules are at `path/<id>`.
    pub path: StepPath,
    pub modules: &'a [FlowModule],
    /// Modules of this sequence finished so far (the current module's index).
    pub done: Cell<usize>,
    pub origin: Origin<'a>,
    /// Subflow nesting depth, to stop a flow that calls itself without end.
    pub depth: u32,
}

pub(crate) enum Origin<'a> {
    /// The main sequence of a flow or subflow: inputs at `input_key`.
    Flow {
        value: &'a FlowValue,
        input_key: String,
    },
    /// The failure module: `previous_result` is `{error}` with the error at `error_key`.
    Handler { error_key: String },
    /// A loop iteration: `iter.value` is `items[index]` (for-loop) or `index` (while loop).
    Iteration {
        index: u32,
        items_key: Option<String>,
    },
    /// A branch: starts from the branch module's `previous_result`.
    Branch,
}

impl<'a> Ctx<'a> {
    pub fn nested(
        parent: &'a Ctx<'a>,
        path: StepPath,
        modules: &'a [FlowModule],
        origin: Origin<'a>,
    ) -> Self {
        Ctx {
            parent: Some(parent),
            path,
            modules,
            done: Cell::new(0),
            origin,
            depth: parent.depth,
        }
    }

    pub fn module_path(&self, id: &str) -> StepPath {
        self.path.child(id)
    }

    /// `previous_result` for the current module.
    pub fn previous_result(&self, store: &ResultStore) -> Value {
        let done = self.done.get();
        if done > 0 {
            let key = self.path.child(&self.modules[done - 1].id);
            return store.get(key.as_str()).cloned().unwrap_or(Value::Null);
        }
        match &self.origin {
            Origin::Flow { input_key, .. } => store.get(input_key).cloned().unwrap_or(Value::Null),
            Origin::Handler { error_key } => {
                json!({ "error": store.get(error_key).cloned().unwrap_or(Value::Null) })
            }
            Origin::Iteration { .. } => self.flow_input(store),
            Origin::Branch => self
                .parent
                .map_or(Value::Null, |p| p.previous_result(store)),
        }
    }

    /// `flow_input`: the flow's inputs plus `iter`, `iter_parent`, … of the enclosing loops.
    pub fn flow_input(&self, store: &ResultStore) -> Value {
        let mut iters = Vec::new();
        let mut ctx = self;
        let input = loop {
            if let Origin::Iteration { index, items_key } = &ctx.origin {
                let value = match items_key {
                    Some(key) => store
                        .get(key)
                        .and_then(|items| items.get(*index as usize))
                        .cloned(),
                    None => Some(Value::from(*index)),
                };
                iters.push(json!({ "index": index, "value": value.unwrap_or(Value::Null) }));
            }
            match (&ctx.origin, ctx.parent) {
                (Origin::Flow { input_key, .. }, _) => {
                    break store.get(input_key).cloned().unwrap_or(Value::Null);
                }
                (_, Some(parent)) => ctx = parent,
                (_, None) => break Value::Null,
            }
        };
        if iters.is_empty() {
            return input;
        }
        let mut object = match input {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let mut name = String::from("iter");
        for iter in iters {
            object.insert(name.clone(), iter);
            name = if name == "iter" {
                "iter_parent".into()
            } else {
                format!("{name}_parent")
            };
        }
        Value::Object(object)
    }

    /// `results`: every finished module of this sequence and of the sequences around it, up to
    /// the flow (a subflow sees only its own).
    pub fn results(&self, store: &ResultStore) -> Map<String, Value> {
        let mut chain = Vec::new();
        let mut ctx = Some(self);
        while let Some(c) = ctx {
            chain.push(c);
            ctx = if matches!(c.origin, Origin::Flow { .. }) {
                None
            } else {
                c.parent
            };
        }
        let mut results = Map::new();
        for c in chain.into_iter().rev() {
            for module in &c.modules[..c.done.get()] {
                let key = c.path.child(&module.id);
                results.insert(
                    module.id.clone(),
                    store.get(key.as_str()).cloned().unwrap_or(Value::Null),
                );
            }
        }
        results
    }

    /// The flow (or subflow) this sequence belongs to.
    pub fn flow_value(&self) -> Option<&'a FlowValue> {
        let mut ctx = self;
        loop {
            if let Origin::Flow { value, .. } = &ctx.origin {
                return Some(value);
            }
            ctx = ctx.parent?;
        }
    }

    /// The scope for expressions `sources` of the current module; `result` is bound only where
    /// OPENFLOW.md binds it. Fails when a `variable()` / `resource()` cannot be resolved.
    pub fn scope<'s>(
        &self,
        store: &ResultStore,
        env: &Env,
        sources: impl IntoIterator<Item = &'s str> + Clone,
        result: Option<Value>,
    ) -> Result<Scope, StepError> {
        let previous_result = self.previous_result(store);
        let error = result
            .as_ref()
            .unwrap_or(&previous_result)
            .get("error")
            .cloned();
        // Copying every result costs time on long flows: only expressions naming `results` get them.
        let wants_results = sources.clone().into_iter().any(|s| s.contains("results"));
        let mut scope = Scope {
            flow_input: self.flow_input(store),
            previous_result,
            results: if wants_results {
                self.results(store)
            } else {
                Map::new()
            },
            flow_env: self
                .flow_value()
                .and_then(|v| v.flow_env.clone())
                .unwrap_or_default(),
            result,
            error,
            resume: store.get(RESUME_KEY).cloned(),
            variables: Map::new(),
            resources: Map::new(),
        };
        for source in sources {
            let (variables, resources) = referenced_secrets(source);
            for path in variables {
                let value = env
                    .resolver
                    .variable(&path)
                    .map_err(|e| StepError::new("ResolveError", e.to_string()))?;
                scope.variables.insert(path, value);
            }
            for path in resources {
                let value = env
                    .resolver
                    .resource(&path)
                    .map_err(|e| StepError::new("ResolveError", e.to_string()))?;
                scope.resources.insert(path, value);
            }
        }
        Ok(scope)
    }
}

/// Where the payload of the last approval is kept (`resume` in expressions).
pub(crate) const RESUME_KEY: &str = "#resume";
