//! Schedules in operator tests: create and patch them, read their runs and Events, and wait
//! for a condition by polling (with a generous timeout, never a fixed sleep).

#![allow(
    dead_code,
    reason = "the two Schedule test binaries each use a different part"
)]

use super::cluster::control_plane;
use super::cluster::pod_runner::PodRunner;
use super::flows::step;
use super::operator::{Controllers, Harness, config, controller_logs, install_crds};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use millrace::k8s::api::schedule::runs::{SCHEDULE_LABEL, scheduled_for};
use millrace::k8s::api::schedule::{Schedule, ScheduleStatus};
use millrace::k8s::api::{Flow, FlowRun};
use serde_json::{Value, json};
use std::future::Future;

pub use super::cluster::wait::TIMEOUT;

/// A namespace with the CRDs, a pod runner, a kubeconfig for it in `dir`, and (while
/// `controller` holds it) the controllers.
pub struct Env {
    pub client: Client,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub controller: Option<Controllers>,
    _runner: PodRunner,
}

/// `None` without control plane binaries.
pub async fn env(prefix: &str) -> Result<Option<Env>> {
    let Some(cp) = control_plane().await else {
        return Ok(None);
    };
    controller_logs();
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace(prefix).await;
    let dir = tempfile::tempdir()?;
    cp.write_kubeconfig(&dir.path().join("kubeconfig"), &ns)?;
    Ok(Some(Env {
        _runner: cp.pod_runner(&ns).await,
        controller: Some(start_controller(client.clone(), &ns)),
        client,
        ns,
        dir,
    }))
}

/// Polls `check` until it gives `Some`, failing with `what` after `TIMEOUT`.
pub async fn wait_until<T, F, Fut>(what: &str, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    super::cluster::wait::wait_until(what, TIMEOUT, check).await
}

/// The controllers, watching `ns`.
pub fn start_controller(client: Client, ns: &str) -> Controllers {
    Controllers::start(client, config(Some(ns)))
}

/// Waits until FlowRun `name` in `ns` has ended.
pub async fn run_ended(ns: &str, name: &str) -> Result<FlowRun> {
    let cp = control_plane().await.context("the control plane")?;
    Harness::attach(cp, ns).run_ended(name).await
}

pub fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}

/// Sleeps until the wall clock reaches `at`.
pub async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

/// A Flow `name` of one bash step running `script`.
pub async fn bash_flow(client: &Client, ns: &str, name: &str, script: &str) -> Result<()> {
    let flow: Flow = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"summary": name, "value": {"modules": [step("main", "bash", script, json!({}))]}},
    }))?;
    Api::<Flow>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &flow)
        .await?;
    Ok(())
}

pub fn schedules(client: &Client, ns: &str) -> Api<Schedule> {
    Api::namespaced(client.clone(), ns)
}

/// Creates Schedule `name` with `spec`.
pub async fn create(client: &Client, ns: &str, name: &str, spec: Value) -> Result<()> {
    let schedule: Schedule = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": name}, "spec": spec,
    }))?;
    schedules(client, ns)
        .create(&PostParams::default(), &schedule)
        .await?;
    Ok(())
}

/// Merges `spec` into Schedule `name`'s spec.
pub async fn patch_spec(client: &Client, ns: &str, name: &str, spec: Value) -> Result<()> {
    let patch = json!({"spec": spec});
    schedules(client, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

pub async fn status(client: &Client, ns: &str, name: &str) -> Result<ScheduleStatus> {
    Ok(schedules(client, ns)
        .get(name)
        .await?
        .status
        .unwrap_or_default())
}

/// The runs labelled with Schedule `name`, oldest occurrence first.
pub async fn runs(client: &Client, ns: &str, name: &str) -> Result<Vec<FlowRun>> {
    let selector = format!("{SCHEDULE_LABEL}={name}");
    let mut runs = Api::<FlowRun>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    runs.sort_by_key(|run| (scheduled_for(run), run.name_any()));
    Ok(runs)
}

/// The scheduled instants of the runs of Schedule `name` (handler runs left out).
pub async fn scheduled(client: &Client, ns: &str, name: &str) -> Result<Vec<DateTime<Utc>>> {
    Ok(runs(client, ns, name)
        .await?
        .iter()
        .filter(|run| !run.labels().contains_key("millrace.dev/schedule-handler"))
        .filter_map(scheduled_for)
        .collect())
}

/// The Events about object `name`: (reason, occurrences, note), oldest first.
pub async fn events(client: &Client, ns: &str, name: &str) -> Result<Vec<(String, i32, String)>> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.series.map_or(1, |s| s.count),
                e.note.unwrap_or_default(),
            )
        })
        .collect())
}

/// Waits for an Event `reason` about `name` and returns its note.
pub async fn event(client: &Client, ns: &str, name: &str, reason: &str) -> Result<String> {
    wait_until(&format!("an Event {reason} about {name}"), || async {
        Ok(events(client, ns, name)
            .await?
            .into_iter()
            .find(|(r, _, _)| r == reason)
            .map(|(_, _, note)| note))
    })
    .await
}

/// The condition `type_` of Schedule `name`: (status, reason, message).
pub fn condition(status: &ScheduleStatus, type_: &str) -> Option<(String, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
