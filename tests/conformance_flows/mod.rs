//! The flows both conformance tests run (`millrace run` and the operator), each with the result
//! Windmill gives for it.

// Each of the two test binaries uses a different part of it.
#![allow(dead_code, reason = "shared by two test binaries")]

use serde_json::{Value, json};

pub fn step(id: &str, language: &str, content: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": language, "content": content, "input_transforms": inputs}})
}

pub fn python(id: &str, content: &str, inputs: Value) -> Value {
    step(id, "python3", content, inputs)
}

pub fn expr(source: &str) -> Value {
    json!({"type": "javascript", "expr": source})
}

/// `module` with `fields` added (`stop_after_if`, `sleep`, …).
pub fn with(mut module: Value, fields: Value) -> Value {
    module
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().cloned().unwrap());
    module
}

/// A first step whose `stop_after_if` with `skip_if_stopped` ends the run before `never`.
pub fn stopped_and_skipped() -> (Value, Value) {
    let stop = with(
        python(
            "check",
            "def main():\n    return {'nothing': 'to do'}",
            json!({}),
        ),
        json!({"stop_after_if": {"expr": "result.nothing", "skip_if_stopped": true}}),
    );
    let never = python("never", "def main():\n    return 'ran'", json!({}));
    (json!([stop, never]), json!({"nothing": "to do"}))
}

/// A for-loop over [1, 2, 3, 4] whose own `stop_after_if` breaks it after its second iteration.
pub fn loop_stopped_after_an_iteration() -> (Value, Value) {
    let body = json!([python(
        "a",
        "def main(n):\n    return n * 10",
        json!({"n": expr("flow_input.iter.value")})
    )]);
    let for_loop = with(
        json!({"id": "l", "value": {"type": "forloopflow", "iterator": expr("[1, 2, 3, 4]"), "modules": body}}),
        json!({"stop_after_if": {"expr": "result >= 20"}}),
    );
    let after = python(
        "after",
        "def main(l):\n    return {'loop': l}",
        json!({"l": expr("results.l")}),
    );
    (json!([for_loop, after]), json!({"loop": [10, 20]}))
}

/// A step whose `sleep` reads its result; the next step checks it started that much later.
pub fn sleep_after_the_step(seconds: f64) -> (Value, Value) {
    let first = with(
        python(
            "first",
            &format!(
                "import time\ndef main():\n    return {{'wait': {seconds}, 'at': time.time()}}"
            ),
            json!({}),
        ),
        json!({"sleep": expr("result.wait")}),
    );
    let second = python(
        "second",
        "import time\ndef main(first):\n    return time.time() - first['at'] >= first['wait']",
        json!({"first": expr("results.first")}),
    );
    (json!([first, second]), json!(true))
}
