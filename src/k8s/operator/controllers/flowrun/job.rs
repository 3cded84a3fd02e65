//! Builds the Job (and the Secret holding its code and arguments) for one step attempt. Pure: the
//! same inputs always give the same objects, so a repeated create after a restart finds the first.
//!
//! Why a Secret and not a ConfigMap: arguments may carry `variable()` / `resource()` values, which
//! must never sit in a ConfigMap. Every attempt's files go in a Secret, so no argument is ever
//! judged harmless by mistake.

use crate::engine::{AttemptId, StepSpec};
use crate::exec::runners::{
    Language, PYTHON_WRAPPER, TYPESCRIPT_WRAPPER, bash_positional_args, typescript_wrapper_args,
};
use crate::k8s::api::PodSettings;
use crate::k8s::api::naming;
use crate::k8s::api::pod::{
    ATTEMPT_LABEL, RESULT_NONCE_ANNOTATION, RUN_LABEL, STEP_CONTAINER, STEP_LABEL,
    STEP_PATH_ANNOTATION,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;
use std::time::Duration;

/// Secret key of the entry script.
const ENTRY: &str = "entry.sh";
const ENTRY_SCRIPT: &str = include_str!("job/entry.sh");

const STEP_DIR: &str = "/millrace/step";
const CONTROL_DIR: &str = "/millrace/control";
/// What the API server accepts in one Secret, less room for its metadata.
const MAX_FILES_BYTES: usize = 1024 * 1024 - 16 * 1024;
/// Step pods run as this non-root user: common language images default to root.
const STEP_UID: i64 = 65532;

/// The operator's defaults for step pods (Helm values / command-line flags).
#[derive(Debug, Clone, PartialEq)]
pub struct PodDefaults {
    /// Image per language name (`python3`, `bash`, `bun`, `deno`).
    pub images: BTreeMap<String, String>,
    pub service_account: Option<String>,
    /// How long a finished Job (and its pod and log) stays for inspection.
    pub ttl_seconds_after_finished: i32,
    /// The largest result a step may return, in bytes.
    pub result_cap_bytes: u64,
    /// How long an attempt's pod may stay uncreated or unscheduled, unless the Flow says.
    pub pod_pending_timeout: Duration,
}

impl Default for PodDefaults {
    fn default() -> Self {
        let images = [
            ("python3", "python:3.12-slim"),
            ("bash", "bash:5"),
            ("bun", "oven/bun:1"),
            ("deno", "denoland/deno:2"),
        ];
        PodDefaults {
            images: images
                .into_iter()
                .map(|(l, i)| (l.to_string(), i.to_string()))
                .collect(),
            service_account: None,
            ttl_seconds_after_finished: 3600,
            result_cap_bytes: 1024 * 1024,
            pod_pending_timeout: Duration::from_secs(600),
        }
    }
}

/// The FlowRun an attempt belongs to (owner of everything built here).
#[derive(Debug, Clone, PartialEq)]
pub struct RunIdentity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

impl RunIdentity {
    /// The run's queue in the expression sandbox ([`crate::expr::Evaluator::for_queue`]).
    pub fn queue(&self) -> String {
        run_queue(&self.namespace, &self.name)
    }
}

/// The sandbox queue of the FlowRun `namespace/name`: a run's expressions wait in turn with
/// other runs', so one run's hostile expressions cannot starve the others.
pub fn run_queue(namespace: &str, name: &str) -> String {
    format!("FlowRun {namespace}/{name}")
}

/// One attempt to build objects for.
pub struct AttemptPlan<'a> {
    pub run: &'a RunIdentity,
    pub id: &'a AttemptId,
    pub spec: &'a StepSpec,
    /// The Flow's `runtime` settings, if any.
    pub runtime: Option<&'a PodSettings>,
    pub defaults: &'a PodDefaults,
    /// Frames a large result in the pod log; random per attempt, kept on the Job.
    pub nonce: &'a str,
}

/// Why an attempt cannot become a Job; the attempt fails with this as its error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "step `{step}`: language `{language}` cannot run in a pod (python3, bash, bun, deno and nativets can)"
    )]
    Language { step: String, language: String },
    #[error(
        "step `{step}`: no image for language `{language}`: set runtime.images.{language} on the Flow or an image for the operator"
    )]
    NoImage { step: String, language: String },
    #[error("step `{step}`: {message}")]
    Script { step: String, message: String },
    #[error(
        "step `{step}`: code and arguments take {bytes} bytes, more than a Secret holds ({MAX_FILES_BYTES}); pass large data by reference"
    )]
    TooLarge { step: String, bytes: usize },
}

/// How long the pod of step `module_id` may stay pending: the step's setting, else the Flow's,
/// else the operator's.
pub fn pending_timeout(
    runtime: Option<&PodSettings>,
    module_id: &str,
    default: Duration,
) -> Duration {
    let step = runtime
        .and_then(|r| r.steps.get(module_id))
        .and_then(|s| s.pod_pending_timeout_seconds);
    step.or_else(|| runtime.and_then(|r| r.pod_pending_timeout_seconds))
        .map_or(default, Duration::from_secs)
}

/// The Job of an attempt and the Secret (same name) its pod reads the code and arguments from.
pub fn build(plan: &AttemptPlan) -> Result<(Job, Secret), BuildError> {
    let path = plan.id.step.as_str();
    let name = naming::job_name(&plan.run.name, &plan.run.uid, path, plan.id.attempt);
    let language =
        Language::from_name(&plan.spec.language).ok_or_else(|| BuildError::Language {
            step: path.into(),
            language: plan.spec.language.clone(),
        })?;
    let step_runtime = plan
        .runtime
        .and_then(|r| r.steps.get(plan.id.step.module_id()));
    let image = step_runtime
        .and_then(|s| s.image.clone())
        .or_else(|| image_for(plan.runtime.map(|r| &r.images), plan.spec, language))
        .or_else(|| image_for(Some(&plan.defaults.images), plan.spec, language))
        .ok_or_else(|| BuildError::NoImage {
            step: path.into(),
            language: language.name().into(),
        })?;
    let data = step_files(language, plan.spec).map_err(|message| BuildError::Script {
        step: path.into(),
        message,
    })?;
    let bytes: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_FILES_BYTES {
        return Err(BuildError::TooLarge {
            step: path.into(),
            bytes,
        });
    }

    let labels = BTreeMap::from([
        (RUN_LABEL.to_string(), naming::label_value(&plan.run.name)),
        (STEP_LABEL.to_string(), naming::label_value(path)),
        (ATTEMPT_LABEL.to_string(), plan.id.attempt.to_string()),
    ]);
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(plan.run.namespace.clone()),
        labels: Some(labels.clone()),
        annotations: Some(BTreeMap::from([
            (STEP_PATH_ANNOTATION.to_string(), path.to_string()),
            (RESULT_NONCE_ANNOTATION.to_string(), plan.nonce.to_string()),
        ])),
        owner_references: Some(vec![owner(plan.run)]),
        ..Default::default()
    };
    let files = Secret {
        metadata: ObjectMeta {
            annotations: None,
            ..meta.clone()
        },
        data: Some(
            data.into_iter()
                .map(|(key, text)| (key, ByteString(text.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };

    let env = [
        ("MILLRACE_STEP", STEP_DIR.to_string()),
        ("MILLRACE_CONTROL", CONTROL_DIR.to_string()),
        ("MILLRACE_LANGUAGE", language.name().to_string()),
        ("MILLRACE_NONCE", plan.nonce.to_string()),
        (
            "MILLRACE_RESULT_CAP",
            plan.defaults.result_cap_bytes.to_string(),
        ),
        ("MILLRACE_TERMINATION_LOG", "/dev/termination-log".into()),
        // Images often run as root with HOME=/root; the step user writes only under /millrace.
        ("HOME", format!("{CONTROL_DIR}/work")),
        ("TMPDIR", CONTROL_DIR.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    })
    .collect();
    let env_from: Vec<_> = plan
        .runtime
        .map(|r| r.env_from.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(step_runtime.map(|s| s.env_from.clone()).unwrap_or_default())
        .collect();
    let container = Container {
        name: STEP_CONTAINER.into(),
        image: Some(image),
        command: Some(vec!["sh".into(), format!("{STEP_DIR}/{ENTRY}")]),
        env: Some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: step_runtime
            .and_then(|s| s.resources.clone())
            .or_else(|| plan.runtime.and_then(|r| r.resources.clone())),
        volume_mounts: Some(vec![
            mount("step", STEP_DIR, true),
            mount("control", CONTROL_DIR, false),
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        service_account_name: plan
            .runtime
            .and_then(|r| r.service_account_name.clone())
            .or_else(|| plan.defaults.service_account.clone()),
        // Steps talk to their own services, not to the Kubernetes API.
        automount_service_account_token: Some(false),
        node_selector: plan
            .runtime
            .map(|r| r.node_selector.clone())
            .filter(|n| !n.is_empty()),
        tolerations: plan
            .runtime
            .map(|r| r.tolerations.clone())
            .filter(|t| !t.is_empty()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(STEP_UID),
            run_as_group: Some(STEP_UID),
            fs_group: Some(STEP_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "step".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "control".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let job = Job {
        metadata: meta,
        spec: Some(JobSpec {
            // One pod per attempt: a lost pod (deleted, evicted, its node gone) fails the
            // attempt, and the engine's retry policy decides what comes next. The Job never
            // replaces it, not even while it terminates, so a step never runs twice in one
            // attempt behind the engine's back.
            backoff_limit: Some(0),
            pod_replacement_policy: Some("Failed".into()),
            pod_failure_policy: Some(lost_pod_fails_the_job()),
            active_deadline_seconds: plan.spec.timeout_ms.map(|ms| ms.div_ceil(1000) as i64),
            // Set by the controller once the attempt's result is saved: a Job that vanished
            // earlier would take its result with it, and look like one never created.
            ttl_seconds_after_finished: None,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    // The exact run name, to find the run from a pod (labels may be folded).
                    annotations: Some(BTreeMap::from([(
                        RUN_LABEL.to_string(),
                        plan.run.name.clone(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    };
    Ok((job, files))
}

/// A disrupted pod (evicted, preempted, deleted by the taint manager or the pod GC) fails the Job
/// at once; any other failure does too, through `backoffLimit: 0`. With a policy set, the Job
/// controller counts a pod as failed only once it has stopped, not as soon as it is deleted.
fn lost_pod_fails_the_job() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: "DisruptionTarget".into(),
                status: Some("True".into()),
            }]),
        }],
    }
}

fn image_for(
    images: Option<&BTreeMap<String, String>>,
    spec: &StepSpec,
    language: Language,
) -> Option<String> {
    let images = images?;
    images
        .get(&spec.language)
        .or_else(|| images.get(language.name()))
        .cloned()
}

/// The files the pod's `entry.sh` expects for `language`, keyed by file name.
fn step_files(language: Language, spec: &StepSpec) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::from([(ENTRY.to_string(), ENTRY_SCRIPT.to_string())]);
    let args = serde_json::Value::Object(spec.args.clone());
    match language {
        Language::Python3 => {
            files.insert("main.py".into(), spec.content.clone());
            files.insert("wrapper.py".into(), PYTHON_WRAPPER.into());
            files.insert("args.json".into(), args.to_string());
        }
        Language::Bash => {
            files.insert("main.sh".into(), spec.content.clone());
            for (i, arg) in bash_positional_args(&spec.content, &spec.args)
                .into_iter()
                .enumerate()
            {
                files.insert(format!("arg.{}", i + 1), arg);
            }
        }
        Language::Bun | Language::Deno => {
            let wrapper_args =
                typescript_wrapper_args(&spec.content, &spec.args).map_err(|e| e.to_string())?;
            files.insert("main.ts".into(), spec.content.clone());
            files.insert("wrapper.ts".into(), TYPESCRIPT_WRAPPER.into());
            files.insert("args.json".into(), wrapper_args.to_string());
        }
    }
    Ok(files)
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// The FlowRun as the controlling owner: deleting the run deletes its Jobs, Secrets and ConfigMaps.
pub fn owner(run: &RunIdentity) -> OwnerReference {
    OwnerReference {
        api_version: "millrace.dev/v1alpha1".into(),
        kind: "FlowRun".into(),
        name: run.name.clone(),
        uid: run.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
mod tests;
