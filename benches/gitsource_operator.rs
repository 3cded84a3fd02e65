//! A GitSource on the test control plane: how long a repository of FLOWS flows takes to sync the
//! first time, a re-sync of the same revision, and a commit changing one flow; write requests of
//! each (counted on the controllers' client); the bench process's peak memory.
//!
//! `MILLRACE_TESTBIN=$(scripts/testbin) cargo bench --bench gitsource_operator [-- FLOWS]`

#[path = "../tests/support"]
mod support {
    pub mod cluster;
    pub mod git_repos;
    pub mod gitsources;
    pub mod kill_switch;
    pub mod operator;
}

use anyhow::{Result, bail};
use kube::Api;
use kube::api::{Patch, PatchParams};
use millrace::k8s::api::GitSource;
use millrace::k8s::api::gitsource::REQUESTED_AT_ANNOTATION;
use serde_json::json;
use std::time::{Duration, Instant};
use support::cluster::wait::{TIMEOUT, wait_until};
use support::gitsources::{Published, applied, create, flow, status};
use support::kill_switch::KillSwitch;
use support::operator::{Controllers, config, install_crds};

/// Peak resident memory of this process (the controllers run in it), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let flows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let Some(cp) = support::cluster::control_plane().await else {
        bail!("set MILLRACE_TESTBIN=$(scripts/testbin)");
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("bench-gitsource").await;
    let git = Published::new();
    for i in 0..flows {
        git.write(
            &format!("flows/f{i:05}.yaml"),
            flow(&format!("f{i:05}"), "v1", &format!("echo {i}")),
        );
    }
    let first = git.publish("flows");
    let switch = KillSwitch::new(cp.config().clone(), usize::MAX, false, 0);
    let _controllers = Controllers::start(switch.client.clone(), config(Some(&ns)));
    let before = peak_mib();

    let started = Instant::now();
    create(
        &client,
        &ns,
        "bench",
        json!({"url": git.url(), "interval": "1h"}),
    )
    .await?;
    applied(&client, &ns, "bench", &first).await?;
    let first_sync = started.elapsed();
    settle(&switch).await?;
    let first_writes = switch.writes();

    // The same revision again, asked for with the annotation `millrace sync now` sets.
    let sources: Api<GitSource> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "again"}}});
    sources
        .patch("bench", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_until("the re-sync", TIMEOUT, || async {
        let status = status(&client, &ns, "bench").await?;
        Ok((status.last_handled_reconcile_at.as_deref() == Some("again")).then_some(()))
    })
    .await?;
    let resync = started.elapsed();
    settle(&switch).await?;
    // The one write of a re-sync asked for by annotation: the status that answers it.
    let resync_writes = switch.writes() - first_writes;

    git.write("flows/f00000.yaml", flow("f00000", "v2", "echo changed"));
    let second = git.publish("one flow changed");
    let started = Instant::now();
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: "changed"}}});
    sources
        .patch("bench", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    applied(&client, &ns, "bench", &second).await?;
    let change = started.elapsed();
    settle(&switch).await?;
    let change_writes = switch.writes() - first_writes - resync_writes;

    println!("{flows} flows, in one GitSource, file:// repository");
    println!(
        "first sync   {:>8.2} s  {first_writes:>6} writes (every controller's: dry-run + apply per object, the Flow controller's statuses)",
        first_sync.as_secs_f64()
    );
    println!(
        "re-sync      {:>8.2} s  {resync_writes:>6} writes (same revision, asked by annotation)",
        resync.as_secs_f64()
    );
    println!(
        "one changed  {:>8.2} s  {change_writes:>6} writes",
        change.as_secs_f64()
    );
    println!(
        "peak RSS of the bench process (controllers, pod runner) {:.0} MiB, {:.0} MiB before the sync",
        peak_mib(),
        before
    );
    Ok(())
}

/// Waits until no write has been made for a second.
async fn settle(switch: &KillSwitch) -> Result<()> {
    wait_until("writes settle", TIMEOUT, || async {
        let before = switch.writes();
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok((switch.writes() == before).then_some(()))
    })
    .await
}
