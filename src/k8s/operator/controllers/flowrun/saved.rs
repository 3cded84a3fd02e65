//! Where a run's engine state lives between reconciles: a ConfigMap owned by the run.
//!
//! Why a ConfigMap and not the FlowRun status: the state must be read back exactly (status is for
//! people, and is rewritten with server-side apply), it holds the step results the engine needs
//! (which would crowd status), and the run's flow is snapshotted with it, so that editing a Flow
//! never changes a run that has started. It is written before any Job is created, so after a
//! restart the run resumes from it and the Jobs it finds.
//!
//! Results too large to share that object are cut into chunk ConfigMaps named by their content:
//! a chunk is written once, before the state that lists it, and never changed, so a crash at
//! any point leaves the saved state readable.

use super::job::RunIdentity;
use super::job::owner;
use super::library::Library;
use crate::engine::RunState;
use crate::flow::OpenFlow;
use crate::k8s::api::PodSettings;
use crate::k8s::api::flowrun::ResultRef;
use crate::k8s::api::naming;
use crate::k8s::api::pod::RUN_LABEL;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const STATE_KEY: &str = "state.json";
/// Results are kept under their own key: they are what grows.
const RESULTS_KEY: &str = "results.json";
/// Names of the chunks holding the results, in order, when they are not under `RESULTS_KEY`.
const CHUNKS_KEY: &str = "results-chunks.json";
/// A chunk's piece of the results' JSON text.
const PIECE_KEY: &str = "piece";
/// What the API server stores in one object, less room for metadata.
const MAX_BYTES: usize = 1024 * 1024 - 16 * 1024;
/// Results text per chunk.
const CHUNK_BYTES: usize = 768 * 1024;

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
    pub runtime: Option<PodSettings>,
    pub state: RunState,
    /// `spec.approvals` entries already handed to the engine.
    #[serde(default)]
    pub approvals_seen: usize,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("ConfigMap {name}: key {key} cannot be read back: {reason}")]
    Corrupt {
        name: String,
        key: &'static str,
        reason: String,
    },
    #[error(
        "ConfigMap {name}: the run's state without its results takes {bytes} bytes, more than one object holds; split the flow into smaller ones"
    )]
    TooLarge { name: String, bytes: usize },
    #[error(
        "ConfigMap {name} holding part of the run's results is missing; it must not be deleted while its run exists"
    )]
    ChunkMissing { name: String },
}

/// The objects a run's state is saved in: the state ConfigMap, and the chunks it lists (to be
/// written first).
#[derive(Debug, Clone)]
pub struct Stored {
    pub state: ConfigMap,
    pub chunks: Vec<ConfigMap>,
}

/// Where run `run`'s results are: the state ConfigMap's key holding them, or naming the chunks
/// that do.
pub fn results_ref(run: &str, chunked: bool) -> ResultRef {
    ResultRef {
        config_map: config_map_name(run),
        key: if chunked { CHUNKS_KEY } else { RESULTS_KEY }.into(),
    }
}

/// The name of a run's state ConfigMap.
pub fn config_map_name(run: &str) -> String {
    naming::derived_name(run, "state")
}

pub fn to_config_maps(run: &RunIdentity, persisted: &Persisted) -> Result<Stored, StateError> {
    let name = config_map_name(&run.name);
    let mut control = persisted.clone();
    let results = std::mem::take(&mut control.state.results);
    let state = serde_json::to_string(&control).expect("the state serialises");
    let results = serde_json::to_string(&results).expect("results serialise");
    let mut chunks = Vec::new();
    let results_entry = if state.len() + results.len() <= MAX_BYTES {
        (RESULTS_KEY.to_string(), results)
    } else {
        chunks = pieces(&results, CHUNK_BYTES)
            .into_iter()
            .map(|piece| chunk(run, piece))
            .collect();
        let names: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        let names = serde_json::to_string(&names).expect("names serialise");
        (CHUNKS_KEY.to_string(), names)
    };
    let bytes = state.len() + results_entry.1.len();
    if bytes > MAX_BYTES {
        return Err(StateError::TooLarge { name, bytes });
    }
    let state = ConfigMap {
        metadata: owned_meta(run, name),
        data: Some(BTreeMap::from([
            (STATE_KEY.to_string(), state),
            results_entry,
        ])),
        ..Default::default()
    };
    Ok(Stored { state, chunks })
}

/// The chunks the state ConfigMap lists, in order (none when its results are inline).
pub fn chunk_names(cm: &ConfigMap) -> Result<Vec<String>, StateError> {
    match cm.data.as_ref().and_then(|d| d.get(CHUNKS_KEY)) {
        None => Ok(Vec::new()),
        Some(names) => serde_json::from_str(names).map_err(|e| StateError::Corrupt {
            name: cm.metadata.name.clone().unwrap_or_default(),
            key: CHUNKS_KEY,
            reason: e.to_string(),
        }),
    }
}

/// Reads the run back from its state ConfigMap and the chunks it lists (as `chunk_names` gives them).
pub fn from_config_maps(cm: &ConfigMap, chunks: &[ConfigMap]) -> Result<Persisted, StateError> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let read = |cm: &ConfigMap, key: &'static str| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
            .ok_or_else(|| StateError::Corrupt {
                name: cm.metadata.name.clone().unwrap_or_default(),
                key,
                reason: "missing".into(),
            })
    };
    let corrupt = |key: &'static str| {
        let name = name.clone();
        move |e: serde_json::Error| StateError::Corrupt {
            name,
            key,
            reason: e.to_string(),
        }
    };
    let mut persisted: Persisted =
        serde_json::from_str(&read(cm, STATE_KEY)?).map_err(corrupt(STATE_KEY))?;
    let results = if chunk_names(cm)?.is_empty() {
        read(cm, RESULTS_KEY)?
    } else {
        let mut text = String::new();
        for chunk in chunks {
            text.push_str(&read(chunk, PIECE_KEY)?);
        }
        text
    };
    persisted.state.results = serde_json::from_str(&results).map_err(corrupt(RESULTS_KEY))?;
    Ok(persisted)
}

/// `text` cut into pieces of at most `max` bytes, on character boundaries.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        out.push(piece);
        rest = tail;
    }
    out
}

/// A chunk holding `piece`, named by the run and the piece's content.
fn chunk(run: &RunIdentity, piece: &str) -> ConfigMap {
    let digest = Sha256::digest(piece.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let name = naming::derived_name(&run.name, &format!("results-{hash}"));
    ConfigMap {
        metadata: owned_meta(run, name),
        data: Some(BTreeMap::from([(PIECE_KEY.to_string(), piece.to_string())])),
        ..Default::default()
    }
}

fn owned_meta(run: &RunIdentity, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(run.namespace.clone()),
        labels: Some(BTreeMap::from([(
            RUN_LABEL.to_string(),
            naming::label_value(&run.name),
        )])),
        owner_references: Some(vec![owner(run)]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::super::resolver::ClusterResolver;
    use super::*;
    use crate::engine::{self, Env};
    use crate::expr::InProcess;
    use kube::ResourceExt;
    use serde_json::json;

    fn persisted(input: serde_json::Value) -> Persisted {
        let persisted = fixtures::started(fixtures::bash_flow(&["a"]), json!({"input": input}));
        Persisted {
            approvals_seen: 1,
            ..persisted
        }
    }

    fn run() -> RunIdentity {
        fixtures::identity()
    }

    #[test]
    fn the_state_reads_back_exactly_with_results_under_their_own_key() {
        let persisted = persisted(json!("hello"));
        let Stored { state, chunks } = to_config_maps(&run(), &persisted).unwrap();
        assert!(chunks.is_empty());
        assert_eq!(state.metadata.name.as_deref(), Some("r-state"));
        assert_eq!(
            state.metadata.owner_references.as_ref().unwrap()[0].uid,
            "u"
        );
        assert!(state.data.as_ref().unwrap()[RESULTS_KEY].contains("hello"));
        assert!(!state.data.as_ref().unwrap()[STATE_KEY].contains("hello"));
        assert_eq!(chunk_names(&state).unwrap(), Vec::<String>::new());
        assert_eq!(from_config_maps(&state, &[]).unwrap(), persisted);
    }

    #[test]
    fn results_larger_than_one_object_are_cut_into_chunks_named_by_content() {
        // Two-byte characters, so that pieces are cut between characters.
        let persisted = persisted(json!("é".repeat(1_300_000)));
        let Stored { state, chunks } = to_config_maps(&run(), &persisted).unwrap();
        assert_eq!(chunks.len(), 4, "2.6 MB in pieces of 768 KiB");
        assert!(!state.data.as_ref().unwrap().contains_key(RESULTS_KEY));
        let names: Vec<String> = chunks.iter().map(|c| c.name_any()).collect();
        assert_eq!(chunk_names(&state).unwrap(), names);
        for chunk in &chunks {
            assert!(
                chunk.name_any().starts_with("r-results-"),
                "{}",
                chunk.name_any()
            );
            assert_eq!(
                chunk.metadata.owner_references.as_ref().unwrap()[0].uid,
                "u"
            );
            assert!(chunk.data.as_ref().unwrap()[PIECE_KEY].len() <= CHUNK_BYTES);
        }
        let again = to_config_maps(&run(), &persisted).unwrap();
        let same: Vec<String> = again.chunks.iter().map(|c| c.name_any()).collect();
        assert_eq!(same, names, "the same results give the same chunks");
        assert_eq!(from_config_maps(&state, &chunks).unwrap(), persisted);
    }

    /// A loop of 2,000 iterations with 1 KiB results, as the engine keeps it.
    #[test]
    fn a_loop_of_two_thousand_one_kib_results_is_saved_and_read_back() {
        let flow: OpenFlow =
            serde_json::from_value(json!({"summary": "wide", "value": {"modules": [
                {"id": "each", "value": {"type": "forloopflow", "parallel": true,
                    "parallelism": {"type": "static", "value": 50},
                    "iterator": {"type": "javascript", "expr": "flow_input.items"},
                    "modules": [{"id": "work", "value": {"type": "rawscript", "language": "bash",
                        "content": "echo", "input_transforms": {}}}]}},
            ]}}))
            .unwrap();
        let evaluator = InProcess::default();
        let env = Env {
            evaluator: &evaluator,
            resolver: &ClusterResolver::default(),
        };
        let items: Vec<u32> = (0..2000).collect();
        let (mut state, _) = engine::start(&flow, json!({"items": items}), 7, &env, 1_000).unwrap();
        while let Some(id) = state.running_attempts().into_iter().next() {
            let value = json!({"id": id.step.as_str(), "pad": "p".repeat(1000)});
            let event = engine::Event::StepFinished {
                id,
                outcome: Ok(value),
            };
            engine::advance(&flow, &mut state, event, &env, 2_000).unwrap();
        }
        assert!(state.outcome().is_some());
        let persisted = Persisted {
            finished_ms: Some(3_000),
            ..fixtures::persisted(flow, state)
        };
        let Stored { state, chunks } = to_config_maps(&run(), &persisted).unwrap();
        assert_eq!(chunks.len(), 3, "2 MB of results");
        for cm in chunks.iter().chain([&state]) {
            let bytes: usize = cm.data.as_ref().unwrap().values().map(String::len).sum();
            assert!(bytes <= MAX_BYTES, "{} holds {bytes} bytes", cm.name_any());
        }
        assert_eq!(from_config_maps(&state, &chunks).unwrap(), persisted);
    }

    #[test]
    fn pieces_are_cut_on_character_boundaries_and_join_back() {
        let text = "aé€😀".repeat(1000);
        for max in [4, 5, 7, 1000] {
            let pieces = pieces(&text, max);
            assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= max));
            assert_eq!(pieces.concat(), text);
        }
        assert!(pieces("", 8).is_empty());
    }

    #[test]
    fn a_state_too_large_for_one_object_is_an_error_naming_it() {
        let mut persisted = persisted(json!(1));
        persisted.flow.summary = "x".repeat(MAX_BYTES);
        let err = to_config_maps(&run(), &persisted).unwrap_err();
        assert!(err.to_string().starts_with("ConfigMap r-state: "), "{err}");
    }

    #[test]
    fn a_damaged_state_names_its_key() {
        let mut cm = to_config_maps(&run(), &persisted(json!(1))).unwrap().state;
        cm.data
            .as_mut()
            .unwrap()
            .insert(STATE_KEY.into(), "{".into());
        let err = from_config_maps(&cm, &[]).unwrap_err();
        assert!(err.to_string().contains("key state.json"), "{err}");
    }
}
