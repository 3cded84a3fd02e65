//! Script steps (`rawscript`, `script`): attempts, their specs, and retries with back-off.

use super::api::{Action, StepError, StepSpec};
use super::eval;
use super::outcome::{Entered, Outcome};
use super::path::{AttemptId, StepPath};
use super::retry::{delay_ms, next_random};
use super::runtime::Runtime;
use super::scope::Ctx;
use super::state::{Leaf, LeafPhase, Node};
use crate::flow::{FlowModule, ModuleValue, Timeout};
use serde_json::{Value, json};

pub(crate) fn begin() -> Entered {
    Entered::Node(Node::Script(Leaf {
        attempt: 1,
        phase: LeafPhase::Ready,
    }))
}

pub(crate) fn drive(
    leaf: &mut Leaf,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &mut Runtime,
) -> Outcome {
    loop {
        match leaf.phase {
            LeafPhase::Ready => {
                return match spec(module, ctx, path, rt) {
                    Ok(spec) => {
                        let id = AttemptId {
                            step: path.clone(),
                            attempt: leaf.attempt,
                        };
                        rt.actions.push(Action::StartAttempt { id, spec });
                        leaf.phase = LeafPhase::Running;
                        Outcome::Pending
                    }
                    Err(e) => Outcome::Failed(e),
                };
            }
            LeafPhase::Running => {
                if let Some(outcome) = rt.take_finished(path, leaf.attempt) {
                    return finished(leaf, module, ctx, path, outcome, rt);
                }
                let id = AttemptId {
                    step: path.clone(),
                    attempt: leaf.attempt,
                };
                if rt
                    .reissue
                    .as_ref()
                    .is_some_and(|started| !started.contains(&id))
                {
                    // Re-evaluated in the same scope: the same arguments as the first time.
                    leaf.phase = LeafPhase::Ready;
                    continue;
                }
                return Outcome::Pending;
            }
            LeafPhase::Backoff { until_ms } if until_ms <= rt.now => {
                leaf.attempt += 1;
                leaf.phase = LeafPhase::Ready;
            }
            LeafPhase::Backoff { .. } => return Outcome::Pending,
        }
    }
}

/// Handles an attempt's end: success, or a failure that is retried or final.
fn finished(
    leaf: &mut Leaf,
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    outcome: Result<Value, StepError>,
    rt: &mut Runtime,
) -> Outcome {
    let mut error = match outcome {
        Ok(value) => match value.get("wm_failure") {
            None => return Outcome::Done(value),
            Some(failure) => StepError::new(
                "Failure",
                failure
                    .as_str()
                    .map_or_else(|| failure.to_string(), str::to_string),
            ),
        },
        Err(error) => error,
    };
    error.step_id.get_or_insert_with(|| module.id.clone());
    let failed = json!({ "error": error });
    // Kept under the step's path so that status shows the last error while the step retries.
    rt.store.insert(path.as_str().to_string(), failed.clone());
    let Some(retry) = &module.retry else {
        return Outcome::Failed(error);
    };
    let delay = match delay_ms(retry, leaf.attempt.saturating_sub(1), next_random(rt.rng)) {
        Ok(Some(delay)) => delay,
        Ok(None) => return Outcome::Failed(error),
        Err(e) => {
            return Outcome::Failed(StepError::new(
                "InvalidRetry",
                format!("step `{path}`: {e}"),
            ));
        }
    };
    if let Some(retry_if) = &retry.retry_if {
        match eval::predicate(
            ctx,
            rt,
            &retry_if.expr,
            Some(failed),
            path,
            "retry.retry_if",
        ) {
            Ok(true) => {}
            Ok(false) => return Outcome::Failed(error),
            Err(e) => return Outcome::Failed(e),
        }
    }
    leaf.phase = LeafPhase::Backoff {
        until_ms: rt.now + delay,
    };
    drive(leaf, module, ctx, path, rt)
}

/// What the executor needs for the next attempt.
fn spec(
    module: &FlowModule,
    ctx: &Ctx,
    path: &StepPath,
    rt: &Runtime,
) -> Result<StepSpec, StepError> {
    let (language, content, lock, script_path, transforms) = match &module.value {
        ModuleValue::RawScript(s) => (
            s.language.clone(),
            s.content.clone(),
            s.lock.clone(),
            s.path.clone(),
            &s.input_transforms,
        ),
        ModuleValue::Script(s) => {
            let found = rt
                .env
                .resolver
                .script(&s.path)
                .map_err(|e| StepError::new("ResolveError", format!("step `{path}`: {e}")))?;
            (
                found.language,
                found.content,
                found.lock,
                Some(s.path.clone()),
                &s.input_transforms,
            )
        }
        other => unreachable!("a `{}` module is not a script", other.type_name()),
    };
    let args = eval::args(ctx, rt, transforms, path)?;
    let timeout_ms = match &module.timeout {
        None => None,
        Some(Timeout::Seconds(s)) => Some(*s),
        Some(Timeout::Transform(t)) => {
            let value = eval::transform(ctx, rt, t, path, "timeout")?;
            Some(eval::seconds(&value, path, "timeout")?)
        }
    }
    .filter(|s| *s > 0.0)
    .map(|s| (s * 1000.0).round() as u64);
    Ok(StepSpec {
        language,
        content,
        args,
        timeout_ms,
        script_path,
        lock,
        summary: module.summary.clone(),
    })
}
