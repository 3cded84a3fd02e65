//! `millrace run FLOW --step ID --results JSON`: run one step as Windmill's step preview does,
//! with its inputs evaluated against given earlier results.

use super::Invalid;
use crate::engine::Env;
use crate::expr::{Scope, referenced_secrets};
use crate::flow::{FlowModule, FlowValue, InputTransform, ModuleValue, OpenFlow, Timeout};
use serde_json::{Map, Value};

/// A flow holding only step `id`, its input transforms replaced by their values. The step sees
/// `flow_input` = `inputs`, `results` = `results` and, as `previous_result`, the result of the
/// step before it when `results` has it (else the inputs).
pub fn one_step_flow(
    flow: &OpenFlow,
    id: &str,
    inputs: &Map<String, Value>,
    results: Map<String, Value>,
    env: Env<'_>,
) -> Result<OpenFlow, Invalid> {
    let (module, previous) = find(&flow.value.modules, id, None)
        .or_else(|| {
            flow.value
                .failure_module
                .as_deref()
                .filter(|m| m.id == id)
                .map(|m| (m, None))
        })
        .ok_or_else(|| Invalid::one(format!("--step {id}: the flow has no step with this id")))?;
    let previous_result = previous
        .and_then(|p| results.get(p).cloned())
        .unwrap_or_else(|| Value::Object(inputs.clone()));
    let mut scope = Scope {
        flow_input: Value::Object(inputs.clone()),
        previous_result,
        results,
        flow_env: flow.value.flow_env.clone().unwrap_or_default(),
        ..Scope::default()
    };
    let mut value = module.value.clone();
    let transforms = match &mut value {
        ModuleValue::RawScript(s) => &mut s.input_transforms,
        ModuleValue::Script(s) | ModuleValue::Flow(s) => &mut s.input_transforms,
        ModuleValue::Identity(_) => &mut Default::default(),
        other => {
            return Err(Invalid::one(format!(
                "--step {id}: previews run script and flow steps; this step is a {}",
                other.type_name()
            )));
        }
    };
    for (name, transform) in transforms.iter_mut() {
        let InputTransform::Javascript { expr } = transform else {
            continue;
        };
        add_secrets(expr, &mut scope, env)
            .map_err(|e| Invalid::one(format!("--step {id}: input `{name}`: {e}")))?;
        let evaluated = env
            .evaluator
            .eval(expr, &scope)
            .map_err(|e| Invalid::one(format!("--step {id}: input `{name}` (`{expr}`): {e}")))?;
        *transform = InputTransform::Static { value: evaluated };
    }
    let step = FlowModule {
        id: module.id.clone(),
        summary: module.summary.clone(),
        value,
        timeout: module
            .timeout
            .clone()
            .filter(|t| matches!(t, Timeout::Seconds(_))),
        ..bare(&module.id)
    };
    Ok(OpenFlow {
        summary: format!("step {id} of {}", flow.summary),
        description: None,
        value: FlowValue {
            modules: vec![step],
            failure_module: None,
            preprocessor_module: None,
            flow_env: flow.value.flow_env.clone(),
            early_return: None,
            skip_expr: None,
            extra: Map::new(),
        },
        schema: None,
        extra: Map::new(),
    })
}

/// The module with `id` anywhere in `modules`, and the id of the step just before it.
fn find<'a>(
    modules: &'a [FlowModule],
    id: &str,
    before: Option<&'a str>,
) -> Option<(&'a FlowModule, Option<&'a str>)> {
    let mut previous = before;
    for module in modules {
        if module.id == id {
            return Some((module, previous));
        }
        let nested: Vec<&[FlowModule]> = match &module.value {
            ModuleValue::ForLoop(l) => vec![&l.modules],
            ModuleValue::WhileLoop(l) => vec![&l.modules],
            ModuleValue::BranchOne(b) => b
                .branches
                .iter()
                .map(|br| br.modules.as_slice())
                .chain([b.default.as_slice()])
                .collect(),
            ModuleValue::BranchAll(b) => {
                b.branches.iter().map(|br| br.modules.as_slice()).collect()
            }
            _ => Vec::new(),
        };
        if let Some(found) = nested.into_iter().find_map(|body| find(body, id, previous)) {
            return Some(found);
        }
        previous = Some(&module.id);
    }
    None
}

/// Resolves the `variable()` / `resource()` paths an expression names into the scope.
fn add_secrets(expr: &str, scope: &mut Scope, env: Env<'_>) -> Result<(), String> {
    let (variables, resources) = referenced_secrets(expr);
    for path in variables {
        let value = env.resolver.variable(&path).map_err(|e| e.to_string())?;
        scope.variables.insert(path, value);
    }
    for path in resources {
        let value = env.resolver.resource(&path).map_err(|e| e.to_string())?;
        scope.resources.insert(path, value);
    }
    Ok(())
}

/// A module with nothing around it: no retry, skip, sleep, stop or suspend.
fn bare(id: &str) -> FlowModule {
    FlowModule {
        id: id.into(),
        summary: None,
        value: ModuleValue::Identity(Map::new()),
        retry: None,
        continue_on_error: None,
        stop_after_if: None,
        stop_after_all_iters_if: None,
        skip_if: None,
        sleep: None,
        timeout: None,
        suspend: None,
        mock: None,
        extra: Map::new(),
    }
}
