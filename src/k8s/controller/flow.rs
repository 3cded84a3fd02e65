//! The Flow reconciler: checks the document and reports the result as the `Ready` condition.

use super::document;
use super::{Context, Error, FIELD_MANAGER, blocking};
use crate::k8s::flow::{Flow, FlowStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use serde_json::json;
use std::sync::Arc;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<Flow>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (meta, status, problems) = match &guard.0 {
        Ok(flow) => {
            // Parsing the expressions in the sandbox blocks while it runs.
            let (spec, evaluator) = (flow.spec.clone(), ctx.evaluator.clone());
            let problems = blocking(move || document::problems(&spec, evaluator.as_ref())).await;
            (&flow.metadata, flow.status.as_ref(), problems)
        }
        // A shape the CRD schema lets through but the types do not: report it on this Flow only.
        Err(invalid) => (
            &invalid.metadata,
            None,
            vec![format!("the Flow cannot be read: {}", invalid.error)],
        ),
    };
    let name = meta.name.clone().unwrap_or_default();
    let ns = meta.namespace.clone().unwrap_or_default();
    let ready = problems.is_empty();
    let (reason, message) = if ready {
        ("Valid", "the flow is valid".to_string())
    } else {
        ("Invalid", problems.join("\n"))
    };
    let desired_status = if ready { "True" } else { "False" };
    let previous = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let unchanged = previous.is_some_and(|c| {
        c.status == desired_status
            && c.message == message
            && c.observed_generation == meta.generation
    });
    if unchanged {
        return Ok(Action::await_change());
    }
    let last_transition_time = match &guard.0 {
        Ok(_) => previous
            .filter(|c| c.status == desired_status)
            .map(|c| c.last_transition_time.clone()),
        // Its status cannot be read back: a stable time keeps the patch idempotent, so that
        // writing it does not wake this reconcile again and again.
        Err(_) => meta.creation_timestamp.clone(),
    }
    .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    let status = FlowStatus {
        observed_generation: meta.generation,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: desired_status.into(),
            reason: reason.into(),
            message,
            observed_generation: meta.generation,
            last_transition_time,
        }],
    };
    let patch = json!({"apiVersion": "millrace.dev/v1alpha1", "kind": "Flow", "status": status});
    let api: Api<DeserializeGuard<Flow>> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(Action::await_change())
}
