//! `millrace submit`: create a FlowRun of a Flow in the namespace or of a flow file (inline), and
//! optionally follow it to its end.

use super::refs;
use super::{Cluster, Failure, SubmitArgs, block_on};
use crate::cli::inputs::parse_inputs;
use crate::cli::{Invalid, load_valid};
use crate::flow::{self, LoadedFlow};
use crate::k8s::api::flowrun::{FlowRef, FlowRunSpec, FlowRunStatus, RunPhase};
use crate::k8s::api::{Flow, FlowSpec, PodSettings};
use crate::k8s::api::{FlowRun, naming};
use anyhow::Context;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How often `--wait` reads the run.
const POLL: Duration = Duration::from_millis(500);
/// After this long still Pending, `--wait` says what may be missing.
const PENDING_HINT_AFTER: Duration = Duration::from_secs(20);
/// Room left for the random suffix the API server appends to a generated name.
const PREFIX_CHARS: usize = 40;

/// Which flow the run runs.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowSource {
    /// A Flow object in the run's namespace.
    Named(String),
    /// A flow from a file, sent in the FlowRun; `name` gives the run its name.
    Inline { name: String, spec: Box<FlowSpec> },
}

pub fn submit(args: SubmitArgs) -> Result<ExitCode, Invalid> {
    let given = parse_inputs(args.inputs.as_deref(), &args.input)
        .map_err(|e| Invalid::one(e.to_string()))?;
    let path = PathBuf::from(&args.flow);
    let source = if path.exists() {
        let loaded = load_valid(&path)?;
        check_inputs(
            loaded.flow.schema.as_ref(),
            &given,
            &path.display().to_string(),
        )?;
        FlowSource::Inline {
            name: loaded.name.clone(),
            spec: Box::new(inline_spec(&path, loaded)?),
        }
    } else {
        FlowSource::Named(args.flow.clone())
    };
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        if let FlowSource::Named(name) = &source {
            check_named(&cluster, name, &given).await?;
        }
        let run = flow_run(&source, args.name.as_deref(), Value::Object(given));
        let created = cluster
            .runs()
            .create(&PostParams::default(), &run)
            .await
            .map_err(|e| {
                let name = args.name.as_deref().unwrap_or("(generated)");
                cluster.api_error("create", "FlowRun", name, e)
            })?;
        let name = created.name_any();
        if !args.wait {
            println!("{name}");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("FlowRun {name} created in namespace {}", cluster.namespace);
        Ok(follow(&cluster, &name).await?)
    })
}

/// The FlowRun to create: named as asked, else `<flow>-<random>`.
pub fn flow_run(source: &FlowSource, name: Option<&str>, inputs: Value) -> FlowRun {
    let (flow_ref, flow, flow_name) = match source {
        FlowSource::Named(flow) => (Some(FlowRef { name: flow.clone() }), None, flow.as_str()),
        FlowSource::Inline { name, spec } => (None, Some(spec.as_ref().clone()), name.as_str()),
    };
    let mut run = FlowRun::new(
        "",
        FlowRunSpec {
            flow_ref,
            flow,
            inputs,
            cancel: false,
            approvals: Vec::new(),
        },
    );
    run.metadata = match name {
        Some(name) => ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        None => ObjectMeta {
            generate_name: Some(generate_name(flow_name)),
            ..Default::default()
        },
    };
    run
}

/// A `generateName` prefix from a flow's name: `Hello World.flow` → `hello-world-flow-`.
pub fn generate_name(flow: &str) -> String {
    let mut out = String::new();
    for c in flow.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(PREFIX_CHARS.min(naming::MAX_NAME));
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "flowrun-".into()
    } else {
        format!("{out}-")
    }
}

/// The flow file as a Flow spec; a `Flow` manifest keeps its `runtime` settings.
fn inline_spec(path: &Path, loaded: LoadedFlow) -> Result<FlowSpec, Invalid> {
    let flow = loaded.flow;
    let value = serde_json::to_value(&flow.value)
        .map_err(|e| Invalid::one(format!("{}: cannot encode the flow: {e}", path.display())))?;
    Ok(FlowSpec {
        summary: flow.summary,
        description: flow.description,
        value,
        schema: flow.schema,
        runtime: manifest_runtime(path)?,
    })
}

/// `spec.runtime` of a Flow manifest file; `None` for a plain flow file or a folder.
fn manifest_runtime(path: &Path) -> Result<Option<PodSettings>, Invalid> {
    if path.is_dir() {
        return Ok(None);
    }
    // Already read and parsed once by the loader: reading it again cannot fail differently.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap_or(Value::Null);
    match doc.get("spec").and_then(|s| s.get("runtime")) {
        Some(runtime) if doc.get("kind").is_some() => serde_json::from_value(runtime.clone())
            .map(Some)
            .map_err(|e| Invalid::one(format!("{}: spec.runtime: {e}", path.display()))),
        _ => Ok(None),
    }
}

/// The inputs must fit the flow's schema before a run is created.
fn check_inputs(
    schema: Option<&Value>,
    given: &Map<String, Value>,
    flow: &str,
) -> Result<(), Invalid> {
    flow::prepare_inputs(schema, given.clone())
        .map(drop)
        .map_err(|problems| {
            let mut lines = vec![format!("the inputs do not match the schema of {flow}:")];
            lines.extend(problems.iter().map(|p| format!("  {p}")));
            Invalid(lines)
        })
}

/// The named Flow exists, is valid, and takes these inputs.
async fn check_named(
    cluster: &Cluster,
    name: &str,
    given: &Map<String, Value>,
) -> Result<(), Failure> {
    let flows: Api<Flow> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let flow = flows
        .get_opt(name)
        .await
        .map_err(|e| cluster.api_error("read", "Flow", name, e))?
        .ok_or_else(|| {
            Invalid::one(format!(
                "Flow \"{name}\" not found in namespace \"{}\", and there is no file {name} here: \
                 apply the Flow first (`kubectl apply -f flow.yaml`), or give the path of a flow file",
                cluster.namespace
            ))
        })?;
    let not_ready = flow
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == "Ready" && c.status == "False");
    if let Some(ready) = not_ready {
        return Err(Invalid::one(format!(
            "Flow \"{name}\" is not valid: {}; fix it and apply it again",
            ready.message
        ))
        .into());
    }
    check_inputs(
        flow.spec.schema.as_ref(),
        given,
        &format!("Flow \"{name}\""),
    )?;
    Ok(())
}

/// Follows the run to its end, printing each step as it changes; the exit code says how it ended.
async fn follow(cluster: &Cluster, name: &str) -> anyhow::Result<ExitCode> {
    let started = tokio::time::Instant::now();
    let mut shown: BTreeMap<String, (String, u32)> = BTreeMap::new();
    let mut hinted = false;
    let mut waiting_for_approval = false;
    loop {
        let run = cluster.run(name).await?;
        let status = run.status.clone().unwrap_or_default();
        for line in step_changes(&status, &mut shown) {
            eprintln!("{line}");
        }
        let suspended = status.phase == Some(RunPhase::Suspended);
        if suspended && !waiting_for_approval {
            eprintln!(
                "FlowRun {name} waits for an approval: millrace approve {name} -n {} [--payload JSON]",
                cluster.namespace
            );
        }
        waiting_for_approval = suspended;
        match status.phase {
            Some(RunPhase::Succeeded) => {
                let result = refs::run_result(cluster, name, &status)
                    .await
                    .with_context(|| format!("FlowRun {name} succeeded but its result"))?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).expect("JSON values serialize")
                );
                eprintln!("FlowRun {name} succeeded{}", took(&status));
                return Ok(ExitCode::SUCCESS);
            }
            Some(RunPhase::Failed) => {
                eprintln!("{}", failure_line(&status));
                eprintln!("FlowRun {name} failed{}", took(&status));
                return Ok(ExitCode::FAILURE);
            }
            Some(RunPhase::Canceled) => {
                eprintln!("FlowRun {name} was canceled{}", took(&status));
                return Ok(ExitCode::FAILURE);
            }
            Some(RunPhase::Pending) | None if !hinted && started.elapsed() > PENDING_HINT_AFTER => {
                hinted = true;
                let why = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| format!(": {}", c.message))
                    .unwrap_or_else(|| {
                        " and untouched: is the Millrace operator running and watching this namespace?"
                            .into()
                    });
                eprintln!("FlowRun {name} is still pending{why}");
            }
            _ => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Lines for the steps whose phase or attempt count changed since last time.
pub fn step_changes(
    status: &FlowRunStatus,
    shown: &mut BTreeMap<String, (String, u32)>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &status.steps {
        let now = (step.phase.clone(), step.attempts);
        if shown.get(&step.path) == Some(&now) {
            continue;
        }
        let attempt = if step.attempts > 1 {
            format!(" (attempt {})", step.attempts)
        } else {
            String::new()
        };
        lines.push(format!("  {} {}{attempt}", step.path, step.phase));
        shown.insert(step.path.clone(), now);
    }
    lines
}

/// `error in step s: Name: message`, from the run's error or its Ready condition.
pub fn failure_line(status: &FlowRunStatus) -> String {
    if let Some(error) = &status.error {
        let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
        let step = match text("step_id") {
            "" => String::new(),
            step => format!(" in step {step}"),
        };
        return format!("error{step}: {}: {}", text("name"), text("message"));
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    match ready {
        Some(c) => format!("error: {}: {}", c.reason, c.message),
        None => "error: the run failed without saying why".into(),
    }
}

fn took(status: &FlowRunStatus) -> String {
    status
        .duration
        .as_deref()
        .map(|d| format!(" in {d}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::api::flowrun::StepStatus;
    use serde_json::json;

    #[test]
    fn generated_names_are_dns_prefixes() {
        assert_eq!(generate_name("count-and-double"), "count-and-double-");
        assert_eq!(generate_name("Hello World.flow"), "hello-world-flow-");
        assert_eq!(generate_name("__"), "flowrun-");
        let long = generate_name(&"a".repeat(100));
        assert_eq!(long.len(), PREFIX_CHARS + 1);
    }

    #[test]
    fn runs_reference_a_named_flow_or_carry_the_flow() {
        let run = flow_run(&FlowSource::Named("hello".into()), None, json!({"n": 1}));
        let doc = serde_json::to_value(&run).unwrap();
        assert_eq!(doc["metadata"], json!({"generateName": "hello-"}));
        assert_eq!(
            doc["spec"],
            json!({"flowRef": {"name": "hello"}, "inputs": {"n": 1}})
        );
        let spec = FlowSpec {
            summary: "s".into(),
            description: None,
            value: json!({"modules": []}),
            schema: None,
            runtime: None,
        };
        let inline = FlowSource::Inline {
            name: "x".into(),
            spec: Box::new(spec),
        };
        let doc = serde_json::to_value(flow_run(&inline, Some("x-1"), json!({}))).unwrap();
        assert_eq!(doc["metadata"], json!({"name": "x-1"}));
        assert_eq!(doc["spec"]["flow"]["value"], json!({"modules": []}));
        assert!(doc["spec"].get("flowRef").is_none());
    }

    fn step(path: &str, phase: &str, attempts: u32) -> StepStatus {
        StepStatus {
            path: path.into(),
            phase: phase.into(),
            attempts,
            job: None,
            start_time: None,
            completion_time: None,
            result: None,
            result_ref: None,
            error: None,
        }
    }

    #[test]
    fn only_changed_steps_are_reported() {
        let mut shown = BTreeMap::new();
        let mut status = FlowRunStatus {
            steps: vec![step("a", "running", 1)],
            ..Default::default()
        };
        assert_eq!(step_changes(&status, &mut shown), ["  a running"]);
        assert!(step_changes(&status, &mut shown).is_empty());
        status.steps = vec![step("a", "running", 2), step("b", "pending", 0)];
        assert_eq!(
            step_changes(&status, &mut shown),
            ["  a running (attempt 2)", "  b pending"]
        );
    }

    #[test]
    fn failures_name_the_step_and_the_error() {
        let status = FlowRunStatus {
            error: Some(json!({"name": "ValueError", "message": "bad", "step_id": "b"})),
            ..Default::default()
        };
        assert_eq!(failure_line(&status), "error in step b: ValueError: bad");
        assert_eq!(
            failure_line(&FlowRunStatus::default()),
            "error: the run failed without saying why"
        );
    }
}
