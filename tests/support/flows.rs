//! Flow fixtures for operator tests: the JSON of steps, expressions and calls, a flow with large
//! results, an example file as a Flow's spec, and a step's result read from a run's status.

use anyhow::Result;
use millrace::k8s::api::flowrun::FlowRunStatus;
use serde_json::{Value, json};

/// A flow of `count` python steps `{prefix}0…` each returning `bytes` characters, then a step
/// `check` returning each one's length, first and last character as JSON sees them; and the
/// result `check` must give when every result arrived whole.
#[allow(dead_code, reason = "only the tests of large results use it")]
pub fn big_results(prefix: &str, count: usize, bytes: usize) -> (Vec<Value>, Value) {
    let mut modules: Vec<Value> = (0..count)
        .map(|i| {
            let code = format!("def main():\n    return '{i}' * {bytes}");
            step(&format!("{prefix}{i}"), "python3", &code, json!({}))
        })
        .collect();
    let last = bytes - 1;
    let seen = (0..count)
        .map(|i| {
            format!(
                "[results.{prefix}{i}.length, results.{prefix}{i}[0], results.{prefix}{i}[{last}]]"
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    modules.push(step(
        "check",
        "python3",
        "def main(seen):\n    return seen",
        json!({"seen": expr(&format!("[{seen}]"))}),
    ));
    let expected = (0..count)
        .map(|i| json!([bytes, i.to_string(), i.to_string()]))
        .collect();
    (modules, Value::Array(expected))
}

/// A python step `id` that fails its first `fails` attempts and then returns `result`; it counts
/// its attempts in a file of its own directory.
#[allow(dead_code, reason = "only the tests of retries use it")]
pub fn flaky(id: &str, fails: u32, result: &str) -> Result<Value> {
    let counter = tempfile::tempdir()?.keep().join("attempts");
    let code = format!(
        "def main():\n    path = {path:?}\n    try:\n        n = int(open(path).read())\n    except FileNotFoundError:\n        n = 0\n    open(path, 'w').write(str(n + 1))\n    if n < {fails}:\n        raise RuntimeError('attempt %d fails' % (n + 1))\n    return {result:?}",
        path = counter.to_string_lossy()
    );
    Ok(step(id, "python3", &code, json!({})))
}

/// A `rawscript` step `id` in `language` with its input transforms.
pub fn step(id: &str, language: &str, content: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": language, "content": content, "input_transforms": inputs}})
}

/// A JavaScript input transform.
#[allow(dead_code, reason = "not every operator test passes inputs")]
pub fn expr(source: &str) -> Value {
    json!({"type": "javascript", "expr": source})
}

/// A step `id` calling the `script` or `flow` at `path`.
#[allow(
    dead_code,
    reason = "only the tests of paths call scripts and subflows"
)]
pub fn call(id: &str, kind: &str, path: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {"type": kind, "path": path, "input_transforms": inputs}})
}

/// The result the run's status holds for the step at `path`.
#[allow(
    dead_code,
    reason = "not every operator test reads single step results"
)]
pub fn step_result(status: &FlowRunStatus, path: &str) -> Option<Value> {
    status
        .steps
        .iter()
        .find(|s| s.path == path)
        .and_then(|s| s.result.clone())
}

/// An example flow file as the spec of a Flow, unchanged.
#[allow(dead_code, reason = "not every operator test runs an example file")]
pub fn example(file: &str) -> Result<Value> {
    let loaded = millrace::flow::load_path(file.as_ref())?;
    Ok(serde_json::to_value(loaded.flow)?)
}
