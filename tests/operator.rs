//! The operator on the real control plane: CRDs applied, controllers running in-process, steps
//! run by the pod runner (which ignores images and runs `sh`, `python3` and `bash` locally).

mod support;

use support::flows::{big_results, install_crds, run_ended, start_controller, step};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::{Flow, FlowRun};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

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

#[tokio::test]
async fn the_example_bash_step_feeds_a_python_step_and_the_run_succeeds() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator").await;
    let runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    // The example manifests, as written.
    let flow: Flow =
        serde_yaml_ng::from_str(&std::fs::read_to_string("examples/kubernetes/flow.yaml")?)?;
    let run: FlowRun = serde_yaml_ng::from_str(&std::fs::read_to_string(
        "examples/kubernetes/flowrun.yaml",
    )?)?;
    Api::<Flow>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &flow)
        .await?;
    Api::<FlowRun>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &run)
        .await?;

    let run = run_ended(&client, &ns, "count-and-double-1").await?;
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
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        // Events with the same reason form one series: count its occurrences.
        let mut reasons: Vec<(String, i32)> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("count-and-double-1")
            })
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.series.map_or(1, |s| s.count),
                )
            })
            .collect();
        reasons.sort();
        if reasons == [("RunSucceeded".into(), 1), ("StepStarted".into(), 2)] {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the run's Events are {reasons:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

    let run = run_ended(&client, &ns, "good-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.steps[0].attempts, 2);
    assert_eq!(status.result, Some(json!("second try")));

    let ready = ready_condition(&client, &ns, "broken").await?;
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("spec.value.modules"),
        "{}",
        ready.message
    );
    assert_eq!(ready_condition(&client, &ns, "good").await?.status, "True");
    Ok(())
}

/// The Flow's `Ready` condition, once the controller has set it.
async fn ready_condition(client: &Client, ns: &str, name: &str) -> Result<Condition> {
    let flows: Api<Flow> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let flow = flows.get(name).await?;
        let ready = flow
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"));
        if let Some(ready) = ready {
            return Ok(ready);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("Flow {name} got no Ready condition");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Expressions come from whoever writes a flow: one that would overflow the parser's stack or
/// never end fails its own object, and the controller goes on serving the others.
#[tokio::test]
async fn hostile_expressions_fail_their_own_objects_and_the_controller_keeps_serving() -> Result<()>
{
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-hostile").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    let transform = |expr: String| json!({"x": {"type": "javascript", "expr": expr}});
    let nested = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let echo = "x=\"$1\"\necho \"$x\"";
    create_flow(
        &client,
        &ns,
        "nested",
        json!({"modules": [step("a", "bash", echo, transform(nested))]}),
    )
    .await?;
    create_flow(
        &client,
        &ns,
        "spin",
        json!({"modules": [step("a", "bash", echo, transform("while (true) {}".into()))]}),
    )
    .await?;
    create_run(&client, &ns, "spin-1", "spin", json!({})).await?;
    create_flow(
        &client,
        &ns,
        "fine",
        json!({"modules": [step("a", "bash", echo, transform("flow_input.n * 2".into()))]}),
    )
    .await?;
    create_run(&client, &ns, "fine-1", "fine", json!({"n": 21})).await?;

    let ready = ready_condition(&client, &ns, "nested").await?;
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("too deeply"), "{}", ready.message);

    let spin = run_ended(&client, &ns, "spin-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(spin.phase, Some(RunPhase::Failed), "{spin:#?}");
    let error = spin.error.context("spin-1 has an error")?.to_string();
    assert!(error.contains("time limit"), "{error}");

    let fine = run_ended(&client, &ns, "fine-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(fine.phase, Some(RunPhase::Succeeded), "{fine:#?}");
    assert_eq!(fine.result, Some(json!("42")));
    Ok(())
}

#[tokio::test]
async fn large_results_travel_intact_and_oversized_ones_fail_clearly() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-large").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    let value = json!({"modules": [
        step("big", "python3", "def main():\n    return {'rows': ['r%06d' % i for i in range(20000)]}", json!({})),
        step("check", "python3", "def main(got):\n    rows = got['rows']\n    return [len(rows), rows[0], rows[-1]]",
             json!({"got": {"type": "javascript", "expr": "results.big"}})),
    ]});
    create_flow(&client, &ns, "large", value).await?;
    create_run(&client, &ns, "large-1", "large", json!({})).await?;
    let huge = json!({"modules": [
        step("huge", "python3", "def main():\n    return 'x' * 1200000", json!({})),
    ]});
    create_flow(&client, &ns, "huge", huge).await?;
    create_run(&client, &ns, "huge-1", "huge", json!({})).await?;

    let status = run_ended(&client, &ns, "large-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!([20000, "r000000", "r019999"])));
    assert!(status.steps[0].result.is_none() && status.steps[0].result_ref.is_some());

    // Six results of 300 KB outgrow one ConfigMap: they are saved in chunks, and read back whole.
    let (modules, seen) = big_results("s", 6, 300_000);
    create_flow(&client, &ns, "bloat", json!({"modules": modules})).await?;
    create_run(&client, &ns, "bloat-1", "bloat", json!({})).await?;
    let status = run_ended(&client, &ns, "bloat-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(seen));
    let reference = status.steps[0]
        .result_ref
        .as_ref()
        .context("s0 is referenced")?;
    assert_eq!(reference.key, "results-chunks.json");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let chunks = config_maps
        .list(&ListParams::default().labels("millrace.dev/run=bloat-1"))
        .await?
        .items
        .into_iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("bloat-1-results-"))
        })
        .count();
    assert_eq!(chunks, 3, "1.8 MB of results in chunks of 768 KiB");

    let status = run_ended(&client, &ns, "huge-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let message = status.error.context("error")?["message"].to_string();
    assert!(message.contains("result too large"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_suspended_run_resumes_on_approval_and_a_canceled_one_stops_its_job() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-approve").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);
    let runs: Api<FlowRun> = Api::namespaced(client.clone(), &ns);

    let mut ask = step("ask", "bash", "echo asked", json!({}));
    ask["suspend"] = json!({"required_events": 1});
    let value = json!({"modules": [
        ask,
        step("after", "python3", "def main(answer):\n    return answer",
             json!({"answer": {"type": "javascript", "expr": "resume"}})),
    ]});
    create_flow(&client, &ns, "approval", value).await?;
    create_run(&client, &ns, "approval-1", "approval", json!({})).await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while runs.get("approval-1").await?.status.and_then(|s| s.phase) != Some(RunPhase::Suspended) {
        if tokio::time::Instant::now() > deadline {
            bail!("approval-1 never suspended");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What `kubectl patch --type merge` does.
    let approve = json!({"spec": {"approvals": [{"step": "ask", "payload": {"ok": "yes"}}]}});
    runs.patch(
        "approval-1",
        &PatchParams::default(),
        &Patch::Merge(&approve),
    )
    .await?;
    let status = run_ended(&client, &ns, "approval-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"ok": "yes"})));

    let value = json!({"modules": [step("slow", "bash", "sleep 60", json!({}))]});
    create_flow(&client, &ns, "slow", value).await?;
    create_run(&client, &ns, "slow-1", "slow", json!({})).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let selector = ListParams::default().labels("millrace.dev/run=slow-1");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while jobs.list(&selector).await?.items.is_empty() {
        if tokio::time::Instant::now() > deadline {
            bail!("slow-1 started no Job");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancel = json!({"spec": {"cancel": true}});
    runs.patch("slow-1", &PatchParams::default(), &Patch::Merge(&cancel))
        .await?;
    let status = run_ended(&client, &ns, "slow-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Canceled), "{status:#?}");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let left = jobs.list(&selector).await?.items;
        if left.iter().all(|j| j.metadata.deletion_timestamp.is_some()) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the canceled run's Job was not deleted");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn the_parallel_retries_example_runs_with_at_most_parallelism_jobs_at_once() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-loop").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    let example = millrace::flow::load_path("examples/parallel-retries/flow.yaml".as_ref())?;
    let flow: Flow = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": "parallel-retries"},
        "spec": example.flow,
    }))?;
    Api::<Flow>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &flow)
        .await?;
    create_run(
        &client,
        &ns,
        "loop-1",
        "parallel-retries",
        json!({"count": 8}),
    )
    .await?;

    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let runs: Api<FlowRun> = Api::namespaced(client.clone(), &ns);
    let selector = ListParams::default().labels("millrace.dev/run=loop-1");
    let mut most_at_once = 0;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while runs.get("loop-1").await?.status.and_then(|s| s.phase) != Some(RunPhase::Succeeded) {
        // Step containers not ended yet; a Job's own `active` count lags behind its pod.
        let running = pods
            .list(&selector)
            .await?
            .items
            .iter()
            .filter(|p| {
                let ended = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()));
                !ended
            })
            .count();
        most_at_once = most_at_once.max(running);
        if tokio::time::Instant::now() > deadline {
            bail!("loop-1 did not succeed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most_at_once <= 4, "{most_at_once} steps ran at once");
    let status = runs.get("loop-1").await?.status.context("status")?;
    let squares: Vec<u64> = (1..=8).map(|n| n * n).collect();
    assert_eq!(status.result, Some(json!({"squares": squares, "sum": 204})));
    let total_jobs = jobs.list(&selector).await?.items.len();
    assert_eq!(
        total_jobs,
        1 + 8 + 2 + 1,
        "scratch, 8 squares, 2 retries (3 and 6), total"
    );
    Ok(())
}

#[tokio::test]
async fn a_step_past_its_timeout_fails_with_a_timeout_error() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("operator-timeout").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controller = start_controller(client.clone(), &ns);

    let mut slow = step("slow", "bash", "sleep 60", json!({}));
    slow["timeout"] = json!(2);
    create_flow(&client, &ns, "timeout", json!({"modules": [slow]})).await?;
    create_run(&client, &ns, "timeout-1", "timeout", json!({})).await?;
    let status = run_ended(&client, &ns, "timeout-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.context("error")?;
    assert_eq!(error["name"], "TimeoutError", "{error}");
    Ok(())
}
