//! The reads a FlowRun reconcile starts with: the run's saved state (or its start, when it has
//! none), its Jobs and pods, and which of its running attempts they say finished.

use super::apply::Halt;
use super::job::{PodDefaults, RunIdentity, pending_timeout};
use super::persist;
use super::saved::{self, Persisted};
use super::{Error, begin, decide};
use crate::engine::{Event, RunOutcome};
use crate::k8s::api::naming;
use crate::k8s::api::pod::pending::pending_too_long;
use crate::k8s::api::pod::report;
use crate::k8s::api::pod::{Observation, RUN_LABEL, STEP_CONTAINER, observe};
use crate::k8s::api::{FlowRun, RunPhase};
use crate::k8s::operator::Context;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ListParams, LogParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

/// Who the run is, and the APIs of its namespace.
pub struct Scope {
    pub identity: RunIdentity,
    pub ns: String,
    pub runs: Api<FlowRun>,
    pub config_maps: Api<ConfigMap>,
    pub jobs: Api<Job>,
    pub pods: Api<Pod>,
    pub secrets: Api<Secret>,
}

impl Scope {
    pub fn of(run: &FlowRun, ctx: &Context) -> Scope {
        let ns = run.namespace().unwrap_or_default();
        let client = &ctx.client;
        Scope {
            identity: RunIdentity {
                name: run.name_any(),
                namespace: ns.clone(),
                uid: run.uid().unwrap_or_default(),
            },
            runs: Api::namespaced(client.clone(), &ns),
            config_maps: Api::namespaced(client.clone(), &ns),
            jobs: Api::namespaced(client.clone(), &ns),
            pods: Api::namespaced(client.clone(), &ns),
            secrets: Api::namespaced(client.clone(), &ns),
            ns,
        }
    }
}

/// The run's state as this reconcile found it.
pub struct Saved {
    pub persisted: Persisted,
    /// The state ConfigMap's version; `None` when the run began in this reconcile.
    pub version: Option<String>,
    /// The chunks it lists.
    pub chunks: Vec<String>,
}

impl Saved {
    /// How the run had ended when its state was read (a run that ends at its very start, skipped
    /// or failed, ends in this reconcile).
    pub fn outcome(&self) -> Option<RunOutcome> {
        self.version
            .as_ref()
            .and_then(|_| self.persisted.state.outcome())
    }
}

/// The run's saved state; or, when it has none, the state it starts with; or why it cannot go on.
pub async fn state(
    run: &FlowRun,
    scope: &Scope,
    ctx: &Context,
    now: u64,
) -> Result<Result<Saved, Halt>, Error> {
    let name = &scope.identity.name;
    Ok(match persist::load(&scope.config_maps, name).await? {
        Some(loaded) if loaded.owner_uid.as_deref() != Some(scope.identity.uid.as_str()) => {
            let message = format!(
                "ConfigMap {} holds the state of an earlier FlowRun named {name}; this run starts once garbage collection removes it (delete it by hand if that run was deleted with orphaning)",
                saved::config_map_name(name),
            );
            Err(Halt::Stopped {
                phase: RunPhase::Pending,
                reason: "EarlierRunState",
                message,
                requeue: Requeue::requeue(Duration::from_secs(2)),
            })
        }
        Some(loaded) => Ok(Saved {
            persisted: loaded.persisted,
            version: loaded.version,
            chunks: loaded.chunks,
        }),
        None => match begin::begin(run, ctx, now).await? {
            Ok(persisted) => Ok(Saved {
                persisted,
                version: None,
                chunks: Vec::new(),
            }),
            Err((phase, reason, message)) => Err(Halt::Stopped {
                phase,
                reason,
                message,
                requeue: match phase {
                    RunPhase::Pending => Requeue::requeue(Duration::from_secs(30)),
                    _ => Requeue::await_change(),
                },
            }),
        },
    })
}

/// The run's Jobs (by name) and pods.
pub struct Cluster {
    pub jobs: BTreeMap<String, Job>,
    pub pods: Vec<Pod>,
}

pub async fn cluster(scope: &Scope) -> Result<Cluster, Error> {
    let selector = ListParams::default().labels(&format!(
        "{RUN_LABEL}={}",
        naming::label_value(&scope.identity.name)
    ));
    let jobs = scope.jobs.list(&selector).await?;
    let jobs = jobs.into_iter().map(|job| (job.name_any(), job)).collect();
    let pods = scope.pods.list(&selector).await?.items;
    Ok(Cluster { jobs, pods })
}

/// `StepFinished` for every running attempt whose Job or pod has ended; a result too large for
/// the termination message is read from the pod's log.
pub async fn finished_attempts(
    scope: &Scope,
    persisted: &Persisted,
    cluster: &Cluster,
    defaults: &PodDefaults,
    now: u64,
) -> Result<Vec<Event>, Error> {
    let run = &scope.identity;
    let mut events = Vec::new();
    for id in persisted.state.running_attempts() {
        let name = naming::job_name(&run.name, &run.uid, id.step.as_str(), id.attempt);
        let Some(job) = cluster.jobs.get(&name) else {
            continue;
        };
        let pod = decide::pod_of(&cluster.pods, &name);
        let outcome = match observe(job, pod) {
            Observation::Running => {
                let runtime = persisted.runtime.as_ref();
                let timeout =
                    pending_timeout(runtime, id.step.module_id(), defaults.pod_pending_timeout);
                match pending_too_long(job, pod, now, timeout) {
                    Some(error) => Err(error),
                    None => continue,
                }
            }
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
                let log = scope.pods.logs(&pod, &params).await?;
                report::from_log(&log, &nonce, exit_code)
            }
        };
        events.push(Event::StepFinished { id, outcome });
    }
    Ok(events)
}
