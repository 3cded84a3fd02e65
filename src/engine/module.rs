//! One module's life in its sequence: `skip_if` and `mock` before it starts, the work itself
//! (delegated by type), then `stop_after_if`, `suspend` and `sleep` once it succeeded.

use super::api::{Action, EngineError, StepError};
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::runtime::Runtime;
use super::scope::{Ctx, RESUME_KEY};
use super::seq::mismatch;
use super::state::Node;
use super::{branch, eval, fan, script, subflow};
use crate::flow::{FlowModule, InputTransform, ModuleValue, Suspend};
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
        (Node::Sleeping { until_ms, .. }, _) if *until_ms > rt.now => Ok(Outcome::Pending),
        (Node::Sleeping { .. }, _) => Ok(Outcome::Complete {
            value: stored(rt, path),
            skipped: false,
        }),
        (Node::Script(leaf), ModuleValue::RawScript(_) | ModuleValue::Script(_)) => {
            Ok(script::drive(leaf, module, ctx, path, rt))
        }
        (
            Node::Fan(state),
            ModuleValue::ForLoop(_) | ModuleValue::WhileLoop(_) | ModuleValue::BranchAll(_),
        ) => fan::drive(state, module, ctx, path, rt),
        (Node::BranchOne { branch, body }, ModuleValue::BranchOne(b)) => {
            branch::drive(*branch, body, b, ctx, path, rt)
        }
        (Node::Subflow(flow), ModuleValue::Flow(sref)) => subflow::drive(flow, sref, ctx, path, rt),
        (node @ Node::Suspended { .. }, _) if module.suspend.is_some() => {
            let Node::Suspended {
                approvals,
                until_ms,
                attempts,
                sleep_until,
            } = node
            else {
                unreachable!("matched as suspended")
            };
            let (attempts, sleep_until) = (*attempts, *sleep_until);
            let outcome = suspended(approvals, *until_ms, module, path, rt);
            match (&outcome, sleep_until) {
                (Outcome::Complete { .. }, Some(until_ms)) if until_ms > rt.now => {
                    *node = Node::Sleeping { until_ms, attempts };
                    Ok(Outcome::Pending)
                }
                _ => Ok(outcome),
            }
        }
        (_, value) => Err(mismatch(
            path,
            format!("the state does not fit a `{}` module", value.type_name()),
        )),
    }
}

/// Applies `stop_after_if` (for loops it was checked after each iteration instead; for loops and
/// branchall `stop_after_all_iters_if`), then `suspend` and `sleep` to a module that succeeded
/// with `value` after `attempts` attempts. `Err` is the suspended or sleeping node to keep.
pub(crate) fn after_success(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    value: Value,
    attempts: u32,
    rt: &mut Runtime,
) -> Result<Outcome, Node> {
    let is_loop = matches!(
        module.value,
        ModuleValue::ForLoop(_) | ModuleValue::WhileLoop(_)
    );
    let fans_out = is_loop || matches!(module.value, ModuleValue::BranchAll(_));
    let checks = [
        (
            "stop_after_if",
            module.stop_after_if.as_ref().filter(|_| !is_loop),
        ),
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
    let sleep_until = match sleep_after(module, ctx, path, &value, rt) {
        Ok(until) => until,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
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
                attempts,
                sleep_until,
            })
        }
        None => match sleep_until {
            Some(until_ms) => {
                rt.store.insert(path.as_str().to_string(), value);
                Err(Node::Sleeping { until_ms, attempts })
            }
            None => Ok(Outcome::Complete {
                value,
                skipped: false,
            }),
        },
    }
}

/// When the next module may start after this one succeeded with `value`, if its `sleep` delays
/// it. As in Windmill, the sleep comes after the step, sees its result as `result` (and as
/// `previous_result`), and applies only when a module follows in the same sequence.
fn sleep_after(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    value: &Value,
    rt: &mut Runtime,
) -> Result<Option<u64>, StepError> {
    let Some(sleep) = &module.sleep else {
        return Ok(None);
    };
    let position = ctx.done.get();
    if position + 1 >= ctx.modules.len() {
        return Ok(None);
    }
    let seconds = match sleep {
        InputTransform::Static { value } => value.clone(),
        InputTransform::Javascript { expr } => {
            rt.store.insert(path.as_str().to_string(), value.clone());
            ctx.done.set(position + 1);
            let evaluated = eval::expression(ctx, rt, expr, Some(value.clone()), path, "sleep");
            ctx.done.set(position);
            evaluated?
        }
    };
    let seconds = eval::seconds(&seconds, path, "sleep")?;
    Ok((seconds > 0.0).then(|| rt.now + (seconds * 1000.0).round() as u64))
}

/// A suspended module: counts approvals, fails (or goes on) on disapproval or timeout.
fn suspended(
    approvals: &mut u32,
    until_ms: Option<u64>,
    module: &FlowModule,
    path: &StepPath,
    rt: &mut Runtime,
) -> Outcome {
    let Some(suspend) = &module.suspend else {
        return Outcome::Pending;
    };
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
    if rt.reissue.is_some() {
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
