//! Reading and writing a run's saved state (the ConfigMaps of [`saved`]), in the order that keeps
//! it readable after a crash at any point: chunks first, then the state that lists them, and
//! only then the removal of chunks it no longer lists.

use super::Error;
use super::job::RunIdentity;
use super::saved::{self, Persisted};
use crate::engine::RunState;
use crate::k8s::operator::kube::{create, gone_is_fine};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};

/// A run's state as read, with what a later save needs.
pub struct Loaded {
    pub persisted: Persisted,
    /// The state ConfigMap's version, which a save replaces.
    pub version: Option<String>,
    /// The chunks it lists.
    pub chunks: Vec<String>,
    /// The uid of the FlowRun it belongs to: an earlier run of the same name leaves its state
    /// until garbage collection removes it (or for good, if it was deleted with orphaning).
    pub owner_uid: Option<String>,
}

/// The saved state of run `run`, if it was saved.
pub async fn load(config_maps: &Api<ConfigMap>, run: &str) -> Result<Option<Loaded>, Error> {
    let Some(state) = config_maps.get_opt(&saved::config_map_name(run)).await? else {
        return Ok(None);
    };
    let names = saved::chunk_names(&state)?;
    let mut chunks = Vec::with_capacity(names.len());
    for name in &names {
        match config_maps.get_opt(name).await? {
            Some(chunk) => chunks.push(chunk),
            None => return Err(saved::StateError::ChunkMissing { name: name.clone() }.into()),
        }
    }
    let owner_uid = state
        .owner_references()
        .iter()
        .find(|owner| owner.kind == "FlowRun")
        .map(|owner| owner.uid.clone());
    Ok(Some(Loaded {
        persisted: saved::from_config_maps(&state, &chunks)?,
        version: state.metadata.resource_version,
        chunks: names,
        owner_uid,
    }))
}

/// Writes the run's state: creates it (`None` when another reconcile already did) or replaces
/// `version`, and returns the chunks it lists. `previous` chunks that it does not list are
/// removed afterwards.
pub async fn save(
    config_maps: &Api<ConfigMap>,
    run: &RunIdentity,
    persisted: &Persisted,
    version: Option<String>,
    previous: &[String],
) -> Result<Option<Vec<String>>, Error> {
    let saved::Stored { mut state, chunks } = saved::to_config_maps(run, persisted)?;
    // Named by their content: one that exists already holds the same piece.
    for chunk in chunks.iter().filter(|c| !previous.contains(&c.name_any())) {
        create(config_maps, chunk).await?;
    }
    match version {
        None => {
            if !create(config_maps, &state).await? {
                return Ok(None);
            }
        }
        Some(version) => {
            state.metadata.resource_version = Some(version);
            let name = saved::config_map_name(&run.name);
            config_maps
                .replace(&name, &PostParams::default(), &state)
                .await?;
        }
    }
    let kept: Vec<String> = chunks.iter().map(ResourceExt::name_any).collect();
    for name in previous.iter().filter(|name| !kept.contains(name)) {
        gone_is_fine(config_maps.delete(name, &DeleteParams::default()).await)?;
    }
    Ok(Some(kept))
}

/// The saved engine state of FlowRun `run` in `namespace`, with every result wherever it is
/// stored (the state ConfigMap or the chunks it lists); `None` before the run started. Readers
/// such as `millrace status` get values too large for the status from it.
pub async fn saved_state(
    client: &Client,
    namespace: &str,
    run: &str,
) -> Result<Option<RunState>, Error> {
    let config_maps = Api::namespaced(client.clone(), namespace);
    let loaded = load(&config_maps, run).await?;
    Ok(loaded.map(|loaded| loaded.persisted.state))
}
