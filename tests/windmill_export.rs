//! Hand-written flows in Windmill's export format load and validate.

use millrace::expr::InProcess;
use millrace::flow::{LoadedFlow, ModuleValue, OpenFlow, load_path, prepare_inputs, validate};
use serde_json::{Map, Value, json};
use std::fs;
use std::path::{Path, PathBuf};

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

fn load(relative: &str) -> LoadedFlow {
    load_path(&data(relative)).unwrap_or_else(|error| panic!("{relative} does not load: {error}"))
}

fn module<'a>(flow: &'a OpenFlow, id: &str) -> &'a millrace::flow::FlowModule {
    fn find<'a>(
        modules: &'a [millrace::flow::FlowModule],
        id: &str,
    ) -> Option<&'a millrace::flow::FlowModule> {
        modules.iter().find_map(|m| {
            if m.id == id {
                return Some(m);
            }
            match &m.value {
                ModuleValue::ForLoop(l) => find(&l.modules, id),
                ModuleValue::WhileLoop(l) => find(&l.modules, id),
                ModuleValue::BranchOne(b) => b
                    .branches
                    .iter()
                    .find_map(|arm| find(&arm.modules, id))
                    .or_else(|| find(&b.default, id)),
                ModuleValue::BranchAll(b) => {
                    b.branches.iter().find_map(|arm| find(&arm.modules, id))
                }
                _ => None,
            }
        })
    }
    find(&flow.value.modules, id)
        .or(flow.value.failure_module.as_deref().filter(|m| m.id == id))
        .unwrap_or_else(|| panic!("no module '{id}'"))
}

fn script(flow: &OpenFlow, id: &str) -> (String, Option<String>) {
    match &module(flow, id).value {
        ModuleValue::RawScript(s) => (s.content.clone(), s.lock.clone()),
        other => panic!("'{id}' is not a rawscript: {other:?}"),
    }
}

fn inputs(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

#[test]
fn every_export_loads_and_validates_clean() {
    let dir = data("windmill");
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let loaded = load_path(&path)
            .unwrap_or_else(|error| panic!("{} does not load: {error}", path.display()));
        let problems: Vec<String> = validate(&loaded.flow, &InProcess::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
        assert_eq!(loaded.base_dir.as_deref(), Some(dir.as_path()));
        count += 1;
    }
    assert_eq!(count, 3);
}

#[test]
fn growth_report_resolves_inline_scripts_and_locks() {
    let loaded = load("windmill/growth_report.flow");
    assert_eq!(loaded.name, "growth_report");
    let folder = data("windmill/growth_report.flow");
    let text = |file: &str| fs::read_to_string(folder.join(file)).unwrap();
    assert_eq!(
        script(&loaded.flow, "a"),
        (
            text("fetch_signups.inline_script.py"),
            Some(text("fetch_signups.inline_script.lock"))
        )
    );
    assert_eq!(
        script(&loaded.flow, "c").0,
        text("growth_of_one_region.inline_script.ts")
    );
    assert_eq!(
        script(&loaded.flow, "f").0,
        text("alert_the_channel.inline_script.sh")
    );
    assert_eq!(
        script(&loaded.flow, "failure").0,
        text("error_handler.inline_script.ts")
    );
}

#[test]
fn growth_report_keeps_fields_millrace_does_not_use() {
    let flow = load("windmill/growth_report.flow").flow;
    assert_eq!(flow.extra["ws_error_handler_muted"], false);
    assert_eq!(flow.extra["visible_to_runner_only"], false);
    assert_eq!(flow.value.extra["concurrent_limit"], 1);
    assert_eq!(flow.value.extra["priority"], 1);
    assert_eq!(module(&flow, "a").extra["cache_ttl"], 600);
    assert_eq!(module(&flow, "a").extra["priority"], 2);
    match &module(&flow, "g").value {
        ModuleValue::Script(s) => {
            assert_eq!(s.path, "f/growth/post_report");
            assert_eq!(s.extra["hash"], "0a1b2c3d4e5f6a7b");
        }
        other => panic!("not a script: {other:?}"),
    }
    let written = serde_json::to_value(&flow).unwrap();
    let again: OpenFlow = serde_json::from_value(written).unwrap();
    assert_eq!(again, flow);
}

#[test]
fn growth_report_inputs_follow_its_schema() {
    let flow = load("windmill/growth_report.flow").flow;
    let given = inputs(json!({"since": "2024-05-01T00:00:00Z", "report_to": "ops@example.com"}));
    let prepared = prepare_inputs(flow.schema.as_ref(), given).unwrap();
    assert_eq!(prepared["alert_below"], 2);
    assert_eq!(prepared["regions"], json!(["eu", "us"]));

    let given = inputs(json!({"since": "last week", "report_to": "ops", "regions": ["mars"]}));
    let problems = prepare_inputs(flow.schema.as_ref(), given).unwrap_err();
    let mut names: Vec<&str> = problems.iter().map(|p| p.input.as_str()).collect();
    names.sort();
    assert_eq!(names, ["regions", "report_to", "since"]);
}

#[test]
fn onboarding_export_with_non_dotted_folder_name() {
    let loaded = load("windmill/customer_onboarding__flow");
    assert_eq!(loaded.name, "customer_onboarding");
    assert_eq!(
        loaded.flow.value.early_return.as_deref(),
        Some("create_account")
    );
    let approval = module(&loaded.flow, "approval");
    let suspend = approval.suspend.as_ref().expect("a suspend");
    assert_eq!(suspend.timeout, Some(86400.0));
    assert_eq!(suspend.extra["user_auth_required"], true);
    assert!(
        module(&loaded.flow, "welcome")
            .mock
            .as_ref()
            .is_some_and(|m| m.enabled)
    );
    let given = inputs(json!({"company": "Acme Inc.", "contact": "cto@acme.test"}));
    let prepared = prepare_inputs(loaded.flow.schema.as_ref(), given).unwrap();
    assert_eq!(prepared["plan"], "starter");
    let given = inputs(json!({"company": "!", "contact": "cto@acme.test", "plan": "free"}));
    let problems = prepare_inputs(loaded.flow.schema.as_ref(), given).unwrap_err();
    let mut names: Vec<&str> = problems.iter().map(|p| p.input.as_str()).collect();
    names.sort();
    assert_eq!(names, ["company", "plan"]);
}

#[test]
fn single_file_json_export() {
    let loaded = load("windmill/invoice_sync.flow.json");
    assert_eq!(loaded.name, "invoice_sync");
    assert!(
        script(&loaded.flow, "c")
            .0
            .contains("export async function main")
    );
}

#[test]
fn a_broken_export_reports_each_mistake_with_its_module_and_field() {
    let flow = load("windmill_bad/broken.flow").flow;
    let problems = validate(&flow, &InProcess::default());
    let located: Vec<(String, &str)> = problems
        .iter()
        .map(|p| (p.path.to_string(), p.field.as_str()))
        .collect();
    assert_eq!(
        located,
        [
            ("flow".to_string(), "schema"),
            ("per_item/fetch".to_string(), "id"),
            ("fetch".to_string(), "value.language"),
            ("fetch".to_string(), "retry.exponential.seconds"),
            ("fetch".to_string(), "value.input_transforms.url"),
            ("per_item".to_string(), "value.iterator"),
            ("publish".to_string(), "stop_after_if.expr"),
            ("flow".to_string(), "value.early_return"),
        ],
        "{problems:#?}"
    );
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let expected_starts = [
        "flow: schema: not a valid JSON Schema: at /properties/items/type: ",
        "per_item/fetch: id: id 'fetch' is already taken by the module at fetch",
        "fetch: value.language: Millrace cannot run go yet",
        "fetch: retry.exponential.seconds: exponential retry needs seconds > 0",
        "fetch: value.input_transforms.url: results.publish: step 'publish' runs after this one",
        "per_item: value.iterator: expression does not parse",
        "publish: stop_after_if.expr: results.fetch_later: there is no step 'fetch_later'",
        "flow: value.early_return: there is no top-level step 'per_item_fetch'",
    ];
    for (message, start) in messages.iter().zip(expected_starts) {
        assert!(
            message.starts_with(start),
            "{message:?} should start with {start:?}"
        );
    }
}

#[test]
fn a_missing_inline_file_names_the_module_and_the_file() {
    let error = load_path(&data("windmill_bad/missing_inline.flow"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "flow.yaml: module 'transform' (value.modules[1].value.modules[0].value.content)"
        ),
        "{error}"
    );
    assert!(
        error.contains("cannot read '!inline transform.inline_script.py'"),
        "{error}"
    );
}
