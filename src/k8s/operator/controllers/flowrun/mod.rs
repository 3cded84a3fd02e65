//! The FlowRun controller: drives every FlowRun with the engine, one Job per step attempt.
//!
//! Read it from [`reconcile`], the pipeline: [`load`] (the run's saved state, or [`begin`] it;
//! its Jobs and pods; which attempts finished) → [`decide`] (pure: feed the engine, pick the Jobs
//! to start, stop and release, when to look again) → [`apply`] (save the state, then act on
//! Jobs) → [`status`] (pure: the status the state makes).
//!
//! Beside it: [`job`] builds an attempt's Job and Secret; [`allowed`] says which ServiceAccounts
//! and Secrets a run's pods may use; [`saved`] lays the run's state out in ConfigMaps and
//! [`persist`] reads and writes them; [`library`] resolves what a run reaches by path when it
//! begins, [`resolver`] serves it to the engine, [`variables`] reads `variable()`/`resource()`
//! values from Secrets; [`events`] and [`telemetry`] report; [`trouble`] shows a failed reconcile on
//! the run and paces its retries.

pub mod allowed;
mod apply;
mod begin;
mod decide;
mod events;
#[cfg(test)]
mod fixtures;
pub mod job;
mod library;
mod load;
mod persist;
mod reconcile;
mod resolver;
mod saved;
mod status;
mod telemetry;
mod trouble;
mod variables;

pub use persist::saved_state;
pub use saved::StateError;

use crate::engine::EngineError;
use crate::k8s::api::FlowRun;
use crate::k8s::api::pod::RUN_LABEL;
use crate::k8s::operator::kube::scoped;
use crate::k8s::operator::metrics::ControllerKind;
use crate::k8s::operator::telemetry::{self as measure, MetricLabel};
use crate::k8s::operator::{Context, Registered, Stop};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime, Action as Requeue, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use std::sync::Arc;
use trouble::Failures;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl MetricLabel for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(error) => measure::kube_label(error),
            Error::State(_) => "state",
            Error::Engine(_) => "engine",
        }
    }
}

/// Watches every FlowRun, and the Jobs and pods made for them (of the configured namespace).
pub fn register(ctx: Arc<Context>, stop: Stop) -> Registered {
    let runs = scoped::<DeserializeGuard<FlowRun>>(&ctx.client, &ctx.config.namespace);
    let jobs: Api<Job> = scoped(&ctx.client, &ctx.config.namespace);
    let pods: Api<Pod> = scoped(&ctx.client, &ctx.config.namespace);
    let owned = watcher::Config::default().labels(RUN_LABEL);
    let controller = Controller::new(runs, watcher::Config::default());
    let listed = controller.store();
    let metrics = ctx.config.metrics.clone();
    metrics.count_runs_from(Some(telemetry::run_phases(listed.clone())));
    let tuning = runtime::Config::default().concurrency(ctx.config.concurrency);
    let failures = Arc::new(Failures::default());
    let counted = failures.clone();
    let running = controller
        .with_config(tuning)
        .owns(jobs, owned.clone())
        // Pods finish before their Job is marked complete: react to them directly.
        .watches(pods, owned, |pod: Pod| {
            let run = pod.annotations().get(RUN_LABEL).cloned()?;
            Some(ObjectRef::new(&run).within(&pod.namespace()?))
        })
        .graceful_shutdown_on(stop.fired())
        .run(
            move |run, ctx| {
                let failures = failures.clone();
                async move {
                    let uid = run.uid().unwrap_or_default();
                    let reconciled = reconcile::reconcile(run.clone(), ctx.clone());
                    let result =
                        measure::measured(ControllerKind::flowrun, ctx.clone(), reconciled).await;
                    match &result {
                        Ok(_) => failures.clear(&uid),
                        Err(error) => {
                            let count = failures.add(&uid);
                            apply::trouble(&ctx, &run, error, count).await;
                        }
                    }
                    result
                }
            },
            move |run, error, _ctx| {
                let count = counted.count(&run.uid().unwrap_or_default());
                tracing::warn!(
                    run = %run.name_any(),
                    namespace = %run.namespace().unwrap_or_default(),
                    "reconcile failed ({count} in a row): {error}"
                );
                Requeue::requeue(trouble::backoff(count))
            },
            ctx,
        )
        .for_each(|_| async {});
    Registered {
        running: async move {
            running.await;
            metrics.count_runs_from(None);
        }
        .boxed(),
        listed: async move { listed.wait_until_ready().await.is_ok() }.boxed(),
    }
}
