//! The local executor against real interpreters: results, errors, logs, timeouts, cancel, limits.

mod support {
    pub mod local;
}

use millrace::engine::{AttemptId, StepError, StepPath, StepSpec};
use millrace::exec::local::LocalExecutor;
use millrace::exec::runners::Toolchain;
use millrace::exec::{AttemptOutput, Executor, StepGuard};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn executor(dir: &tempfile::TempDir, max_parallel: usize) -> LocalExecutor {
    LocalExecutor::new(
        dir.path().join("run"),
        max_parallel,
        Toolchain::from_env(),
        guard(),
        None,
    )
    .unwrap()
}

fn guard() -> StepGuard {
    StepGuard::new(env!("CARGO_BIN_EXE_millrace"))
}

fn key(path: &str) -> AttemptId {
    AttemptId {
        step: StepPath::parse(path),
        attempt: 1,
    }
}

fn spec(language: &str, content: &str, args: Value) -> StepSpec {
    StepSpec {
        language: language.into(),
        content: content.into(),
        args: args.as_object().cloned().unwrap_or_default(),
        timeout_ms: None,
        script_path: None,
        lock: None,
        summary: None,
    }
}

fn error(name: &str, message: &str) -> StepError {
    StepError::new(name, message)
}

async fn run(language: &str, content: &str, args: Value) -> AttemptOutput {
    let dir = tempfile::tempdir().unwrap();
    executor(&dir, 4)
        .run(key("a"), spec(language, content, args))
        .await
}

#[tokio::test]
async fn python_main_gets_only_declared_args_and_prints_do_not_touch_the_result() {
    let script =
        "def main(a, b=2):\n    print('{\"not\": \"the result\"}')\n    return {'sum': a + b}\n";
    let dir = tempfile::tempdir().unwrap();
    let args = json!({"a": 1, "b": 5, "extra": true});
    let out = executor(&dir, 1)
        .run(key("a"), spec("python3", script, args))
        .await;
    assert_eq!(out.result.unwrap(), json!({"sum": 6}));
    let log = std::fs::read_to_string(out.stdout_log.unwrap()).unwrap();
    assert_eq!(log, "{\"not\": \"the result\"}\n");
    assert_eq!(out.stderr_log, None, "nothing was printed on stderr");
}

#[tokio::test]
async fn python_kwargs_take_everything_and_defaults_fill_gaps() {
    let script = "def main(x, **rest):\n    return [x, sorted(rest)]\n";
    let out = run("python3", script, json!({"x": 1, "y": 2, "z": 3})).await;
    assert_eq!(out.result.unwrap(), json!([1, ["y", "z"]]));
    let out = run("python3", "def main(a=7):\n    return a\n", json!({})).await;
    assert_eq!(out.result.unwrap(), json!(7));
}

#[tokio::test]
async fn python_exception_fails_with_name_message_and_stack() {
    let script = "def main():\n    raise ValueError('no good')\n";
    let err = run("python3", script, json!({})).await.result.unwrap_err();
    assert_eq!(
        (err.name.as_str(), err.message.as_str()),
        ("ValueError", "no good")
    );
    assert!(err.stack.unwrap().contains("main.py"));
}

#[tokio::test]
async fn python_non_json_result_fails_clearly() {
    let script = "def main():\n    a = []\n    a.append(a)\n    return a\n";
    let err = run("python3", script, json!({})).await.result.unwrap_err();
    assert_eq!(err.name, "ResultNotJson", "{err:?}");
    assert!(err.message.contains("cannot be encoded as JSON"), "{err:?}");
    // default=str: objects without a JSON form become their string, as in Windmill.
    let script = "import datetime\ndef main():\n    return datetime.date(2024, 1, 2)\n";
    let out = run("python3", script, json!({})).await;
    assert_eq!(out.result.unwrap(), json!("2024-01-02"));
}

#[tokio::test]
async fn python_missing_main_and_hard_exit_fail() {
    let err = run("python3", "x = 1\n", json!({}))
        .await
        .result
        .unwrap_err();
    assert!(err.message.contains("no function `main`"), "{err:?}");
    let script = "import os, sys\ndef main():\n    sys.stderr.write('dying\\n')\n    os._exit(3)\n";
    let err = run("python3", script, json!({})).await.result.unwrap_err();
    let expected = "the process exited with code 3; last output lines:\ndying";
    assert_eq!(err, error("ExecutionErr", expected));
}

#[tokio::test]
async fn wm_failure_fails_the_step() {
    let script = "def main():\n    return {'wm_failure': 'quota exceeded'}\n";
    let err = run("python3", script, json!({})).await.result.unwrap_err();
    assert_eq!(err.name, "Failure", "{err:?}");
}

#[tokio::test]
async fn bash_positional_args_and_result_channels() {
    let script = "greeting=\"$1\"\nname=\"$2\"\necho \"log line\"\necho \"$greeting, $name\"\n";
    let out = run(
        "bash",
        script,
        json!({"name": "world", "greeting": "hello"}),
    )
    .await;
    assert_eq!(out.result.unwrap(), json!("hello, world"));
    let out = run("bash", "echo '{\"n\": 3}'\n", json!({})).await;
    assert_eq!(
        out.result.unwrap(),
        json!("{\"n\": 3}"),
        "the last line is a string"
    );
    let script = "echo noise\necho '[1,2]' > result.json\n";
    assert_eq!(
        run("bash", script, json!({})).await.result.unwrap(),
        json!([1, 2])
    );
    let script = "echo noise\nprintf 'text' > result.out\n";
    assert_eq!(
        run("bash", script, json!({})).await.result.unwrap(),
        json!("text")
    );
}

#[tokio::test]
async fn bash_runs_with_errexit_but_without_pipefail_and_merges_its_output() {
    let script = "false | true\necho reached\n";
    let out = run("bash", script, json!({})).await;
    assert_eq!(out.result.unwrap(), json!("reached"));
    let script = "false\necho unreachable\n";
    let err = run("bash", script, json!({})).await.result.unwrap_err();
    assert_eq!(err, error("ExecutionErr", "the process exited with code 1"));
    let script = "echo 'to stdout'\necho 'to stderr' >&2\nexit 4\n";
    let dir = tempfile::tempdir().unwrap();
    let out = executor(&dir, 1)
        .run(key("a"), spec("bash", script, json!({})))
        .await;
    let expected = "the process exited with code 4; last output lines:\nto stdout\nto stderr";
    assert_eq!(out.result.unwrap_err(), error("ExecutionErr", expected));
    let log = std::fs::read_to_string(out.stdout_log.unwrap()).unwrap();
    assert_eq!(
        log, "to stdout\nto stderr\n",
        "stderr is merged in the order written"
    );
    assert_eq!(out.stderr_log, None);
}

#[tokio::test]
async fn every_attempt_gets_a_fresh_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(&dir, 2);
    let script = "ls -A | wc -l\ntouch leftover\n";
    for attempt in 1..3 {
        let key = AttemptId {
            step: StepPath::parse("s"),
            attempt,
        };
        let out = exec.run(key, spec("bash", script, json!({}))).await;
        assert_eq!(out.result.unwrap(), json!("0"));
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = "pidfile=\"$1\"\nsleep 30 &\necho $! > \"$pidfile\"\nsleep 30\n";
    let mut step = spec("bash", script, json!({"pidfile": pid_file}));
    step.timeout_ms = Some(300);
    let out = executor(&dir, 1).run(key("slow"), step).await;
    assert_eq!(out.result.unwrap_err().name, "TimeoutError");
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        support::local::process_is_gone(child),
        "the background child {child} survived"
    );
}

#[tokio::test]
async fn a_setsid_daemon_does_not_outlive_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("daemon.pid");
    // The daemon leaves the step's process group and session; the step ends once it has started.
    let script = "pidfile=\"$1\"\nsetsid bash -c 'echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 300' \"$pidfile\" > /dev/null 2>&1 &\nwhile [ ! -e \"$pidfile\" ]; do sleep 0.05; done\n";
    let out = executor(&dir, 1)
        .run(
            key("daemon"),
            spec("bash", script, json!({"pidfile": pid_file})),
        )
        .await;
    out.result.unwrap();
    let daemon: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        support::local::process_is_gone(daemon),
        "the daemon {daemon} survived its step"
    );
}

#[tokio::test]
async fn cancel_stops_a_running_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(executor(&dir, 1));
    let running = {
        let exec = exec.clone();
        tokio::spawn(async move {
            exec.run(key("long"), spec("bash", "sleep 30", json!({})))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    exec.cancel(&key("long"));
    let out = running.await.unwrap();
    assert_eq!(out.result.unwrap_err().name, "Canceled");
}

#[tokio::test]
async fn the_global_limit_bounds_concurrent_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(executor(&dir, 2));
    let board = dir.path().join("board");
    std::fs::create_dir(&board).unwrap();
    // Each attempt registers itself on the board, records how many it sees, then leaves.
    let script = "board=\"$1\"\nme=\"$2\"\ntouch \"$board/$me\"\nsleep 0.3\nls \"$board\" | wc -l\nrm \"$board/$me\"\n";
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let exec = exec.clone();
            let args = json!({"board": board, "me": i.to_string()});
            tokio::spawn(async move {
                exec.run(key(&format!("s/{i}")), spec("bash", script, args))
                    .await
            })
        })
        .collect();
    let mut most = 0;
    for task in tasks {
        let seen = task.await.unwrap().result.unwrap();
        most = most.max(seen.as_str().unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(most, 2, "two attempts should overlap, never more");
}

/// Runs the same checks under every TypeScript runtime installed, each alone in the toolchain.
#[tokio::test]
async fn typescript_main_gets_args_in_declaration_order_under_bun_and_deno() {
    if !support::local::typescript_available() {
        return;
    }
    let found = Toolchain::from_env();
    let only = |bun: Option<PathBuf>, deno: Option<PathBuf>| Toolchain {
        bun,
        deno,
        ..found.clone()
    };
    let toolchains = [
        found.bun.clone().map(|bun| only(Some(bun), None)),
        found.deno.clone().map(|deno| only(None, Some(deno))),
    ];
    for toolchain in toolchains.into_iter().flatten() {
        let dir = tempfile::tempdir().unwrap();
        let exec = LocalExecutor::new(
            dir.path().to_path_buf(),
            1,
            toolchain.clone(),
            guard(),
            None,
        )
        .unwrap();
        let run = |language: &str, script: &str, args: Value| {
            exec.run(key("ts"), spec(language, script, args))
        };
        let script = "export async function main(b: number, a: string) {\n  console.log('noise');\n  return { a, b };\n}\n";
        let out = run("bun", script, json!({"a": "x", "b": 2})).await;
        assert_eq!(
            out.result.unwrap(),
            json!({"a": "x", "b": 2}),
            "{toolchain:?}"
        );
        let script = "export async function main() { throw new TypeError('bad input'); }\n";
        let err = run("deno", script, json!({})).await.result.unwrap_err();
        assert_eq!(
            (err.name.as_str(), err.message.as_str()),
            ("TypeError", "bad input"),
            "{toolchain:?}"
        );
        let script = "export async function main() { return 10n; }\n";
        let err = run("bun", script, json!({})).await.result.unwrap_err();
        assert_eq!(err.name, "ResultNotJson", "{toolchain:?}: {err:?}");
    }
}
