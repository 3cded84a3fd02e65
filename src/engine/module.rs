//! One module's life in its sequence: `skip_if`, `mock` and `sleep` before it starts, the work
//! itself (delegated by type), then `stop_after_if` and `suspend` once it succeeded.

use super::api::{Action, EngineError, StepError};
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::runtime::Runtime;
use super::scope::{Ctx, RESUME_KEY};
use super::seq::mismatch;
use super::state::Node;
use super::{branch, eval, fan, script, subflow};
use crate::flow::{FlowModule, ModuleValue, Suspend};
use serde_json::Value;

/// Enters a module: decides whether it runs at all, then starts it (or finishes it at once).
pub(crate) fn enter(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Entered, EngineError> {
    if let Some(skip_if) = &module.skip_if {
        match eval::predicate(ctx, rt, &skip_if.expr, None, path, "skip_if") {
            Ok(true) => {
                let value = ctx.previous_result(rt.store);
                return Ok(Entered::Now(Outcome::Complete {
                    value,
                    skipped: true,
                }));
            }
            Ok(false) => {}
            Err(e) => return Ok(Entered::Now(Outcome::Failed(e))),
        }
    }
    if let Some(mock) = module.mock.as_ref().filter(|m| m.enabled) {
        return Ok(Entered::Now(Outcome::Done(mock.return_value.clone())));
    }
    if let Some(sleep) = &module.sleep {
        let seconds = eval::transform(ctx, rt, sleep, path, "sleep")
            .and_then(|v| eval::seconds(&v, path, "sleep"));
        match seconds {
            Ok(s) if s > 0.0 => {
                let until_ms = rt.now + (s * 1000.0).round() as u64;
                return Ok(Entered::Node(Node::Sleeping { until_ms }));
            }
            Ok(_) => {}
            Err(e) => return Ok(Entered::Now(Outcome::Failed(e))),
        }
    }
    begin(module, ctx, path, rt)
}

/// Starts the module's work by type.
fn begin(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Entered, EngineError> {
    Ok(match &module.value {
        ModuleValue::RawScript(_) | ModuleValue::Script(_) => script::begin(),
        ModuleValue::Flow(flow) => subflow::begin(flow, ctx, path, rt),
        ModuleValue::ForLoop(_) | ModuleValue::WhileLoop(_) | ModuleValue::BranchAll(_) => {
            fan::begin(module, ctx, path, rt)
        }
        ModuleValue::BranchOne(b) => branch::begin(b, ctx, path, rt),
        ModuleValue::Identity(_) => Entered::Now(Outcome::Done(ctx.previous_result(rt.store))),
        ModuleValue::Unknown { type_name, .. } => Entered::Now(Outcome::Failed(StepError::new(
            "UnsupportedModule",
            format!("step `{path}` has type `{type_name}`, which Millrace cannot run"),
        ))),
    })
}

/// Drives a module that is under way.
pub(crate) fn drive(
    node: &mut Node,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    match (node, &module.value) {
        (Node::Sleeping { until_ms }, _) if *until_ms > rt.now => Ok(Outcome::Pending),
        (node @ Node::Sleeping { .. }, _) => match begin(module, ctx, path, rt)? {
            Entered::Node(started) => {
                *node = started;
                drive(node, module, ctx, path, rt)
            }
            Entered::Now(outcome) => Ok(outcome),
        },
        (Node::Script(leaf), ModuleValue::RawScript(_) | ModuleValue::Script(_)) => {
            Ok(script::drive(leaf, module, ctx, path, rt))
        }
        (Node::Fan(state), _) => fan::drive(state, module, ctx, path, rt),
        (Node::BranchOne { branch, body }, ModuleValue::BranchOne(b)) => {
            branch::drive(*branch, body, b, ctx, path, rt)
        }
        (Node::Subflow(flow), ModuleValue::Flow(sref)) => subflow::drive(flow, sref, ctx, path, rt),
        (
            Node::Suspended {
                approvals,
                until_ms,
            },
            _,
        ) => Ok(suspended(approvals, *until_ms, module, path, rt)),
        (_, value) => Err(mismatch(
            path,
            format!("the state does not fit a `{}` module", value.type_name()),
        )),
    }
}

/// Applies `stop_after_if` (and, for loops and branchall, `stop_after_all_iters_if`) and
/// `suspend` to a module that succeeded with `value`. `Err` is the suspended node to keep.
pub(crate) fn after_success(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    value: Value,
    rt: &mut Runtime,
) -> Result<Outcome, Node> {
    let fans_out = matches!(
        module.value,
        ModuleValue::ForLoop(_) | ModuleValue::WhileLoop(_) | ModuleValue::BranchAll(_)
    );
    let checks = [
        ("stop_after_if", module.stop_after_if.as_ref()),
        (
            "stop_after_all_iters_if",
            module.stop_after_all_iters_if.as_ref().filter(|_| fans_out),
        ),
    ];
    for (field, stop) in checks {
        let Some(stop) = stop else { continue };
        match eval::predicate(ctx, rt, &stop.expr, Some(value.clone()), path, field) {
            Ok(false) => {}
            Ok(true) => {
                return Ok(match &stop.error_message {
                    Some(message) => {
                        Outcome::Failed(StepError::new("StopAfterIf", message.clone()))
                    }
                    None => Outcome::Stopped {
                        value,
                        skipped: stop.skip_if_stopped == Some(true),
                    },
                });
            }
            Err(e) => return Ok(Outcome::Failed(e)),
        }
    }
    match module.suspend.as_ref().filter(|s| required_events(s) > 0) {
        Some(suspend) => {
            rt.store.insert(path.as_str().to_string(), value);
            let until_ms = suspend
                .timeout
                .map(|s| rt.now + (s.max(0.0) * 1000.0).round() as u64);
            rt.actions.push(await_approval(suspend, path, until_ms));
            Err(Node::Suspended {
                approvals: 0,
                until_ms,
            })
        }
        None => Ok(Outcome::Complete {
            value,
            skipped: false,
        }),
    }
}

/// A suspended module: counts approvals, fails (or goes on) on disapproval or timeout.
fn suspended(
    approvals: &mut u32,
    until_ms: Option<u64>,
    module: &FlowModule,
    path: &StepPath,
    rt: &mut Runtime,
) -> Outcome {
    let suspend = module
        .suspend
        .as_ref()
        .expect("only a module with `suspend` is suspended");
    let go_on_anyway = suspend.continue_on_disapprove_timeout == Some(true);
    if let Some(approval) = rt.take_approval(path) {
        if !approval.approved {
            return match go_on_anyway {
                true => Outcome::Complete {
                    value: stored(rt, path),
                    skipped: false,
                },
                false => Outcome::Failed(StepError::new(
                    "Disapproved",
                    format!("step `{path}` was disapproved"),
                )),
            };
        }
        *approvals += 1;
        rt.store.insert(RESUME_KEY.to_string(), approval.payload);
        if *approvals >= required_events(suspend) {
            return Outcome::Complete {
                value: stored(rt, path),
                skipped: false,
            };
        }
        return Outcome::Pending;
    }
    if until_ms.is_some_and(|t| t <= rt.now) {
        return match go_on_anyway {
            true => Outcome::Complete {
                value: stored(rt, path),
                skipped: false,
            },
            false => Outcome::Failed(StepError::new(
                "SuspendTimeout",
                format!(
                    "step `{path}` was not approved within {} s",
                    suspend.timeout.unwrap_or(0.0)
                ),
            )),
        };
    }
    if rt.reissue {
        rt.actions.push(await_approval(suspend, path, until_ms));
    }
    Outcome::Pending
}

fn stored(rt: &Runtime, path: &StepPath) -> Value {
    rt.store.get(path.as_str()).cloned().unwrap_or(Value::Null)
}

fn required_events(suspend: &Suspend) -> u32 {
    suspend.required_events.unwrap_or(1)
}

fn await_approval(suspend: &Suspend, path: &StepPath, timeout_at_ms: Option<u64>) -> Action {
    Action::AwaitApproval {
        step: path.clone(),
        required_events: required_events(suspend),
        timeout_at_ms,
        resume_form: suspend.resume_form.clone(),
    }
}
