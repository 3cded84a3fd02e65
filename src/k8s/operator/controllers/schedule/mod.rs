//! The Schedule controller: starts a Schedule's FlowRuns at its fire times, skips (and says so)
//! what its policy forbids, runs its handlers when a run ends, and trims its history.
//!
//! Read it from [`reconcile`], the pipeline: [`load`] (the Schedule as stored now, its Flows,
//! its runs) → [`decide`] (pure: `crate::schedule::decide`, the handlers, the history to delete,
//! the status) → [`apply`] (create runs tolerating 409, cancel, delete) → status. Run names are
//! a function of the schedule and the instant, so a restart, a repeated reconcile or a second
//! replica meets the run already created instead of creating another.
//!
//! It wakes at the next fire time (no polling), when one of its runs changes, and when a Flow
//! it names appears or changes (a Schedule waiting for a missing Flow recovers by itself).

mod apply;
mod decide;
#[cfg(test)]
mod decide_tests;
mod handlers;
mod load;
mod problems;
mod reconcile;

use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::api::schedule::runs::SCHEDULE_LABEL;
use crate::k8s::api::{Flow, Schedule};
use crate::k8s::operator::kube::{error_policy, scoped};
use crate::k8s::operator::metrics::ControllerKind;
use crate::k8s::operator::telemetry::{self, MetricLabel};
use crate::k8s::operator::{Context, Registered, Stop};
use futures::{FutureExt, StreamExt};
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl MetricLabel for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(error) => telemetry::kube_label(error),
        }
    }
}

/// Watches every Schedule, the FlowRuns they own, and the Flows they name.
pub fn register(ctx: Arc<Context>, stop: Stop) -> Registered {
    let schedules = scoped::<DeserializeGuard<Schedule>>(&ctx.client, &ctx.config.namespace);
    let runs = scoped::<DeserializeGuard<FlowRun>>(&ctx.client, &ctx.config.namespace);
    let flows = scoped::<DeserializeGuard<Flow>>(&ctx.client, &ctx.config.namespace);
    let controller = Controller::new(schedules, watcher::Config::default());
    let store = controller.store();
    let listed = store.clone();
    let tuning = runtime::Config::default().concurrency(ctx.config.concurrency);
    let running = controller
        .with_config(tuning)
        .owns(runs, watcher::Config::default().labels(SCHEDULE_LABEL))
        .watches(flows, watcher::Config::default(), move |flow| {
            let (name, ns) = (flow.name_any(), flow.namespace());
            store
                .state()
                .into_iter()
                .filter(|schedule| {
                    schedule.namespace() == ns
                        && schedule.0.as_ref().is_ok_and(|s| names_flow(s, &name))
                })
                .map(|schedule| ObjectRef::from_obj(schedule.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stop.fired())
        .run(
            |schedule, ctx| {
                telemetry::measured(
                    ControllerKind::schedule,
                    ctx.clone(),
                    reconcile::reconcile(schedule, ctx),
                )
            },
            error_policy,
            ctx,
        )
        .for_each(|_| async {});
    Registered {
        running: running.boxed(),
        listed: async move { listed.wait_until_ready().await.is_ok() }.boxed(),
    }
}

/// The Schedule runs Flow `name`, as its flow or as a handler's.
fn names_flow(schedule: &Schedule, name: &str) -> bool {
    let spec = &schedule.spec;
    spec.flow_ref.name == name
        || spec
            .on_failure
            .as_ref()
            .is_some_and(|h| h.flow_ref.name == name)
        || spec
            .on_recovery
            .as_ref()
            .is_some_and(|h| h.flow_ref.name == name)
        || spec
            .on_success
            .as_ref()
            .is_some_and(|h| h.flow_ref.name == name)
}
