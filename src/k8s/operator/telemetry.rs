//! What every controller records about its reconciles: how long each took and, when it failed,
//! the kind of error (each controller's error enum names its kinds).

use super::Context;
use super::metrics::ControllerKind;
use kube::runtime::controller::Action as Requeue;
use std::sync::Arc;
use std::time::Instant;

/// A controller's error, as the `error` label of the reconcile metrics.
pub trait MetricLabel {
    fn metric_label(&self) -> &'static str;
}

/// Runs `reconcile` and records how long it took and how it ended.
pub async fn measured<E: MetricLabel>(
    controller: ControllerKind,
    ctx: Arc<Context>,
    reconcile: impl Future<Output = Result<Requeue, E>>,
) -> Result<Requeue, E> {
    let started = Instant::now();
    let result = reconcile.await;
    let kind = result.as_ref().err().map(MetricLabel::metric_label);
    ctx.config
        .metrics
        .reconciled(controller, started.elapsed(), kind);
    result
}

/// The label of a Kubernetes client error: the API server refused, or it was not reached.
pub fn kube_label(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(_) => "api",
        _ => "client",
    }
}
