//! One GitSource: load (the live objects of its namespace; the revision it follows, fetched and
//! planned) → apply (refuse the revision whole, or apply it and prune) → decide (pure: the
//! status) → status, written only when it changed; then sleep for the interval. A wake before
//! the sync is due (see `pace`) only sleeps again.

use super::decide::{self, Outcome};
use super::pace::Pace;
use super::{Error, apply};
use crate::gitsync::cluster::{self, ReadError};
use crate::gitsync::plan::FileError;
use crate::k8s::api::GitSource;
use crate::k8s::api::gitsource::REQUESTED_AT_ANNOTATION;
use crate::k8s::api::schedule::to_time;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::{patch_status, publish};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::Instant;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<GitSource>>,
    ctx: Arc<Context>,
    pace: Arc<Pace>,
) -> Result<Requeue, Error> {
    let ns = guard.namespace().unwrap_or_default();
    let name = guard.name_any();
    let source = match &guard.0 {
        Ok(source) => source,
        Err(invalid) => {
            let api: Api<DeserializeGuard<GitSource>> = Api::namespaced(ctx.client.clone(), &ns);
            let outcome =
                Outcome::Invalid(format!("the GitSource cannot be read: {}", invalid.error));
            let at = invalid
                .metadata
                .creation_timestamp
                .clone()
                .unwrap_or_else(now);
            let status = decide::status(
                &Default::default(),
                &invalid.metadata,
                &outcome,
                None,
                None,
                at,
            );
            patch_status(&api, &name, &status).await?;
            return Ok(Requeue::await_change());
        }
    };
    if source.spec.suspend {
        return Ok(Requeue::await_change());
    }
    let (interval, retry) = match (source.spec.interval(), source.spec.retry_interval()) {
        (Ok(interval), Ok(retry)) => (interval, retry),
        (Err(why), _) | (_, Err(why)) => {
            write(&ctx, source, &Outcome::Invalid(why), None).await?;
            return Ok(Requeue::await_change());
        }
    };
    let uid = source.uid().unwrap_or_default();
    let generation = source.metadata.generation;
    let requested = requested_at(source);
    if let Some(left) = pace.wait(&uid, generation, requested, Instant::now()) {
        return Ok(Requeue::requeue(left));
    }
    let (outcome, fetched) = sync(&ctx, source).await;
    write(&ctx, source, &outcome, fetched.as_deref()).await?;
    let wait = match &outcome {
        Outcome::Invalid(_) => return Ok(Requeue::await_change()),
        outcome if outcome.failed() => retry,
        _ => interval,
    };
    pace.synced(&uid, generation, requested, Instant::now(), wait);
    Ok(Requeue::requeue(wait))
}

/// Load and apply: how the sync ended, and the revision fetched when it got that far.
async fn sync(ctx: &Context, source: &GitSource) -> (Outcome, Option<String>) {
    let ns = source.namespace().unwrap_or_default();
    let live = match cluster::list_live(&ctx.client, &ns).await {
        Ok(live) => live,
        Err(error) => {
            let message =
                format!("cannot list the Flows, Scripts and Schedules of namespace {ns}: {error}");
            return (Outcome::FetchFailed(message), None);
        }
    };
    let cache = ctx.config.git_cache.join(format!(
        "{ns}_{}_{}",
        source.name_any(),
        source.uid().unwrap_or_default()
    ));
    let read = cluster::read(
        &ctx.client,
        source,
        cache,
        ctx.evaluator.clone(),
        cluster::flow_names(&live),
    )
    .await;
    match read {
        Ok(read) => {
            let outcome = apply::sync(&ctx.client, source, &read, &live).await;
            (outcome, Some(read.revision))
        }
        Err(ReadError::Spec(why)) => (Outcome::Invalid(why), None),
        Err(ReadError::Tree { revision, error }) => {
            let errors = vec![FileError::new(
                source.spec.path.clone(),
                None,
                format!("spec.path: {error}"),
            )];
            let outcome = Outcome::ValidationFailed {
                revision: revision.clone(),
                errors,
            };
            (outcome, Some(revision))
        }
        Err(error) => (Outcome::FetchFailed(error.to_string()), None),
    }
}

/// Writes the status when it changed, with an Event when the `Ready` verdict did.
async fn write(
    ctx: &Context,
    source: &GitSource,
    outcome: &Outcome,
    fetched: Option<&str>,
) -> Result<(), Error> {
    let previous = source.status.clone().unwrap_or_default();
    let requested = requested_at(source);
    let status = decide::status(
        &previous,
        &source.metadata,
        outcome,
        fetched,
        requested,
        now(),
    );
    if status == previous {
        return Ok(());
    }
    let api: Api<GitSource> =
        Api::namespaced(ctx.client.clone(), &source.namespace().unwrap_or_default());
    patch_status(&api, &source.name_any(), &status).await?;
    let ready = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let now_ready = ready(&status.conditions);
    if now_ready != ready(&previous.conditions)
        && let Some((state, reason, message)) = now_ready
    {
        let type_ = if state == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(&ctx.recorder, source, None, type_, &reason, message).await;
    }
    Ok(())
}

/// The `millrace.dev/reconcile-requested-at` value a sync now answers.
fn requested_at(source: &GitSource) -> Option<&str> {
    source
        .annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .map(String::as_str)
}

fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    to_time(chrono::DateTime::from(std::time::SystemTime::now()))
}
