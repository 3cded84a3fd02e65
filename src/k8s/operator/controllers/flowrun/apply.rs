//! The writes of a FlowRun reconcile, in the order that keeps a crash harmless: the state first,
//! then the Jobs it implies, then the status.

use super::decide::{self, JobPlan};
use super::load::{Cluster, Saved, Scope};
use super::saved::{self, Persisted, StateError};
use super::{Error, events, persist, status, telemetry, trouble};
use crate::engine::Event;
use crate::k8s::api::pod::{ATTEMPT_LABEL, STEP_PATH_ANNOTATION};
use crate::k8s::api::{FlowRun, RunPhase};
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::{create, gone_is_fine, patch_status};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// Why a reconcile ends early.
pub enum Halt {
    /// The run cannot start, or cannot go on, for now: its status says why.
    Stopped {
        phase: RunPhase,
        reason: &'static str,
        message: String,
        requeue: Requeue,
    },
    /// Another reconcile saved the state first: go on from its state.
    Again,
}

/// Writes the status a halt calls for (unless it is written already).
pub async fn halt(scope: &Scope, run: &FlowRun, halt: Halt) -> Result<Requeue, Error> {
    let Halt::Stopped {
        phase,
        reason,
        message,
        requeue,
    } = halt
    else {
        return Ok(Requeue::requeue(Duration::ZERO));
    };
    let previous = run.status.as_ref().map(|s| s.conditions.as_slice());
    let generation = run.meta().generation;
    let status = status::not_started(
        phase,
        reason,
        message,
        generation,
        previous.unwrap_or_default(),
    );
    if run.status.as_ref() != Some(&status) {
        patch_status(&scope.runs, &run.name_any(), &status).await?;
    }
    Ok(requeue)
}

/// A FlowRun that does not fit its type fails, saying why.
pub async fn unreadable(ctx: &Context, invalid: &InvalidObject) -> Result<Requeue, Error> {
    let (name, ns) = (&invalid.metadata.name, &invalid.metadata.namespace);
    let runs: Api<DeserializeGuard<FlowRun>> =
        Api::namespaced(ctx.client.clone(), ns.as_deref().unwrap_or_default());
    let status = status::unreadable(invalid);
    patch_status(&runs, name.as_deref().unwrap_or_default(), &status).await?;
    Ok(Requeue::await_change())
}

/// Saves the state unless it is saved as it is; the chunks it lists.
pub async fn save(
    scope: &Scope,
    saved: &Saved,
    persisted: &Persisted,
) -> Result<Result<Vec<String>, Halt>, Error> {
    if saved.version.is_some() && &saved.persisted == persisted {
        return Ok(Ok(saved.chunks.clone()));
    }
    let (config_maps, identity) = (&scope.config_maps, &scope.identity);
    let version = saved.version.clone();
    match persist::save(config_maps, identity, persisted, version, &saved.chunks).await {
        Ok(Some(listed)) => Ok(Ok(listed)),
        Ok(None) => Ok(Err(Halt::Again)),
        // Nothing more can be recorded, so nothing more may start: the run stops here.
        Err(Error::State(error @ StateError::TooLarge { .. })) => Ok(Err(Halt::Stopped {
            phase: RunPhase::Failed,
            reason: "StateTooLarge",
            message: error.to_string(),
            requeue: Requeue::await_change(),
        })),
        Err(error) => Err(error),
    }
}

/// Counts the attempts that finished and warns of those that failed.
pub async fn announce_finished(
    ctx: &Context,
    run: &FlowRun,
    scope: &Scope,
    cluster: &Cluster,
    finished: &[Event],
) {
    let pod_of = |job: &str| decide::pod_of(&cluster.pods, job);
    telemetry::attempts_finished(ctx, &scope.identity, finished, pod_of);
    events::announce_failures(ctx, run, finished).await;
}

/// Creates each attempt's files Secret (code and arguments), then its Job; a repeated create
/// finds them.
pub async fn start(
    ctx: &Context,
    run: &FlowRun,
    scope: &Scope,
    attempts: &[(Job, Secret)],
) -> Result<(), Error> {
    for (job, files) in attempts {
        create(&scope.secrets, files).await?;
        if !create(&scope.jobs, job).await? {
            continue;
        }
        let attempt = job.labels().get(ATTEMPT_LABEL).cloned().unwrap_or_default();
        let step = job.annotations().get(STEP_PATH_ANNOTATION);
        let step = step.cloned().unwrap_or_default();
        let reason = if attempt == "1" {
            "StepStarted"
        } else {
            "StepRetried"
        };
        let note = format!("step {step} attempt {attempt}: Job {}", job.name_any());
        events::emit(ctx, run, EventType::Normal, reason, note).await;
    }
    Ok(())
}

/// Deletes the Jobs (and, in the background, the pods) of attempts that must not go on, and
/// lets finished Jobs' TTL run out: they are created without one, so that they cannot vanish
/// with an outcome not yet saved (the TTL leaves their log readable for a while).
pub async fn retire(scope: &Scope, plan: &JobPlan, ttl: i32) -> Result<(), Error> {
    for name in &plan.stop {
        gone_is_fine(scope.jobs.delete(name, &DeleteParams::background()).await)?;
    }
    let patch = json!({"spec": {"ttlSecondsAfterFinished": ttl}});
    for name in &plan.release {
        let params = PatchParams::default();
        gone_is_fine(scope.jobs.patch(name, &params, &Patch::Merge(&patch)).await)?;
    }
    Ok(())
}

/// Writes the status the state makes, when it differs from the one there.
pub async fn status(
    scope: &Scope,
    run: &FlowRun,
    persisted: &Persisted,
    chunks: &[String],
) -> Result<(), Error> {
    let previous = run.status.as_ref().map(|s| s.conditions.as_slice());
    let results = saved::results_ref(&scope.identity.name, !chunks.is_empty());
    let generation = run.meta().generation;
    let status = status::compute(
        &scope.identity,
        generation,
        persisted,
        &results,
        previous.unwrap_or_default(),
    );
    if run.status.as_ref() != Some(&status) {
        patch_status(&scope.runs, &scope.identity.name, &status).await?;
    }
    Ok(())
}

/// Shows a failed reconcile on the run: a condition with the reason and what to do. Best effort:
/// when even that write fails (the status itself may be what is forbidden), the log has it.
pub async fn trouble(
    ctx: &Context,
    guard: &DeserializeGuard<FlowRun>,
    error: &Error,
    failures: u32,
) {
    let Ok(run) = &guard.0 else {
        return;
    };
    let problem = trouble::problem(error);
    let previous = run.status.clone().unwrap_or_default();
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let status = trouble::with_problem(&previous, &problem, run.meta().generation, failures, now);
    let runs: Api<FlowRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    if let Err(write) = patch_status(&runs, &run.name_any(), &status).await {
        tracing::warn!(run = %run.name_any(), "cannot show the failed reconcile on the run: {write}");
    }
}
