//! What a flow refers to by path, as the operator resolves it: subflows and scripts from the
//! run's [`Library`] (snapshotted when it began), variables and resources from Secrets read at
//! this reconcile.

use super::library::{Library, Resolved};
use super::variables::{self, Fetched, RESOURCES_SECRET, Read, VARIABLES_SECRET, Wanted};
use crate::engine::{ResolveError, ResolvedScript, Resolver};
use crate::flow::OpenFlow;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Owns what it resolves from, so that it can move to wherever the engine runs.
#[derive(Default)]
pub struct ClusterResolver {
    pub library: Library,
    pub secrets: Fetched,
}

/// Reads the values the run's expressions name, and nothing else.
pub async fn fetch_secrets(
    client: &Client,
    namespace: &str,
    wanted: &Wanted,
) -> Result<Fetched, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = async |name: &str, paths: &BTreeSet<String>| {
        if paths.is_empty() {
            return Ok(Read::NotNamed);
        }
        Ok::<_, kube::Error>(match api.get_opt(name).await? {
            Some(secret) => Read::Present(variables::keep(secret.data.unwrap_or_default(), paths)),
            None => Read::Absent,
        })
    };
    Ok(Fetched {
        namespace: namespace.to_string(),
        variables: read(VARIABLES_SECRET, &wanted.variables).await?,
        resources: read(RESOURCES_SECRET, &wanted.resources).await?,
    })
}

impl Resolver for ClusterResolver {
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError> {
        match self.library.scripts.get(path) {
            Some(Resolved::Found(script)) => Ok(ResolvedScript {
                language: script.language.clone(),
                content: script.content.clone(),
                lock: script.lock.clone(),
            }),
            Some(Resolved::Missing(reason)) => Err(ResolveError::Invalid {
                kind: "script",
                path: path.into(),
                reason: reason.clone(),
            }),
            None => Err(ResolveError::NotFound {
                kind: "script (not among the paths resolved when the run began)",
                path: path.into(),
            }),
        }
    }

    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        match self.library.flows.get(path) {
            Some(Resolved::Found(flow)) => Ok(Arc::new(flow.clone())),
            Some(Resolved::Missing(reason)) => Err(ResolveError::Invalid {
                kind: "subflow",
                path: path.into(),
                reason: reason.clone(),
            }),
            None => Err(ResolveError::NotFound {
                kind: "subflow (not among the paths resolved when the run began)",
                path: path.into(),
            }),
        }
    }

    fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        self.secrets.variable(path)
    }

    fn resource(&self, path: &str) -> Result<Value, ResolveError> {
        self.secrets.resource(path)
    }
}
