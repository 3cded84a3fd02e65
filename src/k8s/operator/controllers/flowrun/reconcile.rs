//! One FlowRun: read its state, feed the engine what happened (finished attempts, cancel,
//! approvals, timers), save the state, then make the cluster match it (one Job per running
//! attempt, no Job for anything else) and write the status.

use super::apply;
use super::load::{self, Scope};
use super::{Error, decide, events, resolver};
use crate::k8s::api::FlowRun;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::now_ms;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action as Requeue;
use std::sync::Arc;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<FlowRun>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let run = match &guard.0 {
        Ok(run) => run,
        Err(invalid) => return apply::unreadable(&ctx, invalid).await,
    };
    let scope = Scope::of(run, &ctx);
    let now = now_ms();

    // Load: the saved state (or the run begins now), and what its Jobs and pods say.
    let saved = match load::state(run, &scope, &ctx, now).await? {
        Ok(saved) => saved,
        Err(halt) => return apply::halt(&scope, run, halt).await,
    };
    let cluster = load::cluster(&scope).await?;
    let mut persisted = saved.persisted.clone();
    let mut built = Vec::new();
    if persisted.state.outcome().is_none() {
        let defaults = &ctx.config.pods;
        let finished = load::finished_attempts(&scope, &persisted, &cluster, defaults, now).await?;
        apply::announce_finished(&ctx, run, &scope, &cluster, &finished).await;
        let secrets = resolver::fetch_secrets(&ctx.client, &scope.ns, &persisted.library.secrets);
        let secrets = secrets.await?;
        // Decide: what the engine makes of it, and the Jobs of the attempts it starts.
        let events = decide::events(run, &mut persisted, finished);
        let started = decide::started(&persisted, &scope.identity, &cluster.jobs);
        let told = (events, started);
        (persisted, built) =
            decide::advance(&ctx, &scope.identity, persisted, told, secrets, now).await?;
    }

    // Apply: only with the state saved does anything start; an ended run starts nothing.
    let chunks = match apply::save(&scope, &saved, &persisted).await? {
        Ok(chunks) => chunks,
        Err(halt) => return apply::halt(&scope, run, halt).await,
    };
    let ttl = ctx.config.pods.ttl_seconds_after_finished;
    let plan = decide::jobs(
        &persisted,
        &scope.identity,
        built,
        &cluster.jobs,
        &cluster.pods,
        ttl,
    );
    apply::start(&ctx, run, &scope, &plan.start).await?;
    if let (Some(outcome), None) = (persisted.state.outcome(), saved.outcome()) {
        events::announce_end(&ctx, run, outcome).await;
    }
    apply::retire(&scope, &plan, ttl).await?;

    // Status.
    apply::status(&scope, run, &persisted, &chunks).await?;
    Ok(decide::requeue(&persisted, now_ms(), ctx.config.resync))
}
