//! The FlowRun reconciler: read the run's state, feed the engine what happened (finished
//! attempts, cancel, approvals, timers), save the state, then make the cluster match it (one Job
//! per running attempt, no Job for anything else) and write the status.

use super::begin;
use super::events;
use super::persist;
use super::resolver::{self, ClusterResolver};
use super::status;
use super::store::{self, Persisted, StoreError};
use super::telemetry;
use super::{Context, Error, FIELD_MANAGER, blocking, now_ms};
use crate::engine::{self, Action, AttemptId, Env, Event, StepError, StepPath, StepSpec};
use crate::k8s::flowrun::{FlowRun, FlowRunStatus, RunPhase};
use crate::k8s::naming;
use crate::k8s::pod::job::{ATTEMPT_LABEL, RUN_LABEL, STEP_PATH_ANNOTATION};
use crate::k8s::pod::report;
use crate::k8s::pod::{AttemptPlan, Observation, RunIdentity, STEP_CONTAINER, build, observe};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Label the Job controller puts on a Job's pods.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Steps failing to build in a row before the reconcile gives up for now (retries without delay).
const MAX_BUILD_ROUNDS: usize = 100;

pub async fn reconcile(
    guard: Arc<DeserializeGuard<FlowRun>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let run = match &guard.0 {
        Ok(run) => run,
        Err(invalid) => {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let ns = invalid.metadata.namespace.clone().unwrap_or_default();
            let mut status = not_started(
                RunPhase::Failed,
                "Invalid",
                format!("FlowRun {name} cannot be read: {}", invalid.error),
                invalid.metadata.generation,
                &[],
            );
            // Its status cannot be read back either: a stable time keeps the patch idempotent,
            // so that writing it does not wake this reconcile again and again.
            if let Some(created) = &invalid.metadata.creation_timestamp {
                for condition in &mut status.conditions {
                    condition.last_transition_time = created.clone();
                }
            }
            let runs: Api<DeserializeGuard<FlowRun>> = Api::namespaced(ctx.client.clone(), &ns);
            patch_status(&runs, &name, &status).await?;
            return Ok(Requeue::await_change());
        }
    };
    let ns = run.namespace().unwrap_or_default();
    let identity = RunIdentity {
        name: run.name_any(),
        namespace: ns.clone(),
        uid: run.uid().unwrap_or_default(),
    };
    let runs: Api<FlowRun> = Api::namespaced(ctx.client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let now = now_ms();

    let (mut persisted, version, mut chunks) = match persist::load(&config_maps, &identity.name)
        .await?
    {
        Some(loaded) if loaded.owner_uid.as_deref() != Some(identity.uid.as_str()) => {
            let message = format!(
                "ConfigMap {} holds the state of an earlier FlowRun named {}; this run starts once garbage collection removes it (delete it by hand if that run was deleted with orphaning)",
                store::config_map_name(&identity.name),
                identity.name
            );
            write_stopped(&runs, run, RunPhase::Pending, "EarlierRunState", message).await?;
            return Ok(Requeue::requeue(Duration::from_secs(2)));
        }
        Some(loaded) => (loaded.persisted, loaded.version, loaded.chunks),
        None => match begin::begin(run, &ctx, now).await? {
            Ok(persisted) => (persisted, None, Vec::new()),
            Err((phase, reason, message)) => {
                write_stopped(&runs, run, phase, reason, message).await?;
                return Ok(match phase {
                    RunPhase::Pending => Requeue::requeue(Duration::from_secs(30)),
                    _ => Requeue::await_change(),
                });
            }
        },
    };
    let before = version.as_ref().map(|_| persisted.clone());
    // A run that ended at its very start (skipped, failed) ends in this reconcile too.
    let before_outcome = version.as_ref().and_then(|_| persisted.state.outcome());

    let selector = ListParams::default().labels(&format!(
        "{RUN_LABEL}={}",
        naming::label_value(&identity.name)
    ));
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: BTreeMap<String, Job> = jobs_api
        .list(&selector)
        .await?
        .into_iter()
        .map(|job| (job.name_any(), job))
        .collect();
    let pods = pods_api.list(&selector).await?.items;
    let mut starts = Vec::new();
    if persisted.state.outcome().is_none() {
        let mut events = finished_attempts(&identity, &persisted, &jobs, &pods, &pods_api).await?;
        telemetry::attempts_finished(&ctx, &identity, &events, |job| pod_of(&pods, job));
        events::announce_failures(&ctx, run, &events).await;
        if run.spec.cancel {
            events.push(Event::Cancel);
        }
        events.extend(new_approvals(run, &mut persisted));
        let secrets = resolver::fetch_secrets(&ctx.client, &ns, &persisted.library.secrets).await?;
        let (driven, started) = {
            // The engine evaluates expressions in the sandbox, which blocks while they run.
            let (ctx, identity) = (ctx.clone(), identity.clone());
            blocking(move || {
                // The resolver holds the run's library while the engine runs, then gives it back.
                let library = std::mem::take(&mut persisted.library);
                let resolver = ClusterResolver { library, secrets };
                let starts = drive(&mut persisted, events, &identity, &ctx, &resolver, now);
                persisted.library = resolver.library;
                (persisted, starts)
            })
            .await
        };
        persisted = driven;
        starts = started?;
        if persisted.state.outcome().is_some() {
            persisted.finished_ms = Some(now);
        }
    }

    if before.as_ref() != Some(&persisted) {
        match persist::save(&config_maps, &identity, &persisted, version, &chunks).await {
            Ok(Some(listed)) => chunks = listed,
            // Another reconcile started the run first; go on from its state.
            Ok(None) => return Ok(Requeue::requeue(Duration::ZERO)),
            // Nothing more can be recorded, so nothing more may start: the run stops here.
            Err(Error::Store(error @ StoreError::TooLarge { .. })) => {
                let message = error.to_string();
                write_stopped(&runs, run, RunPhase::Failed, "StateTooLarge", message).await?;
                return Ok(Requeue::await_change());
            }
            Err(error) => return Err(error),
        }
    }

    // Only now, with the state saved, does anything start. An ended run keeps the attempts it
    // was running in its state (for display), but none of them may go on.
    let running: HashSet<String> = match persisted.state.outcome() {
        Some(_) => HashSet::new(),
        None => persisted
            .state
            .running_attempts()
            .iter()
            .map(|id| naming::job_name(&identity.name, &identity.uid, id.step.as_str(), id.attempt))
            .collect(),
    };
    for (job, files) in starts {
        let name = job.name_any();
        if running.contains(&name) && !jobs.contains_key(&name) {
            start(&ctx, run, &secrets_api, &jobs_api, &job, &files).await?;
        }
    }
    if let (Some(outcome), None) = (persisted.state.outcome(), &before_outcome) {
        events::announce_end(&ctx, run, outcome).await;
    }
    let ttl = ctx.config.pods.ttl_seconds_after_finished;
    for (name, job) in &jobs {
        if running.contains(name) || job.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if still_going(job, pod_of(&pods, name)) {
            stop(&jobs_api, name).await?;
        } else if job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) != Some(ttl) {
            // Its outcome is in the saved state: the Job may go after its TTL, which leaves
            // its log readable for a while.
            release(&jobs_api, name, ttl).await?;
        }
    }

    let previous = run
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let results = store::results_ref(&identity.name, !chunks.is_empty());
    let generation = run.meta().generation;
    let status = status::compute(&identity, generation, &persisted, &results, previous);
    if run.status.as_ref() != Some(&status) {
        patch_status(&runs, &identity.name, &status).await?;
    }
    Ok(
        match (persisted.state.outcome(), persisted.state.next_wake_ms()) {
            (Some(_), _) => Requeue::await_change(),
            (None, Some(at)) => Requeue::requeue(
                Duration::from_millis(at.saturating_sub(now_ms())).min(ctx.config.resync),
            ),
            (None, None) => Requeue::requeue(ctx.config.resync),
        },
    )
}

/// Advances the engine by `events`, then asks it what must be running and builds those Jobs.
/// An attempt that cannot become a Job fails like a step would, and the engine goes on.
fn drive(
    persisted: &mut Persisted,
    events: Vec<Event>,
    run: &RunIdentity,
    ctx: &Context,
    resolver: &ClusterResolver,
    now: u64,
) -> Result<Vec<(Job, Secret)>, Error> {
    let env = Env {
        evaluator: ctx.evaluator.as_ref(),
        resolver,
    };
    for event in events {
        engine::advance(&persisted.flow, &mut persisted.state, event, &env, now)?;
    }
    for _ in 0..MAX_BUILD_ROUNDS {
        let actions = engine::resume(&persisted.flow, &mut persisted.state, &env, now)?;
        let mut built = Vec::new();
        let mut failed = Vec::new();
        for action in actions {
            if let Action::StartAttempt { id, spec } = action {
                match build_attempt(persisted, run, &id, &spec, ctx) {
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
    ctx: &Context,
) -> Result<(Job, Secret), StepError> {
    let nonce = format!("{:016x}", rand::random::<u64>());
    build(&AttemptPlan {
        run,
        id,
        spec,
        runtime: persisted.runtime.as_ref(),
        defaults: &ctx.config.pods,
        nonce: &nonce,
    })
    .map_err(|e| StepError::new("InvalidStep", e.to_string()))
}

/// Creates an attempt's files Secret (code and arguments), then its Job; a repeated create finds them.
async fn start(
    ctx: &Context,
    run: &FlowRun,
    secrets: &Api<Secret>,
    jobs: &Api<Job>,
    job: &Job,
    files: &Secret,
) -> Result<(), Error> {
    create(secrets, files).await?;
    if create(jobs, job).await? {
        let attempt = job.labels().get(ATTEMPT_LABEL).cloned().unwrap_or_default();
        let step = job
            .annotations()
            .get(STEP_PATH_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        let reason = if attempt == "1" {
            "StepStarted"
        } else {
            "StepRetried"
        };
        let note = format!("step {step} attempt {attempt}: Job {}", job.name_any());
        events::emit(ctx, run, EventType::Normal, reason, note).await;
    }
    Ok(())
}

/// Deletes a Job and, in the background, its pod.
async fn stop(jobs: &Api<Job>, name: &str) -> Result<(), Error> {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Lets a finished Job's TTL run out: it is created without one, so that it cannot vanish with
/// an outcome not yet saved.
async fn release(jobs: &Api<Job>, name: &str, ttl: i32) -> Result<(), Error> {
    let patch = json!({"spec": {"ttlSecondsAfterFinished": ttl}});
    match jobs
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `StepFinished` for every running attempt whose Job or pod has ended.
async fn finished_attempts(
    run: &RunIdentity,
    persisted: &Persisted,
    jobs: &BTreeMap<String, Job>,
    pods: &[Pod],
    pods_api: &Api<Pod>,
) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    for id in persisted.state.running_attempts() {
        let name = naming::job_name(&run.name, &run.uid, id.step.as_str(), id.attempt);
        let Some(job) = jobs.get(&name) else { continue };
        let outcome = match observe(job, pod_of(pods, &name)) {
            Observation::Running => continue,
            Observation::Finished(outcome) => outcome,
            Observation::InLog {
                pod,
                nonce,
                exit_code,
            } => {
                let params = LogParams {
                    container: Some(STEP_CONTAINER.into()),
                    ..Default::default()
                };
                let log = pods_api.logs(&pod, &params).await?;
                report::from_log(&log, &nonce, exit_code)
            }
        };
        events.push(Event::StepFinished { id, outcome });
    }
    Ok(events)
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

/// The newest pod of Job `job` (with `backoffLimit: 0` there is one, unless it was replaced).
fn pod_of<'a>(pods: &'a [Pod], job: &str) -> Option<&'a Pod> {
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

/// Creates `object`; `false` when it already exists (a create repeated after a restart).
pub(super) async fn create<K>(api: &Api<K>, object: &K) -> Result<bool, Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 409) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

async fn patch_status<K>(api: &Api<K>, name: &str, status: &FlowRunStatus) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "apiVersion": "millrace.dev/v1alpha1",
        "kind": "FlowRun",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Writes the status of a run that could not start, or cannot go on, unless it is written already.
async fn write_stopped(
    runs: &Api<FlowRun>,
    run: &FlowRun,
    phase: RunPhase,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    let previous = run.status.as_ref().map(|s| s.conditions.as_slice());
    let generation = run.meta().generation;
    let status = not_started(
        phase,
        reason,
        message,
        generation,
        previous.unwrap_or_default(),
    );
    if run.status.as_ref() != Some(&status) {
        patch_status(runs, &run.name_any(), &status).await?;
    }
    Ok(())
}

/// Status of a run that could not start, or cannot go on.
fn not_started(
    phase: RunPhase,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> FlowRunStatus {
    let condition = |type_: &str, status: bool| {
        status::condition(type_, status, reason, message.clone(), generation, previous)
    };
    FlowRunStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions: vec![condition("Ready", false), condition("Stalled", true)],
        error: Some(json!({"name": reason, "message": message})),
        ..Default::default()
    }
}
