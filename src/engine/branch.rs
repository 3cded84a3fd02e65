//! `branchone`: the first branch whose `expr` is true runs (else `default`); its last result is
//! the module's result. The chosen branch is `path[i]`, the default branch `path[n]` for n branches.

use super::api::EngineError;
use super::eval;
use super::outcome::{Entered, Outcome};
use super::path::StepPath;
use super::runtime::Runtime;
use super::scope::{Ctx, Origin};
use super::seq::{self, mismatch};
use super::state::{Node, Seq};
use crate::flow::BranchOne;

pub(crate) fn begin(branches: &BranchOne, ctx: &Ctx, path: &StepPath, rt: &mut Runtime) -> Entered {
    let mut chosen = branches.branches.len();
    for (i, branch) in branches.branches.iter().enumerate() {
        match eval::predicate(
            ctx,
            rt,
            &branch.expr,
            None,
            path,
            &format!("branches[{i}].expr"),
        ) {
            Ok(true) => {
                chosen = i;
                break;
            }
            Ok(false) => {}
            Err(e) => return Entered::Now(Outcome::Failed(e)),
        }
    }
    Entered::Node(Node::BranchOne {
        branch: chosen as u32,
        body: Seq::default(),
    })
}

pub(crate) fn drive(
    branch: u32,
    body: &mut Seq,
    branches: &BranchOne,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Result<Outcome, EngineError> {
    let modules = match branches.branches.get(branch as usize) {
        Some(b) => &b.modules[..],
        None if branch as usize == branches.branches.len() => &branches.default[..],
        None => {
            return Err(mismatch(
                path,
                format!("the branchone has no branch {branch}"),
            ));
        }
    };
    let body_path = path.indexed(branch);
    let body_ctx = Ctx::nested(ctx, body_path.clone(), modules, Origin::Branch);
    let outcome = seq::drive(body, &body_ctx, rt)?;
    if !matches!(outcome, Outcome::Pending) {
        rt.store.remove_under(&format!("{body_path}/"));
    }
    Ok(outcome)
}
