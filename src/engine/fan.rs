//! Modules that run numbered children: `forloopflow` (an iteration per item), `whileloopflow`
//! (iterations until a `stop_after_if` breaks it) and `branchall` (a child per branch). Children
//! run one at a time, or up to a limit when parallel; their results fill an array, in order. A
//! sequential loop's own `stop_after_if` is checked after each iteration, on its result.

use super::api::{Action, EngineError, StepError};
use super::eval;
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::progress::{earliest, seq_attempts, seq_wake};
use super::runtime::{Runtime, Visit, aux_key};
use super::scope::{Ctx, Origin};
use super::seq::{self, mismatch};
use super::state::{Fan, Node, Seq};
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
        running: Default::default(),
        succeeded: 0,
        failed: 0,
        broken: false,
        wake: None,
    }))
}

pub(crate) fn drive(
    fan: &mut Fan,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    // An event naming one child needs only that one visited (a wide loop has thousands).
    let visit = rt.visit(path);
    let indices: Vec<u32> = match visit {
        Visit::Every => fan.running.keys().copied().collect(),
        Visit::Only(index) => vec![index],
        Visit::NoChild => Vec::new(),
    };
    // The earliest timer of the children, kept so that finding the next wake-up needs no walk
    // over them. Unvisited children keep theirs; a timer that went away in a focused visit may
    // leave it too early, which costs one spurious tick (that recomputes it), never a late one.
    let mut wake = if visit == Visit::Every {
        None
    } else {
        fan.wake
    };
    for index in indices {
        let Some(body) = fan.running.get_mut(&index) else {
            continue;
        };
        let outcome = drive_child(index, body, module, ctx, path, rt)?;
        if matches!(outcome, Outcome::Pending) {
            wake = earliest(wake, seq_wake(body));
            continue;
        }
        fan.running.remove(&index);
        if let Some(end) = settle(fan, index, outcome, module, ctx, path, rt) {
            return Ok(end);
        }
    }
    while !fan.broken
        && rt.budget > 0
        && fan.total.is_none_or(|t| fan.next < t)
        && (fan.limit == 0 || fan.running.len() < fan.limit as usize)
    {
        let (index, mut body) = (fan.next, Seq::default());
        fan.next += 1;
        if let Some(Value::Array(results)) = rt.store.get_mut(path.as_str()) {
            results.push(Value::Null);
        }
        match drive_child(index, &mut body, module, ctx, path, rt)? {
            Outcome::Pending => {
                wake = earliest(wake, seq_wake(&body));
                fan.running.insert(index, body);
            }
            outcome => {
                if let Some(end) = settle(fan, index, outcome, module, ctx, path, rt) {
                    return Ok(end);
                }
            }
        }
    }
    fan.wake = wake;
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
    index: u32,
    body: &mut Seq,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    let child_path = path.indexed(index);
    let (modules, origin) = match &module.value {
        ModuleValue::ForLoop(l) => (
            &l.modules[..],
            Origin::Iteration {
                index,
                items_key: Some(aux_key(path, "items")),
            },
        ),
        ModuleValue::WhileLoop(l) => (
            &l.modules[..],
            Origin::Iteration {
                index,
                items_key: None,
            },
        ),
        ModuleValue::BranchAll(b) => match b.branches.get(index as usize) {
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
    seq::drive(body, &child_ctx, rt)
}

/// Takes in a finished child. Returns how the whole module ends when this child ends it.
fn settle(
    fan: &mut Fan,
    index: u32,
    outcome: Outcome,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Option<Outcome> {
    rt.store.remove_under(&format!("{}/", path.indexed(index)));
    let is_loop = !matches!(module.value, ModuleValue::BranchAll(_));
    let value = match outcome {
        Outcome::Done(value) | Outcome::Complete { value, .. } => {
            fan.succeeded += 1;
            match stops_after_iteration(module, ctx, path, &value, rt) {
                Ok(stop) => fan.broken |= stop,
                Err(error) => {
                    cancel_running(fan, path, rt);
                    return Some(Outcome::Failed(error));
                }
            }
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

/// The loop module's own `stop_after_if`, with `result` = the iteration's result: true breaks the
/// loop (Windmill checks it after every iteration of a sequential loop, never on the whole
/// array, and it ends only the loop). A parallel loop starts its iterations regardless.
fn stops_after_iteration(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    result: &Value,
    rt: &Runtime,
) -> Result<bool, StepError> {
    let sequential = match &module.value {
        ModuleValue::ForLoop(l) => !l.parallel,
        ModuleValue::WhileLoop(_) => true,
        _ => false,
    };
    match module.stop_after_if.as_ref().filter(|_| sequential) {
        Some(stop) => eval::predicate(
            ctx,
            rt,
            &stop.expr,
            Some(result.clone()),
            path,
            "stop_after_if",
        ),
        None => Ok(false),
    }
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
    for (index, body) in std::mem::take(&mut fan.running) {
        let child_path = path.indexed(index);
        let mut attempts = Vec::new();
        seq_attempts(&body, &child_path, &mut attempts);
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
