//! A flow as a whole (the run itself or a subflow): its main sequence, then on failure its
//! `failure_module`, which sees `{error}` and turns the failure into success only by returning
//! `{recover: true}`.

use super::api::{EngineError, StepError};
use super::eval;
use super::outcome::Outcome;
use super::path::StepPath;
use super::runtime::{Runtime, aux_key};
use super::scope::{Ctx, Origin};
use super::seq;
use super::state::{FlowNode, Seq};
use crate::flow::FlowValue;
use serde_json::Value;
use std::cell::Cell;

pub(crate) enum FlowStatus {
    Pending,
    Succeeded(Value),
    Failed(StepError),
    /// Ended early by a `stop_after_if` with `skip_if_stopped`, with the stopping step's result.
    Skipped(Value),
}

/// Drives the flow at `path` (root or a subflow module's path); its inputs are in the store.
pub(crate) fn drive(
    node: &mut FlowNode,
    value: &FlowValue,
    path: &StepPath,
    depth: u32,
    rt: &mut Runtime,
) -> Result<FlowStatus, EngineError> {
    let main_ctx = root_ctx(value, path, depth);
    if node.handler.is_none() {
        let error = match seq::drive(&mut node.main, &main_ctx, rt)? {
            Outcome::Pending => return Ok(FlowStatus::Pending),
            Outcome::Done(v)
            | Outcome::Complete { value: v, .. }
            | Outcome::Stopped {
                value: v,
                skipped: false,
            } => {
                return Ok(FlowStatus::Succeeded(v));
            }
            Outcome::Stopped {
                value: v,
                skipped: true,
            } => return Ok(FlowStatus::Skipped(v)),
            Outcome::Failed(error) => error,
        };
        if value.failure_module.is_none() {
            return Ok(FlowStatus::Failed(error));
        }
        rt.store.insert(
            aux_key(path, "error"),
            serde_json::to_value(&error).unwrap_or(Value::Null),
        );
        node.handler = Some(Seq::default());
    }
    let (Some(handler), Some(failure_module)) =
        (node.handler.as_mut(), value.failure_module.as_deref())
    else {
        return Err(seq::mismatch(
            path,
            "the state runs a failure module the flow does not have".into(),
        ));
    };
    main_ctx.done.set(node.main.done.len());
    let error_key = aux_key(path, "error");
    let handler_ctx = Ctx::nested(
        &main_ctx,
        path.clone(),
        std::slice::from_ref(failure_module),
        Origin::Handler {
            error_key: error_key.clone(),
        },
    );
    let recovered = match seq::drive(handler, &handler_ctx, rt)? {
        Outcome::Pending => return Ok(FlowStatus::Pending),
        Outcome::Done(v)
        | Outcome::Complete { value: v, .. }
        | Outcome::Stopped { value: v, .. } => {
            Some(v).filter(|v| v.get("recover").and_then(Value::as_bool) == Some(true))
        }
        Outcome::Failed(_) => None,
    };
    Ok(match recovered {
        Some(v) => FlowStatus::Succeeded(v),
        None => {
            let error = rt
                .store
                .get(&error_key)
                .cloned()
                .and_then(|e| serde_json::from_value(e).ok());
            FlowStatus::Failed(
                error.unwrap_or_else(|| StepError::new("Failed", format!("flow `{path}` failed"))),
            )
        }
    })
}

/// Evaluates the flow's `skip_expr` (before its first step): true means the flow is skipped.
pub(crate) fn skipped(
    value: &FlowValue,
    path: &StepPath,
    depth: u32,
    rt: &Runtime,
) -> Result<bool, StepError> {
    match &value.skip_expr {
        None => Ok(false),
        Some(expr) => eval::predicate(
            &root_ctx(value, path, depth),
            rt,
            expr,
            None,
            path,
            "skip_expr",
        ),
    }
}

fn root_ctx<'a>(value: &'a FlowValue, path: &StepPath, depth: u32) -> Ctx<'a> {
    Ctx {
        parent: None,
        path: path.clone(),
        modules: &value.modules,
        done: Cell::new(0),
        origin: Origin::Flow {
            value,
            input_key: aux_key(path, "input"),
        },
        depth,
    }
}
