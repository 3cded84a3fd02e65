//! Windmill conformance through the operator (real control plane, steps in the pod runner, the
//! pod entry script and wrappers): a skipped run keeps its result, a loop's own `stop_after_if`,
//! `sleep` after its step, Python's None rules and bash's merged, string last line.

mod support;

use anyhow::Result;
use millrace::k8s::flowrun::RunPhase;
use serde_json::{Value, json};
use support::flows::{expr, setup, step};

fn with(mut module: Value, fields: Value) -> Value {
    module
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().cloned().unwrap());
    module
}

#[tokio::test]
async fn skipped_runs_loop_stops_and_sleeps_behave_as_in_windmill() -> Result<()> {
    let Some(t) = setup("conformance-engine").await? else {
        return Ok(());
    };
    let stop = with(
        step(
            "check",
            "python3",
            "def main():\n    return {'nothing': 'to do'}",
            json!({}),
        ),
        json!({"stop_after_if": {"expr": "result.nothing", "skip_if_stopped": true}}),
    );
    let never = step("never", "python3", "def main():\n    return 1", json!({}));
    t.modules("skip", json!([stop, never])).await?;
    t.run("skip-1", "skip", json!({})).await?;

    let body = json!([step(
        "a",
        "python3",
        "def main(n):\n    return n * 10",
        json!({"n": expr("flow_input.iter.value")})
    )]);
    let looped = with(
        json!({"id": "l", "value": {"type": "forloopflow", "iterator": expr("[1, 2, 3, 4]"), "modules": body}}),
        json!({"stop_after_if": {"expr": "result >= 20"}}),
    );
    let after = step(
        "after",
        "python3",
        "def main(l):\n    return {'loop': l}",
        json!({"l": expr("results.l")}),
    );
    t.modules("stop", json!([looped, after])).await?;
    t.run("stop-1", "stop", json!({})).await?;

    let first = with(
        step(
            "first",
            "python3",
            "import time\ndef main():\n    return {'wait': 1, 'at': time.time()}",
            json!({}),
        ),
        json!({"sleep": expr("result.wait")}),
    );
    let second = step(
        "second",
        "python3",
        "import time\ndef main(first):\n    return time.time() - first['at'] >= first['wait']",
        json!({"first": expr("results.first")}),
    );
    t.modules("rest", json!([first, second])).await?;
    t.run("rest-1", "rest", json!({})).await?;

    let status = t.finished("skip-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(
        status.result,
        Some(json!({"nothing": "to do"})),
        "{status:#?}"
    );
    assert_eq!(t.ran("skip-1").await?, ["check"]);

    let status = t.finished("stop-1").await?;
    assert_eq!(
        status.result,
        Some(json!({"loop": [10, 20]})),
        "{status:#?}"
    );
    assert_eq!(t.ran("stop-1").await?, ["after", "l[0]/a", "l[1]/a"]);

    let status = t.finished("rest-1").await?;
    assert_eq!(status.result, Some(json!(true)), "{status:#?}");
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
