//! What a run reaches by path, resolved once when it begins and kept with its state: the flows of
//! its `flow` steps (Flow objects) and the code of its `script` steps (Script objects, else the
//! bundled hub). Editing or deleting a Flow or Script never changes a run that has started.
//!
//! Which object a path stands for is the rule of [`crate::k8s::api::paths`]. Pure: the
//! controller lists the objects, this decides.

use super::variables::{self, Wanted};
use crate::expr::Evaluator;
use crate::flow::OpenFlow;
use crate::hub;
use crate::k8s::api::ScriptSpec;
use crate::k8s::api::document;
use crate::k8s::api::flow::FlowSpec;
use crate::k8s::api::paths::Catalog;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything a run reaches by path. A path that did not resolve keeps the reason, which
/// becomes the error of the step that uses it (a branch not taken needs nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Library {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flows: BTreeMap<String, Resolved<OpenFlow>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scripts: BTreeMap<String, Resolved<ScriptSource>>,
    /// The variables and resources the run's flow and subflows name.
    #[serde(default, skip_serializing_if = "Wanted::is_empty")]
    pub secrets: Wanted,
}

impl Library {
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.scripts.is_empty() && self.secrets.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Resolved<T> {
    Found(T),
    /// Why the path did not resolve: what was looked for and where.
    Missing(String),
}

/// The code of a `script` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptSource {
    pub language: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

/// A subflow that includes itself, directly or through others; it would never end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("subflows form a cycle: {}; a flow cannot run itself", .0.join(" → "))]
pub struct Cycle(pub Vec<String>);

/// Resolves every path `root` reaches, through subflows too, and finds the secrets they name.
/// Flows are checked as a `Flow` is (`syntax` parses their expressions); an invalid one is a
/// `Missing` with its problems.
pub fn collect(
    root: &OpenFlow,
    flows: &Catalog<FlowSpec>,
    scripts: &Catalog<ScriptSpec>,
    syntax: &dyn Evaluator,
) -> Result<Library, Cycle> {
    let mut library = Library::default();
    let mut stack = Vec::new();
    visit(root, flows, scripts, syntax, &mut library, &mut stack)?;
    let subflows = library.flows.values().filter_map(|found| match found {
        Resolved::Found(flow) => Some(flow),
        Resolved::Missing(_) => None,
    });
    library.secrets = variables::referenced(std::iter::once(root).chain(subflows));
    Ok(library)
}

fn visit(
    flow: &OpenFlow,
    flows: &Catalog<FlowSpec>,
    scripts: &Catalog<ScriptSpec>,
    syntax: &dyn Evaluator,
    library: &mut Library,
    stack: &mut Vec<String>,
) -> Result<(), Cycle> {
    let (flow_paths, script_paths) = references(flow);
    for path in script_paths {
        if let std::collections::btree_map::Entry::Vacant(slot) = library.scripts.entry(path) {
            let found = script(slot.key(), scripts);
            slot.insert(found);
        }
    }
    for path in flow_paths {
        if stack.contains(&path) {
            let mut cycle = stack.clone();
            cycle.push(path);
            return Err(Cycle(cycle));
        }
        if library.flows.contains_key(&path) {
            continue;
        }
        let found = match flows.find(&path) {
            Err(missing) => Resolved::Missing(missing),
            Ok(entry) => match document::problems(entry.spec, syntax).as_slice() {
                [] => {
                    Resolved::Found(document::open_flow(entry.spec).expect("checked by problems()"))
                }
                problems => Resolved::Missing(format!(
                    "Flow {} (for path `{path}`) is not valid: {}",
                    entry.name,
                    problems.join("; ")
                )),
            },
        };
        let nested = match &found {
            Resolved::Found(flow) => Some(flow.clone()),
            Resolved::Missing(_) => None,
        };
        library.flows.insert(path.clone(), found);
        if let Some(nested) = nested {
            stack.push(path);
            visit(&nested, flows, scripts, syntax, library, stack)?;
            stack.pop();
        }
    }
    Ok(())
}

fn script(path: &str, scripts: &Catalog<ScriptSpec>) -> Resolved<ScriptSource> {
    match scripts.find(path) {
        Ok(entry) => Resolved::Found(ScriptSource {
            language: entry.spec.language.clone(),
            content: entry.spec.content.clone(),
            lock: entry.spec.lock.clone(),
        }),
        Err(missing) => match hub::find(path) {
            Some(bundled) => Resolved::Found(ScriptSource {
                language: bundled.language.name().into(),
                content: bundled.content.into(),
                lock: None,
            }),
            None if path.starts_with("hub/") => {
                Resolved::Missing(format!("{missing}; the bundled hub has no `{path}` either"))
            }
            None => Resolved::Missing(missing),
        },
    }
}

/// The paths of the `flow` and `script` steps of one flow (not of its subflows), in document
/// order, each once.
pub fn references(flow: &OpenFlow) -> (Vec<String>, Vec<String>) {
    let mut found = (Vec::new(), Vec::new());
    let doc = serde_json::to_value(&flow.value).expect("a flow serialises");
    scan(&doc, &mut found);
    found
}

/// Modules sit under `modules`, `branches`, `default`, `failure_module` and
/// `preprocessor_module`; inputs are data and are not looked into.
fn scan(value: &Value, found: &mut (Vec<String>, Vec<String>)) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| scan(item, found)),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str);
            if let (Some(kind), Some(Value::String(path))) = (kind, map.get("path")) {
                let list = match kind {
                    "flow" => Some(&mut found.0),
                    "script" => Some(&mut found.1),
                    _ => None,
                };
                if let Some(list) = list.filter(|list| !list.contains(path)) {
                    list.push(path.clone());
                }
            }
            for (key, nested) in map {
                if !matches!(
                    key.as_str(),
                    "input_transforms" | "schema" | "path" | "type"
                ) {
                    scan(nested, found);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
