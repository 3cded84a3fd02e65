//! Results too large for the FlowRun status: status points at the run's state ConfigMap, which
//! holds every step result by step path, and the engine state that says which one is the run's.

use super::Cluster;
use crate::engine::{ResultStore, RunOutcome, RunState};
use crate::k8s::flowrun::{FlowRunStatus, ResultRef};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The key of the engine state next to the results, as the operator writes it.
const STATE_KEY: &str = "state.json";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RefError {
    #[error("ConfigMap \"{config_map}\" has no key {key}")]
    Missing { config_map: String, key: String },
    #[error("ConfigMap \"{config_map}\" key {key} cannot be read: {reason}")]
    Unreadable {
        config_map: String,
        key: String,
        reason: String,
    },
    #[error("ConfigMap \"{config_map}\" holds no result for {what}")]
    NoResult { config_map: String, what: String },
}

/// What a reference stands for: the run's result, or one step's.
pub enum Target<'a> {
    Run,
    Step(&'a str),
}

/// The run's result: inline in status, or read from where status points.
pub async fn run_result(cluster: &Cluster, status: &FlowRunStatus) -> anyhow::Result<Value> {
    match (&status.result, &status.result_ref) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(reference)) => {
            let data = config_map_data(cluster, reference).await?;
            Ok(referenced(&data, reference, Target::Run)?)
        }
        (None, None) => Ok(Value::Null),
    }
}

pub async fn config_map_data(
    cluster: &Cluster,
    reference: &ResultRef,
) -> anyhow::Result<BTreeMap<String, String>> {
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let name = &reference.config_map;
    let map = maps
        .get(name)
        .await
        .map_err(|e| cluster.api_error("read", "ConfigMap", name, e))?;
    Ok(map.data.unwrap_or_default())
}

/// The value `reference` stands for, from the ConfigMap's `data`.
pub fn referenced(
    data: &BTreeMap<String, String>,
    reference: &ResultRef,
    target: Target,
) -> Result<Value, RefError> {
    let read = |key: &str| {
        data.get(key).ok_or_else(|| RefError::Missing {
            config_map: reference.config_map.clone(),
            key: key.into(),
        })
    };
    let unreadable = |key: &str, e: serde_json::Error| RefError::Unreadable {
        config_map: reference.config_map.clone(),
        key: key.into(),
        reason: e.to_string(),
    };
    let results: ResultStore =
        serde_json::from_str(read(&reference.key)?).map_err(|e| unreadable(&reference.key, e))?;
    let no_result = |what: &str| RefError::NoResult {
        config_map: reference.config_map.clone(),
        what: what.into(),
    };
    match target {
        Target::Step(path) => results
            .get(path)
            .cloned()
            .ok_or_else(|| no_result(&format!("step {path}"))),
        Target::Run => {
            #[derive(Deserialize)]
            struct Stored {
                state: RunState,
            }
            let mut stored: Stored =
                serde_json::from_str(read(STATE_KEY)?).map_err(|e| unreadable(STATE_KEY, e))?;
            stored.state.results = results;
            match stored.state.outcome() {
                Some(RunOutcome::Succeeded(value)) => Ok(value),
                _ => Err(no_result("the run")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference() -> ResultRef {
        ResultRef {
            config_map: "r-state".into(),
            key: "results.json".into(),
        }
    }

    #[test]
    fn a_step_result_is_found_by_its_path() {
        let data = BTreeMap::from([(
            "results.json".to_string(),
            json!({"a": [1, 2], "loop[1]/b": "x"}).to_string(),
        )]);
        assert_eq!(
            referenced(&data, &reference(), Target::Step("loop[1]/b")),
            Ok(json!("x"))
        );
        assert_eq!(
            referenced(&data, &reference(), Target::Step("c"))
                .unwrap_err()
                .to_string(),
            "ConfigMap \"r-state\" holds no result for step c"
        );
    }

    #[test]
    fn missing_or_damaged_keys_are_named() {
        let err = referenced(&BTreeMap::new(), &reference(), Target::Run).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap \"r-state\" has no key results.json"
        );
        let data = BTreeMap::from([("results.json".to_string(), "{}".to_string())]);
        let err = referenced(&data, &reference(), Target::Run).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap \"r-state\" has no key state.json"
        );
        let data = BTreeMap::from([("results.json".to_string(), "[".to_string())]);
        let err = referenced(&data, &reference(), Target::Step("a")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ConfigMap \"r-state\" key results.json cannot be read: "),
            "{err}"
        );
    }
}
