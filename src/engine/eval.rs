//! Evaluating a module's transforms and predicates in its scope. Every failure becomes a
//! [`StepError`] that names the step and the field, never a panic.

use super::api::StepError;
use super::path::StepPath;
use super::runtime::Runtime;
use super::scope::Ctx;
use crate::expr::truthy;
use crate::flow::{InputTransform, InputTransforms};
use serde_json::{Map, Value};

/// Evaluates every input transform of a step (one scope for all of them).
pub(crate) fn args(
    ctx: &Ctx,
    rt: &Runtime,
    transforms: &InputTransforms,
    path: &StepPath,
) -> Result<Map<String, Value>, StepError> {
    let sources = transforms.values().filter_map(|t| match t {
        InputTransform::Javascript { expr } => Some(expr.as_str()),
        InputTransform::Static { .. } => None,
    });
    // Static-only steps need no scope at all.
    let scope = if sources.clone().next().is_some() {
        Some(
            ctx.scope(rt.store, rt.env, sources, None)
                .map_err(|e| name_step(e, path, "input_transforms"))?,
        )
    } else {
        None
    };
    let mut args = Map::new();
    for (name, transform) in transforms {
        let value = match transform {
            InputTransform::Static { value } => value.clone(),
            InputTransform::Javascript { expr } => {
                let scope = scope
                    .as_ref()
                    .expect("a scope is built when a transform is an expression");
                rt.env
                    .evaluator
                    .eval(expr, scope)
                    .map_err(|e| expr_error(path, &format!("input `{name}`"), e))?
            }
        };
        args.insert(name.clone(), value);
    }
    Ok(args)
}

/// Evaluates one transform (`iterator`, `sleep`, `timeout`, `parallelism`, …) named `field`.
pub(crate) fn transform(
    ctx: &Ctx,
    rt: &Runtime,
    transform: &InputTransform,
    path: &StepPath,
    field: &str,
) -> Result<Value, StepError> {
    match transform {
        InputTransform::Static { value } => Ok(value.clone()),
        InputTransform::Javascript { expr } => expression(ctx, rt, expr, None, path, field),
    }
}

/// Evaluates an expression with `result` bound when given.
pub(crate) fn expression(
    ctx: &Ctx,
    rt: &Runtime,
    expr: &str,
    result: Option<Value>,
    path: &StepPath,
    field: &str,
) -> Result<Value, StepError> {
    let scope = ctx
        .scope(rt.store, rt.env, [expr], result)
        .map_err(|e| name_step(e, path, field))?;
    rt.env
        .evaluator
        .eval(expr, &scope)
        .map_err(|e| expr_error(path, field, e))
}

/// Evaluates a predicate (`skip_if`, `stop_after_if`, a branch's `expr`, …) to a boolean.
pub(crate) fn predicate(
    ctx: &Ctx,
    rt: &Runtime,
    expr: &str,
    result: Option<Value>,
    path: &StepPath,
    field: &str,
) -> Result<bool, StepError> {
    expression(ctx, rt, expr, result, path, field).map(|v| truthy(&v))
}

/// Reads a number of seconds from an evaluated transform.
pub(crate) fn seconds(value: &Value, path: &StepPath, field: &str) -> Result<f64, StepError> {
    match value {
        Value::Null => Ok(0.0),
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| not_a_number(path, field, value)),
        _ => Err(not_a_number(path, field, value)),
    }
}

fn not_a_number(path: &StepPath, field: &str, value: &Value) -> StepError {
    StepError::new(
        "InvalidValue",
        format!("step `{path}`: `{field}` must be a number of seconds, got {value}"),
    )
}

fn expr_error(path: &StepPath, field: &str, error: crate::expr::ExprError) -> StepError {
    StepError::new(
        "ExpressionError",
        format!("step `{path}`: {field}: {error}"),
    )
}

fn name_step(mut error: StepError, path: &StepPath, field: &str) -> StepError {
    error.message = format!("step `{path}`: {field}: {}", error.message);
    error
}
