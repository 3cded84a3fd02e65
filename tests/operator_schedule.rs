//! The Schedule controller on the real control plane, with per-second schedules: runs start at
//! the fire times, never twice (after a restart or with two replicas), `Forbid` and `Replace`
//! act on active runs, catch-up after downtime, and history limits. The pod runner plays the
//! kubelet; steps are bash `echo` or `sleep`.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
    pub mod schedules;
}

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::schedule::from_time;
use millrace::k8s::api::schedule::runs::scheduled_for;
use millrace::schedule::SkipReason;
use serde_json::json;
use support::operator::controller_logs;
use support::schedules::start_controller;
use support::schedules::{
    bash_flow, create, env, event, events, patch_spec, runs, scheduled, sleep_until, status,
    wait_until,
};

#[tokio::test]
async fn runs_start_at_the_fire_times_and_are_named_by_their_instant() -> Result<()> {
    let Some(env) = env("sched-times").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "hello", "echo hello").await?;
    create(
        client,
        ns,
        "every3",
        json!({"schedule": "*/3 * * * * *", "flowRef": {"name": "hello"}}),
    )
    .await?;
    let runs = wait_until("three runs exist", || async {
        let runs = runs(client, ns, "every3").await?;
        Ok((runs.len() >= 3).then_some(runs))
    })
    .await?;
    for run in &runs {
        let at = scheduled_for(run).context("scheduledFor")?;
        // The name's seconds are the instant's, and the instant is one the cron names.
        assert_eq!(run.name_any(), format!("every3-{}", at.timestamp()));
        assert_eq!(at.timestamp() % 3, 0, "{}", run.name_any());
        // Never early: created at or after its instant (creation times are whole seconds).
        let created = from_time(
            run.metadata
                .creation_timestamp
                .as_ref()
                .context("created")?,
        );
        ensure!(created >= at, "{} created at {created}", run.name_any());
        let owner = &run.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Schedule", Some(true))
        );
    }
    let instants: Vec<DateTime<Utc>> = runs.iter().filter_map(scheduled_for).collect();
    for pair in instants.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::seconds(3),
            "consecutive occurrences: {instants:?}"
        );
    }
    let first = runs[0].name_any();
    wait_until("the first run succeeds", || async {
        let run = Api::<millrace::k8s::api::FlowRun>::namespaced(client.clone(), ns)
            .get(&first)
            .await?;
        Ok((run.status.and_then(|s| s.phase) == Some(RunPhase::Succeeded)).then_some(()))
    })
    .await?;
    let note = event(client, ns, "every3", "Created").await?;
    assert!(note.contains("every3-"), "{note}");
    let status = wait_until("status counts the runs", || async {
        let status = status(client, ns, "every3").await?;
        Ok((status.created >= 3 && status.last_successful_time.is_some()).then_some(status))
    })
    .await?;
    assert_eq!(status.next_schedule_times.len(), 3);
    assert_eq!((status.skipped, status.missed), (0, 0));
    let ready = support::schedules::condition(&status, "Ready").context("Ready")?;
    assert_eq!(ready.0, "True", "{ready:?}");
    Ok(())
}

#[tokio::test]
async fn forbid_skips_while_a_run_is_active_and_says_so() -> Result<()> {
    let Some(env) = env("sched-forbid").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "slow", "sleep 60").await?;
    let spec = json!({"schedule": "*/2 * * * * *", "flowRef": {"name": "slow"}, "concurrencyPolicy": "Forbid"});
    create(client, ns, "lonely", spec).await?;
    let skipped = wait_until("an occurrence is skipped", || async {
        let status = status(client, ns, "lonely").await?;
        Ok((status.skipped >= 2).then_some(status))
    })
    .await?;
    let skip = skipped.last_skip.context("lastSkip")?;
    assert_eq!(skip.reason, SkipReason::ForbidOverlap);
    let only = scheduled(client, ns, "lonely").await?;
    assert_eq!(only.len(), 1, "one run while it is active: {only:?}");
    let active = format!("lonely-{}", only[0].timestamp());
    assert!(skip.message.contains(&active), "{}", skip.message);
    assert_eq!(skipped.active, std::slice::from_ref(&active));
    let note = event(client, ns, "lonely", "ForbidOverlap").await?;
    assert!(note.contains(&active), "{note}");
    assert_eq!(status(client, ns, "lonely").await?.missed, 0);
    Ok(())
}

#[tokio::test]
async fn replace_cancels_the_active_run_and_stops_its_job() -> Result<()> {
    let Some(env) = env("sched-replace").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "slow", "sleep 60").await?;
    let spec = json!({"schedule": "*/5 * * * * *", "flowRef": {"name": "slow"}, "concurrencyPolicy": "Replace"});
    create(client, ns, "newest", spec).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    // The first run's step is running: its Job exists.
    let first = wait_until("the first run's Job runs", || async {
        let Some(run) = runs(client, ns, "newest").await?.into_iter().next() else {
            return Ok(None);
        };
        let selector =
            ListParams::default().labels(&format!("millrace.dev/run={}", run.name_any()));
        Ok((!jobs.list(&selector).await?.items.is_empty()).then_some(run.name_any()))
    })
    .await?;
    let note = event(client, ns, "newest", "Replaced").await?;
    assert!(note.contains(&first), "{note}");
    let flowruns = Api::<millrace::k8s::api::FlowRun>::namespaced(client.clone(), ns);
    wait_until("the replaced run is canceled and its Job gone", || async {
        let run = flowruns.get(&first).await?;
        let selector = ListParams::default().labels(&format!("millrace.dev/run={first}"));
        let canceled = run.status.and_then(|s| s.phase) == Some(RunPhase::Canceled);
        Ok(
            (run.spec.cancel && canceled && jobs.list(&selector).await?.items.is_empty())
                .then_some(()),
        )
    })
    .await?;
    patch_spec(client, ns, "newest", json!({"suspend": true})).await?;
    Ok(())
}

/// Stops the controller after the first run, restarts it once three more fire times passed,
/// and returns the instants of the runs for those three, with the status then.
async fn across_downtime(prefix: &str, catch_up: u32) -> Result<()> {
    let Some(mut env) = env(prefix).await? else {
        return Ok(());
    };
    let (client, ns) = (env.client.clone(), env.ns.clone());
    bash_flow(&client, &ns, "hello", "echo hello").await?;
    // Every 4 seconds: the restart lands well inside one interval on a busy machine.
    let spec =
        json!({"schedule": "*/4 * * * * *", "flowRef": {"name": "hello"}, "catchUp": catch_up});
    create(&client, &ns, "away", spec).await?;
    let first = wait_until("the first run", || async {
        Ok(scheduled(&client, &ns, "away").await?.first().copied())
    })
    .await?;
    drop(env.controller.take());
    let third = first + TimeDelta::seconds(12);
    sleep_until(third + TimeDelta::milliseconds(500)).await;
    ensure!(
        scheduled(&client, &ns, "away").await? == [first],
        "a run was created while the controller was stopped"
    );
    env.controller = Some(start_controller(client.clone(), &ns));
    let status = wait_until(
        "the restarted controller settles the three occurrences",
        || async {
            let status = status(&client, &ns, "away").await?;
            let last = status.last_schedule_time.as_ref().map(from_time);
            Ok(last.is_some_and(|t| t >= third).then_some(status))
        },
    )
    .await?;
    let caught: Vec<DateTime<Utc>> = scheduled(&client, &ns, "away")
        .await?
        .into_iter()
        .filter(|t| *t > first && *t <= third)
        .collect();
    let expected: Vec<DateTime<Utc>> = (0..catch_up as i64)
        .rev()
        .map(|i| third - TimeDelta::seconds(4 * i))
        .collect();
    assert_eq!(
        caught, expected,
        "catchUp {catch_up}: the latest, oldest first"
    );
    assert_eq!(status.missed, 3 - u64::from(catch_up), "{status:#?}");
    if catch_up > 0 {
        event(&client, &ns, "away", "CaughtUp").await?;
    }
    if catch_up < 3 {
        event(&client, &ns, "away", "Missed").await?;
    }
    patch_spec(&client, &ns, "away", json!({"suspend": true})).await?;
    Ok(())
}

#[tokio::test]
async fn after_downtime_catch_up_0_starts_nothing() -> Result<()> {
    across_downtime("sched-catchup0", 0).await
}

#[tokio::test]
async fn after_downtime_catch_up_1_starts_the_latest() -> Result<()> {
    across_downtime("sched-catchup1", 1).await
}

#[tokio::test]
async fn after_downtime_catch_up_3_starts_all_three() -> Result<()> {
    across_downtime("sched-catchup3", 3).await
}

#[tokio::test]
async fn two_replicas_never_create_a_run_twice() -> Result<()> {
    let Some(env) = env("sched-twins").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    // A second replica, without leader election, against the same namespace.
    let _twin = start_controller(client.clone(), ns);
    bash_flow(client, ns, "hello", "echo hello").await?;
    let spec = json!({"schedule": "* * * * * *", "flowRef": {"name": "hello"},
                      "successfulRunsHistoryLimit": 50});
    create(client, ns, "twins", spec).await?;
    let instants = wait_until("eight runs", || async {
        let instants = scheduled(client, ns, "twins").await?;
        Ok((instants.len() >= 8).then_some(instants))
    })
    .await?;
    patch_spec(client, ns, "twins", json!({"suspend": true})).await?;
    let mut distinct = instants.clone();
    distinct.dedup();
    assert_eq!(distinct, instants, "one run per occurrence");
    // Each run was announced by the one replica whose create succeeded; the other met a 409.
    let runs = runs(client, ns, "twins").await?;
    let created = events(client, ns, "twins").await?;
    for run in &runs {
        let announced: i32 = created
            .iter()
            .filter(|(reason, _, note)| {
                reason == "Created" && note.contains(&format!("FlowRun {} ", run.name_any()))
            })
            .map(|(_, n, _)| n)
            .sum();
        // Events are written in the background: only a second announcement would be wrong.
        assert!(
            announced <= 1,
            "{} announced {announced} times",
            run.name_any()
        );
    }
    let logs = String::from_utf8_lossy(&controller_logs().lock().unwrap()).into_owned();
    assert!(
        logs.lines()
            .any(|l| l.contains("the run exists already") && l.contains("twins-")),
        "the replicas never raced for a run: the test did not test the 409 path"
    );
    Ok(())
}

#[tokio::test]
async fn history_beyond_the_limits_is_deleted_oldest_first() -> Result<()> {
    let Some(env) = env("sched-history").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "hello", "echo hello").await?;
    let spec = json!({"schedule": "*/2 * * * * *", "flowRef": {"name": "hello"},
                      "successfulRunsHistoryLimit": 2});
    create(client, ns, "short", spec).await?;
    wait_until("five runs were created", || async {
        Ok((status(client, ns, "short").await?.created >= 5).then_some(()))
    })
    .await?;
    patch_spec(client, ns, "short", json!({"suspend": true})).await?;
    let created = status(client, ns, "short").await?.created as usize;
    let kept = wait_until("only the two newest runs are left", || async {
        let runs = runs(client, ns, "short").await?;
        let ended = runs.iter().all(|r| {
            r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(RunPhase::has_ended)
        });
        Ok((ended && runs.len() == 2).then_some(runs))
    })
    .await?;
    let last = status(client, ns, "short")
        .await?
        .last_schedule_time
        .as_ref()
        .map(from_time)
        .context("last")?;
    let newest: Vec<String> = [2, 0]
        .iter()
        .map(|back| format!("short-{}", (last - TimeDelta::seconds(*back)).timestamp()))
        .collect();
    let kept: Vec<String> = kept.iter().map(|r| r.name_any()).collect();
    assert!(created >= 5);
    assert_eq!(kept, newest);
    Ok(())
}
