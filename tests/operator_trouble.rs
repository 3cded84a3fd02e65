//! Failures that used to leave a FlowRun "Running" with nothing to show: a reconcile the API
//! server refuses (the controllers run as a ServiceAccount whose Role lacks one rule, then
//! granted) is shown on the run with the reason and what to do; a pod that a ResourceQuota keeps
//! from being created fails its attempt after the pending timeout, so the retry runs.

mod support {
    pub mod accounts;
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::Result;
use k8s_openapi::api::core::v1::{ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::{Value, json};
use support::accounts::client_as;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::step;
use support::operator::{Controllers, Harness, config};

/// What the operator needs in its namespace; `jobs` has only the verbs given.
fn rules(job_verbs: &[&str]) -> Value {
    json!([
        {"apiGroups": ["millrace.dev"], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["configmaps", "secrets", "pods", "pods/log"], "verbs": ["*"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["*"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": job_verbs},
    ])
}

#[tokio::test]
async fn a_missing_rbac_rule_shows_on_the_run_and_the_run_goes_on_once_granted() -> Result<()> {
    let Some(t) = Harness::without_controllers("trouble-rbac").await? else {
        return Ok(());
    };
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "op"}}))?;
    t.create(&account).await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "op"},
        "rules": rules(&["get", "list", "watch", "patch", "delete"]),
    }))?;
    t.create(&role).await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "op"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": t.ns}],
    }))?;
    t.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let operator = client_as(t.cp, &t.ns, "op").await?;
    let _controllers = Controllers::start(operator, config(Some(&t.ns)));

    t.modules("hello", json!([step("say", "bash", "echo hi", json!({}))]))
        .await?;
    t.run("hello-1", "hello", json!({})).await?;
    let stalled = wait_until("the run shows the refusal", TIMEOUT, || async {
        let run = t.api::<FlowRun>().get("hello-1").await?;
        Ok(run.status.and_then(|s| {
            s.conditions
                .into_iter()
                .find(|c| c.type_ == "Stalled" && c.reason == "Forbidden")
        }))
    })
    .await?;
    assert!(
        stalled.message.contains("cannot create resource \"jobs\"")
            && stalled.message.contains("grant it in the operator's Role"),
        "{}",
        stalled.message
    );

    let grant = json!({"rules": rules(&["get", "list", "watch", "patch", "delete", "create"])});
    t.api::<Role>()
        .patch("op", &PatchParams::default(), &Patch::Merge(&grant))
        .await?;
    let status = t.finished("hello-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("hi")));
    assert!(
        status.conditions.iter().all(|c| c.reason != "Forbidden"),
        "{:#?}",
        status.conditions
    );
    Ok(())
}

#[tokio::test]
async fn a_pod_a_quota_refuses_fails_its_attempt_after_the_pending_timeout_and_the_retry_runs()
-> Result<()> {
    let Some(t) = support::operator::setup("trouble-quota").await? else {
        return Ok(());
    };
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}},
    }))?;
    t.create(&quota).await?;
    // Enforced once the quota controller has counted what the namespace uses.
    wait_until("the quota is counted", TIMEOUT, || async {
        let quota = t.api::<ResourceQuota>().get("no-pods").await?;
        Ok(quota.status.and_then(|s| s.used).map(drop))
    })
    .await?;
    let mut module = step("say", "bash", "echo hi", json!({}));
    module["retry"] = json!({"constant": {"attempts": 5, "seconds": 2}});
    let spec = json!({"summary": "quota", "value": {"modules": [module]},
        "runtime": {"podPendingTimeoutSeconds": 2}});
    t.flow("quota", None, spec).await?;
    t.run("quota-1", "quota", json!({})).await?;
    // The first attempt's pod is never created: it fails, and the retry gets a Job of its own.
    let retried = wait_until("a retry after the pending timeout", TIMEOUT, || async {
        Ok((t.jobs("quota-1").await?.len() >= 2 || attempts(&t).await? >= 2).then_some(()))
    })
    .await;
    if let Err(error) = retried {
        let run = t.api::<FlowRun>().get("quota-1").await?;
        return Err(error.context(format!("{:#?}", run.status)));
    }
    t.api::<ResourceQuota>()
        .delete("no-pods", &Default::default())
        .await?;
    let status = t.finished("quota-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert!(status.steps[0].attempts >= 2, "{status:#?}");
    assert_eq!(status.result, Some(json!("hi")));
    Ok(())
}

async fn attempts(t: &Harness) -> Result<u32> {
    let run = t.api::<FlowRun>().get("quota-1").await?;
    Ok(run
        .status
        .and_then(|s| s.steps.first().map(|s| s.attempts))
        .unwrap_or(0))
}
