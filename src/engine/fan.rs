//! Modules that run numbered children: `forloopflow` (an iteration per item), `whileloopflow`
//! (iterations until a `stop_after_if` breaks it) and `branchall` (a child per branch). Children
//! run one at a time, or up to a limit when parallel; their results fill an array, in order.

use super::api::{Action, EngineError, StepError};
use super::eval;
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::progress::seq_attempts;
use super::runtime::{Runtime, aux_key};
use super::scope::{Ctx, Origin};
use super::seq::{self, mismatch};
use super::state::{Child, Fan, Node, Seq};
use crate::flow::{FlowModule, ModuleValue, Parallelism};
use serde_json::{Value, json};

pub(crate) fn begin(module: &FlowModule, ctx: &Ctx, path: &StepPath, rt: &mut Runtime) -> Entered {
    let (total, limit) = match &module.value {
        ModuleValue::ForLoop(l) => {
            let items = match eval::transform(ctx, rt, &l.iterator, path, "iterator") {
                Ok(Value::Array(items)) => items,
                Ok(other) => {
                    return Entered::Now(Outcome::Failed(StepError::new(
                        "InvalidIterator",
                        format!(
                            "step `{path}`: `iterator` must evaluate to an array, got {}",
                            type_of(&other)
                        ),
                    )));
                }
                Err(e) => return Entered::Now(Outcome::Failed(e)),
            };
            let limit = match (l.parallel, &l.parallelism) {
                (false, _) => 1,
                (true, None) => 0,
                (true, Some(Parallelism::Count(n))) => *n,
                (true, Some(Parallelism::Transform(t))) => {
                    match eval::transform(ctx, rt, t, path, "parallelism").map(|v| v.as_f64()) {
                        Ok(Some(n)) if n >= 0.0 => n as u64,
                        Ok(Some(_)) | Ok(None) => 0,
                        Err(e) => return Entered::Now(Outcome::Failed(e)),
                    }
                }
            };
            let total = items.len() as u32;
            rt.store.insert(aux_key(path, "items"), Value::Array(items));
            (Some(total), limit.min(u32::MAX as u64) as u32)
        }
        ModuleValue::WhileLoop(_) => (None, 1),
        ModuleValue::BranchAll(b) => (
            Some(b.branches.len() as u32),
            if b.parallel { 0 } else { 1 },
        ),
        other => unreachable!("a `{}` module has no children", other.type_name()),
    };
    rt.store
        .insert(path.as_str().to_string(), Value::Array(Vec::new()));
    Entered::Node(Node::Fan(Fan {
        total,
        next: 0,
        limit,
        running: Vec::new(),
        succeeded: 0,
        failed: 0,
        broken: false,
    }))
}

pub(crate) fn drive(
    fan: &mut Fan,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    let mut i = 0;
    while i < fan.running.len() {
        let child = &mut fan.running[i];
        match drive_child(child, module, ctx, path, rt)? {
            Outcome::Pending => i += 1,
            outcome => {
                let index = fan.running.remove(i).index;
                if let Some(end) = settle(fan, index, outcome, module, path, rt) {
                    return Ok(end);
                }
            }
        }
    }
    while !fan.broken
        && rt.budget > 0
        && fan.total.is_none_or(|t| fan.next < t)
        && (fan.limit == 0 || fan.running.len() < fan.limit as usize)
    {
        let mut child = Child {
            index: fan.next,
            body: Seq::default(),
        };
        fan.next += 1;
        if let Some(Value::Array(results)) = rt.store.get_mut(path.as_str()) {
            results.push(Value::Null);
        }
        match drive_child(&mut child, module, ctx, path, rt)? {
            Outcome::Pending => fan.running.push(child),
            outcome => {
                if let Some(end) = settle(fan, child.index, outcome, module, path, rt) {
                    return Ok(end);
                }
            }
        }
    }
    let finished = fan.broken || fan.total.is_some_and(|t| fan.next >= t);
    if !finished || !fan.running.is_empty() {
        return Ok(Outcome::Pending);
    }
    rt.store.remove(&aux_key(path, "items"));
    Ok(Outcome::Done(
        rt.store
            .remove(path.as_str())
            .unwrap_or(Value::Array(Vec::new())),
    ))
}

fn drive_child(
    child: &mut Child,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    let child_path = path.indexed(child.index);
    let (modules, origin) = match &module.value {
        ModuleValue::ForLoop(l) => (
            &l.modules[..],
            Origin::Iteration {
                index: child.index,
                items_key: Some(aux_key(path, "items")),
            },
        ),
        ModuleValue::WhileLoop(l) => (
            &l.modules[..],
            Origin::Iteration {
                index: child.index,
                items_key: None,
            },
        ),
        ModuleValue::BranchAll(b) => match b.branches.get(child.index as usize) {
            Some(branch) => (&branch.modules[..], Origin::Branch),
            None => {
                return Err(mismatch(
                    &child_path,
                    format!("the branchall has {} branches", b.branches.len()),
                ));
            }
        },
        other => {
            return Err(mismatch(
                path,
                format!("the state does not fit a `{}` module", other.type_name()),
            ));
        }
    };
    let child_ctx = Ctx::nested(ctx, child_path, modules, origin);
    seq::drive(&mut child.body, &child_ctx, rt)
}

/// Takes in a finished child. Returns how the whole module ends when this child ends it.
fn settle(
    fan: &mut Fan,
    index: u32,
    outcome: Outcome,
    module: &FlowModule,
    path: &StepPath,
    rt: &mut Runtime,
) -> Option<Outcome> {
    rt.store.remove_under(&format!("{}/", path.indexed(index)));
    let is_loop = !matches!(module.value, ModuleValue::BranchAll(_));
    let value = match outcome {
        Outcome::Done(value) | Outcome::Complete { value, .. } => {
            fan.succeeded += 1;
            value
        }
        Outcome::Stopped { value, .. } if is_loop => {
            fan.succeeded += 1;
            fan.broken = true;
            value
        }
        Outcome::Failed(error) if skips_failure(module, index) => {
            fan.failed += 1;
            json!({ "error": error })
        }
        end @ (Outcome::Stopped { .. } | Outcome::Failed(_)) => {
            cancel_running(fan, path, rt);
            return Some(end);
        }
        Outcome::Pending => unreachable!("a pending child is not settled"),
    };
    if let Some(slot) = rt
        .store
        .get_mut(path.as_str())
        .and_then(|r| r.get_mut(index as usize))
    {
        *slot = value;
    }
    None
}

fn skips_failure(module: &FlowModule, index: u32) -> bool {
    match &module.value {
        ModuleValue::ForLoop(l) => l.skip_failures,
        ModuleValue::WhileLoop(l) => l.skip_failures,
        ModuleValue::BranchAll(b) => b
            .branches
            .get(index as usize)
            .is_some_and(|b| b.skip_failure),
        _ => false,
    }
}

/// Cancels the children still running when the module ends early.
fn cancel_running(fan: &mut Fan, path: &StepPath, rt: &mut Runtime) {
    for child in fan.running.drain(..) {
        let child_path = path.indexed(child.index);
        let mut attempts = Vec::new();
        seq_attempts(&child.body, &child_path, &mut attempts);
        rt.actions
            .extend(attempts.into_iter().map(|id| Action::CancelAttempt { id }));
        rt.store.remove_under(&format!("{child_path}/"));
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
