//! Hostile expressions in the sandbox: each fails alone, in bounded time, while a normal
//! evaluation next to it succeeds.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use millrace::expr::{
    Evaluator, ExprError, InProcess, Sandbox, SandboxConfig, Scope, WORKER_SUBCOMMAND,
};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(2);
/// Killing, reaping and reporting a worker after its deadline.
const GRACE: Duration = Duration::from_millis(1500);

fn config() -> SandboxConfig {
    let mut config = SandboxConfig::new(
        env!("CARGO_BIN_EXE_millrace"),
        vec![WORKER_SUBCOMMAND.to_owned()],
    );
    config.timeout = TIMEOUT;
    config.memory_mib = 128;
    config
}

fn scope() -> Scope {
    Scope {
        flow_input: json!({"a": {"b": 3}}),
        ..Scope::default()
    }
}

/// Runs `hostile` on one thread and normal expressions on another; returns the hostile
/// outcome after checking the bound and the normal results.
fn against_neighbour(sandbox: &Sandbox, hostile: &str) -> ExprError {
    thread::scope(|s| {
        let attack = s.spawn(|| {
            let started = Instant::now();
            let outcome = sandbox.eval(hostile, &scope());
            (outcome, started.elapsed())
        });
        thread::sleep(Duration::from_millis(100));
        for _ in 0..3 {
            assert_eq!(
                sandbox.eval("flow_input.a.b + 1", &scope()),
                Ok(json!(4)),
                "neighbour of {hostile}"
            );
        }
        let (outcome, elapsed) = attack.join().expect("the attacking thread does not panic");
        assert!(elapsed < TIMEOUT + GRACE, "{hostile} took {elapsed:?}");
        let error = outcome.expect_err(hostile);
        eprintln!("{hostile}: {error} after {elapsed:?}");
        error
    })
}

/// Whether an error is an acceptable way for a hostile expression to fail.
type Expectation = fn(&ExprError) -> bool;

fn timeout_or_loop_limit(error: &ExprError) -> bool {
    match error {
        ExprError::Timeout(ms) => *ms == TIMEOUT.as_millis() as u64,
        ExprError::Thrown(message) => message.contains("loop"),
        _ => false,
    }
}

fn out_of_memory(error: &ExprError) -> bool {
    match error {
        ExprError::Memory(mib) => *mib == 128,
        ExprError::Thrown(message) => message.contains("RangeError"),
        _ => false,
    }
}

fn timeout(error: &ExprError) -> bool {
    matches!(error, ExprError::Timeout(_))
}

#[test]
fn hostile_expressions_fail_alone_within_the_bounds() {
    let sandbox = Sandbox::new(config()).expect("the sandbox starts");
    let cases: [(&str, Expectation); 7] = [
        ("while (true) {}", timeout_or_loop_limit),
        (
            "function f() { return f() + 1 } return f()",
            |e| matches!(e, ExprError::Thrown(m) if m.contains("recursi")),
        ),
        ("'x'.repeat(2 ** 30)", out_of_memory),
        ("let s = 'xy'; while (true) s += s", out_of_memory),
        // Allocating fast enough to reach the limit before the deadline depends on the build.
        ("const a = []; while (true) a.push({n: a.length})", |e| {
            out_of_memory(e) || timeout(e)
        }),
        ("/(a+)+$/.test('a'.repeat(40) + 'b')", timeout),
        (
            "const f = async () => { await null; return f() }; await f()",
            |e| out_of_memory(e) || timeout(e),
        ),
    ];
    for (hostile, expected) in cases {
        let error = against_neighbour(&sandbox, hostile);
        assert!(expected(&error), "{hostile} failed with {error:?}");
    }
    assert_eq!(
        sandbox.eval("flow_input.a.b", &scope()),
        Ok(json!(3)),
        "the pool recovers"
    );
}

#[test]
fn a_crashing_worker_is_replaced() {
    let sandbox = Sandbox::new(SandboxConfig {
        workers: 1,
        ..config()
    })
    .expect("the sandbox starts");
    // Deep nesting exhausts the parser's native stack, which no runtime limit covers;
    // brackets are refused before parsing, a long run of prefix operators is not.
    let deep = format!("{}1", "!".repeat(200_000));
    let error = sandbox
        .eval(&deep, &scope())
        .expect_err("the worker cannot parse it");
    assert!(
        matches!(&error, ExprError::Internal(m) if m.contains("nests too deeply")),
        "{error:?}"
    );
    assert_eq!(sandbox.eval("flow_input.a.b", &scope()), Ok(json!(3)));
}

#[test]
fn syntax_checks_run_in_a_worker() {
    let sandbox = Sandbox::new(SandboxConfig {
        workers: 1,
        ..config()
    })
    .expect("the sandbox starts");
    assert_eq!(sandbox.check("flow_input.a.b + 1"), Ok(()));
    assert!(
        matches!(sandbox.check("let x = ;"), Err(ExprError::Syntax(m)) if m.contains("line 1"))
    );
    // Brackets nested too deeply are refused unparsed, with the limit.
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let error = sandbox.check(&deep).expect_err("too deep");
    assert!(
        matches!(error, ExprError::TooDeep { depth: 100_000, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("at most 32"), "{error}");
    // Other nesting that would overflow the caller's stack costs only a worker.
    let deep = format!("{}1", "- ".repeat(100_000));
    let error = sandbox
        .check(&deep)
        .expect_err("the worker cannot parse it");
    assert!(
        matches!(&error, ExprError::Internal(m) if m.contains("stack")),
        "{error:?}"
    );
    assert_eq!(sandbox.check("[1, 2]"), Ok(()));
}

/// Which evaluations have returned, in order.
type Finished = std::sync::Mutex<Vec<&'static str>>;

#[test]
fn a_run_with_hostile_expressions_queued_does_not_delay_another_run() {
    let sandbox = Sandbox::new(SandboxConfig {
        workers: 1,
        ..config()
    })
    .expect("the sandbox starts");
    let (run_a, run_b) = (sandbox.for_queue("run-a"), sandbox.for_queue("run-b"));
    let finished = Finished::default();
    let (b_outcome, a_outcomes) = thread::scope(|s| {
        let hostile = |pause: u64| {
            let (run_a, finished) = (&run_a, &finished);
            thread::sleep(Duration::from_millis(pause));
            s.spawn(move || {
                let outcome = run_a.eval("while (true) {}", &scope());
                finished.lock().unwrap().push("a");
                outcome
            })
        };
        // a's first takes the only worker; four more of a's queue behind it, then b.
        let mut attacks = vec![hostile(0)];
        for _ in 0..4 {
            attacks.push(hostile(100));
        }
        thread::sleep(Duration::from_millis(100));
        let b = run_b.eval("flow_input.a.b * 2", &scope());
        finished.lock().unwrap().push("b");
        let a: Vec<_> = attacks.into_iter().map(|t| t.join().unwrap()).collect();
        (b, a)
    });
    assert_eq!(b_outcome, Ok(json!(6)));
    let order = finished.into_inner().unwrap();
    // b got the worker a's first gave back, before any of a's queued ones.
    assert_eq!(order[..2], ["a", "b"], "{order:?}");
    assert!(
        a_outcomes
            .iter()
            .all(|o| matches!(o, Err(ExprError::Timeout(_) | ExprError::Busy { .. }))),
        "{a_outcomes:?}"
    );
}

#[test]
fn waiting_for_a_busy_sandbox_is_bounded_and_says_so() {
    let sandbox = Sandbox::new(SandboxConfig {
        workers: 1,
        ..config()
    })
    .expect("the sandbox starts");
    let started = Instant::now();
    let waiters = 4;
    let barrier = std::sync::Barrier::new(waiters);
    let outcomes: Vec<_> = thread::scope(|s| {
        let holder = s.spawn(|| sandbox.eval("while (true) {}", &scope()));
        thread::sleep(Duration::from_millis(100));
        let queued: Vec<_> = (0..waiters)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    sandbox.eval("while (true) {}", &scope())
                })
            })
            .collect();
        let mut outcomes = vec![holder.join().unwrap()];
        outcomes.extend(queued.into_iter().map(|t| t.join().unwrap()));
        outcomes
    });
    // Each waits one time limit at most, its wait included.
    assert!(
        started.elapsed() < 2 * TIMEOUT + GRACE,
        "{:?}",
        started.elapsed()
    );
    let busy: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Err(e @ ExprError::Busy { waiting, .. }) if *waiting >= 1 => Some(e.to_string()),
            _ => None,
        })
        .collect();
    assert!(!busy.is_empty(), "{outcomes:?}");
    assert!(
        busy[0].contains("sandbox was busy") && busy[0].contains("waiting"),
        "{}",
        busy[0]
    );
    assert_eq!(sandbox.eval("flow_input.a.b", &scope()), Ok(json!(3)));
}

#[test]
fn oversized_results_are_refused() {
    let sandbox = Sandbox::new(SandboxConfig {
        workers: 1,
        max_result_bytes: 1 << 20,
        // This test is about size, not time: a loaded machine must not turn it into a timeout.
        timeout: Duration::from_secs(30),
        ..config()
    })
    .expect("starts");
    assert_eq!(
        sandbox.eval("'x'.repeat(2 ** 21)", &scope()),
        Err(ExprError::ResultTooLarge(1 << 20))
    );
    assert_eq!(
        sandbox.eval("'x'.repeat(1000).length", &scope()),
        Ok(json!(1000))
    );
}

/// Every evaluation starts from pristine built-ins and globals.
fn assert_no_leak(evaluator: &dyn Evaluator) {
    let polluter = "Object.prototype.polluted = 1; Array.prototype.map = () => 'hacked'; \
                    globalThis.leak = 42; JSON.stringify = () => '\"forged\"'; var declared = 1; return 1";
    assert_eq!(evaluator.eval(polluter, &scope()), Ok(json!(1)));
    let probe = "[typeof ({}).polluted, [1].map(x => x + 1), typeof leak, typeof declared, JSON.stringify(1)]";
    assert_eq!(
        evaluator.eval(probe, &scope()),
        Ok(json!(["undefined", [2], "undefined", "undefined", "1"]))
    );
}

#[test]
fn no_state_leaks_between_evaluations() {
    assert_no_leak(&InProcess::default());
    assert_no_leak(
        &Sandbox::new(SandboxConfig {
            workers: 1,
            ..config()
        })
        .expect("the sandbox starts"),
    );
}

#[test]
fn a_program_that_is_not_a_worker_is_refused() {
    let config = SandboxConfig::new(env!("CARGO_BIN_EXE_millrace"), vec![]);
    let error = Sandbox::new(config)
        .err()
        .expect("the plain binary does not answer as a worker");
    assert!(
        matches!(&error, ExprError::Internal(m) if m.contains("cannot start the expression worker")),
        "{error:?}"
    );
}

/// Set in the copy of this test binary that plays the parent in `busy_workers_die_with_their_parent`.
const PARENT_ROLE: &str = "MILLRACE_TEST_SANDBOX_PARENT";

#[test]
fn busy_workers_die_with_their_parent() {
    if std::env::var_os(PARENT_ROLE).is_some() {
        // Busy workers do not notice their stdin closing, and nothing else would stop
        // these loops for a minute: only the parent-death signal ends them in time.
        let mut config = config();
        config.timeout = Duration::from_secs(60);
        config.limits.loop_iterations = u64::MAX;
        let sandbox = Sandbox::new(config).expect("the sandbox starts");
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| sandbox.eval("while (true) {}", &scope()));
            }
            thread::sleep(Duration::from_millis(300));
            println!("sandbox busy");
            thread::sleep(Duration::from_secs(60));
        });
        return;
    }
    let mut parent = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "busy_workers_die_with_their_parent",
            "--nocapture",
        ])
        .env(PARENT_ROLE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the parent starts");
    let stdout = BufReader::new(parent.stdout.take().expect("piped"));
    for line in stdout.lines() {
        if line.expect("the parent writes lines") == "sandbox busy" {
            break;
        }
    }
    let workers = children(parent.id());
    assert_eq!(workers.len(), 2, "the parent runs two workers");
    parent.kill().expect("the parent can be killed");
    parent.wait().expect("the parent is reaped");
    let deadline = Instant::now() + Duration::from_secs(2);
    while workers.iter().any(|&pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "workers {workers:?} outlived their parent"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn children(pid: u32) -> Vec<u32> {
    let tasks =
        std::fs::read_dir(format!("/proc/{pid}/task")).expect("the parent's threads are listed");
    tasks
        .flat_map(|task| {
            let list = std::fs::read_to_string(task.expect("a thread").path().join("children"))
                .unwrap_or_default();
            list.split_whitespace()
                .map(|p| p.parse().expect("a pid"))
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Running or sleeping; a zombie waiting for a reaper counts as dead.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with(['Z', 'X']))
    })
}
