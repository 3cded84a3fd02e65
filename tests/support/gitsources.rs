//! GitSource tests' shared parts: a flows repository the test commits in and the controller
//! fetches (`file://`, or a server of `git_servers`), manifests to write there, and waits on a
//! GitSource's status.

#![allow(dead_code, reason = "the GitSource test binaries each use part of it")]

use super::cluster::wait::{TIMEOUT, wait_until};
use super::git_repos::Repo;
use anyhow::Result;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, Client};
use millrace::k8s::api::gitsource::{GitSource, GitSourceStatus, revision_commit};
use serde_json::{Value, json};
use std::path::PathBuf;
use tempfile::TempDir;

/// A work repository and the bare repository it is pushed to.
pub struct Published {
    pub repo: Repo,
    pub bare: PathBuf,
    pub dir: TempDir,
}

impl Published {
    pub fn new() -> Published {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let repo = Repo::init(&dir.path().join("work"));
        let bare = dir.path().join("flows.git");
        Published { repo, bare, dir }
    }

    /// The `file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits everything written and pushes it; returns the commit.
    pub fn publish(&self, message: &str) -> String {
        let sha = self.repo.commit(message);
        self.repo.push_to(&self.bare);
        sha
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Published {
        self.repo.write(path, content);
        self
    }

    pub fn remove(&self, path: &str) -> &Published {
        self.repo.remove(path);
        self
    }
}

/// A Flow manifest whose one bash step runs `script`.
pub fn flow(name: &str, summary: &str, script: &str) -> String {
    let manifest = json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"summary": summary, "value": {"modules": [{"id": "say", "value": {
            "type": "rawscript", "language": "bash", "content": script, "input_transforms": {},
        }}]}},
    });
    serde_yaml_ng::to_string(&manifest).expect("YAML")
}

/// A Schedule manifest starting Flow `flow` by `cron`, one run at a time.
pub fn schedule(name: &str, flow: &str, cron: &str) -> String {
    let manifest = json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": name},
        "spec": {"schedule": cron, "flowRef": {"name": flow}, "concurrencyPolicy": "Forbid",
            "successfulRunsHistoryLimit": 1},
    });
    serde_yaml_ng::to_string(&manifest).expect("YAML")
}

/// Creates GitSource `name` with `spec`.
pub async fn create(client: &Client, ns: &str, name: &str, spec: Value) -> Result<()> {
    let source: GitSource = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "GitSource",
        "metadata": {"name": name}, "spec": spec,
    }))?;
    Api::<GitSource>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &source)
        .await?;
    Ok(())
}

pub async fn status(client: &Client, ns: &str, name: &str) -> Result<GitSourceStatus> {
    let source = Api::<GitSource>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    Ok(source.status.unwrap_or_default())
}

fn is(revision: &Option<String>, commit: &str) -> bool {
    revision.as_deref().and_then(revision_commit) == Some(commit)
}

/// Waits until the status of GitSource `name` passes `check`, and returns what it gave.
async fn status_until<T>(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(GitSourceStatus) -> Option<T>,
) -> Result<T> {
    wait_until(&format!("GitSource {name} {what}"), TIMEOUT, || async {
        Ok(check(status(client, ns, name).await?))
    })
    .await
}

/// Waits until GitSource `name` has applied `commit`.
pub async fn applied(
    client: &Client,
    ns: &str,
    name: &str,
    commit: &str,
) -> Result<GitSourceStatus> {
    status_until(client, ns, name, &format!("applies {commit}"), |status| {
        is(&status.last_applied_revision, commit).then_some(status)
    })
    .await
}

/// Waits until GitSource `name` has tried `commit` and refused it.
pub async fn refused(
    client: &Client,
    ns: &str,
    name: &str,
    commit: &str,
) -> Result<GitSourceStatus> {
    status_until(client, ns, name, &format!("refuses {commit}"), |status| {
        let tried = is(&status.last_attempted_revision, commit);
        let applied = is(&status.last_applied_revision, commit);
        (tried && !applied).then_some(status)
    })
    .await
}

/// Waits until GitSource `name`'s Ready condition has `reason`.
pub async fn ready_reason(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
) -> Result<Condition> {
    status_until(client, ns, name, &format!("is {reason}"), |status| {
        condition(&status, "Ready").filter(|c| c.reason == reason)
    })
    .await
}

pub fn condition(status: &GitSourceStatus, type_: &str) -> Option<Condition> {
    status.conditions.iter().find(|c| c.type_ == type_).cloned()
}
