//! The in-pod entry script run as a local process, the way a pod would run it: the Job's
//! Secret written to a directory, its environment with the mount paths replaced.

use millrace::engine::{AttemptId, StepPath, StepSpec};
use millrace::k8s::api::pod::report::{self, Report};
use millrace::k8s::operator::controllers::flowrun::job::{
    AttemptPlan, PodDefaults, RunIdentity, build,
};
use serde_json::{Value, json};
use std::process::Command;

struct Ran {
    termination_message: String,
    stdout: String,
    code: i32,
}

fn run_step(language: &str, content: &str, args: Value, cap: u64) -> Ran {
    let spec = StepSpec {
        language: language.into(),
        content: content.into(),
        args: args.as_object().unwrap().clone(),
        timeout_ms: None,
        script_path: None,
        lock: None,
        summary: None,
    };
    let defaults = PodDefaults {
        result_cap_bytes: cap,
        ..PodDefaults::default()
    };
    let run = RunIdentity {
        name: "r".into(),
        namespace: "ns".into(),
        uid: "u".into(),
    };
    let id = AttemptId {
        step: StepPath::parse("a"),
        attempt: 1,
    };
    let (job, files) = build(&AttemptPlan {
        run: &run,
        id: &id,
        spec: &spec,
        runtime: None,
        defaults: &defaults,
        nonce: "n0nce",
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (step, control) = (dir.path().join("step"), dir.path().join("control"));
    std::fs::create_dir_all(&step).unwrap();
    std::fs::create_dir_all(&control).unwrap();
    for (key, value) in files.data.unwrap() {
        std::fs::write(step.join(key), value.0).unwrap();
    }
    let termination = dir.path().join("termination-log");
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    let mut command = Command::new("sh");
    command.arg(step.join("entry.sh"));
    for var in container.env.as_ref().unwrap() {
        let value = var.value.clone().unwrap();
        let value = value
            .replace("/millrace/step", step.to_str().unwrap())
            .replace("/millrace/control", control.to_str().unwrap())
            .replace("/dev/termination-log", termination.to_str().unwrap());
        command.env(&var.name, value);
    }
    let output = command.output().unwrap();
    Ran {
        termination_message: std::fs::read_to_string(termination).unwrap_or_default(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

fn result(ran: &Ran) -> Result<Value, millrace::engine::StepError> {
    match report::from_termination_message(&ran.termination_message, ran.code) {
        Report::Done(result) => result,
        Report::InLog => report::from_log(&ran.stdout, "n0nce", ran.code),
    }
}

#[test]
fn python_results_and_errors_come_back_through_the_termination_message() {
    let ran = run_step(
        "python3",
        "def main(x):\n    print('hello')\n    return {'twice': x * 2}",
        json!({"x": 21}),
        1 << 20,
    );
    assert_eq!(result(&ran), Ok(json!({"twice": 42})));
    assert!(ran.stdout.contains("hello"), "{}", ran.stdout);
    let ran = run_step(
        "python3",
        "def main():\n    raise ValueError('no')",
        json!({}),
        1 << 20,
    );
    let err = result(&ran).unwrap_err();
    assert_eq!(
        (err.name.as_str(), err.message.as_str()),
        ("ValueError", "no")
    );
    assert_ne!(ran.code, 0);
}

#[test]
fn bash_arguments_and_results_follow_the_local_conventions() {
    let script = "name=\"$1\"\ncount=\"$2\"\necho \"hi $name\"\necho \"[$count, \\\"$name\\\"]\"\n";
    let ran = run_step("bash", script, json!({"name": "a b", "count": 3}), 1 << 20);
    assert_eq!(
        result(&ran),
        Ok(json!("[3, \"a b\"]")),
        "the last line is a string"
    );
    let script = "false | true\necho out\necho err >&2";
    let ran = run_step("bash", script, json!({}), 1 << 20);
    assert_eq!(
        result(&ran),
        Ok(json!("err")),
        "no pipefail; stderr merged in order"
    );
    let ran = run_step("bash", "echo oops >&2\nexit 4", json!({}), 1 << 20);
    let err = result(&ran).unwrap_err();
    assert!(
        err.message.contains("code 4") && err.message.contains("oops"),
        "{}",
        err.message
    );
}

#[test]
fn large_results_are_framed_in_the_log_and_oversized_ones_refused() {
    let script = "def main():\n    print('MILLRACE_RESULT_x_BEGIN')\n    return 'y' * 200000";
    let ran = run_step("python3", script, json!({}), 1 << 20);
    assert!(ran.termination_message.starts_with("framed "));
    assert_eq!(result(&ran), Ok(json!("y".repeat(200_000))));
    let ran = run_step("python3", script, json!({}), 100_000);
    let err = result(&ran).unwrap_err();
    assert!(
        err.message.starts_with("result too large"),
        "{}",
        err.message
    );
}
