//! The operator on the real control plane: CRDs applied, controllers running in-process, steps
//! run by the pod runner (which ignores images and runs `sh`, `python3` and `bash` locally).

mod support;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client};
use millrace::k8s::controller::{self, Config};
use millrace::k8s::flowrun::RunPhase;
use millrace::k8s::{Flow, FlowRun, crdgen};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(90);

async fn install_crds(client: &Client) -> Result<()> {
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

/// Runs the controllers for `ns` until the returned sender is dropped.
fn start_controller(client: Client, ns: &str) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let config = Config {
        namespace: Some(ns.to_string()),
        resync: Duration::from_secs(5),
        ..Config::default()
    };
    tokio::spawn(controller::run(client, config, async move {
        let _ = stopped.await;
    }));
    stop
}

fn step(id: &str, language: &str, content: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": language, "content": content, "input_transforms": inputs}})
}

async fn create_flow(client: &Client, ns: &str, name: &str, value: Value) -> Result<()> {
    let flow: Flow = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"summary": name, "value": value},
    }))?;
    Api::<Flow>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &flow)
        .await?;
    Ok(())
}

async fn create_run(
    client: &Client,
    ns: &str,
    name: &str,
    flow: &str,
    inputs: Value,
) -> Result<()> {
    let run: FlowRun = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": name},
        "spec": {"flowRef": {"name": flow}, "inputs": inputs},
    }))?;
    Api::<FlowRun>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &run)
        .await?;
    Ok(())
}

/// Waits until the run reaches a final phase and returns it.
async fn finished(client: &Client, ns: &str, name: &str) -> Result<FlowRun> {
    let runs: Api<FlowRun> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let run = runs.get(name).await?;
        let phase = run.status.as_ref().and_then(|s| s.phase);
        if matches!(
            phase,
            Some(RunPhase::Succeeded | RunPhase::Failed | RunPhase::Canceled)
        ) {
            return Ok(run);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("FlowRun {name} did not finish: {:#?}", run.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_bash_step_feeds_a_python_step_and_the_run_succeeds() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator").await;
    let runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    let value = json!({"modules": [
        step("count", "bash", "n=\"$1\"\necho \"counting to $n\"\necho \"{\\\"n\\\": $n}\"",
             json!({"n": {"type": "javascript", "expr": "flow_input.n"}})),
        step("double", "python3", "def main(got):\n    print('doubling')\n    return {'doubled': got['n'] * 2}",
             json!({"got": {"type": "javascript", "expr": "results.count"}})),
    ]});
    create_flow(&client, &ns, "pipeline", value).await?;
    create_run(&client, &ns, "pipeline-1", "pipeline", json!({"n": 21})).await?;

    let run = finished(&client, &ns, "pipeline-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"doubled": 42})));
    assert_eq!(status.progress.as_deref(), Some("2/2"));
    let count = &status.steps[0];
    assert_eq!(
        (count.path.as_str(), count.phase.as_str()),
        ("count", "succeeded")
    );
    assert_eq!(count.result, Some(json!({"n": 21})));
    assert_eq!(count.attempts, 1);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .context("Ready")?;
    assert_eq!(ready.status, "True");
    // One pod per step attempt, each run once.
    let executions = runner.executions();
    assert_eq!(executions.len(), 2, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}

#[tokio::test]
async fn a_failing_step_is_retried_and_a_malformed_flow_does_not_disturb_a_good_one() -> Result<()>
{
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-retry").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    create_flow(&client, &ns, "broken", json!({"modules": "not a list"})).await?;
    // Fails on its first attempt (no marker file yet), succeeds on the second.
    let marker = tempfile::tempdir()?.keep().join("tried");
    let flaky = format!(
        "import os\ndef main():\n    if not os.path.exists({marker:?}):\n        open({marker:?}, 'w').close()\n        raise RuntimeError('first try fails')\n    return 'second try'",
        marker = marker.to_string_lossy()
    );
    let mut module = step("flaky", "python3", &flaky, json!({}));
    module["retry"] = json!({"constant": {"attempts": 2, "seconds": 1}});
    create_flow(&client, &ns, "good", json!({"modules": [module]})).await?;
    create_run(&client, &ns, "good-1", "good", json!({})).await?;

    let run = finished(&client, &ns, "good-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.steps[0].attempts, 2);
    assert_eq!(status.result, Some(json!("second try")));

    let flows: Api<Flow> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let ready = loop {
        let flow = flows.get("broken").await?;
        let ready = flow
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"));
        if let Some(ready) = ready {
            break ready;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("Flow broken got no Ready condition");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("spec.value.modules"),
        "{}",
        ready.message
    );
    let good = flows.get("good").await?.status.context("good status")?;
    assert_eq!(good.conditions[0].status, "True");
    Ok(())
}
