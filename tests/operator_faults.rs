//! Faults of the control plane itself. A test binary of its own, so that its control plane is
//! its own too: the API server is made unreachable here (stopped, its connections hanging) while
//! runs are in flight, then brought back. Every run must finish with the right result, no step
//! attempt may run twice, and the controllers recover without a restart of their own.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::Result;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::json;
use std::time::Duration;
use support::cluster::ControlPlane;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{expr, flaky, step};
use support::operator::setup;

/// Resumes the API server when dropped, so that a failing test never leaves it stopped.
struct Paused(&'static ControlPlane);

impl Paused {
    fn new(cp: &'static ControlPlane) -> Paused {
        cp.pause_api_server();
        Paused(cp)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.0.resume_api_server();
    }
}

#[tokio::test]
async fn runs_in_flight_finish_right_when_the_api_server_is_away_for_a_while() -> Result<()> {
    let Some(t) = setup("faults-pause").await? else {
        return Ok(());
    };
    // Bash results are the last line, as a string.
    let body = step(
        "double",
        "bash",
        "x=\"$1\"\nsleep 1\necho $((2 * x))",
        json!({"x": expr("flow_input.iter.value")}),
    );
    let looped = json!({"id": "each", "value": {"type": "forloopflow",
        "iterator": expr("flow_input.items"), "parallel": true, "parallelism": 2,
        "modules": [body]}});
    t.modules("loop", json!([looped])).await?;
    let mut retried = flaky("flaky", 1, "second try")?;
    retried["retry"] = json!({"constant": {"attempts": 2, "seconds": 1}});
    t.modules(
        "retry",
        json!([
            retried,
            step("after", "bash", "sleep 2; echo done", json!({}))
        ]),
    )
    .await?;
    t.run("loop-1", "loop", json!({"items": [1, 2, 3, 4, 5, 6]}))
        .await?;
    t.run("loop-2", "loop", json!({"items": [10, 20, 30]}))
        .await?;
    t.run("retry-1", "retry", json!({})).await?;
    wait_until("every run has started a step", TIMEOUT, || async {
        for run in ["loop-1", "loop-2", "retry-1"] {
            if t.jobs(run).await?.is_empty() {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;

    // Longer than the steps take: pods end, retries fall due, nobody can write meanwhile.
    {
        let _paused = Paused::new(t.cp);
        tokio::time::sleep(Duration::from_secs(12)).await;
    }

    let loop_1 = t.finished("loop-1").await?;
    assert_eq!(loop_1.phase, Some(RunPhase::Succeeded), "{loop_1:#?}");
    assert_eq!(loop_1.result, Some(json!(["2", "4", "6", "8", "10", "12"])));
    let loop_2 = t.finished("loop-2").await?;
    assert_eq!(
        loop_2.result,
        Some(json!(["20", "40", "60"])),
        "{loop_2:#?}"
    );
    let retry = t.finished("retry-1").await?;
    assert_eq!(retry.phase, Some(RunPhase::Succeeded), "{retry:#?}");
    assert_eq!(retry.steps[0].attempts, 2);
    assert_eq!(retry.result, Some(json!("done")));
    let executions = t.executions();
    let twice: Vec<_> = executions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "attempts that ran twice: {twice:?}");
    // 6 + 3 loop iterations, two attempts of the flaky step and the one after it.
    assert_eq!(executions.len(), 12, "{executions:?}");
    Ok(())
}
