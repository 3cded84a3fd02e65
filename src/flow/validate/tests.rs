use super::validate;
use crate::flow::model::OpenFlow;

fn problems(yaml: &str) -> Vec<String> {
    let flow: OpenFlow = serde_yaml_ng::from_str(yaml).unwrap();
    validate(&flow, &crate::expr::InProcess::default())
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A flow with the given modules (YAML list items indented by two spaces).
fn with_modules(modules: &str) -> String {
    format!("summary: test\nvalue:\n  modules:\n{modules}")
}

#[test]
fn a_valid_flow_has_no_problems() {
    let flow = with_modules(
        r#"
  - id: a
    value:
      type: rawscript
      language: python3
      content: "def main(x): return x"
      input_transforms:
        x: {type: javascript, expr: "flow_input.x"}
  - id: loop
    value:
      type: forloopflow
      iterator: {type: javascript, expr: "results.a"}
      parallelism: {type: javascript, expr: "results.a.length"}
      modules:
        - id: b
          value:
            type: script
            path: f/x/y
            input_transforms:
              v: {type: javascript, expr: "`${results.a} ${flow_input.iter.value}`"}
        - id: c
          value: {type: identity}
          skip_if: {expr: "results.b == null"}
  - id: last
    value:
      type: rawscript
      language: bash
      content: "echo $1"
      input_transforms:
        n: {type: javascript, expr: "results.loop.length + results['a']"}
"#,
    );
    assert_eq!(problems(&flow), Vec::<String>::new());
}

#[test]
fn reports_duplicate_ids_anywhere_and_empty_ids() {
    let flow = format!(
        "{}  failure_module: {{id: a, value: {{type: identity}}}}\n",
        with_modules(
            r#"
  - {id: a, value: {type: identity}}
  - id: loop
    value:
      type: whileloopflow
      modules:
        - {id: a, value: {type: identity}}
        - {id: "", value: {type: identity}}
"#
        )
    );
    assert_eq!(
        problems(&flow),
        [
            "loop/a: id: id 'a' is already taken by the module at a; ids must be unique in the flow",
            "loop/value.modules[1]: id: the module has no id; give it one unique in the flow",
            "a: id: id 'a' is already taken by the module at a; ids must be unique in the flow",
        ]
    );
}

#[test]
fn reports_unknown_module_types_and_languages() {
    let flow = with_modules(
        r#"
  - {id: agent, value: {type: aiagent, tools: []}}
  - {id: sql, value: {type: rawscript, language: postgresql, content: "select 1"}}
  - {id: odd, value: {type: rawscript, language: cobol, content: ""}}
  - {id: ts, value: {type: rawscript, language: nativets, content: ""}}
"#,
    );
    let found = problems(&flow);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with(
            "agent: value.type: unknown module type 'aiagent'; Millrace runs rawscript"
        )
    );
    assert!(found[1].starts_with("sql: value.language: Millrace cannot run postgresql yet"));
    assert!(
        found[2].starts_with("odd: value.language: unknown language 'cobol'; use one of python3")
    );
}

#[test]
fn results_must_come_from_steps_that_ran_before() {
    let flow = with_modules(
        r#"
  - id: first
    value:
      type: identity
    stop_after_if: {expr: "results.first"}
    skip_if: {expr: "results.later || results?.nowhere"}
  - id: loop
    value:
      type: forloopflow
      iterator: {type: javascript, expr: "results.inner"}
      modules:
        - {id: inner, value: {type: identity}}
  - id: br
    value:
      type: branchall
      branches:
        - modules: [{id: left, value: {type: identity}}]
        - modules:
            - id: right
              value: {type: identity}
              sleep: {type: javascript, expr: "results.left"}
  - {id: later, value: {type: identity}}
"#,
    );
    assert_eq!(
        problems(&flow),
        [
            "first: skip_if.expr: results.later: step 'later' runs after this one",
            "first: skip_if.expr: results.nowhere: there is no step 'nowhere'",
            "first: stop_after_if.expr: results.first: a step cannot read its own result through results; \
             `result` holds it where it is bound",
            "loop: value.iterator: results.inner: step 'inner' (loop/inner) is inside a loop or branch that \
             does not contain this step; read that loop's or branch's result instead",
            "br/right: sleep: results.left: step 'left' (br/left) is inside a loop or branch that does not \
             contain this step; read that loop's or branch's result instead",
        ]
    );
}

#[test]
fn the_failure_module_reads_every_result() {
    let flow = format!(
        "{}  failure_module:\n    id: failure\n    value:\n      type: rawscript\n      language: bun\n      \
         content: ''\n      input_transforms:\n        r: {{type: javascript, expr: 'results.inner ?? results.a'}}\n",
        with_modules(
            r#"
  - {id: a, value: {type: identity}}
  - id: loop
    value:
      type: forloopflow
      iterator: {type: static, value: [1]}
      modules: [{id: inner, value: {type: identity}}]
"#
        )
    );
    assert_eq!(problems(&flow), Vec::<String>::new());
}

#[test]
fn reports_exponential_retry_without_seconds() {
    let flow = with_modules(
        r#"
  - id: a
    value: {type: identity}
    retry: {exponential: {attempts: 3, multiplier: 2, seconds: 0}}
  - id: b
    value: {type: identity}
    retry: {exponential: {attempts: 0, seconds: 0}, constant: {attempts: 2, seconds: 0}}
"#,
    );
    let found = problems(&flow);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("a: retry.exponential.seconds: exponential retry needs seconds > 0")
    );
}

#[test]
fn reports_expressions_that_do_not_parse() {
    let flow = with_modules(
        r#"
  - id: a
    value:
      type: rawscript
      language: deno
      content: ""
      input_transforms:
        good: {type: javascript, expr: "flow_input.x + 1"}
        bad: {type: javascript, expr: "flow_input.x +* 1"}
  - id: b
    value:
      type: branchone
      branches: [{expr: "(flow_input.y", modules: []}]
      default: []
"#,
    );
    let found = problems(&flow);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("a: value.input_transforms.bad: expression does not parse"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("b: value.branches[0].expr: expression does not parse"),
        "{found:?}"
    );
}

#[test]
fn checks_the_document_fields() {
    let flow = r#"
summary: test
schema: {type: object, properties: {n: {type: number2}}}
value:
  early_return: inner
  skip_expr: "results.a"
  modules:
    - {id: a, value: {type: identity}}
    - id: loop
      value:
        type: whileloopflow
        modules: [{id: inner, value: {type: identity}}]
"#;
    let found = problems(flow);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("flow: schema: not a valid JSON Schema: at /properties/n/type: "),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        "flow: value.early_return: there is no top-level step 'inner'; name one of the flow's top-level steps"
    );
    assert_eq!(
        found[2],
        "flow: value.skip_expr: results.a: skip_expr is evaluated before the first step, when no results exist"
    );
}
