//! `millrace run` end to end through the binary: real processes, exit codes, stdout contract.

mod support {
    pub mod http;
    pub mod local;
}

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::http::serve;
use support::local::millrace;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Runs with `--json` and returns (exit code, stdout as JSON, stderr).
fn run_json(flow: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["run", flow.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = millrace(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}): {stdout:?}\nstderr: {stderr}")
    });
    (out.status.code().unwrap(), value, stderr)
}

fn write_flow(dir: &tempfile::TempDir, yaml: &str) -> PathBuf {
    let path = dir.path().join("flow.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn example(path: &str) -> PathBuf {
    Path::new(EXAMPLES).join(path)
}

#[test]
fn hello_runs_python_then_bash() {
    let (code, result, stderr) = run_json(&example("hello/flow.yaml"), &["--input", "name=Ada"]);
    assert_eq!((code, result), (0, json!("HELLO, ADA!")), "{stderr}");
    assert!(
        stderr.contains("✓ greet"),
        "the live view goes to stderr: {stderr}"
    );
}

#[test]
fn without_json_the_result_is_pretty_and_the_time_is_shown() {
    let out = millrace(&["run", example("hello/flow.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"HELLO, WORLD!\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Hello world succeeded in"), "{stderr}");
}

#[test]
fn parallel_loop_with_retries_recovers_from_real_failures() {
    let (code, result, stderr) = run_json(&example("parallel-retries/flow.yaml"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        result,
        json!({"squares": [1, 4, 9, 16, 25, 36, 49, 64], "sum": 204})
    );
    assert!(
        stderr.contains("RuntimeError: transient failure for 3"),
        "{stderr}"
    );
    assert!(stderr.contains("retry, attempt 2"), "{stderr}");
    assert!(stderr.contains("square_all: 8/8"), "{stderr}");
}

#[test]
fn branches_run_and_the_error_handler_reports_the_failed_step() {
    let flow = example("branches-error-handler/flow.yaml");
    let (code, result, stderr) = run_json(&flow, &[]);
    assert_eq!((code, result), (0, json!({"charged": 250})), "{stderr}");
    assert!(
        stderr.contains("route[1]/auto_approve"),
        "the default branch ran: {stderr}"
    );
    let (code, error, stderr) = run_json(
        &flow,
        &["--input", "card=declined", "--input", "amount=5000"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(error["step_id"], "charge");
    assert_eq!(error["message"], "card declined for 5000");
    assert!(
        stderr.contains("route[0]/review"),
        "the review branch ran: {stderr}"
    );
    assert!(
        stderr.contains("step charge failed: card declined for 5000"),
        "handler: {stderr}"
    );
}

#[test]
fn the_seed_tutorial_writes_its_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("out/chart.png");
    let output = format!("output={}", chart.display());
    let (code, result, stderr) = run_json(&example("user-growth/flow.yaml"), &["--input", &output]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["chart"], chart.to_str().unwrap());
    let png = std::fs::read(&chart).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 500, "a chart, not an empty image");
}

#[test]
fn the_seed_tutorial_posts_to_a_slack_webhook_when_given_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = format!("output={}", dir.path().join("chart.png").display());
    let slack = serve(1, 200, "text/plain", "ok");
    let webhook = format!("slack_webhook={}/hook", slack.url);
    let flow = example("user-growth/flow.yaml");
    let (code, _, stderr) = run_json(&flow, &["--input", &output, "--input", &webhook]);
    assert_eq!(code, 0, "{stderr}");
    let request = slack.requests.recv().unwrap();
    assert!(request.head.starts_with("POST /hook"), "{}", request.head);
    assert!(String::from_utf8_lossy(&request.body).contains("filename=\"chart.png\""));
}

#[test]
fn the_windmill_export_runs_unchanged_with_typescript_scripts_and_subflows() {
    if !support::local::typescript_available() {
        return;
    }
    let (code, result, stderr) =
        run_json(&example("windmill-export/f/reports/team_summary.flow"), &[]);
    assert_eq!(
        (code, result),
        (0, json!("PLATFORM: 2 ENGINEERS, 1 REVIEWER")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Hello, team platform"),
        "the f/ script ran: {stderr}"
    );
}

#[test]
fn a_timeout_kills_a_sleeping_script() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write_flow(
        &dir,
        r#"
summary: slow
value:
  modules:
    - id: nap
      timeout: 1
      value:
        type: rawscript
        language: bash
        content: |
          sleep 60
"#,
    );
    let started = std::time::Instant::now();
    let (code, error, stderr) = run_json(&flow, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(error["name"], "TimeoutError", "{error}");
    assert!(
        started.elapsed().as_secs() < 30,
        "the sleeping script was not killed"
    );
}

#[test]
fn a_suspended_step_continues_with_approve_and_fails_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write_flow(
        &dir,
        r#"
summary: approval
value:
  modules:
    - id: prepare
      suspend:
        required_events: 1
      value:
        type: rawscript
        language: bash
        content: echo ready
    - id: ship
      value:
        type: rawscript
        language: bash
        content: echo shipped
"#,
    );
    let (code, result, stderr) = run_json(&flow, &["--approve"]);
    assert_eq!((code, result), (0, json!("shipped")), "{stderr}");
    let (code, _, stderr) = run_json(&flow, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pass --approve"), "{stderr}");
}

#[test]
fn an_invalid_flow_exits_2_naming_the_module_path_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let flow = write_flow(
        &dir,
        &format!(
            r#"
summary: broken
value:
  modules:
    - id: first
      value:
        type: rawscript
        language: bash
        content: touch {}
    - id: outer
      value:
        type: forloopflow
        iterator: {{type: javascript, expr: "[1, 2]"}}
        modules:
          - id: inner
            value:
              type: rawscript
              language: python3
              content: "def main(x): return x"
              input_transforms:
                x: {{type: javascript, expr: "results.missing"}}
"#,
            marker.display()
        ),
    );
    let out = millrace(&["run", flow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("outer/inner"), "{stderr}");
    assert!(!marker.exists(), "a step ran although the flow is invalid");
    let out = millrace(&["validate", flow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outer/inner"));
}

#[test]
fn inputs_that_violate_the_schema_exit_2() {
    let flow = example("branches-error-handler/flow.yaml");
    let out = millrace(&[
        "run",
        flow.to_str().unwrap(),
        "--input",
        "card=stolen",
        "--input",
        "amount=-1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'card'") && stderr.contains("'amount'"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn inputs_come_from_a_document_and_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write_flow(
        &dir,
        r#"
summary: echo inputs
value:
  modules:
    - id: echo
      value:
        type: rawscript
        language: python3
        content: |
          def main(a, b):
              return [a, b]
        input_transforms:
          a: {type: javascript, expr: flow_input.a}
          b: {type: javascript, expr: flow_input.b}
"#,
    );
    let (code, result, stderr) = run_json(
        &flow,
        &["--inputs", r#"{"a": {"x": 1}, "b": 1}"#, "--input", "b=two"],
    );
    assert_eq!((code, result), (0, json!([{"x": 1}, "two"])), "{stderr}");
}

#[test]
fn a_step_preview_runs_one_step_with_given_results() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write_flow(
        &dir,
        r#"
summary: preview
value:
  modules:
    - id: first
      value:
        type: rawscript
        language: bash
        content: exit 1
    - id: second
      value:
        type: rawscript
        language: python3
        content: |
          def main(x, prev):
              return x * 2 + prev
        input_transforms:
          x: {type: javascript, expr: results.first.n}
          prev: {type: javascript, expr: previous_result.n}
"#,
    );
    let (code, result, stderr) = run_json(
        &flow,
        &["--step", "second", "--results", r#"{"first": {"n": 20}}"#],
    );
    assert_eq!((code, result), (0, json!(60)), "{stderr}");
}

#[test]
fn script_steps_reach_the_bundled_hub_and_variables_come_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let api = serve(1, 200, "application/json", r#"{"ok": true}"#);
    let flow = write_flow(
        &dir,
        &format!(
            r#"
summary: hub
value:
  modules:
    - id: call
      value:
        type: script
        path: hub/http_request
        input_transforms:
          url: {{type: static, value: "{}/ping"}}
          headers: {{type: javascript, expr: "({{'X-Token': variable('f/team/token'), 'X-Db': resource('f/team/db').host}})"}}
    - id: body
      value:
        type: identity
"#,
            api.url
        ),
    );
    let vars = dir.path().join("vars.yaml");
    std::fs::write(&vars, "f/team/db: {host: db.local}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args([
            "run",
            flow.to_str().unwrap(),
            "--json",
            "--variables",
            vars.to_str().unwrap(),
        ])
        .env("MILLRACE_VAR_F_TEAM_TOKEN", "s3cret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["body"], json!({"ok": true}));
    let request = api.requests.recv().unwrap().head.to_ascii_lowercase();
    assert!(
        request.contains("x-token: s3cret") && request.contains("x-db: db.local"),
        "{request}"
    );
}

#[test]
fn parallel_iterations_overlap_up_to_the_loop_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let board = dir.path().join("board");
    std::fs::create_dir(&board).unwrap();
    let flow = write_flow(
        &dir,
        &format!(
            r#"
summary: overlap
value:
  modules:
    - id: each
      value:
        type: forloopflow
        parallel: true
        parallelism: 3
        iterator: {{type: javascript, expr: "[1, 2, 3, 4, 5, 6]"}}
        modules:
          - id: work
            value:
              type: rawscript
              language: bash
              content: |
                me="$1"
                touch "{board}/$me"
                sleep 0.8
                ls "{board}" | wc -l
                rm "{board}/$me"
              input_transforms:
                me: {{type: javascript, expr: "String(flow_input.iter.value)"}}
"#,
            board = board.display()
        ),
    );
    let (code, result, stderr) = run_json(&flow, &["--max-parallel", "8"]);
    assert_eq!(code, 0, "{stderr}");
    let most = result
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse::<u64>().unwrap())
        .max();
    assert_eq!(most, Some(3), "three iterations at a time: {result}");
    let (code, result, stderr) = run_json(&flow, &["--max-parallel", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        result.as_array().unwrap().iter().all(|v| v == "1"),
        "--max-parallel 1: {result}"
    );
}

#[test]
fn graph_prints_mermaid() {
    let out = millrace(&[
        "graph",
        example("parallel-retries/flow.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("flowchart TD\n"), "{text}");
    assert!(
        text.contains("square_all (for each, in parallel)"),
        "{text}"
    );
}

#[test]
fn a_flow_manifest_runs_like_a_flow_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_flow(
        &dir,
        r#"
apiVersion: millrace.dev/v1alpha1
kind: Flow
metadata:
  name: hello
spec:
  summary: manifest
  value:
    modules:
      - id: a
        value:
          type: rawscript
          language: bash
          content: echo '[1, 2]' > result.json
"#,
    );
    let (code, result, stderr) = run_json(&manifest, &[]);
    assert_eq!((code, result), (0, json!([1, 2])), "{stderr}");
}

/// A flow whose step `deep` reads `x` through `expr`.
fn flow_with_expression(dir: &tempfile::TempDir, expr: &str) -> PathBuf {
    let quoted = serde_json::to_string(expr).unwrap();
    write_flow(
        dir,
        &format!(
            r#"
value:
  modules:
    - id: first
      value: {{type: rawscript, language: bash, content: "echo 1"}}
    - id: deep
      value:
        type: rawscript
        language: bash
        content: echo "$1"
        input_transforms:
          x: {{type: javascript, expr: {quoted}}}
"#
        ),
    )
}

#[test]
fn deeply_nested_expressions_are_problems_of_their_step_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let brackets = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let flow = flow_with_expression(&dir, &brackets);
    for command in ["validate", "graph", "run"] {
        let out = millrace(&[command, flow.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("deep: value.input_transforms.x: expression nests 100000 levels")
                && stderr.contains("at most 32"),
            "{command}: {stderr}"
        );
    }
    // Deep without brackets: the parser overflows a worker's stack, not this process's.
    let flow = flow_with_expression(&dir, &format!("{}1", "!".repeat(100_000)));
    let out = millrace(&["validate", flow.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deep: value.input_transforms.x: expression evaluator failed: the expression nests too deeply"),
        "{stderr}"
    );
}
