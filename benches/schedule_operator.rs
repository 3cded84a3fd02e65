//! Scheduling latency on the test control plane: from a per-second Schedule's scheduled instant
//! to its FlowRun being seen created (a watch on this machine's clock, so the figure includes
//! the watch's delivery; `creationTimestamp` has only whole seconds).
//!
//! `MILLRACE_TESTBIN=$(scripts/testbin) cargo bench --bench schedule_operator [-- RUNS]`

#[path = "../tests/support"]
mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use millrace::k8s::api::schedule::runs::scheduled_for;
use millrace::k8s::api::{FlowRun, Schedule};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::flows::step;
use support::operator::{Controllers, Harness};

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let Some(cp) = support::cluster::control_plane().await else {
        bail!("set MILLRACE_TESTBIN=$(scripts/testbin)");
    };
    let client = cp.client();
    support::operator::install_crds(&client).await?;
    let ns = cp.namespace("bench-schedule").await;
    let _runner = cp.pod_runner(&ns).await;
    let _controllers = Controllers::start(client.clone(), support::operator::config(Some(&ns)));
    Harness::attach(cp, &ns)
        .modules(
            "hello",
            json!([step("main", "bash", "echo hello", json!({}))]),
        )
        .await?;
    let schedule: Schedule = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule", "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * * *", "flowRef": {"name": "hello"},
                 "successfulRunsHistoryLimit": runs + 10},
    }))?;
    let flowruns: Api<FlowRun> = Api::namespaced(client.clone(), &ns);
    let mut seen = watcher(flowruns, watcher::Config::default())
        .applied_objects()
        .boxed();
    Api::<Schedule>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &schedule)
        .await?;
    let mut latency: BTreeMap<String, Duration> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(runs as u64 * 3 + 60);
    while latency.len() < runs {
        let next = tokio::time::timeout_at(deadline, seen.next()).await;
        let Ok(Some(run)) = next else {
            bail!("only {} runs seen", latency.len());
        };
        let run = run?;
        let at = DateTime::<Utc>::from(std::time::SystemTime::now());
        if let (Some(name), Some(scheduled)) = (run.metadata.name.clone(), scheduled_for(&run)) {
            latency
                .entry(name)
                .or_insert_with(|| (at - scheduled).to_std().unwrap_or_default());
        }
    }
    let mut sorted: Vec<Duration> = latency.into_values().collect();
    sorted.sort();
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "scheduling latency over {} per-second runs: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        sorted[sorted.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}
