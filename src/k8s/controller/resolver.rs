//! What a flow refers to by path, as the operator can resolve it so far: the bundled hub scripts.

use crate::engine::{ResolveError, ResolvedScript, Resolver};
use crate::flow::OpenFlow;
use crate::hub;
use serde_json::Value;
use std::sync::Arc;

pub struct ClusterResolver;

impl Resolver for ClusterResolver {
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError> {
        let script = hub::find(path).ok_or_else(|| ResolveError::NotFound {
            kind: "script (the operator runs inline scripts and bundled hub/ scripts)",
            path: path.into(),
        })?;
        Ok(ResolvedScript {
            language: script.language.name().into(),
            content: script.content.into(),
            lock: None,
        })
    }

    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "subflow (the operator does not resolve subflows yet)",
            path: path.into(),
        })
    }

    fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "variable (the operator does not map variables to Secrets yet)",
            path: path.into(),
        })
    }

    fn resource(&self, path: &str) -> Result<Value, ResolveError> {
        Err(ResolveError::NotFound {
            kind: "resource (the operator does not map resources to Secrets yet)",
            path: path.into(),
        })
    }
}
