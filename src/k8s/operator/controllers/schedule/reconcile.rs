//! One Schedule: load (the Schedule as stored, the Flows it names, its runs by label) → decide
//! (pure: what falls due, the handlers, the history to delete, the status) → apply (cancel,
//! create tolerating 409, delete, Events) → status; then sleep until the next fire time.

use super::{Error, apply, decide, load};
use crate::k8s::api::Schedule;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::patch_status;
use chrono::{DateTime, Utc};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Woken this long after a fire time, so that the occurrence is due when the clock is read. A
/// wake that still comes early finds nothing due and sleeps the few milliseconds left.
const MARGIN: Duration = Duration::from_millis(10);

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Schedule>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let ns = guard.namespace().unwrap_or_default();
    let name = guard.name_any();
    if let Err(invalid) = &guard.0 {
        // Its status cannot be read back either: written whole each time, the same each time.
        let status = decide::unreadable(&invalid.metadata, &invalid.error);
        let api: Api<DeserializeGuard<Schedule>> = Api::namespaced(ctx.client.clone(), &ns);
        patch_status(&api, &name, &status).await?;
        return Ok(Requeue::await_change());
    }
    // Load.
    let Some(loaded) = load::load(&ctx, &ns, &name).await? else {
        return Ok(Requeue::await_change());
    };
    // Decide.
    let at = now();
    let mut decision = decide::decide(&loaded, at);
    // Apply, then status.
    apply::act(&ctx, &loaded.schedule, &mut decision).await?;
    let api: Api<Schedule> = Api::namespaced(ctx.client.clone(), &ns);
    apply::status(&api, &loaded.schedule, &decision.status).await?;
    Ok(wake_at(decision.wake, now()))
}

/// Sleep until `wake` (plus a margin); with no fire time ahead, until something changes.
fn wake_at(wake: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Requeue {
    match wake.and_then(|at| (at - now).to_std().ok()) {
        Some(wait) => Requeue::requeue(wait + MARGIN),
        None if wake.is_some() => Requeue::requeue(MARGIN),
        None => Requeue::await_change(),
    }
}

/// The clock, read once per reconcile (and once more for the sleep after it).
fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}
