//! The operator's controllers: Flows are validated, FlowRuns are driven by the engine with one
//! Job per step attempt.

mod begin;
mod document;
mod events;
mod flow;
mod flowrun;
mod library;
mod persist;
mod resolver;
mod secrets;
mod status;
mod store;
mod telemetry;

use crate::engine::EngineError;
use crate::expr::Evaluator;
use crate::k8s::flow::Flow;
use crate::k8s::flowrun::FlowRun;
use crate::k8s::health::Readiness;
use crate::k8s::metrics::{ControllerKind, Metrics};
use crate::k8s::pod::PodDefaults;
use crate::k8s::pod::job::RUN_LABEL;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use store::StoreError;

/// The one field manager the operator writes status with.
pub const FIELD_MANAGER: &str = "millrace-operator";

#[derive(Debug, Clone)]
pub struct Config {
    pub pods: PodDefaults,
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// A running run is looked at again after this long even when nothing was heard of it.
    pub resync: Duration,
    /// Reconciles in flight at once, per controller.
    pub concurrency: u16,
    pub metrics: Arc<Metrics>,
    /// Set once both controllers have listed what they watch.
    pub ready: Readiness,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pods: PodDefaults::default(),
            namespace: None,
            resync: Duration::from_secs(60),
            concurrency: 16,
            metrics: Arc::default(),
            ready: Readiness::default(),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub recorder: Recorder,
    /// Evaluates and parses the flows' expressions: the sandboxed worker pool in production, as
    /// one hostile expression must not stall or crash the controller that serves every namespace.
    pub evaluator: Arc<dyn Evaluator>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Error {
    /// The metrics' label for this kind of error.
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::Store(_) => "state",
            Error::Engine(_) => "engine",
        }
    }
}

/// Runs the Flow and FlowRun controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    evaluator: Arc<dyn Evaluator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let flows: Api<DeserializeGuard<Flow>> = scoped(&client, &config.namespace);
    let runs: Api<DeserializeGuard<FlowRun>> = scoped(&client, &config.namespace);
    let jobs: Api<Job> = scoped(&client, &config.namespace);
    let pods: Api<Pod> = scoped(&client, &config.namespace);
    let owned = watcher::Config::default().labels(RUN_LABEL);
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let metrics = config.metrics.clone();
    let ready = config.ready.clone();
    let tuning = runtime::Config::default().concurrency(config.concurrency);
    let ctx = Arc::new(Context {
        client,
        config,
        recorder,
        evaluator,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let flow_controller = Controller::new(flows, watcher::Config::default());
    let flows_listed = flow_controller.store();
    let flow_controller = flow_controller
        .with_config(tuning.clone())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            |flow, ctx| {
                telemetry::measured(
                    ControllerKind::flow,
                    ctx.clone(),
                    flow::reconcile(flow, ctx),
                )
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let run_controller = Controller::new(runs, watcher::Config::default());
    let runs_seen = run_controller.store();
    metrics.count_runs_from(Some(telemetry::run_phases(runs_seen.clone())));
    let run_controller = run_controller
        .with_config(tuning)
        .owns(jobs, owned.clone())
        // Pods finish before their Job is marked complete: react to them directly.
        .watches(pods, owned, |pod: Pod| {
            let run = pod.annotations().get(RUN_LABEL).cloned()?;
            Some(ObjectRef::new(&run).within(&pod.namespace()?))
        })
        .graceful_shutdown_on(stopped(stop_rx))
        .run(
            |run, ctx| {
                telemetry::measured(
                    ControllerKind::flowrun,
                    ctx.clone(),
                    flowrun::reconcile(run, ctx),
                )
            },
            error_policy,
            ctx,
        )
        .for_each(|_| async {});
    // Ready once both watch streams have listed everything (they end with the controllers).
    let listed = async {
        if flows_listed.wait_until_ready().await.is_ok()
            && runs_seen.wait_until_ready().await.is_ok()
        {
            ready.set(true);
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    metrics.set_leader(true);
    tokio::join!(flow_controller, run_controller, listed);
    metrics.set_leader(false);
    metrics.count_runs_from(None);
}

fn scoped<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn error_policy<K>(object: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action
where
    K: kube::Resource,
{
    tracing::warn!(
        object = %object.meta().name.as_deref().unwrap_or("?"),
        namespace = %object.meta().namespace.as_deref().unwrap_or("?"),
        "reconcile failed: {error}"
    );
    Action::requeue(Duration::from_secs(5))
}

/// Runs `work` on a thread for blocking work, so that a slow expression holds no runtime worker.
/// The saved engine state of FlowRun `run` in `namespace`, with every result wherever it is
/// stored (the state ConfigMap or the chunks it lists); `None` before the run started. Readers
/// such as `millrace status` get values too large for the status from it.
pub async fn saved_state(
    client: &Client,
    namespace: &str,
    run: &str,
) -> Result<Option<crate::engine::RunState>, Error> {
    let config_maps = Api::namespaced(client.clone(), namespace);
    let loaded = persist::load(&config_maps, run).await?;
    Ok(loaded.map(|loaded| loaded.persisted.state))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
