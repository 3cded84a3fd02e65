//! The controller crashes at any moment and a fresh one takes over: every run still finishes with
//! every result, and no step attempt starts twice.
//!
//! Each run's controller talks to the API server through a kill switch that trips on its N-th write
//! (N drawn from a seeded RNG, before the write is sent or right after its response), then the
//! controller task is dropped with no chance to clean up, and a new one starts. Jobs are deleted
//! the moment they finish (TTL 0), so a result the controller has not saved is gone with its Job.
//! Set `MILLRACE_RESTART_SEED` to replay a printed seed.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod kill_switch;
    pub mod operator;
}

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use millrace::k8s::api::flowrun::{FlowRunStatus, RunPhase};
use millrace::k8s::operator::{Config, PodDefaults};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::{big_results, expr, step};
use support::kill_switch::{KillPoint, KillSwitch};
use support::operator::{self as harness, Controllers, Harness};
const ITEMS: u64 = 15;
/// Items whose square fails on its first attempt (and succeeds on the retry).
const FLAKY: [u64; 3] = [5, 10, 15];
/// Runs, each in its own namespace with its own controller and kill points.
const RUNS: u64 = 2;
/// A controller incarnation is killed at one of its first this many writes.
const MOST_WRITES: usize = 14;

/// Two steps, a loop of `ITEMS` iterations (three at a time) whose body squares its item (some
/// fail once and are retried) then branches on the square, and a final step summing everything,
/// so that its result shows any lost or repeated result.
fn flow() -> Value {
    let mut square = step(
        "square",
        "python3",
        "import os\ndef main(n, scratch):\n    marker = os.path.join(scratch, 'failed-%d' % n)\n    if n % 5 == 0 and not os.path.exists(marker):\n        open(marker, 'w').close()\n        raise RuntimeError('transient failure for %d' % n)\n    return n * n",
        json!({"n": expr("flow_input.iter.value"), "scratch": expr("flow_input.scratch")}),
    );
    square["retry"] = json!({"constant": {"attempts": 2, "seconds": 0}});
    let even = step(
        "even",
        "python3",
        "def main(sq):\n    return {'kind': 'even', 'value': sq * 2}",
        json!({"sq": expr("results.square")}),
    );
    let odd = step(
        "odd",
        "bash",
        "sq=\"$1\"\necho \"{\\\"kind\\\": \\\"odd\\\", \\\"value\\\": $((sq + 1))}\" > result.json",
        json!({"sq": expr("results.square")}),
    );
    json!({"modules": [
        step("seed", "bash", "echo 7 > result.json", json!({})),
        step("items", "python3", "def main(seed, count):\n    return [{'n': i, 'seed': seed} for i in range(1, count + 1)]",
             json!({"seed": expr("results.seed"), "count": expr("flow_input.count")})),
        {"id": "each", "value": {
            "type": "forloopflow", "parallel": true,
            "parallelism": {"type": "static", "value": 3},
            "iterator": expr("results.items.map(x => x.n)"),
            "modules": [square, {"id": "pick", "value": {
                "type": "branchone",
                "branches": [{"expr": "results.square % 2 == 0", "modules": [even]}],
                "default": [odd],
            }}],
        }},
        step("total", "python3", "def main(seed, items, each):\n    return {'seed': seed, 'items': len(items), 'kinds': sorted(set(x['kind'] for x in each)), 'sum': sum(x['value'] for x in each)}",
             json!({"seed": expr("results.seed"), "items": expr("results.items"), "each": expr("results.each")})),
    ]})
}

fn expected_result() -> Value {
    let sum: u64 = (1..=ITEMS)
        .map(|n| n * n)
        .map(|sq| if sq % 2 == 0 { sq * 2 } else { sq + 1 })
        .sum();
    json!({"seed": 7, "items": ITEMS, "kinds": ["even", "odd"], "sum": sum})
}

/// Every Job ever created in `ns` (by uid), with its step path and attempt; Jobs vanish at once
/// (TTL 0), so they are collected as they appear.
fn record_jobs(t: &Harness) -> Arc<Mutex<BTreeMap<String, (String, String)>>> {
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let jobs: Api<Job> = t.api();
    let into = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(jobs, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(job) = stream.next().await {
            let Ok(job) = job else { continue };
            let path = job.annotations().get("millrace.dev/step-path").cloned();
            let attempt = job.labels().get("millrace.dev/attempt").cloned();
            into.lock().unwrap().insert(
                job.uid().unwrap_or_default(),
                (path.unwrap_or_default(), attempt.unwrap_or_default()),
            );
        }
    });
    seen
}

struct Outcome {
    status: FlowRunStatus,
    kills: Vec<KillPoint>,
}

/// Creates the run and keeps a controller on it, killing each one at a drawn write, until the
/// run has ended.
async fn run_with_kills(
    t: &Harness,
    rng: &mut StdRng,
    value: Value,
    inputs: Value,
    most_writes: usize,
) -> Result<Outcome> {
    t.flow(
        "restart",
        None,
        json!({"summary": "restart", "value": value}),
    )
    .await?;
    t.run("restart-1", "restart", inputs).await?;

    let config = Config {
        resync: Duration::from_secs(2),
        pods: PodDefaults {
            ttl_seconds_after_finished: 0,
            ..PodDefaults::default()
        },
        ..harness::config(Some(&t.ns))
    };
    // Many controllers in turn, each some seconds from starting up to its kill.
    let deadline = tokio::time::Instant::now() + 2 * TIMEOUT;
    let mut kills = Vec::new();
    let mut earlier = 0;
    loop {
        let switch = KillSwitch::new(
            t.cp.config().clone(),
            rng.random_range(1..=most_writes),
            rng.random_bool(0.5),
            earlier,
        );
        let controllers = Controllers::start(switch.client.clone(), config.clone());
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ended = wait_until("restart-1 ends", left, || t.ended("restart-1"));
        tokio::select! {
            () = switch.tripped() => {
                controllers.abort().await;
                kills.push(switch.point().context("a tripped switch has a point")?);
                earlier += switch.writes();
            }
            run = ended => {
                controllers.abort().await;
                let ns = &t.ns;
                let run = run.with_context(|| format!("in {ns} after {} kills", kills.len()))?;
                let status = run.status.context("status")?;
                return Ok(Outcome { status, kills });
            }
        }
    }
}

#[tokio::test]
async fn killed_at_any_write_the_controller_resumes_every_run_without_starting_a_step_twice()
-> Result<()> {
    let seed = seed()?;

    let mut namespaces = Vec::new();
    for _ in 0..RUNS {
        let Some(t) = Harness::without_controllers("restart").await? else {
            return Ok(());
        };
        let jobs = record_jobs(&t);
        namespaces.push((t, jobs));
    }
    let scratch = tempfile::tempdir()?;
    let outcomes = futures::future::join_all(namespaces.iter().enumerate().map(|(i, (t, _))| {
        let dir = scratch.path().join(&t.ns);
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        async move {
            std::fs::create_dir_all(&dir)?;
            let inputs = json!({"count": ITEMS, "scratch": dir.to_string_lossy()});
            run_with_kills(t, &mut rng, flow(), inputs, MOST_WRITES).await
        }
    }))
    .await;

    let mut all_kills = BTreeSet::new();
    for ((t, jobs), outcome) in namespaces.iter().zip(outcomes) {
        let ns = &t.ns;
        let Outcome { status, kills } = outcome?;
        println!("{ns}: {} kills: {kills:?}", kills.len());
        assert_eq!(status.phase, Some(RunPhase::Succeeded), "{ns}: {status:#?}");
        assert_eq!(status.result, Some(expected_result()), "{ns}");
        let attempts: Vec<(&str, u32)> = status
            .steps
            .iter()
            .map(|s| (s.path.as_str(), s.attempts))
            .collect();
        assert_eq!(
            attempts,
            [("seed", 1), ("items", 1), ("each", 0), ("total", 1)],
            "{ns}"
        );
        let each = &status.loops[0];
        assert_eq!(
            (each.total, each.succeeded, each.failed),
            (15, 15, 0),
            "{ns}"
        );

        let expected_jobs = 2 + 2 * ITEMS as usize + FLAKY.len() + 1;
        let per_attempt = each_attempt_ran_once(t, jobs, expected_jobs).await;
        let retried: BTreeSet<String> = per_attempt
            .into_iter()
            .filter(|(_, attempt)| attempt == "2")
            .map(|(path, _)| path)
            .collect();
        let flaky: BTreeSet<String> = FLAKY
            .iter()
            .map(|n| format!("each[{}]/square", n - 1))
            .collect();
        assert_eq!(retried, flaky, "{ns}");
        all_kills.extend(kills.into_iter().map(|k| (ns.clone(), k)));
    }
    let kinds: BTreeSet<(bool, &str, &str)> = all_kills
        .iter()
        .map(|(_, k)| (k.after, k.method.as_str(), k.resource.as_str()))
        .collect();
    println!(
        "{} kill points, {} kinds: {kinds:?}",
        all_kills.len(),
        kinds.len()
    );
    assert!(
        all_kills.len() >= 20,
        "only {} kill points",
        all_kills.len()
    );
    assert!(
        kinds.len() >= 6,
        "kills landed at too few kinds of writes: {kinds:?}"
    );
    Ok(())
}

fn seed() -> Result<u64> {
    let seed: u64 = match std::env::var("MILLRACE_RESTART_SEED") {
        Ok(seed) => seed.parse().context("MILLRACE_RESTART_SEED is a number")?,
        Err(_) => rand::random(),
    };
    println!("kill points drawn with MILLRACE_RESTART_SEED={seed}");
    Ok(seed)
}

/// Asserts that every attempt had one Job, `expected` in all, and that each Job's pod ran once;
/// returns the attempts (step path, attempt).
async fn each_attempt_ran_once(
    t: &Harness,
    jobs: &Mutex<BTreeMap<String, (String, String)>>,
    expected: usize,
) -> BTreeSet<(String, String)> {
    // The watch may lag the run's end by a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ns = &t.ns;
    let jobs = jobs.lock().unwrap().clone();
    let mut per_attempt: BTreeMap<(String, String), usize> = BTreeMap::new();
    for key in jobs.into_values() {
        *per_attempt.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = per_attempt.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{ns}: attempts with two Jobs: {twice:?}");
    assert_eq!(per_attempt.len(), expected, "{ns}: {per_attempt:#?}");
    let executions = t.executions();
    assert_eq!(executions.len(), expected, "{ns}: {executions:#?}");
    assert!(
        executions.values().all(|n| *n == 1),
        "{ns}: {executions:#?}"
    );
    per_attempt.into_keys().collect()
}

/// Results outgrow the state ConfigMap after the second step: from then on every save writes
/// chunks, then the state, then removes the chunks it replaced, and kills land in between.
#[tokio::test]
async fn killed_while_results_are_saved_in_chunks_the_controller_loses_none() -> Result<()> {
    let seed = seed()?.wrapping_add(1000);
    const BIG: usize = 4;
    let (modules, expected) = big_results("big", BIG, 400_000);

    let mut namespaces = Vec::new();
    for _ in 0..RUNS {
        let Some(t) = Harness::without_controllers("restart-chunks").await? else {
            return Ok(());
        };
        let jobs = record_jobs(&t);
        namespaces.push((t, jobs));
    }
    let outcomes = futures::future::join_all(namespaces.iter().enumerate().map(|(i, (t, _))| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        let value = json!({"modules": modules.clone()});
        async move { run_with_kills(t, &mut rng, value, json!({}), 6).await }
    }))
    .await;
    let mut kills = 0;
    for ((t, jobs), outcome) in namespaces.iter().zip(outcomes) {
        let ns = &t.ns;
        let outcome = outcome?;
        println!("{ns}: {} kills: {:?}", outcome.kills.len(), outcome.kills);
        let status = outcome.status;
        assert_eq!(status.phase, Some(RunPhase::Succeeded), "{ns}: {status:#?}");
        assert_eq!(status.result, Some(expected.clone()), "{ns}");
        each_attempt_ran_once(t, jobs, BIG + 1).await;
        kills += outcome.kills.len();
    }
    assert!(kills >= 4, "only {kills} kills");
    Ok(())
}
