//! Making the cluster match a Schedule's decision: cancel, create (a 409 means an earlier or
//! another reconcile created the run already), delete, announce, write the status.

use super::Error;
use super::decide::{Decision, Start};
use crate::k8s::api::Schedule;
use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::{create, gone_is_fine, patch_status, publish};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

/// Cancels, creates the scheduled and the handler runs, deletes history beyond the limits, and
/// publishes the Events. `decision.status.created` then counts only runs created here.
pub async fn act(ctx: &Context, schedule: &Schedule, decision: &mut Decision) -> Result<(), Error> {
    let runs: Api<FlowRun> = Api::namespaced(
        ctx.client.clone(),
        &schedule.namespace().unwrap_or_default(),
    );
    let cancel = json!({"spec": {"cancel": true}});
    for name in &decision.cancel {
        gone_is_fine(
            runs.patch(name, &PatchParams::default(), &Patch::Merge(&cancel))
                .await,
        )?;
    }
    let mut existed = 0;
    for start in &decision.create {
        if !start_run(ctx, schedule, &runs, start).await? {
            existed += 1;
        }
    }
    decision.existed(existed);
    for start in &decision.handlers {
        start_run(ctx, schedule, &runs, start).await?;
    }
    for name in &decision.delete {
        gone_is_fine(runs.delete(name, &DeleteParams::background()).await)?;
    }
    for note in &decision.notes {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            &ctx.recorder,
            schedule,
            None,
            type_,
            &note.reason,
            note.note.clone(),
        )
        .await;
    }
    Ok(())
}

/// Creates the run; `false` when it existed. Only a run created here is announced.
async fn start_run(
    ctx: &Context,
    schedule: &Schedule,
    runs: &Api<FlowRun>,
    start: &Start,
) -> Result<bool, Error> {
    let created = create(runs, &start.run).await?;
    if created {
        publish(
            &ctx.recorder,
            schedule,
            Some(start.run.object_ref(&())),
            EventType::Normal,
            start.reason,
            start.note.clone(),
        )
        .await;
    } else {
        tracing::debug!(run = %start.run.name_any(), "the run exists already");
    }
    Ok(created)
}

/// Writes the status when it differs from the stored one.
pub async fn status<S>(
    api: &Api<S>,
    schedule: &Schedule,
    status: &crate::k8s::api::ScheduleStatus,
) -> Result<(), Error>
where
    S: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if schedule.status.as_ref() != Some(status) {
        patch_status(api, &schedule.name_any(), status).await?;
    }
    Ok(())
}
