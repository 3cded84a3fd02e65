//! The operator: one process running every controller while it holds the leader lease.
//!
//! - [`run_controllers`] starts the controllers of [`CONTROLLERS`]; each lives in its own folder
//!   under [`controllers`]. Adding a controller is a folder there and one line in that list.
//! - [`leader`]: leader election over a Lease, so that replicas never both act.
//! - [`health`]: `/healthz`, `/readyz` (ready once every controller has listed what it watches)
//!   and `/metrics`; [`metrics`]: what is counted; [`telemetry`]: the per-reconcile part of it.
//! - [`throttle`]: the client's request rate limit.
//! - [`kube`]: what every controller does with the API server the same way.
//!
//! Readers outside the operator (`millrace status`) use [`saved_state`], the one public read
//! of what a controller keeps, and otherwise only `k8s::api`.

pub mod controllers;
pub mod health;
pub mod kube;
pub mod leader;
pub mod metrics;
pub mod telemetry;
pub mod throttle;

pub use controllers::flowrun::allowed::Allowed;
pub use controllers::flowrun::job::PodDefaults;
pub use controllers::flowrun::saved_state;

use crate::expr::Evaluator;
use ::kube::Client;
use ::kube::runtime::events::{Recorder, Reporter};
use futures::future::{BoxFuture, join_all};
use health::Readiness;
use metrics::Metrics;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Every controller the operator runs, in the order they start.
pub const CONTROLLERS: &[fn(Arc<Context>, Stop) -> Registered] = &[
    controllers::flow::register,
    controllers::flowrun::register,
    controllers::schedule::register,
    controllers::gitsource::register,
];

#[derive(Debug, Clone)]
pub struct Config {
    pub pods: PodDefaults,
    /// The ServiceAccounts and Secrets a Flow may name for its step pods.
    pub allowed: Allowed,
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// A running run is looked at again after this long even when nothing was heard of it.
    pub resync: Duration,
    /// Reconciles in flight at once, per controller.
    pub concurrency: u16,
    pub metrics: Arc<Metrics>,
    /// Set once every controller has listed what it watches.
    pub ready: Readiness,
    /// Where each GitSource keeps its bare repository cache (one directory per GitSource).
    pub git_cache: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pods: PodDefaults::default(),
            allowed: Allowed::default(),
            namespace: None,
            resync: Duration::from_secs(60),
            concurrency: 16,
            metrics: Arc::default(),
            ready: Readiness::default(),
            git_cache: std::env::temp_dir().join("millrace-git"),
        }
    }
}

/// What every reconcile of every controller gets.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub recorder: Recorder,
    /// Evaluates and parses the flows' expressions: the sandboxed worker pool in production, as
    /// one hostile expression must not stall or crash the controller that serves every namespace.
    pub evaluator: Arc<dyn Evaluator>,
}

/// One controller, as its `register` function hands it to [`run_controllers`].
pub struct Registered {
    /// Runs the controller until [`Stop`] fires.
    pub running: BoxFuture<'static, ()>,
    /// `true` once the controller has listed everything it watches; `false` when its watches
    /// ended first.
    pub listed: BoxFuture<'static, bool>,
}

/// Fires once, when the controllers are to stop (their in-flight reconciles finish first).
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub async fn fired(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Runs every controller of [`CONTROLLERS`] until `shutdown` resolves.
pub async fn run_controllers(
    client: Client,
    config: Config,
    evaluator: Arc<dyn Evaluator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let reporter = Reporter {
        controller: kube::FIELD_MANAGER.into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let metrics = config.metrics.clone();
    let ready = config.ready.clone();
    let ctx = Arc::new(Context {
        client,
        config,
        recorder,
        evaluator,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (running, listed): (Vec<_>, Vec<_>) = CONTROLLERS
        .iter()
        .map(|register| {
            let Registered { running, listed } = register(ctx.clone(), Stop(stop_rx.clone()));
            (running, listed)
        })
        .unzip();
    // Ready once every watch stream has listed everything (they end with the controllers).
    let all_listed = async {
        if join_all(listed).await.into_iter().all(|listed| listed) {
            ready.set(true);
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    metrics.set_leader(true);
    tokio::join!(join_all(running), all_listed);
    metrics.set_leader(false);
}
