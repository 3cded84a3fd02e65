//! What a run reaches by path, resolved once when it begins and kept with its state: the flows of
//! its `flow` steps (Flow objects) and the code of its `script` steps (Script objects, else the
//! bundled hub). Editing or deleting a Flow or Script never changes a run that has started.
//!
//! The path rule, the same for Flows and Scripts in the run's namespace: the object annotated
//! `millrace.dev/path: <path>` is the one for that path; failing that, the object named by the
//! path's last segment made DNS-safe (`f/team/Daily_Report` → `daily-report`), unless that object
//! is annotated with another path. Pure: the controller lists the objects, this decides.

use super::document;
use super::secrets::{self, Wanted};
use crate::expr::Evaluator;
use crate::flow::OpenFlow;
use crate::hub;
use crate::k8s::ScriptSpec;
use crate::k8s::flow::FlowSpec;
use crate::k8s::naming::dns_label;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Annotation that ties an object to a Windmill path, whatever its name.
pub const PATH_ANNOTATION: &str = "millrace.dev/path";

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

/// The objects of one kind in the run's namespace, by name, with their path annotation.
pub struct Catalog<'a, T> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub objects: Vec<Entry<'a, T>>,
}

pub struct Entry<'a, T> {
    pub name: &'a str,
    pub path: Option<&'a str>,
    /// The spec, or why the object cannot be read.
    pub spec: Result<&'a T, &'a str>,
}

/// The object found for a path: its name and spec.
pub struct Chosen<'a, T> {
    pub name: &'a str,
    pub spec: &'a T,
}

impl<'a, T> Catalog<'a, T> {
    /// The object for `path` by the path rule, or why there is none (or why it cannot be used).
    pub fn find(&self, path: &str) -> Result<Chosen<'a, T>, String> {
        let entry = self.choose(path)?;
        match entry.spec {
            Ok(spec) => Ok(Chosen {
                name: entry.name,
                spec,
            }),
            Err(problem) => Err(format!(
                "{kind} {name} (for path `{path}`) cannot be read: {problem}",
                kind = self.kind,
                name = entry.name,
            )),
        }
    }

    fn choose(&self, path: &str) -> Result<&Entry<'a, T>, String> {
        let claimed: Vec<_> = self
            .objects
            .iter()
            .filter(|e| e.path == Some(path))
            .collect();
        match claimed.as_slice() {
            [one] => return Ok(one),
            [] => {}
            several => {
                let names: Vec<_> = several.iter().map(|e| e.name).collect();
                return Err(format!(
                    "{kind}s {names} in namespace {ns} all have annotation {PATH_ANNOTATION}: {path}; keep it on one",
                    kind = self.kind,
                    names = names.join(", "),
                    ns = self.namespace,
                ));
            }
        }
        let name = object_name(path);
        self.objects
            .iter()
            .find(|e| e.path.is_none() && e.name == name)
            .ok_or_else(|| {
                format!(
                    "no {kind} for path `{path}` in namespace {ns}: looked for a {kind} annotated {PATH_ANNOTATION}: {path}, then for a {kind} named `{name}`",
                    kind = self.kind,
                    ns = self.namespace,
                )
            })
    }
}

/// The object name a path falls back to: its last segment, DNS-safe.
pub fn object_name(path: &str) -> String {
    dns_label(path.rsplit('/').next().unwrap_or(path))
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
    library.secrets = secrets::referenced(std::iter::once(root).chain(subflows));
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
