//! Windmill conformance through `millrace run --json` (the real binary, real interpreters): a
//! skipped run keeps its result, a loop's own `stop_after_if`, `sleep` after its step, Python's
//! argument and result conventions, bash's `set -e`, string results and merged output.

mod conformance_flows;

use conformance_flows::{
    expr, loop_stopped_after_an_iteration, python, sleep_after_the_step, step, stopped_and_skipped,
    with,
};
use serde_json::{Value, json};
use std::process::{Command, Stdio};

/// Runs `modules` as a flow with `millrace run --json` and returns (exit code, stdout as JSON).
fn run(modules: Value, value_fields: Value) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut value = json!({"modules": modules});
    value
        .as_object_mut()
        .unwrap()
        .extend(value_fields.as_object().cloned().unwrap_or_default());
    let path = dir.path().join("flow.json");
    let flow = json!({"summary": "conformance", "value": value});
    std::fs::write(&path, flow.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(["run", path.to_str().unwrap(), "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("the millrace binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}): {stdout:?}\nstderr: {stderr}")
    });
    (out.status.code().unwrap(), value)
}

fn bash(id: &str, content: &str) -> Value {
    step(id, "bash", content, json!({}))
}

#[test]
fn a_skipped_run_keeps_the_result_it_reached() {
    let (modules, expected) = stopped_and_skipped();
    assert_eq!(run(modules, json!({})), (0, expected));
    let never = python("never", "def main():\n    return 'ran'", json!({}));
    assert_eq!(
        run(json!([never]), json!({"skip_expr": "true"})),
        (0, json!("stopped early"))
    );
}

#[test]
fn stop_after_if_on_a_loop_module_breaks_it_after_the_iteration() {
    let (modules, expected) = loop_stopped_after_an_iteration();
    assert_eq!(run(modules, json!({})), (0, expected));

    let body = json!([python(
        "a",
        "def main(i):\n    return i",
        json!({"i": expr("flow_input.iter.index")})
    )]);
    let while_loop = with(
        json!({"id": "w", "value": {"type": "whileloopflow", "modules": body}}),
        json!({"stop_after_if": {"expr": "result == 3"}}),
    );
    assert_eq!(
        run(json!([while_loop]), json!({})),
        (0, json!([0, 1, 2, 3]))
    );
}

#[test]
fn sleep_runs_after_its_step_and_reads_the_steps_result() {
    let (modules, expected) = sleep_after_the_step(0.4);
    assert_eq!(run(modules, json!({})), (0, expected));
}

#[test]
fn python_parameters_without_a_value_get_none() {
    let script = "def main(a, b):\n    return [a, b]";
    assert_eq!(
        run(
            json!([python(
                "s",
                script,
                json!({"b": {"type": "static", "value": 1}})
            )]),
            json!({})
        ),
        (0, json!([null, 1]))
    );
}

#[test]
fn python_none_for_a_parameter_with_a_default_lets_the_default_apply() {
    let script = "def main(x, y=7, *, z='z'):\n    return [x, y, z]";
    let inputs = json!({"x": expr("null"), "y": expr("null"), "z": expr("null")});
    assert_eq!(
        run(json!([python("s", script, inputs)]), json!({})),
        (0, json!([null, 7, "z"]))
    );
}

#[test]
fn python_results_are_encoded_as_windmill_encodes_them() {
    let script = "import datetime, decimal\n\
        def main():\n    return {\n\
        'bytes': b'hi', 'nan': float('nan'), 'inf': float('inf'), 'tuple': (1, (2, 3)),\n\
        'when': datetime.datetime(2024, 1, 2, 3, 4, 5), 'price': decimal.Decimal('1.50'),\n\
        'text': 'NaN'}";
    assert_eq!(
        run(json!([python("s", script, json!({}))]), json!({})),
        (
            0,
            json!({"bytes": "aGk=", "nan": null, "inf": null, "tuple": [1, [2, 3]],
                "when": "2024-01-02 03:04:05", "price": "1.50", "text": "NaN"})
        )
    );
    let top_level = "def main():\n    return b'\\x00\\xff'";
    assert_eq!(
        run(json!([python("s", top_level, json!({}))]), json!({})),
        (0, json!("AP8="))
    );
}

#[test]
fn python_bytes_and_datetime_parameters_are_decoded() {
    let script = "from datetime import datetime\n\
        def main(data: bytes, when: datetime, other: 'bytes' = None):\n\
        \x20   return [data.decode(), type(when).__name__, when.isoformat(), other]";
    let inputs = json!({
        "data": {"type": "static", "value": "aGVsbG8="},
        "when": {"type": "static", "value": "2024-05-06T07:08:09+02:00"},
    });
    assert_eq!(
        run(json!([python("s", script, inputs)]), json!({})),
        (
            0,
            json!(["hello", "datetime", "2024-05-06T07:08:09+02:00", null])
        )
    );
}

#[test]
fn bash_runs_with_errexit_but_without_pipefail() {
    assert_eq!(
        run(json!([bash("s", "false | true\necho reached")]), json!({})),
        (0, json!("reached"))
    );
    let (code, error) = run(json!([bash("s", "false\necho unreachable")]), json!({}));
    assert_eq!(code, 1);
    assert_eq!(error["name"], "ExecutionErr", "{error}");
}

#[test]
fn bash_last_line_result_is_always_a_string() {
    assert_eq!(
        run(json!([bash("s", "echo 42")]), json!({})),
        (0, json!("42"))
    );
    assert_eq!(
        run(json!([bash("s", "echo '{\"a\": 1}'")]), json!({})),
        (0, json!("{\"a\": 1}"))
    );
    assert_eq!(
        run(
            json!([bash("s", "echo '{\"a\": 1}' > result.json")]),
            json!({})
        ),
        (0, json!({"a": 1})),
        "./result.json stays the way to return JSON"
    );
}

#[test]
fn bash_last_line_comes_from_stdout_and_stderr_in_the_order_written() {
    assert_eq!(
        run(json!([bash("s", "echo out\necho err >&2")]), json!({})),
        (0, json!("err"))
    );
    assert_eq!(
        run(json!([bash("s", "echo err >&2\necho out")]), json!({})),
        (0, json!("out"))
    );
}
