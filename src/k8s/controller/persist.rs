//! Reading and writing a run's saved state (the ConfigMaps of `store`), in the order that keeps
//! it readable after a crash at any point: chunks first, then the state that lists them, and
//! only then the removal of chunks it no longer lists.

use super::Error;
use super::flowrun::{create, is_status};
use super::store::{self, Persisted};
use crate::k8s::pod::RunIdentity;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

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
    let Some(state) = config_maps.get_opt(&store::config_map_name(run)).await? else {
        return Ok(None);
    };
    let names = store::chunk_names(&state)?;
    let mut chunks = Vec::with_capacity(names.len());
    for name in &names {
        match config_maps.get_opt(name).await? {
            Some(chunk) => chunks.push(chunk),
            None => return Err(store::StoreError::ChunkMissing { name: name.clone() }.into()),
        }
    }
    let owner_uid = state
        .owner_references()
        .iter()
        .find(|owner| owner.kind == "FlowRun")
        .map(|owner| owner.uid.clone());
    Ok(Some(Loaded {
        persisted: store::from_config_maps(&state, &chunks)?,
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
    let store::Stored { mut state, chunks } = store::to_config_maps(run, persisted)?;
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
            let name = store::config_map_name(&run.name);
            config_maps
                .replace(&name, &PostParams::default(), &state)
                .await?;
        }
    }
    let kept: Vec<String> = chunks.iter().map(ResourceExt::name_any).collect();
    for name in previous.iter().filter(|name| !kept.contains(name)) {
        match config_maps.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(kept))
}
