//! Visits every module of a flow with what it can see: the ids of the steps whose results it can
//! read (`results.<id>`) and the sequences it is nested in.

use super::model::{FlowModule, ModuleValue, OpenFlow};
use super::problem::ModulePath;

/// A module as seen from where it sits in the flow.
pub struct Site<'s, 'a> {
    pub module: &'a FlowModule,
    pub path: &'s ModulePath,
    /// The module lists this module is nested in, outermost first, numbered in visiting order.
    /// The last one is the list that holds the module.
    pub sequences: &'s [usize],
    /// Ids of the steps that have run before this one and whose results it can read: earlier
    /// steps of its own list and of every enclosing list. The failure module sees every step.
    pub visible: &'s [&'a str],
}

/// Calls `visit` for every module: the preprocessor, then the steps depth-first in document
/// order, then the failure module. A module is visited before the modules nested in it.
pub fn walk<'a>(flow: &'a OpenFlow, visit: &mut dyn FnMut(&Site<'_, 'a>)) {
    let mut walker = Walker {
        visit,
        next_sequence: 0,
        seen: Vec::new(),
    };
    let top = ModulePath::flow();
    if let Some(module) = &flow.value.preprocessor_module {
        walker.single(module, "preprocessor_module", &top, &[]);
    }
    walker.sequence(&flow.value.modules, "modules", &top, &[], &[]);
    if let Some(module) = &flow.value.failure_module {
        let everything = walker.seen.clone();
        walker.single(module, "failure_module", &top, &everything);
    }
}

struct Walker<'a, 'v> {
    visit: &'v mut dyn FnMut(&Site<'_, 'a>),
    next_sequence: usize,
    /// Every id visited so far, for the failure module.
    seen: Vec<&'a str>,
}

impl<'a> Walker<'a, '_> {
    fn number(&mut self, enclosing: &[usize]) -> Vec<usize> {
        let mut sequences = enclosing.to_vec();
        sequences.push(self.next_sequence);
        self.next_sequence += 1;
        sequences
    }

    fn sequence(
        &mut self,
        modules: &'a [FlowModule],
        list: &str,
        parent: &ModulePath,
        enclosing: &[usize],
        visible: &[&'a str],
    ) {
        let sequences = self.number(enclosing);
        let mut visible = visible.to_vec();
        for (index, module) in modules.iter().enumerate() {
            let path = parent.child(label(module, || format!("{list}[{index}]")));
            self.module(module, &path, &sequences, &visible);
            visible.push(&module.id);
        }
    }

    /// A module that stands alone (failure or preprocessor module), in a list of its own.
    fn single(
        &mut self,
        module: &'a FlowModule,
        field: &str,
        parent: &ModulePath,
        visible: &[&'a str],
    ) {
        let sequences = self.number(&[]);
        let path = parent.child(label(module, || field.to_string()));
        self.module(module, &path, &sequences, visible);
    }

    fn module(
        &mut self,
        module: &'a FlowModule,
        path: &ModulePath,
        sequences: &[usize],
        visible: &[&'a str],
    ) {
        (self.visit)(&Site {
            module,
            path,
            sequences,
            visible,
        });
        self.seen.push(&module.id);
        match &module.value {
            ModuleValue::ForLoop(body) => {
                self.sequence(&body.modules, "value.modules", path, sequences, visible)
            }
            ModuleValue::WhileLoop(body) => {
                self.sequence(&body.modules, "value.modules", path, sequences, visible)
            }
            ModuleValue::BranchOne(branch) => {
                for (index, arm) in branch.branches.iter().enumerate() {
                    let list = format!("value.branches[{index}].modules");
                    self.sequence(&arm.modules, &list, path, sequences, visible);
                }
                self.sequence(&branch.default, "value.default", path, sequences, visible);
            }
            ModuleValue::BranchAll(branch) => {
                for (index, arm) in branch.branches.iter().enumerate() {
                    let list = format!("value.branches[{index}].modules");
                    self.sequence(&arm.modules, &list, path, sequences, visible);
                }
            }
            _ => {}
        }
    }
}

/// A module's id, or where it sits when it has none.
fn label(module: &FlowModule, position: impl FnOnce() -> String) -> String {
    if module.id.is_empty() {
        position()
    } else {
        module.id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(yaml: &str) -> OpenFlow {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    /// (path, visible ids) for every module, in visiting order.
    fn sites(flow: &OpenFlow) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        walk(flow, &mut |site| {
            let visible = site.visible.iter().map(|id| id.to_string()).collect();
            out.push((site.path.to_string(), visible));
        });
        out
    }

    #[test]
    fn bodies_see_steps_before_the_loop_and_earlier_steps_of_their_own_body() {
        let flow = flow(
            r#"
summary: s
value:
  preprocessor_module: {id: pre, value: {type: identity}}
  modules:
    - {id: a, value: {type: identity}}
    - id: loop
      value:
        type: forloopflow
        iterator: {type: javascript, expr: "[1]"}
        modules:
          - {id: b, value: {type: identity}}
          - {id: "", value: {type: identity}}
    - id: br
      value:
        type: branchone
        branches:
          - {expr: "true", modules: [{id: c, value: {type: identity}}]}
        default: [{id: d, value: {type: identity}}]
    - {id: e, value: {type: identity}}
  failure_module: {id: failure, value: {type: identity}}
"#,
        );
        let expected: Vec<(&str, Vec<&str>)> = vec![
            ("pre", vec![]),
            ("a", vec![]),
            ("loop", vec!["a"]),
            ("loop/b", vec!["a"]),
            ("loop/value.modules[1]", vec!["a", "b"]),
            ("br", vec!["a", "loop"]),
            ("br/c", vec!["a", "loop"]),
            ("br/d", vec!["a", "loop"]),
            ("e", vec!["a", "loop", "br"]),
            (
                "failure",
                vec!["pre", "a", "loop", "b", "", "br", "c", "d", "e"],
            ),
        ];
        let expected: Vec<(String, Vec<String>)> = expected
            .into_iter()
            .map(|(path, ids)| {
                (
                    path.to_string(),
                    ids.into_iter().map(String::from).collect(),
                )
            })
            .collect();
        assert_eq!(sites(&flow), expected);
    }

    #[test]
    fn sibling_branches_are_different_sequences() {
        let flow = flow(
            r#"
summary: s
value:
  modules:
    - id: all
      value:
        type: branchall
        branches:
          - {modules: [{id: x, value: {type: identity}}]}
          - {modules: [{id: y, value: {type: identity}}]}
"#,
        );
        let mut sequences = Vec::new();
        walk(&flow, &mut |site| sequences.push(site.sequences.to_vec()));
        assert_eq!(sequences, vec![vec![0], vec![0, 1], vec![0, 2]]);
    }
}
