use super::*;
use crate::flow::model::ModuleValue;
use std::fs;

const FLOW: &str = r#"
summary: Say hello
value:
  modules:
    - id: hello
      value:
        type: rawscript
        language: bash
        content: '!inline hello.sh'
        input_transforms:
          name: {type: javascript, expr: flow_input.name}
schema:
  type: object
  properties: {name: {type: string}}
"#;

fn content(loaded: &LoadedFlow) -> &str {
    match &loaded.flow.value.modules[0].value {
        ModuleValue::RawScript(script) => &script.content,
        other => panic!("not a rawscript: {other:?}"),
    }
}

#[test]
fn parses_yaml_and_json_text() {
    let loaded = parse_str("summary: s\nvalue: {modules: []}", "flows/report.flow.yaml").unwrap();
    assert_eq!(loaded.name, "report");
    assert_eq!(loaded.flow.summary, "s");
    assert_eq!(loaded.base_dir, None);
    let loaded = parse_str(
        r#"{"summary": "j", "value": {"modules": []}}"#,
        "other.json",
    )
    .unwrap();
    assert_eq!(
        (loaded.name.as_str(), loaded.flow.summary.as_str()),
        ("other", "j")
    );
}

#[test]
fn a_manifest_gives_its_spec_and_name() {
    let text = r#"
apiVersion: millrace.dev/v1alpha1
kind: Flow
metadata: {name: nightly-report, namespace: data}
spec:
  summary: from a manifest
  serviceAccountName: runner
  value: {modules: [{id: a, value: {type: identity}}]}
"#;
    let loaded = parse_str(text, "deploy/flow.yaml").unwrap();
    assert_eq!(loaded.name, "nightly-report");
    assert_eq!(loaded.flow.summary, "from a manifest");
    assert_eq!(loaded.flow.value.modules[0].id, "a");
}

#[test]
fn manifest_errors_name_what_to_fix() {
    let wrong_kind =
        "apiVersion: millrace.dev/v1alpha1\nkind: FlowRun\nmetadata: {name: x}\nspec: {}";
    let error = parse_str(wrong_kind, "m.yaml").unwrap_err().to_string();
    assert!(error.starts_with(
        "m.yaml: a manifest here must have apiVersion: millrace.dev/v1alpha1 and kind: Flow"
    ));
    assert!(error.contains("kind 'FlowRun'"), "{error}");
    let no_name = "apiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {}\nspec: {}";
    let error = parse_str(no_name, "m.yaml").unwrap_err().to_string();
    assert_eq!(error, "m.yaml: metadata.name: a Flow manifest needs a name");
    let bad_spec = "apiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {name: x}\nspec: {value: {modules: 3}}";
    let error = parse_str(bad_spec, "m.yaml").unwrap_err().to_string();
    assert!(
        error.starts_with("m.yaml: spec.value.modules: invalid type: integer `3`"),
        "{error}"
    );
}

#[test]
fn field_errors_give_the_path_down_to_nested_modules() {
    let text = r#"
summary: s
value:
  modules:
    - id: loop
      value:
        type: forloopflow
        iterator: {type: static, value: []}
        modules:
          - id: inner
            value: {type: rawscript, content: ""}
"#;
    let error = parse_str(text, "f.yaml").unwrap_err().to_string();
    assert_eq!(
        error,
        "f.yaml: value.modules[0].value: modules[0].value: missing field `language`"
    );
    let error = parse_str("summary: s", "f.yaml").unwrap_err().to_string();
    assert_eq!(error, "f.yaml: (document): missing field `value`");
}

#[test]
fn reports_empty_files_and_bad_syntax() {
    let error = parse_str("", "f.yaml").unwrap_err().to_string();
    assert!(error.starts_with("f.yaml: the file is empty"), "{error}");
    let error = parse_str("summary: [", "f.yaml").unwrap_err().to_string();
    assert!(error.starts_with("f.yaml: not valid YAML: "), "{error}");
    let error = parse_str("{", "f.json").unwrap_err().to_string();
    assert!(error.starts_with("f.json: not valid JSON: "), "{error}");
}

#[test]
fn inline_references_in_text_are_errors() {
    let error = parse_str(FLOW, "hello.flow.yaml").unwrap_err().to_string();
    assert!(
        error.starts_with(
            "hello.flow.yaml: module 'hello' (value.modules[0].value.content): '!inline hello.sh'"
        ),
        "{error}"
    );
}

#[test]
fn loads_a_single_file_with_inline_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hello.flow.yaml"), FLOW).unwrap();
    fs::write(dir.path().join("hello.sh"), "name=\"$1\"\necho hi $name\n").unwrap();
    let loaded = load_path(&dir.path().join("hello.flow.yaml")).unwrap();
    assert_eq!(loaded.name, "hello");
    assert_eq!(content(&loaded), "name=\"$1\"\necho hi $name\n");
    assert_eq!(loaded.base_dir.as_deref(), Some(dir.path()));
}

#[test]
fn loads_an_export_folder_or_its_flow_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("greet.flow");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("flow.yaml"), FLOW).unwrap();
    fs::write(folder.join("hello.sh"), "echo hi\n").unwrap();
    for path in [folder.clone(), folder.join("flow.yaml")] {
        let loaded = load_path(&path).unwrap();
        assert_eq!(loaded.name, "greet");
        assert_eq!(content(&loaded), "echo hi\n");
        assert_eq!(loaded.base_dir.as_deref(), Some(dir.path()));
    }
}

#[test]
fn load_errors_name_the_file_or_folder() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_path(dir.path()).unwrap_err().to_string();
    assert!(
        error.ends_with("not a flow: a flow folder holds flow.yaml or flow.json"),
        "{error}"
    );
    let error = load_path(&dir.path().join("missing.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot read ") && error.contains("missing.yaml"),
        "{error}"
    );
    fs::write(dir.path().join("hello.flow.yaml"), FLOW).unwrap();
    let error = load_path(&dir.path().join("hello.flow.yaml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains(
        "module 'hello' (value.modules[0].value.content): cannot read '!inline hello.sh'"
    ));
}
