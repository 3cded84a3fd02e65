//! The `Schedule` resource: a cron expression that starts FlowRuns of a Flow, never twice for one
//! occurrence and never skipping one silently. The rules are in `crate::schedule` (pure) and
//! `docs/schedules.md`; [`runs`] builds the FlowRuns a Schedule starts.

// Each `printcolumn(...)` repeats `type_ = …`; clippy reads those as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod runs;

use super::flowrun::FlowRef;
use super::schema::any_object;
use crate::schedule::{ConcurrencyPolicy, SkipReason};
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Starts runs of a Flow at the times of a cron expression read in a time zone.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "millrace.dev",
    version = "v1alpha1",
    kind = "Schedule",
    namespaced,
    status = "ScheduleStatus",
    shortname = "sched",
    category = "millrace",
    doc = "Starts FlowRuns of a Flow by a cron expression",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Timezone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Last", type_ = "date", json_path = ".status.lastScheduleTime"),
    printcolumn(
        name = "Next",
        type_ = "string",
        json_path = ".status.nextScheduleTimes[0]"
    ),
    printcolumn(name = "Active", type_ = "string", json_path = ".status.active"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// A cron expression: 5 fields, 6 with leading seconds, or a macro such as `@daily`.
    pub schedule: String,
    /// The IANA time zone the expression is read in.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// The Flow in the Schedule's namespace to run.
    pub flow_ref: FlowRef,
    /// The runs' inputs, checked against the Flow's schema.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schemars(schema_with = "any_object")]
    pub inputs: Value,
    /// The input that receives the scheduled instant (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time_input: Option<String>,
    /// `Allow` runs alongside active ones, `Forbid` skips while one is active, `Replace`
    /// cancels the active ones first.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// How late an occurrence may still start; later ones are skipped (MissedDeadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,
    /// Start nothing; due occurrences are skipped, none counts as missed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Start nothing before this instant (RFC 3339); occurrences meanwhile are not caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<Time>,
    /// Succeeded runs kept; older ones are deleted.
    #[serde(default = "three")]
    pub successful_runs_history_limit: u32,
    /// Failed (or canceled) runs kept; older ones are deleted.
    #[serde(default = "one")]
    pub failed_runs_history_limit: u32,
    /// How many occurrences to start when several fell due while the operator was away: the
    /// latest ones, oldest first.
    #[serde(default = "one")]
    #[schemars(range(max = 100))]
    pub catch_up: u32,
    /// A Flow to run when a scheduled run fails (with `times: N`, only from the Nth failure in a
    /// row on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailureHandler>,
    /// A Flow to run when a run succeeds after one or more failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_recovery: Option<Handler>,
    /// A Flow to run after every successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Handler>,
}

fn utc() -> String {
    "UTC".into()
}

fn one() -> u32 {
    1
}

fn three() -> u32 {
    3
}

/// A handler Flow. Its run gets `{schedule, run, error?, scheduledFor}` over these `inputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Handler {
    pub flow_ref: FlowRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub inputs: Option<Value>,
}

/// `onFailure`: a handler Flow, and how many failures in a row it waits for (default 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureHandler {
    pub flow_ref: FlowRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub inputs: Option<Value>,
}

impl FailureHandler {
    pub fn handler(&self) -> Handler {
        Handler {
            flow_ref: self.flow_ref.clone(),
            inputs: self.inputs.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The latest occurrence settled: started, skipped or missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The next three fire times (also while suspended or paused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_schedule_times: Vec<Time>,
    /// When the latest successful run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// This Schedule's runs that have not ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<String>,
    /// Runs started by schedule (manual triggers and handler runs not included).
    #[serde(default)]
    pub created: u64,
    /// Occurrences skipped, for any reason (see `lastSkip`).
    #[serde(default)]
    pub skipped: u64,
    /// Occurrences that fell due while the operator was away and were beyond `catchUp`.
    #[serde(default)]
    pub missed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skip: Option<LastSkip>,
    /// Failed runs in a row, up to the latest finished one (what `onFailure.times` counts).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Finished runs whose handlers were settled (those still kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled: Vec<String>,
    /// Since when the current `schedule` and `timeZone` hold: occurrences before it are never
    /// due (Kubernetes keeps no time of a field's last change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_since: Option<ScheduleSince>,
    /// kstatus: `Ready` (scheduling) and `Stalled` (a problem to fix, named with its field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The latest skipped occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastSkip {
    pub time: Time,
    pub reason: SkipReason,
    pub message: String,
}

/// A fingerprint of `schedule` and `timeZone`, and when it was first seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSince {
    pub fingerprint: String,
    pub time: Time,
}

/// An instant as Kubernetes writes it.
pub fn to_time(at: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::new(at.timestamp(), at.timestamp_subsec_nanos() as i32)
            .unwrap_or_default(),
    )
}

/// A Kubernetes time as a chrono instant.
pub fn from_time(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond() as u32)
        .unwrap_or_default()
}
