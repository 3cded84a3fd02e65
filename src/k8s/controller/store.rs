//! Where a run's engine state lives between reconciles: a ConfigMap owned by the run.
//!
//! Why a ConfigMap and not the FlowRun status: the state must be read back exactly (status is for
//! people, and is rewritten with server-side apply), it holds the step results the engine needs
//! (which would crowd status), and the run's flow is snapshotted with it, so that editing a Flow
//! never changes a run that has started. It is written before any Job is created, so after a
//! restart the run resumes from it and the Jobs it finds.

use super::library::Library;
use crate::engine::RunState;
use crate::flow::OpenFlow;
use crate::k8s::flow::Runtime;
use crate::k8s::naming;
use crate::k8s::pod::RunIdentity;
use crate::k8s::pod::job::{RUN_LABEL, owner};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STATE_KEY: &str = "state.json";
/// Results are kept under their own key: they are what grows.
pub const RESULTS_KEY: &str = "results.json";
/// What the API server stores in one object, less room for metadata.
const MAX_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// Everything the controller needs to go on with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Persisted {
    /// The flow as it was when the run started.
    pub flow: OpenFlow,
    /// What the flow reaches by path, as it was when the run started.
    #[serde(default, skip_serializing_if = "Library::is_empty")]
    pub library: Library,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    pub state: RunState,
    /// `spec.approvals` entries already handed to the engine.
    #[serde(default)]
    pub approvals_seen: usize,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ConfigMap {name}: key {key} cannot be read back: {reason}")]
    Corrupt {
        name: String,
        key: &'static str,
        reason: String,
    },
    #[error(
        "ConfigMap {name}: the run's state takes {bytes} bytes, more than one object holds; results this large need storage the operator does not have yet"
    )]
    TooLarge { name: String, bytes: usize },
}

/// The name of a run's state ConfigMap.
pub fn config_map_name(run: &str) -> String {
    naming::derived_name(run, "state")
}

pub fn to_config_map(run: &RunIdentity, persisted: &Persisted) -> Result<ConfigMap, StoreError> {
    let name = config_map_name(&run.name);
    let mut control = persisted.clone();
    let results = std::mem::take(&mut control.state.results);
    let state = serde_json::to_string(&control).expect("the state serialises");
    let results = serde_json::to_string(&results).expect("results serialise");
    let bytes = state.len() + results.len();
    if bytes > MAX_BYTES {
        return Err(StoreError::TooLarge { name, bytes });
    }
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(run.namespace.clone()),
            labels: Some(BTreeMap::from([(
                RUN_LABEL.to_string(),
                naming::label_value(&run.name),
            )])),
            owner_references: Some(vec![owner(run)]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (STATE_KEY.to_string(), state),
            (RESULTS_KEY.to_string(), results),
        ])),
        ..Default::default()
    })
}

pub fn from_config_map(cm: &ConfigMap) -> Result<Persisted, StoreError> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let read = |key: &'static str| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| StoreError::Corrupt {
                name: name.clone(),
                key,
                reason: "missing".into(),
            })
    };
    let corrupt = |key: &'static str| {
        let name = name.clone();
        move |e: serde_json::Error| StoreError::Corrupt {
            name,
            key,
            reason: e.to_string(),
        }
    };
    let mut persisted: Persisted =
        serde_json::from_str(read(STATE_KEY)?).map_err(corrupt(STATE_KEY))?;
    persisted.state.results =
        serde_json::from_str(read(RESULTS_KEY)?).map_err(corrupt(RESULTS_KEY))?;
    Ok(persisted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Env};
    use crate::expr::InProcess;
    use crate::k8s::controller::resolver::ClusterResolver;
    use crate::k8s::controller::secrets::Fetched;
    use serde_json::json;

    fn persisted(input: serde_json::Value) -> Persisted {
        let flow: OpenFlow = serde_json::from_value(json!({"summary": "one", "value": {"modules": [
            {"id": "a", "value": {"type": "rawscript", "language": "bash", "content": "echo", "input_transforms": {}}},
        ]}}))
        .unwrap();
        let evaluator = InProcess::default();
        let env = Env {
            evaluator: &evaluator,
            resolver: &ClusterResolver {
                library: Library::default(),
                secrets: Fetched::default(),
            },
        };
        let (state, _) = engine::start(&flow, json!({"input": input}), 7, &env, 1_000).unwrap();
        Persisted {
            flow,
            library: Library::default(),
            runtime: None,
            state,
            approvals_seen: 1,
            started_ms: 1_000,
            finished_ms: None,
        }
    }

    fn run() -> RunIdentity {
        RunIdentity {
            name: "r".into(),
            namespace: "ns".into(),
            uid: "u".into(),
        }
    }

    #[test]
    fn the_state_reads_back_exactly_with_results_under_their_own_key() {
        let persisted = persisted(json!("hello"));
        let cm = to_config_map(&run(), &persisted).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("r-state"));
        assert_eq!(cm.metadata.owner_references.as_ref().unwrap()[0].uid, "u");
        assert!(cm.data.as_ref().unwrap()[RESULTS_KEY].contains("hello"));
        assert!(!cm.data.as_ref().unwrap()[STATE_KEY].contains("hello"));
        assert_eq!(from_config_map(&cm).unwrap(), persisted);
    }

    #[test]
    fn a_state_too_large_for_one_object_is_an_error_naming_it() {
        let persisted = persisted(json!("x".repeat(MAX_BYTES)));
        let err = to_config_map(&run(), &persisted).unwrap_err();
        assert!(err.to_string().starts_with("ConfigMap r-state: "), "{err}");
    }

    #[test]
    fn a_damaged_state_names_its_key() {
        let mut cm = to_config_map(&run(), &persisted(json!(1))).unwrap();
        cm.data
            .as_mut()
            .unwrap()
            .insert(STATE_KEY.into(), "{".into());
        let err = from_config_map(&cm).unwrap_err();
        assert!(err.to_string().contains("key state.json"), "{err}");
    }
}
