//! The values a run produces, kept apart from the control state so that a caller can persist them
//! apart (the operator keeps both in the run's state ConfigMap, the results under their own key
//! or in chunk ConfigMaps once they grow; FlowRun status only shows them).
//!
//! Keys are step paths: `a` holds step `a`'s result (or its error once it failed), a loop's key holds
//! the array of its iteration results, filled as iterations finish. Keys with a `#` suffix hold
//! values the engine needs to go on: `#input` (the flow inputs), `loop#items` (a loop's iterator),
//! `sub#input` (a subflow's inputs), `#error` (the error a failure module handles), `#resume`
//! (the last approval payload), `#result` (the run's result, when no step's key holds it). A finished
//! iteration's own keys (`loop[3]/…`) are dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResultStore(BTreeMap<String, Value>);

impl ResultStore {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, key: String, value: Value) {
        self.0.insert(key, value);
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(key)
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Drops every key under `prefix` (the key `prefix` itself stays): `prefix` ends with `/` or `#`.
    pub(crate) fn remove_under(&mut self, prefix: &str) {
        let doomed: Vec<String> = self
            .0
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in doomed {
            self.0.remove(&key);
        }
    }
}
