use super::*;
use crate::engine::StepPath;
use crate::k8s::api::StepPodSettings;
use serde_json::json;

fn run() -> RunIdentity {
    RunIdentity {
        name: "report".into(),
        namespace: "team".into(),
        uid: "uid-1".into(),
    }
}

fn spec(language: &str, content: &str, args: serde_json::Value) -> StepSpec {
    StepSpec {
        language: language.into(),
        content: content.into(),
        args: args.as_object().unwrap().clone(),
        timeout_ms: Some(1500),
        script_path: None,
        lock: None,
        summary: None,
    }
}

fn id(path: &str, attempt: u32) -> AttemptId {
    AttemptId {
        step: StepPath::parse(path),
        attempt,
    }
}

fn build_with(
    id: &AttemptId,
    spec: &StepSpec,
    runtime: Option<&PodSettings>,
) -> Result<(Job, Secret), BuildError> {
    build(&AttemptPlan {
        run: &run(),
        id,
        spec,
        runtime,
        defaults: &PodDefaults::default(),
        nonce: "n0nce",
    })
}

/// The files of an attempt's Secret, as text.
fn files(secret: Secret) -> BTreeMap<String, String> {
    let data = secret.data.unwrap();
    data.into_iter()
        .map(|(key, value)| (key, String::from_utf8(value.0).unwrap()))
        .collect()
}

fn pod_spec(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn the_job_is_named_labelled_owned_and_bounded() {
    let id = id("loop[3]/b", 2);
    let (job, cm) = build_with(&id, &spec("python3", "def main(): pass", json!({})), None).unwrap();
    let name = naming::job_name("report", "uid-1", "loop[3]/b", 2);
    assert_eq!(job.metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(cm.metadata.name.as_deref(), Some(name.as_str()));
    let labels = job.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[RUN_LABEL], "report");
    assert_eq!(labels[STEP_LABEL], naming::label_value("loop[3]/b"));
    assert_eq!(labels[ATTEMPT_LABEL], "2");
    let annotations = job.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations[STEP_PATH_ANNOTATION], "loop[3]/b");
    assert_eq!(annotations[RESULT_NONCE_ANNOTATION], "n0nce");
    for owners in [
        &job.metadata.owner_references,
        &cm.metadata.owner_references,
    ] {
        let owner = &owners.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("FlowRun", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
    }
    let job_spec = job.spec.as_ref().unwrap();
    assert_eq!(job_spec.backoff_limit, Some(0));
    assert_eq!(job_spec.pod_replacement_policy.as_deref(), Some("Failed"));
    let rules = &job_spec.pod_failure_policy.as_ref().unwrap().rules;
    assert_eq!(rules[0].action, "FailJob");
    let on = rules[0].on_pod_conditions.as_ref().unwrap();
    assert_eq!(on[0].type_, "DisruptionTarget");
    assert_eq!(job_spec.active_deadline_seconds, Some(2), "1.5 s rounds up");
    assert_eq!(job_spec.ttl_seconds_after_finished, None);
    let pod = pod_spec(&job);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let security = pod.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("python:3.12-slim"));
    let csc = container.security_context.as_ref().unwrap();
    assert_eq!(csc.allow_privilege_escalation, Some(false));
    let template = job_spec.template.metadata.as_ref().unwrap();
    assert_eq!(template.labels.as_ref().unwrap()[RUN_LABEL], "report");
    assert_eq!(template.annotations.as_ref().unwrap()[RUN_LABEL], "report");
}

#[test]
fn the_files_secret_carries_the_local_wrappers_and_arguments() {
    let (job, cm) = build_with(
        &id("a", 1),
        &spec("python3", "def main(x): return x", json!({"x": 1})),
        None,
    )
    .unwrap();
    let step_volume = &pod_spec(&job).volumes.as_ref().unwrap()[0];
    let secret_name = step_volume.secret.as_ref().unwrap().secret_name.as_deref();
    assert_eq!(secret_name, cm.metadata.name.as_deref());
    let data = files(cm);
    assert_eq!(data["wrapper.py"], PYTHON_WRAPPER);
    assert_eq!(data["args.json"], r#"{"x":1}"#);
    assert_eq!(data["main.py"], "def main(x): return x");
    assert_eq!(data[ENTRY], ENTRY_SCRIPT);

    let script = "name=\"$1\"\ncount=\"$2\"\necho \"$name\"";
    let (job, cm) = build_with(
        &id("b", 1),
        &spec("bash", script, json!({"name": "a b\n", "count": 3})),
        None,
    )
    .unwrap();
    let data = files(cm);
    assert_eq!(
        (data["arg.1"].as_str(), data["arg.2"].as_str()),
        ("a b\n", "3")
    );
    assert_eq!(
        pod_spec(&job).containers[0].image.as_deref(),
        Some("bash:5")
    );

    let (_, cm) = build_with(
        &id("c", 1),
        &spec(
            "bun",
            "export async function main(b, a) {}",
            json!({"a": 1, "b": 2}),
        ),
        None,
    )
    .unwrap();
    let data = files(cm);
    assert_eq!(data["wrapper.ts"], TYPESCRIPT_WRAPPER);
    assert_eq!(
        data["args.json"],
        r#"{"order":["b","a"],"args":{"a":1,"b":2}}"#
    );
}

#[test]
fn step_overrides_win_over_flow_settings_and_defaults() {
    let mut runtime = PodSettings::default();
    runtime
        .images
        .insert("python3".into(), "flow/python".into());
    runtime.service_account_name = Some("steps".into());
    runtime.steps.insert(
        "b".into(),
        StepPodSettings {
            image: Some("step/python".into()),
            ..Default::default()
        },
    );
    let spec = spec("python3", "def main(): pass", json!({}));
    let image = |path: &str| {
        let (job, _) = build_with(&id(path, 1), &spec, Some(&runtime)).unwrap();
        pod_spec(&job).containers[0].image.clone().unwrap()
    };
    assert_eq!(image("loop[1]/b"), "step/python");
    assert_eq!(image("a"), "flow/python");
    let (job, _) = build_with(&id("a", 1), &spec, Some(&runtime)).unwrap();
    assert_eq!(
        pod_spec(&job).service_account_name.as_deref(),
        Some("steps")
    );
}

#[test]
fn what_cannot_run_in_a_pod_is_an_error_naming_the_step() {
    let err = build_with(&id("x", 1), &spec("go", "package main", json!({})), None).unwrap_err();
    assert!(
        err.to_string().starts_with("step `x`: language `go`"),
        "{err}"
    );
    let err = build_with(&id("t", 1), &spec("bun", "const a = 1", json!({})), None).unwrap_err();
    assert!(err.to_string().contains("main"), "{err}");
    let big = "x".repeat(MAX_FILES_BYTES);
    let err = build_with(
        &id("p", 1),
        &spec("python3", "def main(s): pass", json!({"s": big})),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, BuildError::TooLarge { .. }), "{err}");
}
