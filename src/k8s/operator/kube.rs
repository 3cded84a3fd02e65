//! What every controller does with the API server the same way: creates that tolerate a
//! repeat, status written under the operator's one field manager, and the plumbing around a
//! reconcile (blocking work off the runtime, the clock, namespaced APIs, requeue on error).

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::{Debug, Display};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The one field manager the operator writes status with.
pub const FIELD_MANAGER: &str = "millrace-operator";

/// Creates `object`; `false` when it already exists (a create repeated after a restart).
pub async fn create<K>(api: &Api<K>, object: &K) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 409) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The API server answered with HTTP status `code`.
pub fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// `Ok` also when the object is gone already (404): for deletes and patches of objects that
/// may have been removed meanwhile.
pub fn gone_is_fine<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the status of object `name` with server-side apply, as the operator's field manager.
pub async fn patch_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The API of `K` in `namespace`, or in all namespaces when `None`.
pub fn scoped<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// After a failed reconcile: log it and try again shortly.
pub fn error_policy<K, E, C>(object: Arc<K>, error: &E, _ctx: Arc<C>) -> Requeue
where
    K: Resource,
    E: Display,
{
    tracing::warn!(
        object = %object.meta().name.as_deref().unwrap_or("?"),
        namespace = %object.meta().namespace.as_deref().unwrap_or("?"),
        "reconcile failed: {error}"
    );
    Requeue::requeue(Duration::from_secs(5))
}

/// Runs `work` on a thread for blocking work, so that a slow expression holds no runtime worker.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The clock, in milliseconds since the epoch; read once per reconcile and passed on.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The most an Event's note may hold.
const MAX_NOTE: usize = 1000;

/// Publishes an Event about `object`, naming the `related` object it concerns (the Recorder
/// folds Events of one reason into one series unless their related objects differ). Best
/// effort: one that cannot be written is logged, not retried.
pub async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    related: Option<ObjectReference>,
    type_: EventType,
    reason: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let mut note = note;
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: related,
    };
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(
            object = %object.meta().name.as_deref().unwrap_or("?"),
            "cannot write Event {reason}: {error}"
        );
    }
}
