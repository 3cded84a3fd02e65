//! A GitSource against the cluster, shared by its controller and `millrace sync diff`: read the
//! revision it names (credentials from its Secret, fetch, plan), list the live objects of its
//! namespace, and dry-run, apply and delete objects under the GitSource's own field manager.

use super::changes::{Live, desired};
use super::fetch::{Credentials, FetchError, FetchRequest, Fetched};
use super::objects::{Kind, SyncObject};
use super::plan::FileError;
use super::{ClusterFlows, Plan, Source, TreeError};
use crate::expr::Evaluator;
use crate::k8s::api::gitsource::{self, GitSource, InventoryEntry, field_manager};
use crate::k8s::api::{Flow, Schedule, Script};
use crate::k8s::operator::kube::blocking;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a GitSource's revision could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "spec.secretRef: Secret {name} {detail}; create it with the keys the transport needs (`token`, or `identity` and `known_hosts`)"
    )]
    Secret { name: String, detail: String },
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The commit was fetched, its tree cannot be read as asked (the path, the limits).
    #[error("revision {revision}: {error}")]
    Tree { revision: String, error: TreeError },
    #[error("repository cache {}: {detail}", path.display())]
    Cache { path: PathBuf, detail: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A revision read: the commit found, its Flux-style name and its plan.
#[derive(Debug)]
pub struct Read {
    pub fetched: Fetched,
    /// `main@sha1:<sha>`.
    pub revision: String,
    pub plan: Plan,
}

/// Fetches the commit `source` follows into `cache` and plans it. Expressions are parsed by
/// `syntax`, in the GitSource's own queue; Schedules may name the Flows in `cluster_flows` besides the revision's own.
pub async fn read(
    client: &Client,
    source: &GitSource,
    cache: PathBuf,
    syntax: Arc<dyn Evaluator>,
    cluster_flows: BTreeSet<String>,
) -> Result<Read, ReadError> {
    let ns = source.namespace().unwrap_or_default();
    let spec = &source.spec;
    let request = FetchRequest {
        url: spec.url.clone(),
        reference: spec.reference.git_ref().map_err(ReadError::Spec)?,
        credentials: credentials(client, &ns, source).await?,
        cache,
        timeout: spec.timeout().map_err(ReadError::Spec)?,
    };
    let wanted = Source {
        path: spec.path.clone(),
        namespace: Some(ns.clone()),
        limits: Default::default(),
    };
    let queue = format!("GitSource {ns}/{}", source.name_any());
    blocking(move || {
        let fetched = super::fetch(&request)?;
        let repo = git2::Repository::open_bare(&request.cache).map_err(|e| ReadError::Cache {
            path: request.cache.clone(),
            detail: e.message().to_string(),
        })?;
        let cluster = ClusterFlows {
            namespace: &ns,
            names: &cluster_flows,
        };
        let revision = gitsource::revision(&fetched.refname, &fetched.commit.to_string());
        let planned = super::plan_revision(
            &repo,
            fetched.commit,
            &wanted,
            syntax.for_queue(&queue).as_ref(),
            Some(&cluster),
        );
        match planned {
            Ok(plan) => Ok(Read {
                revision,
                fetched,
                plan,
            }),
            Err(error) => Err(ReadError::Tree { revision, error }),
        }
    })
    .await
}

async fn credentials(
    client: &Client,
    ns: &str,
    source: &GitSource,
) -> Result<Credentials, ReadError> {
    let Some(reference) = &source.spec.secret_ref else {
        return Ok(Credentials::default());
    };
    let failed = |detail: String| ReadError::Secret {
        name: reference.name.clone(),
        detail,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets
        .get_opt(&reference.name)
        .await?
        .ok_or_else(|| failed(format!("is not in namespace {ns}")))?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect();
    Credentials::from_secret_data(&data).map_err(|e| failed(e.to_string()))
}

fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Script => ApiResource::erase::<Script>(&()),
        Kind::Flow => ApiResource::erase::<Flow>(&()),
        Kind::Schedule => ApiResource::erase::<Schedule>(&()),
    }
}

fn api(client: &Client, ns: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &resource(kind))
}

/// Every Script, Flow and Schedule of namespace `ns`, whoever made them (one LIST per kind).
pub async fn list_live(client: &Client, ns: &str) -> Result<Vec<Live>, kube::Error> {
    let mut live = Vec::new();
    for kind in Kind::ALL {
        for object in api(client, ns, kind).list(&ListParams::default()).await? {
            live.push(Live {
                kind,
                name: object.name_any(),
                object: serde_json::to_value(&object).unwrap_or_default(),
            });
        }
    }
    Ok(live)
}

/// The names of the Flows among `live`.
pub fn flow_names(live: &[Live]) -> BTreeSet<String> {
    live.iter()
        .filter(|object| object.kind == Kind::Flow)
        .map(|object| object.name.clone())
        .collect()
}

/// Applies `object` as GitSource `source` would, without keeping it (`dryRun=All`): the
/// admission checks and the object the API server would store.
pub async fn dry_run(
    client: &Client,
    ns: &str,
    source: &str,
    object: &SyncObject,
) -> Result<Value, kube::Error> {
    let params = PatchParams::apply(&field_manager(source)).force().dry_run();
    let stored = api(client, ns, object.kind)
        .patch(
            &object.name,
            &params,
            &Patch::Apply(desired(object, source)),
        )
        .await?;
    Ok(serde_json::to_value(stored).unwrap_or_default())
}

/// What the API server refuses of `objects` (each dry-run as [`dry_run`]), by file; `Err` when it
/// could not be asked (unreachable, or a server error).
pub async fn refusals(
    client: &Client,
    ns: &str,
    source: &str,
    objects: &[&SyncObject],
) -> Result<Vec<FileError>, kube::Error> {
    let mut refused = Vec::new();
    for &object in objects {
        match dry_run(client, ns, source, object).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code < 500 => refused.push(FileError::new(
                &object.file,
                object.line,
                format!(
                    "the API server refuses {} {}: {}",
                    object.kind.as_str(),
                    object.name,
                    status.message
                ),
            )),
            Err(error) => return Err(error),
        }
    }
    Ok(refused)
}

/// Applies `object` for GitSource `source`: server-side apply, forced (git wins over a hand
/// edit of the fields it sets).
pub async fn apply(
    client: &Client,
    ns: &str,
    source: &str,
    object: &SyncObject,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(&field_manager(source)).force();
    api(client, ns, object.kind)
        .patch(
            &object.name,
            &params,
            &Patch::Apply(desired(object, source)),
        )
        .await?;
    Ok(())
}

/// Deletes an inventory entry; one already gone is fine.
pub async fn delete(client: &Client, ns: &str, entry: &InventoryEntry) -> Result<(), kube::Error> {
    let Some(kind) = Kind::from_name(&entry.kind) else {
        // Not a kind a GitSource applies: nothing of it can be in the cluster by its hand.
        return Ok(());
    };
    match api(client, ns, kind)
        .delete(&entry.name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}
