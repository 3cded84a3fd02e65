//! `millrace approve` and `millrace cancel`: the same merge patches of `spec.approvals` and
//! `spec.cancel` as `kubectl patch --type merge` would send.

use super::{ApproveArgs, CancelArgs, Cluster, block_on};
use crate::cli::Invalid;
use crate::cli::inputs::json_object;
use crate::k8s::api::flowrun::{Approval, FlowRunSpec, RunPhase};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::process::ExitCode;

/// Tries when another writer changes the run between our read and our patch.
const CONFLICT_TRIES: usize = 5;

pub fn approve(args: ApproveArgs) -> Result<ExitCode, Invalid> {
    let payload = match &args.payload {
        Some(text) => Some(payload(text)?),
        None => None,
    };
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        for _ in 0..CONFLICT_TRIES {
            let run = cluster.run(&args.run).await?;
            let status = run.status.clone().unwrap_or_default();
            let suspended: Vec<&str> = status
                .steps
                .iter()
                .filter(|s| s.phase == "suspended")
                .map(|s| s.path.as_str())
                .collect();
            let step = choose_step(&args.run, status.phase, &suspended, args.step.as_deref())
                .map_err(Invalid::one)?;
            let approval = Approval {
                step: step.clone(),
                approved: !args.reject,
                payload: payload.clone(),
            };
            // A merge patch replaces the list: send it whole, guarded by the resourceVersion read.
            let patch = approvals_patch(&run.spec, approval, run.metadata.resource_version);
            match cluster
                .runs()
                .patch(&args.run, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    let verb = if args.reject { "rejected" } else { "approved" };
                    eprintln!("FlowRun {}: step {step} {verb}", args.run);
                    return Ok(ExitCode::SUCCESS);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(cluster.api_error("patch", "FlowRun", &args.run, e).into()),
            }
        }
        Err(anyhow::anyhow!(
            "FlowRun \"{}\" kept changing while approving; try again",
            args.run
        )
        .into())
    })
}

pub fn cancel(args: CancelArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let run = cluster.run(&args.run).await?;
        if let Some(phase) = run.status.and_then(|s| s.phase).filter(|p| p.has_ended()) {
            return Err(Invalid::one(format!(
                "FlowRun \"{}\" has already ended ({phase:?}): nothing to cancel",
                args.run
            ))
            .into());
        }
        let patch = json!({"spec": {"cancel": true}});
        cluster
            .runs()
            .patch(&args.run, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| cluster.api_error("patch", "FlowRun", &args.run, e))?;
        eprintln!("FlowRun {}: cancel requested", args.run);
        Ok(ExitCode::SUCCESS)
    })
}

/// `--payload`: any JSON value, or `@FILE` holding a JSON or YAML object.
fn payload(text: &str) -> Result<Value, Invalid> {
    if text.starts_with('@') {
        return json_object("--payload", text)
            .map(Value::Object)
            .map_err(|e| Invalid::one(e.to_string()));
    }
    serde_json::from_str(text).map_err(|e| {
        Invalid::one(format!(
            "--payload {text}: not JSON: {e} (quote strings: '\"yes\"'; use @FILE to read a file)"
        ))
    })
}

/// The step to answer: the one asked for, which must be suspended, or else the only one.
pub fn choose_step(
    run: &str,
    phase: Option<RunPhase>,
    suspended: &[&str],
    asked: Option<&str>,
) -> Result<String, String> {
    match (asked, suspended) {
        (_, []) => Err(format!(
            "FlowRun \"{run}\" is not waiting for an approval (phase {}); see `millrace status {run}`",
            phase.map_or_else(|| "unknown".into(), |p| format!("{p:?}"))
        )),
        (Some(step), _) if suspended.contains(&step) => Ok(step.into()),
        (Some(step), _) => Err(format!(
            "FlowRun \"{run}\": step {step} is not suspended; suspended: {}",
            suspended.join(", ")
        )),
        (None, [one]) => Ok((*one).into()),
        (None, many) => Err(format!(
            "FlowRun \"{run}\" has {} suspended steps: choose one with --step ({})",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The merge patch appending `approval` to the run's approvals.
pub fn approvals_patch(
    spec: &FlowRunSpec,
    approval: Approval,
    resource_version: Option<String>,
) -> Value {
    let mut approvals = spec.approvals.clone();
    approvals.push(approval);
    json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"approvals": approvals},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suspended_step_is_found_or_must_be_named() {
        assert_eq!(choose_step("r", None, &["ask"], None), Ok("ask".into()));
        assert_eq!(
            choose_step("r", None, &["a", "b"], Some("b")),
            Ok("b".into())
        );
        assert_eq!(
            choose_step("r", None, &["a", "b"], None).unwrap_err(),
            "FlowRun \"r\" has 2 suspended steps: choose one with --step (a, b)"
        );
        assert_eq!(
            choose_step("r", None, &["a"], Some("c")).unwrap_err(),
            "FlowRun \"r\": step c is not suspended; suspended: a"
        );
        assert!(
            choose_step("r", Some(RunPhase::Running), &[], None)
                .unwrap_err()
                .contains("not waiting for an approval (phase Running)")
        );
    }

    #[test]
    fn approvals_are_appended_and_guarded_by_the_resource_version() {
        let spec: FlowRunSpec = serde_json::from_value(json!({
            "flowRef": {"name": "f"},
            "approvals": [{"step": "first"}],
        }))
        .unwrap();
        let approval = Approval {
            step: "second".into(),
            approved: false,
            payload: Some(json!({"why": "no"})),
        };
        assert_eq!(
            approvals_patch(&spec, approval, Some("42".into())),
            json!({
                "metadata": {"resourceVersion": "42"},
                "spec": {"approvals": [
                    {"step": "first", "approved": true},
                    {"step": "second", "approved": false, "payload": {"why": "no"}},
                ]},
            })
        );
    }

    #[test]
    fn payloads_are_json_values() {
        assert_eq!(payload("{\"ok\": 1}").unwrap(), json!({"ok": 1}));
        assert_eq!(payload("\"yes\"").unwrap(), json!("yes"));
        assert!(payload("yes").unwrap_err().0[0].starts_with("--payload yes: not JSON"));
    }
}
