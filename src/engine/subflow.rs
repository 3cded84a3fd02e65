//! `flow` modules: another flow, found through the resolver, run inside this one. Its steps sit
//! under the module's path (`sub/x`) and see only its own inputs and results.

use super::api::{EngineError, SKIPPED_BY_SKIP_EXPR, StepError};
use super::eval;
use super::flow_node::{self, FlowStatus};
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::runtime::{Runtime, aux_key};
use super::scope::Ctx;
use super::state::{FlowNode, Node};
use crate::flow::ScriptRef;
use serde_json::Value;

/// Subflows nested deeper than this fail: a flow that calls itself would otherwise never end.
const MAX_DEPTH: u32 = 32;

pub(crate) fn begin(sref: &ScriptRef, ctx: &Ctx, path: &StepPath, rt: &mut Runtime) -> Entered {
    match prepare(sref, ctx, path, rt) {
        Ok(true) => Entered::Now(Outcome::Complete {
            value: Value::from(SKIPPED_BY_SKIP_EXPR),
            skipped: true,
        }),
        Ok(false) => Entered::Node(Node::Subflow(Box::default())),
        Err(e) => Entered::Now(Outcome::Failed(e)),
    }
}

/// Evaluates the subflow's inputs into the store; true when its `skip_expr` skips it.
fn prepare(
    sref: &ScriptRef,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<bool, StepError> {
    if ctx.depth >= MAX_DEPTH {
        return Err(StepError::new(
            "SubflowTooDeep",
            format!(
                "step `{path}`: subflows nest deeper than {MAX_DEPTH} levels; does flow `{}` call itself?",
                sref.path
            ),
        ));
    }
    let flow = rt
        .flow(&sref.path)
        .map_err(|e| StepError::new("ResolveError", format!("step `{path}`: {e}")))?;
    let inputs = eval::args(ctx, rt, &sref.input_transforms, path)?;
    rt.store
        .insert(aux_key(path, "input"), Value::Object(inputs));
    flow_node::skipped(&flow.value, path, ctx.depth + 1, rt)
}

pub(crate) fn drive(
    node: &mut FlowNode,
    sref: &ScriptRef,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    let flow = match rt.flow(&sref.path) {
        Ok(flow) => flow,
        Err(e) => {
            return Ok(Outcome::Failed(StepError::new(
                "ResolveError",
                format!("step `{path}`: {e}"),
            )));
        }
    };
    let outcome = match flow_node::drive(node, &flow.value, path, ctx.depth + 1, rt)? {
        FlowStatus::Pending => return Ok(Outcome::Pending),
        FlowStatus::Succeeded(value) => Outcome::Done(value),
        FlowStatus::Failed(error) => Outcome::Failed(error),
        FlowStatus::Skipped(value) => Outcome::Complete {
            value,
            skipped: true,
        },
    };
    rt.store.remove_under(&format!("{path}/"));
    rt.store.remove_under(&format!("{path}#"));
    Ok(outcome)
}
