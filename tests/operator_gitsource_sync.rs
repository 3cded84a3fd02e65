//! GitSource syncs seen from outside: a 500-flow repository syncs, and re-syncs of an unchanged
//! revision make no write request (counted on the controllers' client, as the restart tests count
//! them); `millrace sync diff` and `sync now` against the control plane.

mod support {
    pub mod cluster;
    pub mod git_repos;
    pub mod gitsources;
    pub mod kill_switch;
    pub mod operator;
}

use anyhow::{Context, Result};
use kube::Api;
use kube::api::{Patch, PatchParams};
use millrace::k8s::api::{Flow, GitSource};
use millrace::k8s::operator::metrics::Metrics;
use serde_json::{Value, json};
use std::process::Output;
use std::sync::Arc;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::gitsources::{Published, applied, create, flow, status};
use support::kill_switch::KillSwitch;
use support::operator::{Controllers, Harness, config};

/// Reconciles of the GitSource controller so far, from the metrics.
fn syncs(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix("millrace_reconciles_total{controller=\"gitsource\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_500_flow_repository_syncs_and_an_unchanged_resync_writes_nothing() -> Result<()> {
    let Some(t) = Harness::without_controllers("gs-scale").await? else {
        return Ok(());
    };
    let git = Published::new();
    for i in 0..500 {
        git.write(
            &format!("flows/f{i:03}.yaml"),
            flow(&format!("f{i:03}"), "v1", &format!("echo {i}")),
        );
    }
    let commit = git.publish("500 flows");
    // Never trips: only counts the controllers' writes.
    let switch = KillSwitch::new(t.cp.config().clone(), usize::MAX, false, 0);
    let metrics = Arc::new(Metrics::default());
    let settings = millrace::k8s::operator::Config {
        metrics: metrics.clone(),
        ..config(Some(&t.ns))
    };
    let controllers = Controllers::start(switch.client.clone(), settings);
    create(
        &t.client,
        &t.ns,
        "many",
        json!({"url": git.url(), "interval": "1s"}),
    )
    .await?;
    let synced = applied(&t.client, &t.ns, "many", &commit).await?;
    assert_eq!(synced.inventory.len(), 500);

    // Three more syncs of the same revision over the same objects: not one write.
    wait_until("the first sync's own writes settle", TIMEOUT, || async {
        let before = switch.writes();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        Ok((switch.writes() == before).then_some(()))
    })
    .await?;
    let (writes, reconciles) = (switch.writes(), syncs(&metrics));
    wait_until("three more syncs", TIMEOUT, || async {
        Ok((syncs(&metrics) >= reconciles + 3).then_some(()))
    })
    .await?;
    assert_eq!(switch.writes(), writes, "an unchanged re-sync wrote");
    assert_eq!(status(&t.client, &t.ns, "many").await?, synced);

    controllers.stop().await?;
    Ok(())
}

/// `millrace ARGS` with the harness namespace as the kubeconfig's default.
async fn millrace(t: &Harness, dir: &std::path::Path, args: &[&str]) -> Result<Output> {
    t.cp.write_kubeconfig(&dir.join("kubeconfig"), &t.ns)?;
    Ok(tokio::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await?)
}

fn json_of(output: &Output) -> Result<Value> {
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap_or("?"),
                e["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test]
async fn sync_diff_shows_the_next_sync_and_sync_now_runs_it() -> Result<()> {
    let Some(t) = Harness::start("gs-cli").await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let git = Published::new();
    git.write("a.yaml", flow("a", "v1", "echo a"))
        .write("b.yaml", flow("b", "v1", "echo b"))
        .write("same.yaml", flow("same", "v1", "echo same"));
    let first = git.publish("three flows");
    // An hour between syncs: only the first one and `sync now` sync.
    create(
        &t.client,
        &t.ns,
        "repo",
        json!({"url": git.url(), "interval": "1h"}),
    )
    .await?;
    applied(&t.client, &t.ns, "repo", &first).await?;

    git.write("a.yaml", flow("a", "v2", "echo a"))
        .remove("b.yaml")
        .write("c.yaml", flow("c", "v1", "echo c"));
    let second = git.publish("change a, drop b, add c");
    let diff = millrace(&t, dir.path(), &["sync", "diff", "repo", "--json"]).await?;
    assert_eq!(diff.status.code(), Some(0), "{diff:?}");
    let report = json_of(&diff)?;
    assert!(
        report["revision"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&second),
        "{report:#}"
    );
    assert_eq!(names(&report["create"]), ["Flow c"]);
    assert_eq!(names(&report["update"]), ["Flow a"]);
    assert_eq!(report["update"][0]["fields"], json!(["spec.summary"]));
    assert_eq!(names(&report["prune"]), ["Flow b"]);
    assert_eq!(names(&report["unchanged"]), ["Flow same"]);
    // A diff changes nothing.
    assert_eq!(t.api::<Flow>().get("a").await?.spec.summary, "v1");
    let human = millrace(&t, dir.path(), &["sync", "diff", "repo"]).await?;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("update    Flow a  (a.yaml): spec.summary"),
        "{text}"
    );
    assert!(
        text.contains("1 to create, 1 to update, 1 to prune, 1 unchanged"),
        "{text}"
    );

    let now = millrace(&t, dir.path(), &["sync", "now", "repo", "--wait"]).await?;
    assert_eq!(now.status.code(), Some(0), "{now:?}");
    assert!(
        String::from_utf8_lossy(&now.stdout).contains("is applied: 3 Flows"),
        "{now:?}"
    );
    let synced = status(&t.client, &t.ns, "repo").await?;
    assert!(
        synced
            .last_applied_revision
            .unwrap_or_default()
            .ends_with(&second)
    );
    assert!(t.api::<Flow>().get_opt("b").await?.is_none());
    let after = json_of(&millrace(&t, dir.path(), &["sync", "diff", "repo", "--json"]).await?)?;
    assert_eq!(names(&after["unchanged"]).len(), 3, "{after:#}");
    assert!(names(&after["create"]).is_empty() && names(&after["update"]).is_empty());

    // A broken commit: diff exits 2 naming the file; sync now --wait exits 2 with the reason.
    git.write("broken.yaml", "kind: Flow\nmetadata: [\n");
    git.publish("broken");
    let broken = millrace(&t, dir.path(), &["sync", "diff", "repo", "--json"]).await?;
    assert_eq!(broken.status.code(), Some(2), "{broken:?}");
    assert_eq!(json_of(&broken)?["errors"][0]["file"], "broken.yaml");
    let refused = millrace(&t, dir.path(), &["sync", "now", "repo", "--wait"]).await?;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stdout).starts_with("ValidationFailed"),
        "{refused:?}"
    );
    // A suspended GitSource does nothing: a requested sync is not answered.
    let suspend = json!({"spec": {"suspend": true}});
    Api::<GitSource>::namespaced(t.client.clone(), &t.ns)
        .patch("repo", &PatchParams::default(), &Patch::Merge(&suspend))
        .await?;
    git.remove("broken.yaml")
        .write("d.yaml", flow("d", "v1", "echo d"));
    git.publish("fixed, while suspended");
    let args = ["sync", "now", "repo", "--wait", "--timeout", "3"];
    let suspended = millrace(&t, dir.path(), &args).await?;
    assert_eq!(suspended.status.code(), Some(1), "{suspended:?}");
    assert!(
        String::from_utf8_lossy(&suspended.stderr).contains("suspended"),
        "{suspended:?}"
    );
    assert!(t.api::<Flow>().get_opt("d").await?.is_none());
    let missing = millrace(&t, dir.path(), &["sync", "now", "nope"]).await?;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("GitSource \"nope\""),
        "{missing:?}"
    );
    Ok(())
}
