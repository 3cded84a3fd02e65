//! A flow as a Mermaid flowchart: steps in order, loops as subgraphs, branches as decisions.

use crate::flow::{FlowModule, ModuleValue, OpenFlow};
use std::fmt::Write;

/// Renders the flow as Mermaid `flowchart TD` source.
pub fn mermaid(flow: &OpenFlow) -> String {
    let mut graph = Graph {
        out: String::from("flowchart TD\n"),
        next_id: 0,
    };
    graph.line(0, "start((start))");
    let exits = graph.sequence(&flow.value.modules, vec![Exit::plain("start")], 1);
    graph.line(1, "finish((end))");
    graph.connect(&exits, "finish");
    if let Some(failure) = &flow.value.failure_module {
        graph.line(1, "failed{{any step fails}}");
        let exits = graph.sequence(
            std::slice::from_ref(failure),
            vec![Exit::plain("failed")],
            1,
        );
        for exit in exits {
            graph.line(1, &format!("{} -.-> failed_end((failed))", exit.node));
        }
    }
    graph.out
}

/// A node whose outgoing edge (with an optional label) leads to whatever comes next.
struct Exit {
    node: String,
    label: Option<String>,
}

impl Exit {
    fn plain(node: &str) -> Exit {
        Exit {
            node: node.into(),
            label: None,
        }
    }
}

struct Graph {
    out: String,
    next_id: usize,
}

impl Graph {
    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", "  ".repeat(depth));
    }

    fn fresh(&mut self) -> String {
        self.next_id += 1;
        format!("n{}", self.next_id)
    }

    fn connect(&mut self, from: &[Exit], to: &str) {
        for exit in from {
            let edge = match &exit.label {
                Some(label) => format!("{} -->|{}| {to}", exit.node, escape(label)),
                None => format!("{} --> {to}", exit.node),
            };
            self.line(1, &edge);
        }
    }

    /// Chains `modules` after `entry`; returns the exits of the last one.
    fn sequence(&mut self, modules: &[FlowModule], entry: Vec<Exit>, depth: usize) -> Vec<Exit> {
        modules
            .iter()
            .fold(entry, |exits, module| self.module(module, exits, depth))
    }

    fn module(&mut self, module: &FlowModule, entry: Vec<Exit>, depth: usize) -> Vec<Exit> {
        let node = self.fresh();
        let title = match &module.summary {
            Some(summary) if !summary.is_empty() => format!("{}: {summary}", module.id),
            _ => module.id.clone(),
        };
        match &module.value {
            ModuleValue::ForLoop(l) => {
                let kind = if l.parallel {
                    "for each, in parallel"
                } else {
                    "for each"
                };
                self.subgraph(
                    &node,
                    &format!("{title} ({kind})"),
                    &l.modules,
                    entry,
                    depth,
                )
            }
            ModuleValue::WhileLoop(l) => {
                self.subgraph(&node, &format!("{title} (while)"), &l.modules, entry, depth)
            }
            ModuleValue::BranchOne(b) => {
                self.line(
                    depth,
                    &format!("{node}{{\"{}\"}}", escape(&format!("{title} (branch one)"))),
                );
                self.connect(&entry, &node);
                let mut exits = Vec::new();
                for branch in &b.branches {
                    let label = branch
                        .summary
                        .clone()
                        .unwrap_or_else(|| branch.expr.clone());
                    exits.extend(self.branch(&node, label, &branch.modules, depth));
                }
                exits.extend(self.branch(&node, "default".into(), &b.default, depth));
                exits
            }
            ModuleValue::BranchAll(b) => {
                let kind = if b.parallel {
                    "all branches, in parallel"
                } else {
                    "all branches"
                };
                self.line(
                    depth,
                    &format!("{node}{{{{\"{}\"}}}}", escape(&format!("{title} ({kind})"))),
                );
                self.connect(&entry, &node);
                let mut exits = Vec::new();
                for (i, branch) in b.branches.iter().enumerate() {
                    let label = branch
                        .summary
                        .clone()
                        .unwrap_or_else(|| format!("branch {}", i + 1));
                    exits.extend(self.branch(&node, label, &branch.modules, depth));
                }
                exits
            }
            leaf => {
                let detail = match leaf {
                    ModuleValue::RawScript(s) => s.language.clone(),
                    ModuleValue::Script(s) => format!("script {}", s.path),
                    ModuleValue::Flow(s) => format!("flow {}", s.path),
                    other => other.type_name().to_string(),
                };
                let label = escape(&format!("{title}\n{detail}"));
                let shape = match leaf {
                    ModuleValue::Flow(_) => format!("{node}[[\"{label}\"]]"),
                    _ => format!("{node}[\"{label}\"]"),
                };
                self.line(depth, &shape);
                self.connect(&entry, &node);
                vec![Exit::plain(&node)]
            }
        }
    }

    /// A loop: its body inside a subgraph entered through the subgraph itself.
    fn subgraph(
        &mut self,
        node: &str,
        title: &str,
        body: &[FlowModule],
        entry: Vec<Exit>,
        depth: usize,
    ) -> Vec<Exit> {
        self.line(depth, &format!("subgraph {node} [\"{}\"]", escape(title)));
        let start = self.fresh();
        self.line(depth + 1, &format!("{start}((\"each\"))"));
        self.sequence(body, vec![Exit::plain(&start)], depth + 1);
        self.line(depth, "end");
        self.connect(&entry, node);
        vec![Exit::plain(node)]
    }

    /// One branch hanging off a decision node; an empty branch leads straight on.
    fn branch(
        &mut self,
        decision: &str,
        label: String,
        body: &[FlowModule],
        depth: usize,
    ) -> Vec<Exit> {
        let entry = vec![Exit {
            node: decision.into(),
            label: Some(label),
        }];
        if body.is_empty() {
            return entry;
        }
        self.sequence(body, entry, depth)
    }
}

/// Mermaid labels are quoted: quotes become entities, line breaks `<br/>`.
fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('|', "#124;")
        .replace('\n', "<br/>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(yaml: &str) -> OpenFlow {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn steps_are_chained_from_start_to_end() {
        let out = mermaid(&flow(
            "summary: s\nvalue:\n  modules:\n    - id: a\n      value: {type: rawscript, language: bash, content: ''}\n    - id: b\n      summary: Second\n      value: {type: script, path: hub/http_request}\n",
        ));
        assert!(out.starts_with("flowchart TD\n"));
        assert!(out.contains("n1[\"a<br/>bash\"]"), "{out}");
        assert!(
            out.contains("n2[\"b: Second<br/>script hub/http_request\"]"),
            "{out}"
        );
        assert!(out.contains("start --> n1\n"), "{out}");
        assert!(out.contains("n1 --> n2\n"), "{out}");
        assert!(out.contains("n2 --> finish\n"), "{out}");
    }

    #[test]
    fn loops_are_subgraphs_and_branches_are_decisions() {
        let out = mermaid(&flow(
            r#"
summary: s
value:
  modules:
    - id: loop
      value:
        type: forloopflow
        parallel: true
        iterator: {type: javascript, expr: "[1,2]"}
        modules:
          - id: body
            value: {type: rawscript, language: python3, content: ''}
    - id: pick
      value:
        type: branchone
        branches:
          - expr: 'results.loop.length > 1'
            modules:
              - id: many
                value: {type: identity}
        default: []
  failure_module:
    id: failure
    value: {type: rawscript, language: bash, content: ''}
"#,
        ));
        assert!(
            out.contains("subgraph n1 [\"loop (for each, in parallel)\"]"),
            "{out}"
        );
        assert!(
            out.contains("n2 --> n3"),
            "the body starts inside the loop: {out}"
        );
        assert!(out.contains("n4{\"pick (branch one)\"}"), "{out}");
        assert!(out.contains("n4 -->|results.loop.length > 1| n5"), "{out}");
        assert!(out.contains("n5 --> finish"), "{out}");
        assert!(
            out.contains("n4 -->|default| finish"),
            "an empty default leads on: {out}"
        );
        assert!(out.contains("failed --> n6"), "{out}");
    }
}
