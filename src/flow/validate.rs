//! Checks a flow before it runs and reports every problem found, each naming its module and field.

use super::inputs::schema_errors;
use super::model::{FlowModule, InputTransform, ModuleValue, OpenFlow, Parallelism, Timeout};
use super::problem::{ModulePath, Problem};
use super::references::result_refs;
use super::walk::{Site, walk};
use crate::exec::runners::Language;
use crate::expr::Evaluator;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Languages Windmill runs and Millrace does not yet.
const WINDMILL_ONLY_LANGUAGES: [&str; 17] = [
    "go",
    "powershell",
    "postgresql",
    "mysql",
    "bigquery",
    "snowflake",
    "mssql",
    "oracledb",
    "graphql",
    "php",
    "rust",
    "ansible",
    "csharp",
    "nu",
    "java",
    "duckdb",
    "ruby",
];

const MODULE_TYPES: &str =
    "rawscript, script, flow, forloopflow, whileloopflow, branchone, branchall, identity";

/// Where a step is declared: its path and the module list that holds it.
struct Declared {
    path: ModulePath,
    sequence: usize,
}

impl Declared {
    /// `step 'x'`, with its path when it is nested: `step 'x' (loop/x)`.
    fn describe(&self, id: &str) -> String {
        if self.path.to_string() == id {
            format!("step '{id}'")
        } else {
            format!("step '{id}' ({})", self.path)
        }
    }
}

/// Every problem of `flow`, in document order; empty when the flow is valid. Expressions are
/// parsed by `syntax` (`Evaluator::check`): a flow from an untrusted source must be checked by the
/// sandbox, since a deeply nested expression can overflow the parser's stack.
pub fn validate(flow: &OpenFlow, syntax: &dyn Evaluator) -> Vec<Problem> {
    let mut problems = Vec::new();
    let top = ModulePath::flow();
    if let Some(schema) = &flow.schema {
        for error in schema_errors(schema) {
            problems.push(Problem::new(
                &top,
                "schema",
                format!("not a valid JSON Schema: {error}"),
            ));
        }
    }
    let declared = declare_ids(flow, &mut problems);
    walk(flow, &mut |site| {
        check_module(site, &declared, syntax, &mut problems)
    });
    if let Some(step) = &flow.value.early_return
        && !flow.value.modules.iter().any(|m| &m.id == step)
    {
        let message =
            format!("there is no top-level step '{step}'; name one of the flow's top-level steps");
        problems.push(Problem::new(&top, "value.early_return", message));
    }
    if let Some(source) = &flow.value.skip_expr {
        check_syntax_of(syntax, &top, "value.skip_expr", source, &mut problems);
        for id in result_refs(source) {
            let message = format!(
                "results.{id}: skip_expr is evaluated before the first step, when no results exist"
            );
            problems.push(Problem::new(&top, "value.skip_expr", message));
        }
    }
    problems
}

/// Records where each id is declared; reports empty and duplicate ids.
fn declare_ids<'a>(flow: &'a OpenFlow, problems: &mut Vec<Problem>) -> HashMap<&'a str, Declared> {
    let mut declared: HashMap<&str, Declared> = HashMap::new();
    walk(flow, &mut |site| {
        let id = site.module.id.as_str();
        if id.is_empty() {
            problems.push(Problem::new(
                site.path,
                "id",
                "the module has no id; give it one unique in the flow",
            ));
            return;
        }
        match declared.entry(id) {
            Entry::Occupied(first) => {
                let message = format!(
                    "id '{id}' is already taken by the module at {}; ids must be unique in the flow",
                    first.get().path
                );
                problems.push(Problem::new(site.path, "id", message));
            }
            Entry::Vacant(slot) => {
                slot.insert(Declared {
                    path: site.path.clone(),
                    sequence: *site.sequences.last().unwrap_or(&0),
                });
            }
        }
    });
    declared
}

fn check_module(
    site: &Site<'_, '_>,
    declared: &HashMap<&str, Declared>,
    syntax: &dyn Evaluator,
    problems: &mut Vec<Problem>,
) {
    let module = site.module;
    match &module.value {
        ModuleValue::Unknown { type_name, .. } => {
            let message =
                format!("unknown module type '{type_name}'; Millrace runs {MODULE_TYPES}");
            problems.push(Problem::new(site.path, "value.type", message));
        }
        ModuleValue::RawScript(script) => {
            if let Some(message) = language_problem(&script.language) {
                problems.push(Problem::new(site.path, "value.language", message));
            }
        }
        _ => {}
    }
    if let Some(exponential) = module.retry.as_ref().and_then(|r| r.exponential.as_ref())
        && exponential.attempts > 0
        && exponential.seconds <= 0.0
    {
        let message = "exponential retry needs seconds > 0 (it waits multiplier × seconds^attempt); \
                       set seconds, or attempts: 0";
        problems.push(Problem::new(
            site.path,
            "retry.exponential.seconds",
            message,
        ));
    }
    for (field, source) in expressions(module) {
        check_expression(site, &field, source, declared, syntax, problems);
    }
}

fn language_problem(language: &str) -> Option<String> {
    if Language::from_name(language).is_some() {
        None
    } else if WINDMILL_ONLY_LANGUAGES.contains(&language) {
        Some(format!(
            "Millrace cannot run {language} yet; write this step in python3, bash or TypeScript (deno, bun)"
        ))
    } else {
        Some(format!(
            "unknown language '{language}'; use one of {}",
            Language::NAMES.join(", ")
        ))
    }
}

fn check_expression(
    site: &Site<'_, '_>,
    field: &str,
    source: &str,
    declared: &HashMap<&str, Declared>,
    syntax: &dyn Evaluator,
    problems: &mut Vec<Problem>,
) {
    check_syntax_of(syntax, site.path, field, source, problems);
    let mut reported: Vec<String> = Vec::new();
    for id in result_refs(source) {
        if site.visible.contains(&id.as_str()) || reported.contains(&id) {
            continue;
        }
        let message = format!("results.{id}: {}", unreadable(&id, site, declared));
        problems.push(Problem::new(site.path, field, message));
        reported.push(id);
    }
}

fn check_syntax_of(
    syntax: &dyn Evaluator,
    path: &ModulePath,
    field: &str,
    source: &str,
    problems: &mut Vec<Problem>,
) {
    if let Err(error) = syntax.check(source) {
        problems.push(Problem::new(path, field, error.to_string()));
    }
}

/// Why `id` is not among the results `site` can read.
fn unreadable(id: &str, site: &Site<'_, '_>, declared: &HashMap<&str, Declared>) -> String {
    let Some(step) = declared.get(id) else {
        return format!("there is no step '{id}'");
    };
    if id == site.module.id {
        "a step cannot read its own result through results; `result` holds it where it is bound"
            .to_string()
    } else if site.sequences.contains(&step.sequence) {
        format!("{} runs after this one", step.describe(id))
    } else {
        format!(
            "{} is inside a loop or branch that does not contain this step; \
             read that loop's or branch's result instead",
            step.describe(id)
        )
    }
}

/// The expressions of one module's own fields (not of the modules nested in it), with their field.
fn expressions(module: &FlowModule) -> Vec<(String, &str)> {
    let mut out: Vec<(String, Option<&str>)> = Vec::new();
    if let Some(transforms) = module.value.input_transforms() {
        for (name, transform) in transforms {
            out.push((
                format!("value.input_transforms.{name}"),
                javascript(transform),
            ));
        }
    }
    match &module.value {
        ModuleValue::ForLoop(body) => {
            out.push(("value.iterator".into(), javascript(&body.iterator)));
            if let Some(Parallelism::Transform(transform)) = &body.parallelism {
                out.push(("value.parallelism".into(), javascript(transform)));
            }
        }
        ModuleValue::BranchOne(branch) => {
            for (index, arm) in branch.branches.iter().enumerate() {
                out.push((format!("value.branches[{index}].expr"), Some(&arm.expr)));
            }
        }
        _ => {}
    }
    out.push(("sleep".into(), module.sleep.as_ref().and_then(javascript)));
    if let Some(Timeout::Transform(transform)) = &module.timeout {
        out.push(("timeout".into(), javascript(transform)));
    }
    let predicates = [
        ("skip_if.expr", module.skip_if.as_ref().map(|p| &p.expr)),
        (
            "stop_after_if.expr",
            module.stop_after_if.as_ref().map(|p| &p.expr),
        ),
        (
            "stop_after_all_iters_if.expr",
            module.stop_after_all_iters_if.as_ref().map(|p| &p.expr),
        ),
        (
            "retry.retry_if.expr",
            module
                .retry
                .as_ref()
                .and_then(|r| r.retry_if.as_ref())
                .map(|p| &p.expr),
        ),
    ];
    for (field, expr) in predicates {
        out.push((field.to_string(), expr.map(String::as_str)));
    }
    out.into_iter()
        .filter_map(|(field, expr)| Some((field, expr?)))
        .collect()
}

fn javascript(transform: &InputTransform) -> Option<&str> {
    match transform {
        InputTransform::Javascript { expr } => Some(expr),
        InputTransform::Static { .. } => None,
    }
}

#[cfg(test)]
mod tests;
