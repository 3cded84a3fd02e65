//! The operator test harness: the CRDs on the shared control plane, a fresh namespace with a pod
//! runner, the controllers running in this process (`Controllers`), and what tests do there —
//! create Flows and FlowRuns, wait for a run's end or phase, read its Jobs, Events and the Flow's
//! `Ready` condition. Every wait goes through `cluster::wait` and its one `TIMEOUT`.
//!
//! ```ignore
//! let Some(t) = support::operator::setup("my-test").await? else { return Ok(()) };
//! t.modules("hello", json!([step("say", "bash", "echo hi", json!({}))])).await?;
//! t.run("hello-1", "hello", json!({})).await?;
//! assert_eq!(t.finished("hello-1").await?.result, Some(json!("hi")));
//! ```

use super::cluster::pod_runner::PodRunner;
use super::cluster::wait::{TIMEOUT, wait_until, within};
use super::cluster::{ControlPlane, control_plane};
use anyhow::{Context, Result, bail};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client, Resource};
use millrace::expr::{Evaluator, Sandbox, SandboxConfig, WORKER_SUBCOMMAND};
use millrace::k8s::api::flowrun::{FlowRunStatus, RunPhase};
use millrace::k8s::api::{Flow, FlowRun, Script, crdgen};
use millrace::k8s::operator::{self, Config};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A namespace on the test control plane with the CRDs installed and, unless the test runs them
/// its own way, a pod runner and the controllers.
pub struct Harness {
    #[allow(dead_code, reason = "for tests that need more of the control plane")]
    pub cp: &'static ControlPlane,
    /// A client with cluster-admin rights.
    pub client: Client,
    pub ns: String,
    runner: Option<PodRunner>,
    _controllers: Option<Controllers>,
}

/// `Harness::start`: the usual beginning of an operator test.
#[allow(
    dead_code,
    reason = "tests that keep the harness in a struct call Harness::start"
)]
pub async fn setup(prefix: &str) -> Result<Option<Harness>> {
    Harness::start(prefix).await
}

#[allow(
    dead_code,
    reason = "the operator tests' shared API: each test binary uses part of it"
)]
impl Harness {
    /// The CRDs, a namespace `<prefix>-…`, a pod runner and the controllers watching that
    /// namespace; `None` when the control-plane tests are skipped.
    pub async fn start(prefix: &str) -> Result<Option<Harness>> {
        let Some(mut harness) = Harness::without_controllers(prefix).await? else {
            return Ok(None);
        };
        let config = config(Some(&harness.ns));
        harness._controllers = Some(Controllers::start(harness.client.clone(), config));
        Ok(Some(harness))
    }

    /// Like `start`, for tests that run the controllers themselves (another client, config or
    /// leader election).
    pub async fn without_controllers(prefix: &str) -> Result<Option<Harness>> {
        let Some(cp) = control_plane().await else {
            return Ok(None);
        };
        let client = cp.client();
        install_crds(&client).await?;
        let ns = cp.namespace(prefix).await;
        let runner = cp.pod_runner(&ns).await;
        Ok(Some(Harness {
            cp,
            client,
            ns,
            runner: Some(runner),
            _controllers: None,
        }))
    }

    /// The helpers for namespace `ns` that is already there (made by the test, or a chart's),
    /// with no pod runner or controllers of the harness.
    pub fn attach(cp: &'static ControlPlane, ns: &str) -> Harness {
        Harness {
            cp,
            client: cp.client(),
            ns: ns.to_string(),
            runner: None,
            _controllers: None,
        }
    }

    /// Objects of kind `K` in the namespace, as the admin.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates `object` in the namespace.
    pub async fn create<K>(&self, object: &K) -> Result<K>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
        K: serde::Serialize,
        K::DynamicType: Default,
    {
        Ok(self
            .api::<K>()
            .create(&PostParams::default(), object)
            .await?)
    }

    /// A Flow `name` with `spec` as given, found also by `path` when there is one.
    pub async fn flow(&self, name: &str, path: Option<&str>, spec: Value) -> Result<()> {
        let annotations = match path {
            Some(path) => json!({"millrace.dev/path": path}),
            None => json!({}),
        };
        let flow: Flow = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": name, "annotations": annotations},
            "spec": spec,
        }))?;
        self.create(&flow).await?;
        Ok(())
    }

    /// A Flow `name` (its summary too) whose value is `{"modules": modules}`.
    pub async fn modules(&self, name: &str, modules: Value) -> Result<()> {
        self.flow(
            name,
            None,
            json!({"summary": name, "value": {"modules": modules}}),
        )
        .await
    }

    /// A FlowRun `name` of Flow `flow` with `inputs`.
    pub async fn run(&self, name: &str, flow: &str, inputs: Value) -> Result<()> {
        let run: FlowRun = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name},
            "spec": {"flowRef": {"name": flow}, "inputs": inputs},
        }))?;
        self.create(&run).await?;
        Ok(())
    }

    /// Creates every object of a manifest file (Secrets, Scripts, Flows, FlowRuns) in the
    /// namespace, as `kubectl create -f` would.
    pub async fn create_manifests(&self, file: impl AsRef<std::path::Path>) -> Result<()> {
        let file = file.as_ref();
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let object = Value::deserialize(document)?;
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "Secret" => drop(
                    self.create::<Secret>(&serde_json::from_value(object)?)
                        .await?,
                ),
                "Script" => drop(
                    self.create::<Script>(&serde_json::from_value(object)?)
                        .await?,
                ),
                "Flow" => drop(
                    self.create::<Flow>(&serde_json::from_value(object)?)
                        .await?,
                ),
                "FlowRun" => drop(
                    self.create::<FlowRun>(&serde_json::from_value(object)?)
                        .await?,
                ),
                other => bail!("{}: unexpected kind {other:?}", file.display()),
            }
        }
        Ok(())
    }

    /// Run `name` once it has reached a final phase, `None` before (or before it exists).
    pub async fn ended(&self, name: &str) -> Result<Option<FlowRun>> {
        let run = self.api::<FlowRun>().get_opt(name).await?;
        Ok(run.filter(|run| phase(run).is_some_and(RunPhase::has_ended)))
    }

    /// Waits until run `name` reaches a final phase and returns it.
    pub async fn run_ended(&self, name: &str) -> Result<FlowRun> {
        let waited = wait_until(&format!("FlowRun {name} ends"), TIMEOUT, || {
            self.ended(name)
        })
        .await;
        if waited.is_err() {
            let run = self.api::<FlowRun>().get_opt(name).await?;
            let status = run.and_then(|r| r.status);
            return waited.with_context(|| format!("FlowRun {name} is at {status:#?}"));
        }
        waited
    }

    /// The status once run `name` reaches a final phase.
    pub async fn finished(&self, name: &str) -> Result<FlowRunStatus> {
        Ok(self.run_ended(name).await?.status.unwrap_or_default())
    }

    /// Waits until run `name` is in `phase` and returns it.
    pub async fn phase_is(&self, name: &str, phase: RunPhase) -> Result<FlowRun> {
        let runs = self.api::<FlowRun>();
        wait_until(&format!("FlowRun {name} is {phase:?}"), TIMEOUT, || async {
            let run = runs.get_opt(name).await?;
            Ok(run.filter(|run| self::phase(run) == Some(phase)))
        })
        .await
    }

    /// The Jobs that run `run` started (those not yet deleted).
    pub async fn jobs(&self, run: &str) -> Result<Vec<Job>> {
        let selector = ListParams::default().labels(&format!("millrace.dev/run={run}"));
        Ok(self.api::<Job>().list(&selector).await?.items)
    }

    /// The step paths run `run` started Jobs for, sorted.
    pub async fn ran(&self, run: &str) -> Result<Vec<String>> {
        let mut paths: Vec<String> = self
            .jobs(run)
            .await?
            .iter()
            .filter_map(|job| {
                job.metadata
                    .annotations
                    .as_ref()?
                    .get("millrace.dev/step-path")
                    .cloned()
            })
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// Waits until Flow `name` has a `Ready` condition and returns it.
    pub async fn flow_ready(&self, name: &str) -> Result<Condition> {
        let flows = self.api::<Flow>();
        wait_until(
            &format!("Flow {name} has a Ready condition"),
            TIMEOUT,
            || async {
                let flow = flows.get(name).await?;
                let conditions = flow.status.map(|s| s.conditions).unwrap_or_default();
                Ok(conditions.into_iter().find(|c| c.type_ == "Ready"))
            },
        )
        .await
    }

    /// The reasons of the Events about object `name`, each with how often it occurred (Events
    /// with one reason form one series), sorted.
    pub async fn event_reasons(&self, name: &str) -> Result<Vec<(String, i32)>> {
        let events = self.api::<Event>().list(&ListParams::default()).await?;
        let mut reasons: Vec<(String, i32)> = events
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.series.map_or(1, |s| s.count),
                )
            })
            .collect();
        reasons.sort();
        Ok(reasons)
    }

    /// Process starts per pod of the harness' pod runner.
    pub fn executions(&self) -> BTreeMap<String, usize> {
        self.runner
            .as_ref()
            .expect("a harness with a pod runner")
            .executions()
    }
}

fn phase(run: &FlowRun) -> Option<RunPhase> {
    run.status.as_ref().and_then(|s| s.phase)
}

/// The controllers running in this process. Dropping this asks them to shut down.
pub struct Controllers {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

#[allow(
    dead_code,
    reason = "the operator tests' shared API: each test binary uses part of it"
)]
impl Controllers {
    /// Runs the controllers with `client` and `config`, and the test sandbox for expressions.
    pub fn start(client: Client, config: Config) -> Controllers {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(operator::run_controllers(
            client,
            config,
            sandbox(),
            async move {
                let _ = stopped.await;
            },
        ));
        Controllers {
            stop: Some(stop),
            task,
        }
    }

    /// Shuts them down and waits until they have.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.stop.take());
        Ok((&mut self.task).await?)
    }

    /// The crash: their task is dropped mid-flight, nothing of theirs runs after it.
    pub async fn abort(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// The controllers' configuration in tests: `namespace` watched (all when `None`), a short resync.
pub fn config(namespace: Option<&str>) -> Config {
    Config {
        namespace: namespace.map(str::to_string),
        resync: Duration::from_secs(5),
        ..Config::default()
    }
}

/// Applies the CRDs the code generates and waits until they are established.
pub async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crdgen::all() {
        let name = crd.metadata.name.clone().context("CRD name")?;
        crds.patch(
            &name,
            &PatchParams::apply("millrace-test").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        within(&format!("CRD {name} is established"), TIMEOUT, established).await??;
    }
    Ok(())
}

/// The expression evaluator the controllers use in tests: worker processes of the millrace
/// binary, as in production.
pub fn sandbox() -> Arc<dyn Evaluator> {
    let config = SandboxConfig::new(
        env!("CARGO_BIN_EXE_millrace"),
        vec![WORKER_SUBCOMMAND.to_owned()],
    );
    Arc::new(Sandbox::new(config).expect("the expression sandbox starts"))
}

/// Everything the controllers of this test binary log from the first call on, at debug level and
/// above (a test that reads it calls it before it starts controllers).
#[allow(dead_code, reason = "only the tests of secrets read the logs")]
pub fn controller_logs() -> &'static Mutex<Vec<u8>> {
    struct Captured(&'static Mutex<Vec<u8>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "millrace=trace,kube=debug,info",
            ))
            .with_writer(move || Captured(logs))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}
