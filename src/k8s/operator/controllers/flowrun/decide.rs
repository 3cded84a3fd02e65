//! The FlowRun controller's decisions, without I/O: what the engine is told, what it makes of
//! it, which Jobs must start, stop or be released, and when to look at the run again.

use super::Error;
use super::job::{AttemptPlan, PodDefaults, RunIdentity, build};
use super::resolver::ClusterResolver;
use super::saved::Persisted;
use super::variables::Fetched;
use crate::engine::{
    self, Action, AttemptId, EngineError, Env, Event, StepError, StepPath, StepSpec,
};
use crate::expr::Evaluator;
use crate::k8s::api::{FlowRun, naming};
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::blocking;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use kube::runtime::controller::Action as Requeue;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Label the Job controller puts on a Job's pods.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Steps failing to build in a row before the reconcile gives up for now (retries without delay).
const MAX_BUILD_ROUNDS: usize = 100;

/// What the engine is told: the attempts that `finished`, a cancel, approvals not yet handed over.
pub fn events(run: &FlowRun, persisted: &mut Persisted, finished: Vec<Event>) -> Vec<Event> {
    let mut events = finished;
    if run.spec.cancel {
        events.push(Event::Cancel);
    }
    events.extend(new_approvals(run, persisted));
    events
}

/// Approvals added to `spec.approvals` since the last reconcile.
fn new_approvals(run: &FlowRun, persisted: &mut Persisted) -> Vec<Event> {
    let new = run.spec.approvals.iter().skip(persisted.approvals_seen);
    let events = new
        .map(|a| Event::Approval {
            step: (!a.step.is_empty()).then(|| StepPath::parse(&a.step)),
            approved: a.approved,
            payload: a.payload.clone().unwrap_or(Value::Null),
        })
        .collect();
    // A FlowRun from a stale cache may list fewer approvals than were already handed over.
    persisted.approvals_seen = persisted.approvals_seen.max(run.spec.approvals.len());
    events
}

/// [`drive`] on the blocking pool (the engine evaluates expressions in the sandbox, which blocks
/// while they run); marks the run finished at `now` when it ended.
pub async fn advance(
    ctx: &Arc<Context>,
    run: &RunIdentity,
    mut persisted: Persisted,
    (events, started): (Vec<Event>, HashSet<AttemptId>),
    secrets: Fetched,
    now: u64,
) -> Result<(Persisted, Vec<(Job, Secret)>), Error> {
    let (ctx, run) = (ctx.clone(), run.clone());
    let (mut persisted, built) = blocking(move || {
        // The resolver holds the run's library while the engine runs, then gives it back.
        let library = std::mem::take(&mut persisted.library);
        let resolver = ClusterResolver { library, secrets };
        let evaluator = ctx.evaluator.for_queue(&run.queue());
        let built = drive(
            &mut persisted,
            (events, started),
            &run,
            &ctx.config.pods,
            evaluator.as_ref(),
            &resolver,
            now,
        );
        persisted.library = resolver.library;
        (persisted, built)
    })
    .await;
    let built = built?;
    if persisted.state.outcome().is_some() {
        persisted.finished_ms = Some(now);
    }
    Ok((persisted, built))
}

/// Advances the engine by `events`, then asks it what must be running and builds those Jobs,
/// except for the attempts `started` already (see [`started`]). An attempt that cannot become a
/// Job fails like a step would, and the engine goes on.
pub fn drive(
    persisted: &mut Persisted,
    (events, started): (Vec<Event>, HashSet<AttemptId>),
    run: &RunIdentity,
    pods: &PodDefaults,
    evaluator: &dyn Evaluator,
    resolver: &ClusterResolver,
    now: u64,
) -> Result<Vec<(Job, Secret)>, EngineError> {
    let env = Env {
        evaluator,
        resolver,
    };
    for event in events {
        engine::advance(&persisted.flow, &mut persisted.state, event, &env, now)?;
    }
    for _ in 0..MAX_BUILD_ROUNDS {
        let (flow, state) = (&persisted.flow, &mut persisted.state);
        let actions = engine::resume(flow, state, &env, now, started.clone())?;
        let mut built = Vec::new();
        let mut failed = Vec::new();
        for action in actions {
            if let Action::StartAttempt { id, spec } = action {
                match build_attempt(persisted, run, &id, &spec, pods) {
                    Ok(objects) => built.push(objects),
                    Err(error) => failed.push(Event::StepFinished {
                        id,
                        outcome: Err(error),
                    }),
                }
            }
        }
        if failed.is_empty() {
            return Ok(built);
        }
        for event in failed {
            engine::advance(&persisted.flow, &mut persisted.state, event, &env, now)?;
        }
    }
    Ok(Vec::new())
}

fn build_attempt(
    persisted: &Persisted,
    run: &RunIdentity,
    id: &AttemptId,
    spec: &StepSpec,
    pods: &PodDefaults,
) -> Result<(Job, Secret), StepError> {
    let nonce = format!("{:016x}", rand::random::<u64>());
    build(&AttemptPlan {
        run,
        id,
        spec,
        runtime: persisted.runtime.as_ref(),
        defaults: pods,
        nonce: &nonce,
    })
    .map_err(|e| StepError::new("InvalidStep", e.to_string()))
}

/// The running attempts that have their Job: they run with the arguments evaluated when they
/// started (kept in their Secret), which are not evaluated again.
pub fn started(
    persisted: &Persisted,
    run: &RunIdentity,
    jobs: &BTreeMap<String, Job>,
) -> HashSet<AttemptId> {
    let has_job = |id: &AttemptId| {
        let name = naming::job_name(&run.name, &run.uid, id.step.as_str(), id.attempt);
        jobs.contains_key(&name)
    };
    let running = persisted.state.running_attempts();
    running.into_iter().filter(has_job).collect()
}

/// What to do with the run's Jobs once its state is saved.
#[derive(Debug, Default)]
pub struct JobPlan {
    /// Attempts to start: each Job with the Secret holding its files.
    pub start: Vec<(Job, Secret)>,
    /// Jobs of attempts the state no longer runs, still going: delete them.
    pub stop: Vec<String>,
    /// Finished Jobs whose outcome is saved, without the configured TTL yet.
    pub release: Vec<String>,
}

/// Only what the state runs may go on, each attempt once; an ended run keeps the attempts it
/// was running in its state (for display), but none of them may go on.
pub fn jobs(
    persisted: &Persisted,
    run: &RunIdentity,
    built: Vec<(Job, Secret)>,
    jobs: &BTreeMap<String, Job>,
    pods: &[Pod],
    ttl: i32,
) -> JobPlan {
    let running: HashSet<String> = match persisted.state.outcome() {
        Some(_) => HashSet::new(),
        None => persisted
            .state
            .running_attempts()
            .iter()
            .map(|id| naming::job_name(&run.name, &run.uid, id.step.as_str(), id.attempt))
            .collect(),
    };
    let mut plan = JobPlan {
        start: built
            .into_iter()
            .filter(|(job, _)| {
                let name = job.name_any();
                running.contains(&name) && !jobs.contains_key(&name)
            })
            .collect(),
        ..JobPlan::default()
    };
    for (name, job) in jobs {
        if running.contains(name) || job.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if still_going(job, pod_of(pods, name)) {
            plan.stop.push(name.clone());
        } else if job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) != Some(ttl) {
            plan.release.push(name.clone());
        }
    }
    plan
}

/// When to look at the run again: never by itself once it ended, at its next timer, and
/// after `resync` at the latest.
pub fn requeue(persisted: &Persisted, now: u64, resync: Duration) -> Requeue {
    match (persisted.state.outcome(), persisted.state.next_wake_ms()) {
        (Some(_), _) => Requeue::await_change(),
        (None, Some(at)) => {
            Requeue::requeue(Duration::from_millis(at.saturating_sub(now)).min(resync))
        }
        (None, None) => Requeue::requeue(resync),
    }
}

/// The newest pod of Job `job` (with `backoffLimit: 0` there is one, unless it was replaced).
pub fn pod_of<'a>(pods: &'a [Pod], job: &str) -> Option<&'a Pod> {
    pods.iter()
        .filter(|p| p.labels().get(JOB_NAME_LABEL).map(String::as_str) == Some(job))
        .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0))
}

/// The Job is not finished and its step container has not ended (it runs, or waits to start).
fn still_going(job: &Job, pod: Option<&Pod>) -> bool {
    let finished = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    let ended = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()));
    !finished && !ended
}

#[cfg(test)]
mod tests;
