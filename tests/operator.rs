//! The operator on the real control plane: CRDs applied, controllers running in-process, steps
//! run by the pod runner (which ignores images and runs `sh`, `python3` and `bash` locally).

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::json;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{big_results, example, expr, flaky, step};
use support::operator::setup;

#[tokio::test]
async fn the_example_bash_step_feeds_a_python_step_and_the_run_succeeds() -> Result<()> {
    let Some(t) = setup("operator").await? else {
        return Ok(());
    };

    // The example manifests, as written.
    t.create_manifests("examples/kubernetes/flow.yaml").await?;
    t.create_manifests("examples/kubernetes/flowrun.yaml")
        .await?;

    let run = t.run_ended("count-and-double-1").await?;
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
    // Events with the same reason form one series: its occurrences are counted.
    let expected = [
        ("RunSucceeded".to_string(), 1),
        ("StepStarted".to_string(), 2),
    ];
    let what = format!("the run's Events are {expected:?}");
    wait_until(&what, TIMEOUT, || async {
        let reasons = t.event_reasons("count-and-double-1").await?;
        Ok((reasons == expected).then_some(()))
    })
    .await?;
    // One pod per step attempt, each run once.
    let executions = t.executions();
    assert_eq!(executions.len(), 2, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}

#[tokio::test]
async fn a_failing_step_is_retried_and_a_malformed_flow_does_not_disturb_a_good_one() -> Result<()>
{
    let Some(t) = setup("operator-retry").await? else {
        return Ok(());
    };

    t.modules("broken", json!("not a list")).await?;
    // Fails on its first attempt, succeeds on the second.
    let mut module = flaky("flaky", 1, "second try")?;
    module["retry"] = json!({"constant": {"attempts": 2, "seconds": 1}});
    t.modules("good", json!([module])).await?;
    t.run("good-1", "good", json!({})).await?;

    let run = t.run_ended("good-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.steps[0].attempts, 2);
    assert_eq!(status.result, Some(json!("second try")));

    let ready = t.flow_ready("broken").await?;
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("spec.value.modules"),
        "{}",
        ready.message
    );
    assert_eq!(t.flow_ready("good").await?.status, "True");
    Ok(())
}

/// Expressions come from whoever writes a flow: one that would overflow the parser's stack or
/// never end fails its own object, and the controller goes on serving the others.
#[tokio::test]
async fn hostile_expressions_fail_their_own_objects_and_the_controller_keeps_serving() -> Result<()>
{
    let Some(t) = setup("operator-hostile").await? else {
        return Ok(());
    };

    let transform = |expr: String| json!({"x": {"type": "javascript", "expr": expr}});
    let nested = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let echo = "x=\"$1\"\necho \"$x\"";
    t.modules(
        "nested",
        json!([step("a", "bash", echo, transform(nested))]),
    )
    .await?;
    t.modules(
        "spin",
        json!([step("a", "bash", echo, transform("while (true) {}".into()))]),
    )
    .await?;
    t.run("spin-1", "spin", json!({})).await?;
    t.modules(
        "fine",
        json!([step(
            "a",
            "bash",
            echo,
            transform("flow_input.n * 2".into())
        )]),
    )
    .await?;
    t.run("fine-1", "fine", json!({"n": 21})).await?;

    let ready = t.flow_ready("nested").await?;
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("nests 5000 levels") && ready.message.contains("at most 32"),
        "{}",
        ready.message
    );

    let spin = t.run_ended("spin-1").await?.status.context("status")?;
    assert_eq!(spin.phase, Some(RunPhase::Failed), "{spin:#?}");
    let error = spin.error.context("spin-1 has an error")?.to_string();
    assert!(error.contains("time limit"), "{error}");

    let fine = t.run_ended("fine-1").await?.status.context("status")?;
    assert_eq!(fine.phase, Some(RunPhase::Succeeded), "{fine:#?}");
    assert_eq!(fine.result, Some(json!("42")));
    Ok(())
}

#[tokio::test]
async fn large_results_travel_intact_and_oversized_ones_fail_clearly() -> Result<()> {
    let Some(t) = setup("operator-large").await? else {
        return Ok(());
    };

    let modules = json!([
        step(
            "big",
            "python3",
            "def main():\n    return {'rows': ['r%06d' % i for i in range(20000)]}",
            json!({})
        ),
        step(
            "check",
            "python3",
            "def main(got):\n    rows = got['rows']\n    return [len(rows), rows[0], rows[-1]]",
            json!({"got": expr("results.big")})
        ),
    ]);
    t.modules("large", modules).await?;
    t.run("large-1", "large", json!({})).await?;
    let huge = json!([step(
        "huge",
        "python3",
        "def main():\n    return 'x' * 1200000",
        json!({})
    ),]);
    t.modules("huge", huge).await?;
    t.run("huge-1", "huge", json!({})).await?;

    let status = t.run_ended("large-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!([20000, "r000000", "r019999"])));
    assert!(status.steps[0].result.is_none() && status.steps[0].result_ref.is_some());

    // Six results of 300 KB outgrow one ConfigMap: they are saved in chunks, and read back whole.
    let (modules, seen) = big_results("s", 6, 300_000);
    t.modules("bloat", json!(modules)).await?;
    t.run("bloat-1", "bloat", json!({})).await?;
    let status = t.run_ended("bloat-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(seen));
    let reference = status.steps[0]
        .result_ref
        .as_ref()
        .context("s0 is referenced")?;
    assert_eq!(reference.key, "results-chunks.json");
    let chunks = t
        .api::<ConfigMap>()
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

    let status = t.run_ended("huge-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let message = status.error.context("error")?["message"].to_string();
    assert!(message.contains("result too large"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_suspended_run_resumes_on_approval_and_a_canceled_one_stops_its_job() -> Result<()> {
    let Some(t) = setup("operator-approve").await? else {
        return Ok(());
    };
    let runs = t.api::<FlowRun>();

    let mut ask = step("ask", "bash", "echo asked", json!({}));
    ask["suspend"] = json!({"required_events": 1});
    let modules = json!([
        ask,
        step(
            "after",
            "python3",
            "def main(answer):\n    return answer",
            json!({"answer": expr("resume")})
        ),
    ]);
    t.modules("approval", modules).await?;
    t.run("approval-1", "approval", json!({})).await?;
    t.phase_is("approval-1", RunPhase::Suspended).await?;
    // What `kubectl patch --type merge` does.
    let approve = json!({"spec": {"approvals": [{"step": "ask", "payload": {"ok": "yes"}}]}});
    runs.patch(
        "approval-1",
        &PatchParams::default(),
        &Patch::Merge(&approve),
    )
    .await?;
    let status = t.run_ended("approval-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"ok": "yes"})));

    t.modules("slow", json!([step("slow", "bash", "sleep 60", json!({}))]))
        .await?;
    t.run("slow-1", "slow", json!({})).await?;
    wait_until("slow-1 starts a Job", TIMEOUT, || async {
        Ok((!t.jobs("slow-1").await?.is_empty()).then_some(()))
    })
    .await?;
    let cancel = json!({"spec": {"cancel": true}});
    runs.patch("slow-1", &PatchParams::default(), &Patch::Merge(&cancel))
        .await?;
    let status = t.run_ended("slow-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Canceled), "{status:#?}");
    wait_until("the canceled run's Job is deleted", TIMEOUT, || async {
        let left = t.jobs("slow-1").await?;
        let deleted = left.iter().all(|j| j.metadata.deletion_timestamp.is_some());
        Ok(deleted.then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_parallel_retries_example_runs_with_at_most_parallelism_jobs_at_once() -> Result<()> {
    let Some(t) = setup("operator-loop").await? else {
        return Ok(());
    };

    let example = example("examples/parallel-retries/flow.yaml")?;
    t.flow("parallel-retries", None, example).await?;
    t.run("loop-1", "parallel-retries", json!({"count": 8}))
        .await?;

    let selector = ListParams::default().labels("millrace.dev/run=loop-1");
    let most_at_once = std::cell::Cell::new(0);
    let run = wait_until("loop-1 succeeds", TIMEOUT, || async {
        // Step containers not ended yet; a Job's own `active` count lags behind its pod.
        let running = t
            .api::<Pod>()
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
        most_at_once.set(most_at_once.get().max(running));
        let run = t.api::<FlowRun>().get("loop-1").await?;
        let phase = run.status.as_ref().and_then(|s| s.phase);
        Ok((phase == Some(RunPhase::Succeeded)).then_some(run))
    })
    .await?;
    let most_at_once = most_at_once.get();
    assert!(most_at_once <= 4, "{most_at_once} steps ran at once");
    let status = run.status.context("status")?;
    let squares: Vec<u64> = (1..=8).map(|n| n * n).collect();
    assert_eq!(status.result, Some(json!({"squares": squares, "sum": 204})));
    let total_jobs = t.jobs("loop-1").await?.len();
    assert_eq!(
        total_jobs,
        1 + 8 + 2 + 1,
        "scratch, 8 squares, 2 retries (3 and 6), total"
    );
    Ok(())
}

#[tokio::test]
async fn a_step_past_its_timeout_fails_with_a_timeout_error() -> Result<()> {
    let Some(t) = setup("operator-timeout").await? else {
        return Ok(());
    };

    let mut slow = step("slow", "bash", "sleep 60", json!({}));
    slow["timeout"] = json!(2);
    t.modules("timeout", json!([slow])).await?;
    t.run("timeout-1", "timeout", json!({})).await?;
    let status = t.run_ended("timeout-1").await?.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.context("error")?;
    assert_eq!(error["name"], "TimeoutError", "{error}");
    Ok(())
}
