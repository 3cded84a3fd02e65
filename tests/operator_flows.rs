//! Acceptance flows as FlowRuns on the real control plane: branches, an error handler, retries
//! with their delays, and the branches example loaded from its file. Steps run in the pod runner
//! (images ignored).

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::json;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{example, expr, flaky, step, step_result};
use support::operator::setup;

#[tokio::test]
async fn branchone_picks_its_branch_or_the_default_and_branchall_runs_every_branch() -> Result<()> {
    let Some(t) = setup("flows-branches").await? else {
        return Ok(());
    };
    let say = |id: &str, word: &str| step(id, "bash", &format!("echo {word}"), json!({}));
    t.modules(
        "pick",
        json!([{"id": "route", "value": {"type": "branchone",
            "branches": [
                {"expr": "flow_input.n < 10", "modules": [say("small", "small")]},
                {"expr": "flow_input.n < 100", "modules": [say("medium", "medium")]},
            ],
            "default": [say("large", "large")]}}]),
    )
    .await?;
    t.run("pick-5", "pick", json!({"n": 5})).await?;
    t.run("pick-50", "pick", json!({"n": 50})).await?;
    t.run("pick-500", "pick", json!({"n": 500})).await?;
    t.modules(
        "all",
        json!([{"id": "fan", "value": {"type": "branchall", "parallel": true, "branches": [
            {"modules": [say("one", "1")]},
            {"modules": [say("two", "2")]},
            {"skip_failure": true, "modules": [step("broken", "bash", "exit 4", json!({}))]},
        ]}}]),
    )
    .await?;
    t.run("all-1", "all", json!({})).await?;

    for (run, word) in [
        ("pick-5", "small"),
        ("pick-50", "medium"),
        ("pick-500", "large"),
    ] {
        let status = t.finished(run).await?;
        assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
        assert_eq!(status.result, Some(json!(word)), "{run}");
        let branch = ["small", "medium", "large"]
            .iter()
            .position(|w| *w == word)
            .unwrap();
        assert_eq!(
            t.ran(run).await?,
            [format!("route[{branch}]/{word}")],
            "{run}"
        );
    }
    let status = t.finished("all-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let result = status.result.context("result")?;
    assert_eq!(result[0], json!("1"), "{result}");
    assert_eq!(result[1], json!("2"), "{result}");
    assert_eq!(result[2]["error"]["step_id"], "broken", "{result}");
    assert_eq!(
        t.ran("all-1").await?,
        ["fan[0]/one", "fan[1]/two", "fan[2]/broken"]
    );
    Ok(())
}

#[tokio::test]
async fn the_failure_module_sees_the_error_and_the_run_fails_with_it() -> Result<()> {
    let Some(t) = setup("flows-failure").await? else {
        return Ok(());
    };
    let value = json!({
        "modules": [
            step("ok", "bash", "echo fine", json!({})),
            step("boom", "python3", "def main():\n    raise ValueError('no fuel')", json!({})),
            step("never", "bash", "echo never", json!({})),
        ],
        "failure_module": step("failure", "python3",
            "def main(err):\n    return {'handled': err['message'], 'step': err['step_id']}",
            json!({"err": expr("previous_result.error")})),
    });
    t.flow("fails", None, json!({"summary": "fails", "value": value}))
        .await?;
    t.run("fails-1", "fails", json!({})).await?;
    let status = t.finished("fails-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.clone().context("error")?;
    assert_eq!(error["step_id"], "boom", "{error}");
    assert!(error["message"].to_string().contains("no fuel"), "{error}");
    let handled = step_result(&status, "failure").context("the handler's result")?;
    assert_eq!(handled["step"], "boom");
    assert!(
        handled["handled"].to_string().contains("no fuel"),
        "{handled}"
    );
    assert!(
        !status
            .steps
            .iter()
            .any(|s| s.path == "never" && s.phase == "succeeded"),
        "{status:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_step_that_fails_twice_succeeds_on_its_third_attempt_after_the_delays() -> Result<()> {
    let Some(t) = setup("flows-retry").await? else {
        return Ok(());
    };
    let mut module = flaky("flaky", 2, "third time")?;
    module["retry"] = json!({"constant": {"attempts": 3, "seconds": 2}});
    t.modules("retry", json!([module])).await?;
    t.run("retry-1", "retry", json!({})).await?;
    let status = t.finished("retry-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("third time")));
    assert_eq!(status.steps[0].attempts, 3, "{status:#?}");

    let jobs = t.jobs("retry-1").await?;
    let mut created: Vec<(u32, i64)> = jobs
        .iter()
        .map(|job| {
            let attempt = job.metadata.labels.as_ref().unwrap()["millrace.dev/attempt"]
                .parse()
                .unwrap();
            let at = job.metadata.creation_timestamp.as_ref().unwrap().0;
            (attempt, at.as_second())
        })
        .collect();
    created.sort();
    assert_eq!(
        created.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Creation times have whole seconds; a real gap of 2 s or more shows as 2 or more.
    for pair in created.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= 2,
            "attempt {} began {gap} s after the one before",
            pair[1].0
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_branches_example_runs_unchanged_and_its_handler_reports_a_declined_card() -> Result<()>
{
    let Some(t) = setup("flows-example").await? else {
        return Ok(());
    };
    t.flow(
        "branches-error-handler",
        None,
        example("examples/branches-error-handler/flow.yaml")?,
    )
    .await?;
    t.run("order-1", "branches-error-handler", json!({}))
        .await?;
    t.run(
        "order-2",
        "branches-error-handler",
        json!({"card": "declined", "amount": 5000}),
    )
    .await?;

    let status = t.finished("order-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"charged": 250})));
    assert_eq!(
        step_result(&status, "route"),
        Some(json!({"approved": true, "amount": 250}))
    );
    let ran = t.ran("order-1").await?;
    assert!(
        ran.contains(&"route[1]/auto_approve".to_string()),
        "{ran:?}"
    );

    let status = t.finished("order-2").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.clone().context("error")?;
    assert_eq!(error["step_id"], "charge", "{error}");
    assert_eq!(error["message"], "card declined for 5000", "{error}");
    let ran = t.ran("order-2").await?;
    assert!(ran.contains(&"route[0]/review".to_string()), "{ran:?}");
    assert!(
        !ran.contains(&"route[1]/auto_approve".to_string()),
        "{ran:?}"
    );
    assert_eq!(
        step_result(&status, "failure"),
        Some(json!({"failed_step": "charge", "reason": "card declined for 5000"}))
    );
    Ok(())
}

#[tokio::test]
async fn a_flowrun_created_again_under_its_name_never_reuses_the_earlier_ones_objects() -> Result<()>
{
    let Some(t) = setup("flows-again").await? else {
        return Ok(());
    };
    t.modules(
        "double",
        json!([step(
            "twice",
            "bash",
            "n=\"$1\"\necho $((n * 2))",
            json!({"n": expr("flow_input.n")})
        )]),
    )
    .await?;
    t.run("again", "double", json!({"n": 1})).await?;
    assert_eq!(t.finished("again").await?.result, Some(json!("2")));
    let (runs, config_maps, jobs) = (t.api::<FlowRun>(), t.api::<ConfigMap>(), t.api::<Job>());
    // Orphaning keeps the first run's state ConfigMap, Job and Secret for good, as a garbage
    // collector that has not got to them yet would for a moment.
    runs.delete("again", &DeleteParams::orphan()).await?;
    wait_until("FlowRun again is gone", TIMEOUT, || async {
        Ok(runs.get_opt("again").await?.is_none().then_some(()))
    })
    .await?;
    let earlier_jobs: Vec<String> = jobs
        .list(&ListParams::default())
        .await?
        .iter()
        .map(|job| job.name_any())
        .collect();
    assert_eq!(earlier_jobs.len(), 1, "{earlier_jobs:?}");

    t.run("again", "double", json!({"n": 21})).await?;
    t.phase_is("again", RunPhase::Pending).await?;
    let status = runs.get("again").await?.status.context("status")?;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .context("Ready condition")?;
    assert_eq!(ready.reason, "EarlierRunState", "{ready:?}");
    assert!(ready.message.contains("again-state"), "{}", ready.message);

    config_maps
        .delete("again-state", &DeleteParams::default())
        .await?;
    let status = t.finished("again").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(
        status.result,
        Some(json!("42")),
        "the new run's own step ran"
    );
    let now_jobs: Vec<String> = jobs
        .list(&ListParams::default())
        .await?
        .iter()
        .map(|job| job.name_any())
        .collect();
    assert_eq!(now_jobs.len(), 2, "a Job of its own: {now_jobs:?}");
    assert!(now_jobs.contains(&earlier_jobs[0]));
    Ok(())
}
