//! The `FlowRun` resource: one run of a flow, and its status as the run goes.

// Each `printcolumn(...)` repeats `type_ = …`; clippy reads those as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use super::flow::FlowSpec;
use super::schema::{any_json, any_object};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run of a flow: which flow (by name, or inline), its inputs, and the operator's requests to
/// it (cancel, approvals).
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "millrace.dev",
    version = "v1alpha1",
    kind = "FlowRun",
    namespaced,
    status = "FlowRunStatus",
    shortname = "fr",
    category = "millrace",
    doc = "One run of a flow",
    printcolumn(name = "Flow", type_ = "string", json_path = ".spec.flowRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress"),
    printcolumn(name = "Step", type_ = "string", json_path = ".status.currentStep"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration")
)]
#[serde(rename_all = "camelCase")]
pub struct FlowRunSpec {
    /// The `Flow` in the run's namespace to run. Exactly one of `flowRef` and `flow` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_ref: Option<FlowRef>,
    /// An inline flow, for one-off runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowSpec>,
    /// The flow's inputs, validated against its schema before anything runs.
    #[serde(default)]
    #[schemars(schema_with = "any_object")]
    pub inputs: Value,
    /// Set to true to cancel the run: running steps are stopped, no retries or error handler run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
    /// Answers to suspended steps, by step path. `millrace approve` appends here; so can `kubectl patch`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowRef {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The suspended step's path as shown in status (for example `approve` or `loop_a[3]/approve`).
    pub step: String,
    #[serde(default = "yes")]
    pub approved: bool,
    /// Visible to later steps as `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub payload: Option<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    Pending,
    Running,
    Suspended,
    Succeeded,
    Failed,
    Canceled,
}

impl RunPhase {
    /// Succeeded, Failed or Canceled: nothing more happens to the run.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            RunPhase::Succeeded | RunPhase::Failed | RunPhase::Canceled
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Finished top-level steps over all top-level steps, like `3/7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// Wall time from start to completion (or to now while running), like `1m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loops: Vec<LoopStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub result: Option<Value>,
    /// Where the result is stored when it is too large for status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ref: Option<ResultRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Step path: module ids with iteration or branch indices, like `loop_a[3]/b`.
    pub path: String,
    pub phase: String,
    /// Attempts started so far (1 + retries).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ref: Option<ResultRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoopStatus {
    pub path: String,
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub running: u32,
}

/// A value stored in a ConfigMap owned by the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultRef {
    pub config_map: String,
    pub key: String,
}
