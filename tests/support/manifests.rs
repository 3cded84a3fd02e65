//! Manifests as `kubectl apply --server-side` takes them: a multi-document YAML stream, each object
//! applied with the resource its apiVersion and kind resolve to.

use anyhow::{Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{Scope, pinned_kind};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client, ResourceExt};
use serde::Deserialize;
use serde_json::Value;

use super::cluster::wait::{TIMEOUT, within};

/// The objects of a multi-document YAML stream (empty documents left out).
pub fn documents(yaml: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// Server-side applies every object as `field_manager`, CRDs first (each waited for until it is
/// established, so that objects of its kind can follow). Namespaced objects must name their
/// namespace. Returns `Kind/name` of the cluster-scoped objects.
pub async fn apply(client: &Client, objects: &[Value], field_manager: &str) -> Result<Vec<String>> {
    let (crds, rest): (Vec<&Value>, Vec<&Value>) = objects
        .iter()
        .partition(|o| o["kind"] == "CustomResourceDefinition");
    let mut cluster_scoped = Vec::new();
    for object in crds.into_iter().chain(rest) {
        let object: DynamicObject = serde_json::from_value(object.clone())?;
        let types = object
            .types
            .clone()
            .context("an object without apiVersion and kind")?;
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let (resource, capabilities) = pinned_kind(client, &gvk).await?;
        let name = object.name_any();
        let what = format!("{}/{name}", types.kind);
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => {
                let namespace = object
                    .namespace()
                    .with_context(|| format!("{what} names no namespace"))?;
                Api::namespaced_with(client.clone(), &namespace, &resource)
            }
            Scope::Cluster => {
                cluster_scoped.push(what.clone());
                Api::all_with(client.clone(), &resource)
            }
        };
        api.patch(
            &name,
            &PatchParams::apply(field_manager),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("apply {what}"))?;
        if types.kind == "CustomResourceDefinition" {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let established = await_condition(crds, &name, conditions::is_crd_established());
            within(&format!("{what} is established"), TIMEOUT, established).await??;
        }
    }
    Ok(cluster_scoped)
}
