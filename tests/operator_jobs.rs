//! What a step attempt's Job is, on the real control plane: one pod that is never replaced, the
//! arguments it started with, and only the ServiceAccounts and Secrets the operator allows.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{expr, step};
use support::operator::{Controllers, Harness, config, setup};

/// A fresh directory for the files a step and its test signal each other with.
fn signals() -> Result<PathBuf> {
    Ok(tempfile::tempdir()?.keep())
}

async fn exists(what: &str, path: &Path) -> Result<()> {
    wait_until(what, TIMEOUT, || async { Ok(path.exists().then_some(())) }).await
}

/// The attempt label of a Job.
fn attempt(job: &Job) -> &str {
    job.labels()
        .get("millrace.dev/attempt")
        .map_or("", String::as_str)
}

#[tokio::test]
async fn a_deleted_pod_fails_its_attempt_and_the_retry_runs_as_attempt_2() -> Result<()> {
    let Some(t) = setup("jobs-lost-pod").await? else {
        return Ok(());
    };
    let dir = signals()?;
    let started = dir.join("started");
    // The first attempt waits until its pod is deleted; any later one (or a replacement pod of
    // the first attempt's Job) returns at once.
    let code = format!(
        "if [ -e {s} ]; then echo again; else touch {s}; sleep 300; fi",
        s = started.display()
    );
    let mut slow = step("slow", "bash", &code, json!({}));
    slow["retry"] = json!({"constant": {"attempts": 1, "seconds": 1}});
    t.modules("lost", json!([slow])).await?;
    t.run("lost-1", "lost", json!({})).await?;
    exists("the first attempt runs", &started).await?;

    let pods = t.api::<Pod>();
    let listed = pods
        .list(&ListParams::default().labels("millrace.dev/run=lost-1"))
        .await?;
    let [pod] = listed.items.as_slice() else {
        anyhow::bail!("one pod expected: {:?}", listed.items);
    };
    pods.delete(&pod.name_any(), &DeleteParams::default())
        .await?;

    let status = t.finished("lost-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("again")));
    assert_eq!(status.steps[0].attempts, 2, "{status:#?}");
    let mut jobs = t.jobs("lost-1").await?;
    jobs.sort_by(|a, b| attempt(a).cmp(attempt(b)));
    let attempts: Vec<&str> = jobs.iter().map(attempt).collect();
    assert_eq!(attempts, ["1", "2"]);
    // The API server keeps both policies (an older one, or one with their features off, drops
    // them): with them a lost pod counts as failed once it has stopped, and is never replaced.
    let spec = jobs[0].spec.as_ref().context("spec")?;
    assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
    let policy = spec
        .pod_failure_policy
        .as_ref()
        .context("podFailurePolicy")?;
    assert_eq!(policy.rules[0].action, "FailJob");
    let first = jobs[0].status.clone().context("status")?;
    assert_eq!(first.failed, Some(1), "{first:#?}");
    assert_eq!(first.succeeded.unwrap_or(0), 0, "{first:#?}");
    // One pod per attempt: the first attempt's Job made no replacement.
    for job in &jobs {
        let name = job.name_any();
        let ran: Vec<_> = t
            .executions()
            .into_keys()
            .filter(|pod| pod.starts_with(&format!("{name}-")))
            .collect();
        assert_eq!(ran.len(), 1, "Job {name} ran pods {ran:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_running_attempt_keeps_its_arguments_when_their_secret_key_is_deleted() -> Result<()> {
    let Some(t) = setup("jobs-args-kept").await? else {
        return Ok(());
    };
    let variables: Secret = serde_json::from_value(json!({
        "metadata": {"name": "millrace-variables"},
        "stringData": {"u.test.token": "t0ken"},
    }))?;
    t.create(&variables).await?;
    let dir = signals()?;
    let (started, go) = (dir.join("started"), dir.join("go"));
    let code = format!(
        "import os, time\n\ndef main(token):\n    open({started:?}, 'w').close()\n    while not os.path.exists({go:?}):\n        time.sleep(0.05)\n    return token",
        started = started.display().to_string(),
        go = go.display().to_string(),
    );
    let uses = step(
        "uses",
        "python3",
        &code,
        json!({"token": expr("variable('u/test/token')")}),
    );
    t.modules("kept", json!([uses])).await?;
    t.run("kept-1", "kept", json!({})).await?;
    exists("the step runs", &started).await?;

    let remove = json!({"data": {"u.test.token": null}});
    t.api::<Secret>()
        .patch(
            "millrace-variables",
            &PatchParams::default(),
            &Patch::Merge(&remove),
        )
        .await?;
    // A change of the spec the running run ignores (its inputs were read when it began): its
    // status catches up with the new generation only in a reconcile that began after the key
    // was gone.
    let runs = t.api::<FlowRun>();
    let touch = json!({"spec": {"inputs": {"ignored": true}}});
    let touched = runs
        .patch("kept-1", &PatchParams::default(), &Patch::Merge(&touch))
        .await?;
    let generation = touched.metadata.generation;
    wait_until("a reconcile sees the key gone", TIMEOUT, || async {
        let run = runs.get("kept-1").await?;
        let seen = run.status.and_then(|s| s.observed_generation);
        Ok((seen == generation).then_some(()))
    })
    .await?;
    let run = runs.get("kept-1").await?;
    let phase = run.status.as_ref().and_then(|s| s.phase);
    assert_eq!(phase, Some(RunPhase::Running), "{:#?}", run.status);

    std::fs::write(&go, "")?;
    let status = t.finished("kept-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("t0ken")));
    Ok(())
}

/// An inline FlowRun `name` of one bash step with `runtime`.
async fn inline_run(t: &Harness, name: &str, runtime: Value) -> Result<()> {
    let run: FlowRun = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": name},
        "spec": {"flow": {"summary": name, "runtime": runtime, "value": {"modules": [
            step("env", "bash", "echo \"${FROM_SECRET:-unset}\"", json!({}))]}}},
    }))?;
    t.create(&run).await?;
    Ok(())
}

/// The message of the run's `Ready` condition once it has ended.
async fn refusal(t: &Harness, name: &str) -> Result<(Option<RunPhase>, String, String)> {
    let status = t.finished(name).await?;
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let ready = ready.context("a Ready condition")?;
    Ok((status.phase, ready.reason.clone(), ready.message.clone()))
}

#[tokio::test]
async fn steps_may_use_only_the_service_accounts_and_secrets_the_operator_allows() -> Result<()> {
    let Some(t) = Harness::without_controllers("jobs-allowed").await? else {
        return Ok(());
    };
    let mut settings = config(Some(&t.ns));
    settings.allowed.service_accounts.insert("reporter".into());
    settings.allowed.secrets.insert("smtp".into());
    let _controllers = Controllers::start(t.client.clone(), settings);
    let reporter: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "reporter"}}))?;
    t.create(&reporter).await?;
    for (secret, value) in [("smtp", "from smtp"), ("cloud", "from cloud")] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": secret}, "stringData": {"FROM_SECRET": value},
        }))?;
        t.create(&secret).await?;
    }

    inline_run(&t, "account", json!({"serviceAccountName": "admin"})).await?;
    let (phase, reason, message) = refusal(&t, "account").await?;
    assert_eq!(
        (phase, reason.as_str()),
        (Some(RunPhase::Failed), "NotAllowed")
    );
    assert!(
        message.starts_with("spec.flow.runtime.serviceAccountName: ServiceAccount admin is not"),
        "{message}"
    );
    assert!(message.contains("--allowed-service-accounts"), "{message}");

    let cloud = json!({"steps": {"env": {"envFrom": [{"secretRef": {"name": "cloud"}}]}}});
    inline_run(&t, "secret", cloud).await?;
    let (phase, reason, message) = refusal(&t, "secret").await?;
    assert_eq!(
        (phase, reason.as_str()),
        (Some(RunPhase::Failed), "NotAllowed")
    );
    assert!(
        message.starts_with("spec.flow.runtime.steps.env.envFrom[0].secretRef.name: Secret cloud"),
        "{message}"
    );
    assert!(message.contains("--allowed-secrets"), "{message}");
    assert!(t.jobs("account").await?.is_empty() && t.jobs("secret").await?.is_empty());

    // A Flow refers to the same settings as an inline run, under its own name.
    let flow = json!({"summary": "f", "runtime": {"envFrom": [{"secretRef": {"name": "cloud"}}]},
        "value": {"modules": [step("env", "bash", "echo hi", json!({}))]}});
    t.flow("cloudy", None, flow).await?;
    t.run("cloudy-1", "cloudy", json!({})).await?;
    let (_, reason, message) = refusal(&t, "cloudy-1").await?;
    assert_eq!(reason, "NotAllowed");
    assert!(
        message.starts_with("Flow cloudy spec.runtime.envFrom[0].secretRef.name: Secret cloud"),
        "{message}"
    );

    // Allowed ones run.
    let allowed = json!({"serviceAccountName": "reporter",
        "envFrom": [{"secretRef": {"name": "smtp"}}]});
    inline_run(&t, "allowed", allowed).await?;
    let status = t.finished("allowed").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("from smtp")));
    let jobs = t.jobs("allowed").await?;
    let pod = jobs[0].spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let account = pod.and_then(|p| p.service_account_name.as_deref());
    assert_eq!(account, Some("reporter"));
    Ok(())
}
