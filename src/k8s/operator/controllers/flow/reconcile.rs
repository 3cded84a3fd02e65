//! One Flow: load (what there is to check) → decide (the problems, the status they make) →
//! apply (write the status when it changed).

use super::Error;
use super::decide::{self, Checked};
use crate::k8s::api::{Flow, document};
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::{blocking, patch_status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use std::sync::Arc;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Flow>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    // Load: the spec to check, or why the object cannot be read.
    let checked = match &guard.0 {
        Ok(flow) => {
            // Parsing the expressions in the sandbox blocks while it runs; a Flow's checks
            // wait in a queue of their own, like a run's evaluations.
            let (spec, evaluator) = (flow.spec.clone(), ctx.evaluator.clone());
            let queue = format!(
                "Flow {}/{}",
                flow.namespace().unwrap_or_default(),
                flow.name_any()
            );
            let problems =
                blocking(move || document::problems(&spec, evaluator.for_queue(&queue).as_ref()))
                    .await;
            Checked::Readable {
                meta: &flow.metadata,
                status: flow.status.as_ref(),
                problems,
            }
        }
        Err(invalid) => Checked::Unreadable {
            meta: &invalid.metadata,
            error: &invalid.error,
        },
    };
    // Decide: the status to write, unless it is written already.
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(status) = decide::status(&checked, now) else {
        return Ok(Requeue::await_change());
    };
    // Apply.
    let meta = checked.meta();
    let ns = meta.namespace.clone().unwrap_or_default();
    let api: Api<DeserializeGuard<Flow>> = Api::namespaced(ctx.client.clone(), &ns);
    patch_status(&api, meta.name.as_deref().unwrap_or_default(), &status).await?;
    Ok(Requeue::await_change())
}
