//! Expression evaluations per second, in process and through the sandbox.
//!
//! `cargo bench --bench expr`

use std::thread;
use std::time::{Duration, Instant};

use millrace::expr::{Evaluator, InProcess, Sandbox, SandboxConfig, Scope, WORKER_SUBCOMMAND};
use serde_json::{Map, Value, json};

const RUN_FOR: Duration = Duration::from_secs(2);

fn main() {
    let small = Scope {
        flow_input: json!({"a": {"b": 1}}),
        results: json!({"x": (1..=10).collect::<Vec<_>>()})
            .as_object()
            .unwrap()
            .clone(),
        ..Scope::default()
    };
    // `flow_input.a.b` is answered without an engine; the parentheses make the engine run.
    let plain = "flow_input.a.b";
    let property = "(flow_input.a.b)";
    let map = "results.x.map(v => v * 2)";

    // What a fresh context per evaluation costs: the floor under every engine figure.
    report("fresh boa context alone", 1, || {
        drop(boa_engine::Context::default());
        Ok::<_, ()>(Value::Null)
    });
    let in_process = InProcess::default();
    report("in process, plain path (no engine)", 1, || {
        in_process.eval(plain, &small)
    });
    report("in process, property access", 1, || {
        in_process.eval(property, &small)
    });
    report("in process, small map", 1, || in_process.eval(map, &small));

    let started = Instant::now();
    let config = SandboxConfig::new(
        env!("CARGO_BIN_EXE_millrace"),
        vec![WORKER_SUBCOMMAND.to_owned()],
    );
    let sandbox = Sandbox::new(config).expect("the sandbox starts");
    println!(
        "sandbox start, 2 workers: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    report("sandbox, plain path (no worker)", 1, || {
        sandbox.eval(plain, &small)
    });
    for threads in [1, 2] {
        report(
            &format!("sandbox, property access, {threads} thread(s)"),
            threads,
            || sandbox.eval(property, &small),
        );
        report(
            &format!("sandbox, small map, {threads} thread(s)"),
            threads,
            || sandbox.eval(map, &small),
        );
    }

    latency("in process, property access", || {
        in_process.eval(property, &small)
    });
    latency("sandbox, property access", || {
        sandbox.eval(property, &small)
    });

    // 200 steps of ~5 KB each: `results.s7.n + 1` sends one step to the worker;
    // `(results)` defeats the static scan and sends all of them.
    let big = Scope {
        results: big_results(200, 5_000),
        ..small.clone()
    };
    report("sandbox, 1 MB of results, one step sent", 1, || {
        sandbox.eval("results.s7.n + 1", &big)
    });
    report("sandbox, 1 MB of results, all sent", 1, || {
        sandbox.eval("(results).s7.n + 1", &big)
    });
    report("in process, 1 MB of results bound", 1, || {
        in_process.eval("results.s7.n + 1", &big)
    });
}

fn big_results(steps: usize, bytes: usize) -> Map<String, Value> {
    (0..steps)
        .map(|i| (format!("s{i}"), json!({"n": i, "text": "x".repeat(bytes)})))
        .collect()
}

/// Runs `eval` on `threads` threads for [`RUN_FOR`] and prints the total rate.
fn report<E: std::fmt::Debug>(
    label: &str,
    threads: usize,
    eval: impl Fn() -> Result<Value, E> + Sync,
) {
    eval().expect("the benchmark expression evaluates");
    let count: u64 = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let mut n = 0u64;
                    while started.elapsed() < RUN_FOR {
                        eval().expect("the benchmark expression evaluates");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("no panic"))
            .sum()
    });
    let per_second = count as f64 / RUN_FOR.as_secs_f64();
    println!(
        "{label:<48} {per_second:>9.0} evals/s  {:>8.1} µs each",
        1e6 * threads as f64 / per_second
    );
}

/// Median time of one evaluation when the evaluator has been idle for a moment, as when a
/// flow evaluates a step's inputs between steps.
fn latency<E: std::fmt::Debug>(label: &str, eval: impl Fn() -> Result<Value, E>) {
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            thread::sleep(Duration::from_millis(5));
            let started = Instant::now();
            eval().expect("the benchmark expression evaluates");
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{label:<48} median latency when idle {:>8.1} µs",
        times[times.len() / 2].as_secs_f64() * 1e6
    );
}
