use super::*;
use crate::expr::InProcess;
use crate::k8s::api::paths::{Entry, object_name};
use serde_json::json;

fn flow_spec(modules: Value) -> FlowSpec {
    serde_json::from_value(json!({"summary": "s", "value": {"modules": modules}})).unwrap()
}

fn open(modules: Value) -> OpenFlow {
    document::open_flow(&flow_spec(modules)).unwrap()
}

fn call(id: &str, kind: &str, path: &str) -> Value {
    json!({"id": id, "value": {"type": kind, "path": path, "input_transforms": {}}})
}

fn bash(id: &str) -> Value {
    json!({"id": id, "value": {"type": "rawscript", "language": "bash", "content": "echo 1", "input_transforms": {}}})
}

fn script_spec(content: &str) -> ScriptSpec {
    serde_json::from_value(json!({"language": "bash", "content": content})).unwrap()
}

fn entry<'a, T>(name: &'a str, path: Option<&'a str>, spec: &'a T) -> Entry<'a, T> {
    Entry {
        name,
        path,
        spec: Ok(spec),
    }
}

fn catalog<'a, T>(kind: &'static str, objects: Vec<Entry<'a, T>>) -> Catalog<'a, T> {
    Catalog {
        kind,
        namespace: "team",
        objects,
    }
}

#[test]
fn a_path_falls_back_to_its_last_segment_made_dns_safe() {
    assert_eq!(object_name("f/team/Daily_Report"), "daily-report");
    assert_eq!(object_name("u/alice/etl"), "etl");
    assert_eq!(object_name("plain"), "plain");
}

#[test]
fn the_annotation_wins_over_the_name_and_a_claimed_name_is_not_a_fallback() {
    let (a, b) = (script_spec("a"), script_spec("b"));
    let scripts = catalog(
        "Script",
        vec![
            entry("etl", Some("f/other/etl"), &a),
            entry("anything", Some("f/team/etl"), &b),
        ],
    );
    assert_eq!(scripts.find("f/team/etl").unwrap().name, "anything");
    let err = scripts.find("u/alice/etl").err().unwrap();
    assert!(
        err.contains("annotated millrace.dev/path: u/alice/etl, then for a Script named `etl`"),
        "{err}"
    );
    assert!(err.contains("namespace team"), "{err}");
}

#[test]
fn two_objects_claiming_one_path_is_an_error_naming_both() {
    let s = script_spec("a");
    let scripts = catalog(
        "Script",
        vec![entry("x", Some("f/a/b"), &s), entry("y", Some("f/a/b"), &s)],
    );
    let err = scripts.find("f/a/b").err().unwrap();
    assert!(err.contains("Scripts x, y"), "{err}");
}

#[test]
fn subflows_and_their_scripts_are_collected_recursively() {
    let outer = flow_spec(json!([call("inner", "flow", "f/team/inner")]));
    let inner = flow_spec(json!([
        call("s", "script", "f/team/tool"),
        call("h", "script", "hub/missing_one"),
        call("gone", "flow", "f/team/gone"),
    ]));
    let tool = script_spec("echo tool");
    let flows = catalog(
        "Flow",
        vec![entry("outer", None, &outer), entry("inner", None, &inner)],
    );
    let scripts = catalog("Script", vec![entry("tool", None, &tool)]);
    let root = open(json!([call("o", "flow", "f/team/outer"), bash("b")]));

    let library = collect(&root, &flows, &scripts, &InProcess::default()).unwrap();
    assert_eq!(
        library.flows.keys().collect::<Vec<_>>(),
        ["f/team/gone", "f/team/inner", "f/team/outer"]
    );
    assert!(
        matches!(&library.flows["f/team/inner"], Resolved::Found(f) if f.value.modules.len() == 3)
    );
    let Resolved::Missing(gone) = &library.flows["f/team/gone"] else {
        panic!("f/team/gone resolved")
    };
    assert!(gone.contains("a Flow named `gone`"), "{gone}");
    assert_eq!(
        library.scripts["f/team/tool"],
        Resolved::Found(ScriptSource {
            language: "bash".into(),
            content: "echo tool".into(),
            lock: None
        })
    );
    let Resolved::Missing(hub) = &library.scripts["hub/missing_one"] else {
        panic!("hub/missing_one resolved")
    };
    assert!(
        hub.contains("the bundled hub has no `hub/missing_one`"),
        "{hub}"
    );
}

#[test]
fn a_script_not_in_the_namespace_comes_from_the_bundled_hub() {
    let bundled = &hub::SCRIPTS[0];
    let path = format!("hub/{}", bundled.name);
    let root = open(json!([call("h", "script", &path)]));
    let none: Catalog<FlowSpec> = catalog("Flow", vec![]);
    let no_scripts: Catalog<ScriptSpec> = catalog("Script", vec![]);
    let library = collect(&root, &none, &no_scripts, &InProcess::default()).unwrap();
    let Resolved::Found(script) = &library.scripts[&path] else {
        panic!("{path} not found")
    };
    assert_eq!(script.content, bundled.content);
}

#[test]
fn a_cycle_of_subflows_is_an_error_naming_it() {
    let a = flow_spec(json!([call("to_b", "flow", "f/x/b")]));
    let b = flow_spec(json!([bash("first"), call("to_a", "flow", "f/x/a")]));
    let flows = catalog("Flow", vec![entry("a", None, &a), entry("b", None, &b)]);
    let scripts: Catalog<ScriptSpec> = catalog("Script", vec![]);
    let root = open(json!([call("start", "flow", "f/x/a")]));
    let err = collect(&root, &flows, &scripts, &InProcess::default()).unwrap_err();
    assert_eq!(err.0, ["f/x/a", "f/x/b", "f/x/a"]);
    assert!(err.to_string().contains("f/x/a → f/x/b → f/x/a"), "{err}");
}

#[test]
fn the_same_subflow_twice_is_not_a_cycle() {
    let leaf = flow_spec(json!([bash("x")]));
    let flows = catalog("Flow", vec![entry("leaf", None, &leaf)]);
    let scripts: Catalog<ScriptSpec> = catalog("Script", vec![]);
    let root = open(json!([
        call("one", "flow", "f/x/leaf"),
        call("two", "flow", "f/x/leaf")
    ]));
    let library = collect(&root, &flows, &scripts, &InProcess::default()).unwrap();
    assert_eq!(library.flows.len(), 1);
}

#[test]
fn an_invalid_subflow_is_missing_with_its_problems() {
    let broken = flow_spec(json!("not a list"));
    let flows = catalog("Flow", vec![entry("broken", None, &broken)]);
    let scripts: Catalog<ScriptSpec> = catalog("Script", vec![]);
    let root = open(json!([call("b", "flow", "f/x/broken")]));
    let library = collect(&root, &flows, &scripts, &InProcess::default()).unwrap();
    let Resolved::Missing(why) = &library.flows["f/x/broken"] else {
        panic!("an invalid flow resolved")
    };
    assert!(
        why.starts_with("Flow broken (for path `f/x/broken`) is not valid: spec.value"),
        "{why}"
    );
}

#[test]
fn static_inputs_that_look_like_modules_are_not_references() {
    let root = open(
        json!([{"id": "a", "value": {"type": "rawscript", "language": "bash",
        "content": "echo", "input_transforms": {"x": {"type": "static",
        "value": {"type": "flow", "path": "f/not/real"}}}}}]),
    );
    assert_eq!(references(&root), (vec![], vec![]));
}

#[test]
fn the_library_reads_back_exactly() {
    let mut library = Library::default();
    library
        .flows
        .insert("f/a".into(), Resolved::Found(open(json!([bash("x")]))));
    library
        .scripts
        .insert("f/b".into(), Resolved::Missing("why".into()));
    let text = serde_json::to_string(&library).unwrap();
    assert_eq!(serde_json::from_str::<Library>(&text).unwrap(), library);
}

#[test]
fn the_secrets_of_the_flow_and_its_subflows_are_wanted() {
    let var =
        |path: &str| json!({"t": {"type": "javascript", "expr": format!("variable('{path}')")}});
    let mut step = call("s", "script", "hub/none");
    step["value"]["input_transforms"] = var("u/x/inner");
    let inner = flow_spec(json!([step]));
    let flows = catalog("Flow", vec![entry("inner", None, &inner)]);
    let scripts: Catalog<ScriptSpec> = catalog("Script", vec![]);
    let mut step = call("i", "flow", "f/x/inner");
    step["value"]["input_transforms"] = var("u/x/outer");
    let root = open(json!([step]));
    let library = collect(&root, &flows, &scripts, &InProcess::default()).unwrap();
    assert_eq!(
        library.secrets.variables.iter().collect::<Vec<_>>(),
        ["u/x/inner", "u/x/outer"]
    );
}

#[test]
fn an_object_that_cannot_be_read_is_named_with_its_problem() {
    let unreadable: Entry<ScriptSpec> = Entry {
        name: "tool",
        path: None,
        spec: Err("spec.content: invalid type: integer"),
    };
    let scripts = catalog("Script", vec![unreadable]);
    let err = scripts.find("f/team/tool").err().unwrap();
    assert_eq!(
        err,
        "Script tool (for path `f/team/tool`) cannot be read: spec.content: invalid type: integer"
    );
}
