//! The operator on the test control plane: API requests per step, and the time from a step's pod
//! finishing to the next step's Job being created.
//!
//! `MILLRACE_TESTBIN=$(scripts/testbin) cargo bench --bench operator [-- STEPS]`

#[path = "../tests/support"]
mod support {
    pub mod cluster;
    pub mod operator;
}

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::operator::Config;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::operator::{Controllers, Harness};

type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

/// When each step's pod was seen finished and each step's Job was seen created, on one clock.
#[derive(Default, Clone)]
struct Seen {
    finished: BTreeMap<String, Instant>,
    created: BTreeMap<String, Instant>,
}

/// `GET configmaps`, `LIST jobs`, `WATCH pods`, `PATCH flowruns/status`, …
fn request_kind(method: &http::Method, uri: &http::Uri) -> String {
    let query = uri.query().unwrap_or_default();
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]] or /apis/G/V/namespaces/NS/RESOURCE[/NAME[/SUB]]
    let after_ns = segments
        .iter()
        .position(|s| *s == "namespaces")
        .map(|i| &segments[i + 2..])
        .unwrap_or(&[]);
    let resource = match after_ns {
        [resource] => resource.to_string(),
        [resource, _name] => resource.to_string(),
        [resource, _name, sub, ..] => format!("{resource}/{sub}"),
        [] => segments.last().copied().unwrap_or("?").to_string(),
    };
    let verb = match (method.as_str(), after_ns.len()) {
        ("GET", 1) if query.contains("watch=true") => "WATCH",
        ("GET", 1) => "LIST",
        (m, _) => m,
    };
    format!("{verb} {resource}")
}

fn counted_client(cp: &support::cluster::ControlPlane, counts: Counts) -> Result<Client> {
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let kind = request_kind(req.method(), req.uri());
        *counts.lock().unwrap().entry(kind).or_default() += 1;
        req
    });
    Ok(kube::client::ClientBuilder::try_from(cp.config().clone())?
        .with_layer(&layer)
        .build())
}

#[tokio::main]
async fn main() -> Result<()> {
    let steps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let Some(t) = Harness::without_controllers("bench").await? else {
        bail!("no control plane binaries: set MILLRACE_TESTBIN=$(scripts/testbin)");
    };
    let (client, ns) = (t.client.clone(), t.ns.clone());
    let counts: Counts = Arc::default();
    let config = Config {
        namespace: Some(ns.clone()),
        ..Config::default()
    };
    let _controllers = Controllers::start(counted_client(t.cp, counts.clone())?, config);

    let seen: Arc<Mutex<Seen>> = Arc::default();
    let jobs = watcher(
        Api::<Job>::namespaced(client.clone(), &ns),
        watcher::Config::default(),
    )
    .applied_objects();
    let pods = watcher(
        Api::<Pod>::namespaced(client.clone(), &ns),
        watcher::Config::default(),
    )
    .applied_objects();
    let seen_jobs = seen.clone();
    tokio::spawn(jobs.for_each(move |job| {
        if let Ok(job) = job {
            let step = job
                .labels()
                .get("millrace.dev/step")
                .cloned()
                .unwrap_or_default();
            seen_jobs
                .lock()
                .unwrap()
                .created
                .entry(step)
                .or_insert_with(Instant::now);
        }
        async {}
    }));
    let seen_pods = seen.clone();
    tokio::spawn(pods.for_each(move |pod| {
        if let Ok(pod) = pod {
            let done = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
                });
            if done {
                let step = pod
                    .labels()
                    .get("millrace.dev/step")
                    .cloned()
                    .unwrap_or_default();
                seen_pods
                    .lock()
                    .unwrap()
                    .finished
                    .entry(step)
                    .or_insert_with(Instant::now);
            }
        }
        async {}
    }));

    let modules: Vec<_> = (0..steps)
        .map(|i| json!({"id": format!("s{i:03}"), "value": {
            "type": "rawscript", "language": "bash", "content": format!("echo {i}"), "input_transforms": {}}}))
        .collect();
    t.modules("chain", json!(modules)).await?;
    let runs = t.api::<FlowRun>();
    let started = Instant::now();
    counts.lock().unwrap().clear();
    t.run("chain-1", "chain", json!({})).await?;
    loop {
        let phase = runs.get("chain-1").await?.status.and_then(|s| s.phase);
        match phase {
            Some(RunPhase::Succeeded) => break,
            Some(RunPhase::Failed | RunPhase::Canceled) => bail!("the run ended {phase:?}"),
            _ if started.elapsed() > Duration::from_secs(600) => bail!("the run did not finish"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let total = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let Seen { finished, created } = seen.lock().unwrap().clone();
    let mut gaps: Vec<Duration> = (1..steps)
        .filter_map(|i| {
            let done = finished.get(&format!("s{:03}", i - 1))?;
            let next = created.get(&format!("s{i:03}"))?;
            Some(next.saturating_duration_since(*done))
        })
        .collect();
    gaps.sort();
    let at = |q: f64| gaps[((gaps.len() - 1) as f64 * q).round() as usize];
    println!(
        "{steps} sequential bash steps in {total:.2?} ({:.2?} per step)",
        total / steps as u32
    );
    println!(
        "pod finished -> next Job created ({} gaps): median {:.0?}, p99 {:.0?}, max {:.0?}",
        gaps.len(),
        at(0.5),
        at(0.99),
        gaps[gaps.len() - 1]
    );
    println!("controller API requests per step (watches excluded from the total):");
    let counts = counts.lock().unwrap().clone();
    let mut all = 0;
    for (kind, n) in &counts {
        if !kind.starts_with("WATCH") {
            all += n;
        }
        println!("  {kind:<28} {:>6.2}", *n as f64 / steps as f64);
    }
    println!("  {:<28} {:>6.2}", "total", all as f64 / steps as f64);
    Ok(())
}
