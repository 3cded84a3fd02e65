//! Windmill conformance through the operator (real control plane, steps in the pod runner, the
//! pod entry script and wrappers): a skipped run keeps its result, a loop's own `stop_after_if`,
//! `sleep` after its step, Python's None rules and bash's merged, string last line.

mod conformance_flows;
mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::Result;
use conformance_flows::{
    expr, loop_stopped_after_an_iteration, sleep_after_the_step, step, stopped_and_skipped,
};
use millrace::k8s::api::RunPhase;
use serde_json::json;
use support::operator::setup;

#[tokio::test]
async fn skipped_runs_loop_stops_and_sleeps_behave_as_in_windmill() -> Result<()> {
    let Some(t) = setup("conformance-engine").await? else {
        return Ok(());
    };
    let (skip, skip_result) = stopped_and_skipped();
    t.modules("skip", skip).await?;
    t.run("skip-1", "skip", json!({})).await?;
    let (stop, stop_result) = loop_stopped_after_an_iteration();
    t.modules("stop", stop).await?;
    t.run("stop-1", "stop", json!({})).await?;
    let (rest, rest_result) = sleep_after_the_step(1.0);
    t.modules("rest", rest).await?;
    t.run("rest-1", "rest", json!({})).await?;

    let status = t.finished("skip-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(skip_result), "{status:#?}");
    assert_eq!(t.ran("skip-1").await?, ["check"]);

    let status = t.finished("stop-1").await?;
    assert_eq!(status.result, Some(stop_result), "{status:#?}");
    assert_eq!(t.ran("stop-1").await?, ["after", "l[0]/a", "l[1]/a"]);

    let status = t.finished("rest-1").await?;
    assert_eq!(status.result, Some(rest_result), "{status:#?}");
    Ok(())
}

#[tokio::test]
async fn python_and_bash_steps_in_pods_follow_windmills_conventions() -> Result<()> {
    let Some(t) = setup("conformance-runners").await? else {
        return Ok(());
    };
    t.modules(
        "python",
        json!([step(
            "s",
            "python3",
            "def main(a, b=5):\n    return [a, b]",
            json!({"b": expr("null")})
        )]),
    )
    .await?;
    t.run("python-1", "python", json!({})).await?;
    t.modules(
        "bash",
        json!([step(
            "s",
            "bash",
            "false | true\necho 42\necho done >&2",
            json!({})
        )]),
    )
    .await?;
    t.run("bash-1", "bash", json!({})).await?;

    let status = t.finished("python-1").await?;
    assert_eq!(status.result, Some(json!([null, 5])), "{status:#?}");
    let status = t.finished("bash-1").await?;
    assert_eq!(status.result, Some(json!("done")), "{status:#?}");
    Ok(())
}
