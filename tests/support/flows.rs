//! Running flows on the operator in tests: a namespace with the CRDs, a pod runner and the
//! controllers (`setup`), helpers to create Flows and FlowRuns and wait for their end, and the
//! controllers' log output captured for inspection.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client};
use millrace::expr::{Evaluator, Sandbox, SandboxConfig, WORKER_SUBCOMMAND};
use millrace::k8s::api::flowrun::{FlowRunStatus, RunPhase};
use millrace::k8s::api::{Flow, FlowRun, crdgen};
use millrace::k8s::operator::{self, Config};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;

pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Everything the controllers of this test binary log, at debug level and above.
pub fn controller_logs() -> &'static Mutex<Vec<u8>> {
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
        tokio::time::timeout(
            TIMEOUT,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await??;
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

/// Runs the controllers for `ns` until the returned sender is dropped.
pub fn start_controller(client: Client, ns: &str) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let config = Config {
        namespace: Some(ns.to_string()),
        resync: Duration::from_secs(5),
        ..Config::default()
    };
    tokio::spawn(operator::run_controllers(
        client,
        config,
        sandbox(),
        async move {
            let _ = stopped.await;
        },
    ));
    stop
}

/// A namespace with the CRDs installed, a pod runner and the controllers, for one test.
pub struct Setup {
    pub client: Client,
    pub ns: String,
    _runner: super::pod_runner::PodRunner,
    _stop: oneshot::Sender<()>,
}

pub async fn setup(prefix: &str) -> Result<Option<Setup>> {
    let Some(cp) = super::control_plane().await else {
        return Ok(None);
    };
    controller_logs();
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace(prefix).await;
    let runner = cp.pod_runner(&ns).await;
    let stop = start_controller(client.clone(), &ns);
    Ok(Some(Setup {
        client,
        ns,
        _runner: runner,
        _stop: stop,
    }))
}

impl Setup {
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
        Api::<Flow>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &flow)
            .await?;
        Ok(())
    }

    pub async fn modules(&self, name: &str, modules: Value) -> Result<()> {
        self.flow(
            name,
            None,
            json!({"summary": name, "value": {"modules": modules}}),
        )
        .await
    }

    pub async fn run(&self, name: &str, flow: &str, inputs: Value) -> Result<()> {
        let run: FlowRun = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name},
            "spec": {"flowRef": {"name": flow}, "inputs": inputs},
        }))?;
        Api::<FlowRun>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &run)
            .await?;
        Ok(())
    }

    /// The status once the run reaches a final phase.
    pub async fn finished(&self, name: &str) -> Result<FlowRunStatus> {
        let run = run_ended(&self.client, &self.ns, name).await?;
        Ok(run.status.unwrap_or_default())
    }

    /// The step paths the run started Jobs for.
    pub async fn ran(&self, run: &str) -> Result<Vec<String>> {
        let jobs = Api::<Job>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("millrace.dev/run={run}")))
            .await?;
        let mut paths: Vec<String> = jobs
            .items
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

    pub async fn phase_is(&self, name: &str, phase: RunPhase) -> Result<()> {
        let runs: Api<FlowRun> = Api::namespaced(self.client.clone(), &self.ns);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while runs.get(name).await?.status.and_then(|s| s.phase) != Some(phase) {
            if tokio::time::Instant::now() > deadline {
                bail!("FlowRun {name} never reached {phase:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// Waits until run `name` in `ns` reaches a final phase and returns it.
pub async fn run_ended(client: &Client, ns: &str, name: &str) -> Result<FlowRun> {
    let runs: Api<FlowRun> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let run = runs.get(name).await?;
        if run
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(RunPhase::has_ended)
        {
            return Ok(run);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("FlowRun {name} did not finish: {:#?}", run.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A flow of `count` python steps `{prefix}0…` each returning `bytes` characters, then a step
/// `check` returning each one's length, first and last character as JSON sees them; and the
/// result `check` must give when every result arrived whole.
pub fn big_results(prefix: &str, count: usize, bytes: usize) -> (Vec<Value>, Value) {
    let mut modules: Vec<Value> = (0..count)
        .map(|i| {
            let code = format!("def main():\n    return '{i}' * {bytes}");
            step(&format!("{prefix}{i}"), "python3", &code, json!({}))
        })
        .collect();
    let last = bytes - 1;
    let seen = (0..count)
        .map(|i| {
            format!(
                "[results.{prefix}{i}.length, results.{prefix}{i}[0], results.{prefix}{i}[{last}]]"
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    modules.push(step(
        "check",
        "python3",
        "def main(seen):\n    return seen",
        json!({"seen": expr(&format!("[{seen}]"))}),
    ));
    let expected = (0..count)
        .map(|i| json!([bytes, i.to_string(), i.to_string()]))
        .collect();
    (modules, Value::Array(expected))
}

pub fn step(id: &str, language: &str, content: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": language, "content": content, "input_transforms": inputs}})
}

pub fn expr(source: &str) -> Value {
    json!({"type": "javascript", "expr": source})
}

pub fn call(id: &str, kind: &str, path: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {"type": kind, "path": path, "input_transforms": inputs}})
}

pub fn step_result(status: &FlowRunStatus, path: &str) -> Option<Value> {
    status
        .steps
        .iter()
        .find(|s| s.path == path)
        .and_then(|s| s.result.clone())
}

/// An example flow file as the spec of a Flow, unchanged.
pub fn example(file: &str) -> Result<Value> {
    let loaded = millrace::flow::load_path(file.as_ref())?;
    Ok(serde_json::to_value(loaded.flow)?)
}
