//! The GitSource controller: keeps a namespace's Flows, Scripts and Schedules what one revision
//! of a git repository says, one whole revision at a time.
//!
//! Read it from [`reconcile`], the pipeline: load (the live objects; the revision fetched into
//! the source's bare repository cache and planned by `crate::gitsync`) → [`apply`] (a revision
//! with any problem — a bad file, an object the API server refuses on a dry-run, an object of
//! another GitSource — is refused whole; else server-side apply of what differs, then prune of
//! what this GitSource's own inventory has and the revision no longer has) → [`decide`] (pure:
//! the status) → status, written only when it changed: a sync of an unchanged revision over
//! unchanged objects reads and writes nothing else.
//!
//! It syncs when the spec changes, when `millrace.dev/reconcile-requested-at` is set, and every
//! `interval` (`retryInterval` after a failure); [`pace`] keeps other wakes (its own status
//! writes) from syncing sooner.

mod apply;
mod decide;
mod pace;
mod reconcile;

use crate::k8s::api::GitSource;
use crate::k8s::operator::kube::{error_policy, scoped};
use crate::k8s::operator::metrics::ControllerKind;
use crate::k8s::operator::telemetry::{self, MetricLabel};
use crate::k8s::operator::{Context, Registered, Stop};
use futures::{FutureExt, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime, Controller};
use kube::runtime::watcher;
use pace::Pace;
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

/// Watches every GitSource.
pub fn register(ctx: Arc<Context>, stop: Stop) -> Registered {
    let sources = scoped::<DeserializeGuard<GitSource>>(&ctx.client, &ctx.config.namespace);
    let controller = Controller::new(sources, watcher::Config::default());
    let listed = controller.store();
    let pace = Arc::new(Pace::default());
    let tuning = runtime::Config::default().concurrency(ctx.config.concurrency);
    let running = controller
        .with_config(tuning)
        .graceful_shutdown_on(stop.fired())
        .run(
            move |source, ctx| {
                telemetry::measured(
                    ControllerKind::gitsource,
                    ctx.clone(),
                    reconcile::reconcile(source, ctx, pace.clone()),
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
