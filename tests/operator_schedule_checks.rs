//! The Schedule controller on the real control plane, beyond timing: a missing Flow reported and
//! recovered from, `onFailure` after the second failure in a row, `suspend` and `pausedUntil`,
//! an invalid Schedule beside a valid one, the example manifest and `millrace schedule trigger`.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
    pub mod schedules;
}

use anyhow::{Context, Result, ensure};
use chrono::TimeDelta;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::schedule::from_time;
use millrace::k8s::api::schedule::runs::{HANDLER_LABEL, SCHEDULE_LABEL, TRIGGER_LABEL};
use millrace::k8s::api::{Flow, Schedule};
use millrace::schedule::SkipReason;
use serde_json::json;
use support::schedules::run_ended;
use support::schedules::{
    bash_flow, condition, create, env, event, now, patch_spec, runs, scheduled, status, wait_until,
};

#[tokio::test]
async fn a_missing_flow_is_reported_and_the_schedule_recovers_when_it_appears() -> Result<()> {
    let Some(env) = env("sched-noflow").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    let spec = json!({"schedule": "*/2 * * * * *", "flowRef": {"name": "later"}});
    create(client, ns, "waiting", spec).await?;
    let stalled = wait_until("the Schedule reports the missing Flow", || async {
        let status = status(client, ns, "waiting").await?;
        let stalled = condition(&status, "Stalled").filter(|c| c.0 == "True");
        Ok(stalled.filter(|_| status.skipped > 0))
    })
    .await?;
    assert_eq!(stalled.1, "FlowNotFound");
    assert!(
        stalled.2.contains("spec.flowRef") && stalled.2.contains("later"),
        "{stalled:?}"
    );
    let ready = condition(&status(client, ns, "waiting").await?, "Ready").context("Ready")?;
    assert_eq!(ready.0, "False");
    event(client, ns, "waiting", "FlowNotFound").await?;
    let skipped = event(client, ns, "waiting", "FlowMissing").await?;
    assert!(skipped.contains("later"), "{skipped}");
    assert!(scheduled(client, ns, "waiting").await?.is_empty());

    let appeared = now();
    bash_flow(client, ns, "later", "echo here").await?;
    let first = wait_until("a run after the Flow appeared", || async {
        Ok(scheduled(client, ns, "waiting").await?.first().copied())
    })
    .await?;
    // Nothing from the time it was missing is caught up.
    ensure!(
        first >= appeared - TimeDelta::seconds(1),
        "{first} caught up from before {appeared}"
    );
    let status = status(client, ns, "waiting").await?;
    assert_eq!(condition(&status, "Ready").context("Ready")?.0, "True");
    assert_eq!(condition(&status, "Stalled").context("Stalled")?.0, "False");
    patch_spec(client, ns, "waiting", json!({"suspend": true})).await?;
    Ok(())
}

#[tokio::test]
async fn on_failure_with_times_two_runs_after_the_second_failure_in_a_row() -> Result<()> {
    let Some(env) = env("sched-onfailure").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "flaky", "echo failing >&2; exit 3").await?;
    bash_flow(client, ns, "alert", "echo alert").await?;
    let spec = json!({"schedule": "*/3 * * * * *", "flowRef": {"name": "flaky"},
                      "concurrencyPolicy": "Forbid", "failedRunsHistoryLimit": 5,
                      "onFailure": {"flowRef": {"name": "alert"}, "times": 2,
                                    "inputs": {"channel": "ops"}}});
    create(client, ns, "nightly", spec).await?;
    // The first failure is handled without a handler run.
    let first = wait_until("the first failure is handled", || async {
        let status = status(client, ns, "nightly").await?;
        Ok((status.consecutive_failures >= 1).then(|| status.handled.clone()))
    })
    .await?;
    let all = runs(client, ns, "nightly").await?;
    assert!(
        all.iter().all(|r| !r.labels().contains_key(HANDLER_LABEL)),
        "a handler ran after the first failure: {:?}",
        all.iter().map(|r| r.name_any()).collect::<Vec<_>>()
    );
    let handler = wait_until("a handler run", || async {
        let runs = runs(client, ns, "nightly").await?;
        Ok(runs
            .into_iter()
            .find(|r| r.labels().contains_key(HANDLER_LABEL)))
    })
    .await?;
    patch_spec(client, ns, "nightly", json!({"suspend": true})).await?;
    // The handler run is created before the status that counts the failure is written.
    wait_until("the second failure is counted", || async {
        let status = status(client, ns, "nightly").await?;
        Ok((status.consecutive_failures >= 2).then_some(()))
    })
    .await?;
    // It handles the second failed run, not the first.
    let handled = handler.spec.inputs["run"]
        .as_str()
        .context("run")?
        .to_string();
    assert!(
        !first.contains(&handled),
        "handled the first failure {handled}"
    );
    assert_eq!(handler.name_any(), format!("{handled}-on-failure"));
    assert_eq!(handler.labels()[HANDLER_LABEL], "onFailure");
    assert_eq!(
        handler.spec.flow_ref.as_ref().context("flowRef")?.name,
        "alert"
    );
    let inputs = &handler.spec.inputs;
    assert_eq!(inputs["schedule"], "nightly");
    assert_eq!(inputs["channel"], "ops");
    assert!(
        inputs["scheduledFor"]
            .as_str()
            .is_some_and(|t| handled.ends_with(
                &chrono::DateTime::parse_from_rfc3339(t)
                    .unwrap()
                    .timestamp()
                    .to_string()
            )),
        "{inputs}"
    );
    assert!(inputs["error"].is_object(), "{inputs}");
    let note = event(client, ns, "nightly", "HandlerStarted").await?;
    assert!(
        note.contains("onFailure") && note.contains(&handled),
        "{note}"
    );
    let ended = run_ended(ns, &handler.name_any()).await?;
    assert_eq!(
        ended.status.and_then(|s| s.phase),
        Some(RunPhase::Succeeded)
    );
    Ok(())
}

#[tokio::test]
async fn suspend_and_paused_until_start_nothing_and_miss_nothing() -> Result<()> {
    let Some(env) = env("sched-hold").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "hello", "echo hello").await?;
    let suspended =
        json!({"schedule": "* * * * * *", "flowRef": {"name": "hello"}, "suspend": true});
    create(client, ns, "held", suspended).await?;
    let until = now() + TimeDelta::seconds(6);
    let paused = json!({"schedule": "* * * * * *", "flowRef": {"name": "hello"},
                        "pausedUntil": until.to_rfc3339()});
    create(client, ns, "paused", paused).await?;
    // The paused one starts at its pausedUntil, and nothing from before it.
    let first = wait_until("the paused Schedule starts after its pause", || async {
        Ok(scheduled(client, ns, "paused").await?.first().copied())
    })
    .await?;
    ensure!(
        first >= until - TimeDelta::seconds(1),
        "{first} is before {until}"
    );
    let paused = status(client, ns, "paused").await?;
    assert!(paused.skipped > 0, "{paused:#?}");
    assert_eq!(paused.missed, 0);
    assert_eq!(
        paused.last_skip.context("lastSkip")?.reason,
        SkipReason::Paused
    );
    event(client, ns, "paused", "Paused").await?;

    let held = status(client, ns, "held").await?;
    assert!(scheduled(client, ns, "held").await?.is_empty());
    assert!(held.skipped > 0 && held.missed == 0, "{held:#?}");
    assert_eq!(
        held.last_skip.clone().context("lastSkip")?.reason,
        SkipReason::Suspended
    );
    assert_eq!(condition(&held, "Ready").context("Ready")?.1, "Suspended");
    event(client, ns, "held", "Suspended").await?;
    // Resumed: the next occurrence starts, none of the suspended ones is caught up.
    let resumed = now();
    patch_spec(client, ns, "held", json!({"suspend": false})).await?;
    let first = wait_until("the resumed Schedule starts", || async {
        Ok(scheduled(client, ns, "held").await?.first().copied())
    })
    .await?;
    ensure!(
        first >= resumed - TimeDelta::seconds(1),
        "{first} caught up from before {resumed}"
    );
    assert_eq!(status(client, ns, "held").await?.missed, 0);
    for name in ["held", "paused"] {
        patch_spec(client, ns, name, json!({"suspend": true})).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_invalid_schedule_is_reported_beside_a_valid_one_that_keeps_running() -> Result<()> {
    let Some(env) = env("sched-invalid").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    bash_flow(client, ns, "hello", "echo hello").await?;
    let never = json!({"schedule": "0 0 30 2 *", "flowRef": {"name": "hello"}});
    create(client, ns, "never", never).await?;
    let nowhere = json!({"schedule": "* * * * * *", "timeZone": "Europe/Atlantis", "flowRef": {"name": "hello"}});
    create(client, ns, "nowhere", nowhere).await?;
    let typed =
        json!({"schedule": "* * * * * *", "flowRef": {"name": "hello"}, "inputs": {"n": "x"}});
    create(client, ns, "typed", typed).await?;
    Api::<Flow>::namespaced(client.clone(), ns)
        .patch(
            "hello",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"schema": {"type": "object",
                "properties": {"n": {"type": "integer"}}}}})),
        )
        .await?;
    create(
        client,
        ns,
        "good",
        json!({"schedule": "*/2 * * * * *", "flowRef": {"name": "hello"}}),
    )
    .await?;
    // The CRD refuses a catchUp above 100 outright.
    let greedy: Schedule = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule", "metadata": {"name": "greedy"},
        "spec": {"schedule": "* * * * *", "flowRef": {"name": "hello"}, "catchUp": 101}}))?;
    let refused = support::schedules::schedules(client, ns)
        .create(&PostParams::default(), &greedy)
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422),
        "{refused:?}"
    );

    for (name, reason, field) in [
        ("never", "InvalidSchedule", "spec.schedule"),
        ("nowhere", "InvalidTimeZone", "spec.timeZone"),
        ("typed", "InvalidInputs", "spec.inputs"),
    ] {
        let stalled = wait_until(&format!("{name} is Stalled"), || async {
            let status = status(client, ns, name).await?;
            Ok(condition(&status, "Stalled").filter(|c| c.0 == "True" && c.1 == reason))
        })
        .await?;
        assert!(stalled.2.contains(field), "{name}: {stalled:?}");
        event(client, ns, name, reason).await?;
    }
    wait_until("the valid Schedule runs twice", || async {
        Ok((scheduled(client, ns, "good").await?.len() >= 2).then_some(()))
    })
    .await?;
    for name in ["never", "nowhere", "typed"] {
        assert!(
            scheduled(client, ns, name).await?.is_empty(),
            "{name} started a run"
        );
    }
    patch_spec(client, ns, "good", json!({"suspend": true})).await?;
    Ok(())
}

#[tokio::test]
async fn the_example_schedule_applies_and_trigger_starts_a_run_now() -> Result<()> {
    let Some(env) = env("sched-example").await? else {
        return Ok(());
    };
    let (client, ns) = (&env.client, env.ns.as_str());
    let flow: Flow = serde_yaml_ng::from_str(&std::fs::read_to_string(
        "examples/kubernetes/hello.flow.yaml",
    )?)?;
    Api::<Flow>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &flow)
        .await?;
    let schedule: Schedule = serde_yaml_ng::from_str(&std::fs::read_to_string(
        "examples/kubernetes/nightly.schedule.yaml",
    )?)?;
    support::schedules::schedules(client, ns)
        .create(&PostParams::default(), &schedule)
        .await?;
    let status = wait_until("the example Schedule is Ready", || async {
        let status = status(client, ns, "nightly").await?;
        Ok(condition(&status, "Ready")
            .filter(|c| c.0 == "True")
            .map(|_| status))
    })
    .await?;
    let next = from_time(&status.next_schedule_times[0]).with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(next.format("%M").to_string(), "30", "{next}");

    let millrace = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
            .args(args)
            .env("KUBECONFIG", env.dir.path().join("kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
    };
    let output = millrace(&["schedule", "trigger", "nightly"])?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rest = stdout
        .strip_prefix("nightly-manual-")
        .context(stdout.clone())?;
    let (seconds, letters) = rest.split_once('-').context(stdout.clone())?;
    assert!(
        seconds.parse::<i64>().is_ok()
            && letters.len() == 6
            && letters.chars().all(|c| c.is_ascii_lowercase()),
        "{stdout}"
    );
    let run = run_ended(ns, &stdout).await?;
    assert_eq!(run.labels()[SCHEDULE_LABEL], "nightly");
    assert_eq!(run.labels()[TRIGGER_LABEL], "manual");
    assert_eq!(run.owner_references()[0].name, "nightly");
    assert_eq!(run.spec.inputs, json!({"name": "night shift"}));
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    // The Schedule counts it among its active runs, not among the runs it created.
    assert_eq!(
        support::schedules::status(client, ns, "nightly")
            .await?
            .created,
        0
    );

    let output = millrace(&["schedule", "trigger", "missing", "-n", ns])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Schedule \"missing\" not found") && stderr.contains(ns),
        "{stderr}"
    );
    Ok(())
}
