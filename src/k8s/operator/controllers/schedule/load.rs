//! The reads a Schedule reconcile starts with. The Schedule is read from the API server, not the
//! watch cache: its status says what earlier reconciles settled, and a stale copy would settle
//! the same occurrences again (the runs would meet 409, but skips would be counted twice).

use super::Error;
use crate::k8s::api::flow::FlowSpec;
use crate::k8s::api::flowrun::FlowRun;
use crate::k8s::api::naming::label_value;
use crate::k8s::api::schedule::runs::SCHEDULE_LABEL;
use crate::k8s::api::{Flow, Schedule};
use crate::k8s::operator::Context;
use kube::api::ListParams;
use kube::core::DeserializeGuard;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;

/// A Flow the Schedule names, as found.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowState {
    Found(Box<FlowSpec>),
    Missing,
    /// It exists but does not fit its type (its own Ready condition says why).
    Unreadable(String),
}

/// Everything the decision needs.
pub struct Loaded {
    pub schedule: Schedule,
    /// Every Flow the Schedule names (its flow, its handlers'), by name.
    pub flows: BTreeMap<String, FlowState>,
    /// The Schedule's runs (scheduled, manual and handler runs), those that fit their type.
    pub runs: Vec<FlowRun>,
}

/// The Schedule `name` as stored now (`None`: deleted meanwhile), its Flows and its runs.
pub async fn load(ctx: &Context, ns: &str, name: &str) -> Result<Option<Loaded>, Error> {
    let schedules: Api<Schedule> = Api::namespaced(ctx.client.clone(), ns);
    let Some(schedule) = schedules.get_opt(name).await? else {
        return Ok(None);
    };
    let flows_api: Api<DeserializeGuard<Flow>> = Api::namespaced(ctx.client.clone(), ns);
    let mut flows = BTreeMap::new();
    for flow in flow_names(&schedule) {
        let state = match flows_api.get_opt(&flow).await? {
            None => FlowState::Missing,
            Some(DeserializeGuard(Ok(found))) => FlowState::Found(Box::new(found.spec)),
            Some(DeserializeGuard(Err(invalid))) => FlowState::Unreadable(invalid.error),
        };
        flows.insert(flow, state);
    }
    let runs_api: Api<DeserializeGuard<FlowRun>> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{SCHEDULE_LABEL}={}", label_value(&schedule.name_any()));
    let runs = runs_api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|run| run.0.ok())
        // A label value may be shortened: only runs this Schedule controls are its own.
        .filter(|run| owned_by(run, &schedule))
        .collect();
    Ok(Some(Loaded {
        schedule,
        flows,
        runs,
    }))
}

fn flow_names(schedule: &Schedule) -> Vec<String> {
    let spec = &schedule.spec;
    let mut names = vec![spec.flow_ref.name.clone()];
    names.extend(spec.on_failure.iter().map(|h| h.flow_ref.name.clone()));
    names.extend(spec.on_recovery.iter().map(|h| h.flow_ref.name.clone()));
    names.extend(spec.on_success.iter().map(|h| h.flow_ref.name.clone()));
    names
}

fn owned_by(run: &FlowRun, schedule: &Schedule) -> bool {
    let uid = schedule.uid();
    run.owner_references()
        .iter()
        .any(|owner| owner.controller == Some(true) && Some(&owner.uid) == uid.as_ref())
}
