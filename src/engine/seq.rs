//! Running a sequence of modules in order, and what happens when each one ends: its result is
//! stored, `continue_on_error` lets the sequence go on past a failure, a stop ends it early.

use super::api::{Action, EngineError};
use super::module;
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::progress::Phase;
use super::runtime::Runtime;
use super::scope::{Ctx, Origin};
use super::state::{Active, Node, Record, Seq};
use crate::flow::FlowModule;
use serde_json::{Value, json};

/// Drives `seq` as far as it goes without waiting. `Done` carries the last module's result (the
/// sequence's input when it has no modules).
pub(crate) fn drive(seq: &mut Seq, ctx: &Ctx, rt: &mut Runtime) -> Result<Outcome, EngineError> {
    loop {
        let pos = seq.done.len();
        ctx.done.set(pos);
        let Some(module) = ctx.modules.get(pos) else {
            if seq.current.is_some() || pos > ctx.modules.len() {
                return Err(mismatch(
                    &ctx.path,
                    format!("the sequence has only {} modules", ctx.modules.len()),
                ));
            }
            return Ok(Outcome::Done(ctx.previous_result(rt.store)));
        };
        let path = ctx.module_path(&module.id);
        let outcome = match seq.current.as_deref_mut() {
            Some(active) if active.id != module.id => {
                return Err(mismatch(
                    &path,
                    format!("the state runs module `{}` here", active.id),
                ));
            }
            Some(active) => module::drive(&mut active.node, module, ctx, &path, rt)?,
            None => {
                if rt.budget == 0 {
                    return Ok(Outcome::Pending);
                }
                rt.budget -= 1;
                match module::enter(module, ctx, &path, rt)? {
                    Entered::Node(node) => {
                        seq.current = Some(Box::new(Active {
                            id: module.id.clone(),
                            started_ms: rt.now,
                            node,
                        }));
                        continue;
                    }
                    Entered::Now(outcome) => outcome,
                }
            }
        };
        let outcome = match outcome {
            Outcome::Done(value) => match module::after_success(
                module,
                ctx,
                &path,
                value,
                attempts(seq.current.as_deref()),
                rt,
            ) {
                Ok(outcome) => outcome,
                Err(suspended) => {
                    let started_ms = seq.current.as_ref().map_or(rt.now, |a| a.started_ms);
                    seq.current = Some(Box::new(Active {
                        id: module.id.clone(),
                        started_ms,
                        node: suspended,
                    }));
                    return Ok(Outcome::Pending);
                }
            },
            other => other,
        };
        match outcome {
            Outcome::Pending => return Ok(Outcome::Pending),
            Outcome::Done(value)
            | Outcome::Complete {
                value,
                skipped: false,
            } => {
                complete(seq, module, ctx, &path, value, Phase::Succeeded, rt);
            }
            Outcome::Complete {
                value,
                skipped: true,
            } => complete(seq, module, ctx, &path, value, Phase::Skipped, rt),
            Outcome::Stopped { value, skipped } => {
                complete(seq, module, ctx, &path, value.clone(), Phase::Succeeded, rt);
                return Ok(Outcome::Stopped { value, skipped });
            }
            Outcome::Failed(mut error) => {
                error.step_id.get_or_insert_with(|| module.id.clone());
                let value = json!({ "error": error });
                complete(seq, module, ctx, &path, value, Phase::Failed, rt);
                if module.continue_on_error != Some(true) {
                    return Ok(Outcome::Failed(error));
                }
            }
        }
    }
}

/// Records the module as finished with `value` and moves the sequence past it.
fn complete(
    seq: &mut Seq,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    value: Value,
    phase: Phase,
    rt: &mut Runtime,
) {
    let active = seq.current.take();
    let attempts = attempts(active.as_deref());
    let (started_ms, progress) = match active.as_deref() {
        Some(Active {
            started_ms,
            node: Node::Fan(fan),
            ..
        }) => (*started_ms, Some(fan.progress())),
        Some(Active { started_ms, .. }) => (*started_ms, None),
        None => (rt.now, None),
    };
    if ctx.path.is_root()
        && matches!(ctx.origin, Origin::Flow { .. })
        && ctx.flow_value().and_then(|v| v.early_return.as_deref()) == Some(module.id.as_str())
    {
        rt.actions.push(Action::EarlyReturn {
            result: value.clone(),
        });
    }
    rt.store.insert(path.as_str().to_string(), value);
    seq.done.push(Record {
        id: module.id.clone(),
        phase,
        attempts,
        started_ms,
        finished_ms: rt.now,
        progress,
    });
    ctx.done.set(seq.done.len());
}

/// Attempts made by the module at `active` (script steps only).
fn attempts(active: Option<&Active>) -> u32 {
    match active.map(|a| &a.node) {
        Some(Node::Script(leaf)) => leaf.attempt,
        Some(Node::Suspended { attempts, .. } | Node::Sleeping { attempts, .. }) => *attempts,
        _ => 0,
    }
}

pub(crate) fn mismatch(path: &StepPath, reason: String) -> EngineError {
    EngineError::StateMismatch {
        path: path.to_string(),
        reason,
    }
}
