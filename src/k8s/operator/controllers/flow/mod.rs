//! The Flow controller: checks every Flow (its OpenFlow document, its expressions) and reports
//! the result as the Flow's `Ready` condition. A Flow that does not even fit its type gets the
//! same treatment, so that a malformed object never disturbs the others.
//!
//! `reconcile` is the pipeline; `decide` the pure part: which status to write, if any.

mod decide;
mod reconcile;

use crate::k8s::api::Flow;
use crate::k8s::operator::kube::{error_policy, scoped};
use crate::k8s::operator::metrics::ControllerKind;
use crate::k8s::operator::telemetry::{self, MetricLabel};
use crate::k8s::operator::{Context, Registered, Stop};
use futures::{FutureExt, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime, Controller};
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

/// Watches every Flow (of the configured namespace).
pub fn register(ctx: Arc<Context>, stop: Stop) -> Registered {
    let flows = scoped::<DeserializeGuard<Flow>>(&ctx.client, &ctx.config.namespace);
    let controller = Controller::new(flows, watcher::Config::default());
    let listed = controller.store();
    let tuning = runtime::Config::default().concurrency(ctx.config.concurrency);
    let running = controller
        .with_config(tuning)
        .graceful_shutdown_on(stop.fired())
        .run(
            |flow, ctx| {
                telemetry::measured(
                    ControllerKind::flow,
                    ctx.clone(),
                    reconcile::reconcile(flow, ctx),
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
