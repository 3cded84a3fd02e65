//! Faults of the control plane itself. A test binary of its own, so that its control plane is
//! its own too: the API server is made unreachable here (stopped, its connections hanging) while
//! runs are in flight, then brought back. Every run must finish with the right result, no step
//! attempt may run twice, and the controllers recover without a restart of their own.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
    pub mod replica;
}

use anyhow::{Context, Result};
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use support::cluster::ControlPlane;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{expr, flaky, step};
use support::operator::{Harness, setup};
use support::replica::{self, Replica};

/// Taken by every test here: a paused API server is paused for all of them.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _alone = ALONE.lock().await;
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

/// A leader whose renewals cannot reach the API server stops (the process exits, to be
/// restarted as a standby) before its lease expires and another replica could take it; once
/// the API server is back, the standby takes over and finishes the run, no step twice.
#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_exits_before_its_lease_can_be_taken() -> Result<()> {
    let _alone = ALONE.lock().await;
    let Some(t) = Harness::without_controllers("faults-lease").await? else {
        return Ok(());
    };
    let (client, ns) = (&t.client, &t.ns);
    // Renewed every 2 s; the lease can be taken 6 s after the last renewal.
    let (duration, renew_before) = (6, 4);
    let mut leader = Replica::start(t.cp, ns, "controller-a", duration, renew_before)?;
    wait_until("the first replica leads", TIMEOUT, || async {
        let holder = replica::holder(client, ns).await?;
        Ok((holder == Some(leader.identity.clone())).then_some(()))
    })
    .await?;
    let standby = Replica::start(t.cp, ns, "controller-b", duration, renew_before)?;
    wait_until("the standby stands by", TIMEOUT, || async {
        Ok((standby.leader_gauge().await.ok().flatten() == Some(0.0)).then_some(()))
    })
    .await?;

    let steps = 4;
    let modules: Vec<Value> = (1..=steps)
        .map(|n| {
            step(
                &format!("s{n}"),
                "bash",
                &format!("sleep 1\necho {n}"),
                json!({}),
            )
        })
        .collect();
    t.modules("relay", json!(modules)).await?;
    t.run("relay-1", "relay", json!({})).await?;
    wait_until("the leader has started a step", TIMEOUT, || async {
        Ok((!t.jobs("relay-1").await?.is_empty()).then_some(()))
    })
    .await?;

    // Cut off right after a renewal, so that this is the last one the leader saw.
    let renewed = |spec: Option<k8s_openapi::api::coordination::v1::LeaseSpec>| {
        spec.and_then(|s| s.renew_time)
            .map(|t| SystemTime::from(t.0))
    };
    let previous = renewed(replica::lease(client, ns).await?);
    let last = wait_until("the leader renews its lease", TIMEOUT, || async {
        let now = renewed(replica::lease(client, ns).await?);
        Ok(now.filter(|_| now != previous))
    })
    .await?;
    let expires = last + Duration::from_secs(duration);
    {
        let _paused = Paused::new(t.cp);
        let exited = wait_until(
            "the leader exits while the API server is away",
            Duration::from_secs(duration + 4),
            || {
                let exited = leader.exited();
                async move { exited }
            },
        )
        .await;
        let exited_at = SystemTime::now();
        let exit = exited.with_context(|| leader.log())?;
        assert!(!exit.success(), "{exit}: {}", leader.log());
        assert!(
            exited_at < expires,
            "exited {:?} after the lease could be taken:\n{}",
            exited_at.duration_since(expires).unwrap_or_default(),
            leader.log()
        );
        // Longer than the lease: it has expired when the API server is back.
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::time::sleep(left + Duration::from_secs(1)).await;
    }
    assert!(
        leader
            .log()
            .contains("no renewal of the lease reached the API server"),
        "{}",
        leader.log()
    );

    wait_until("the standby takes the lease", TIMEOUT, || async {
        let holder = replica::holder(client, ns).await?;
        Ok((holder == Some(standby.identity.clone())).then_some(()))
    })
    .await?;
    let run = t.finished("relay-1").await?;
    assert_eq!(
        run.phase,
        Some(RunPhase::Succeeded),
        "{run:#?}\n{}",
        standby.log()
    );
    assert_eq!(run.result, Some(json!(steps.to_string())));
    let executions = t.executions();
    assert_eq!(executions.len(), steps, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}
