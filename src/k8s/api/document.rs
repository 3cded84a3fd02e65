//! A `Flow` spec as the engine's OpenFlow document, and every problem that keeps it from running.

use crate::expr::Evaluator;
use crate::flow::{self, OpenFlow};
use crate::k8s::api::flow::FlowSpec;
use serde_json::{Map, Value};

/// Reads the OpenFlow document of a Flow spec, naming the field that does not fit.
pub fn open_flow(spec: &FlowSpec) -> Result<OpenFlow, String> {
    let mut doc = Map::new();
    doc.insert("summary".into(), Value::String(spec.summary.clone()));
    if let Some(description) = &spec.description {
        doc.insert("description".into(), Value::String(description.clone()));
    }
    doc.insert("value".into(), spec.value.clone());
    if let Some(schema) = &spec.schema {
        doc.insert("schema".into(), schema.clone());
    }
    serde_path_to_error::deserialize(Value::Object(doc))
        .map_err(|e| format!("spec.{}: {}", e.path(), e.inner()))
}

/// Every problem of the document, one line each (`spec.value…` or `module/path: field: message`);
/// empty when the flow can run. Expressions are parsed by `syntax`: the sandbox, for flows from others.
pub fn problems(spec: &FlowSpec, syntax: &dyn Evaluator) -> Vec<String> {
    match open_flow(spec) {
        Err(problem) => vec![problem],
        Ok(flow) => flow::validate(&flow, syntax)
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::InProcess;
    use serde_json::json;

    fn spec(value: Value) -> FlowSpec {
        serde_json::from_value(json!({"summary": "s", "value": value})).unwrap()
    }

    #[test]
    fn a_valid_flow_has_no_problems() {
        let spec = spec(json!({"modules": [{"id": "a", "value": {
            "type": "rawscript", "language": "bash", "content": "echo 1", "input_transforms": {}}}]}));
        assert_eq!(problems(&spec, &InProcess::default()), Vec::<String>::new());
    }

    #[test]
    fn shape_and_validation_problems_name_where_they_are() {
        let bad_shape = spec(json!({"modules": "not a list"}));
        let found = problems(&bad_shape, &InProcess::default());
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("spec.value.modules"), "{found:?}");
        let bad_expr = spec(json!({"modules": [{"id": "a", "value": {
            "type": "rawscript", "language": "bash", "content": "echo 1",
            "input_transforms": {"x": {"type": "javascript", "expr": "results.("}}}}]}));
        let found = problems(&bad_expr, &InProcess::default());
        assert!(found.iter().any(|p| p.starts_with("a: ")), "{found:?}");
    }
}
