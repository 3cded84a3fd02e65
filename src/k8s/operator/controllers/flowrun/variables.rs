//! `variable(path)` and `resource(path)` as Secrets in the run's namespace.
//!
//! Mapping: variable `u/admin/token` is key `u.admin.token` of the Secret `millrace-variables`
//! (the value as text); resource `f/db/main` is key `f.db.main` of the Secret
//! `millrace-resources` (the value as JSON). Two fixed names, so RBAC can grant the operator
//! `get` on exactly these Secrets (`resourceNames`). Only the paths a run's expressions name
//! literally (found when it begins) are read, at each reconcile that may evaluate them; the values stay in memory and
//! reach a step only through its arguments, which are kept in a Secret (see `job`).

use crate::engine::ResolveError;
use crate::flow::OpenFlow;
use k8s_openapi::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const VARIABLES_SECRET: &str = "millrace-variables";
pub const RESOURCES_SECRET: &str = "millrace-resources";

/// The Secret key of a Windmill path: `/` becomes `.`.
pub fn key(path: &str) -> String {
    path.replace('/', ".")
}

/// The variable and resource paths named literally by the expressions of `flows`.
pub fn referenced<'a>(flows: impl IntoIterator<Item = &'a OpenFlow>) -> Wanted {
    let mut wanted = Wanted::default();
    for flow in flows {
        let doc = serde_json::to_value(&flow.value).expect("a flow serialises");
        scan(&doc, &mut wanted);
    }
    wanted
}

/// The variable and resource paths a run reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wanted {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub variables: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub resources: BTreeSet<String>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty() && self.resources.is_empty()
    }
}

/// Every expression of a flow document is the string value of an `expr` field.
fn scan(value: &Value, wanted: &mut Wanted) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| scan(item, wanted)),
        Value::Object(map) => {
            for (field, nested) in map {
                match (field.as_str(), nested) {
                    ("expr", Value::String(source)) => {
                        let (variables, resources) = crate::expr::referenced_secrets(source);
                        wanted.variables.extend(variables);
                        wanted.resources.extend(resources);
                    }
                    _ => scan(nested, wanted),
                }
            }
        }
        _ => {}
    }
}

/// The values read for a reconcile.
#[derive(Default)]
pub struct Fetched {
    pub namespace: String,
    pub variables: Read,
    pub resources: Read,
}

/// One Secret as read: only the keys of wanted paths are kept.
#[derive(Default)]
pub enum Read {
    /// No expression names a path of this kind literally, so the Secret was not read.
    #[default]
    NotNamed,
    Absent,
    Present(BTreeMap<String, ByteString>),
}

/// Keeps only the keys of `wanted` paths from a Secret's data.
pub fn keep(
    data: BTreeMap<String, ByteString>,
    wanted: &BTreeSet<String>,
) -> BTreeMap<String, ByteString> {
    let keys: BTreeSet<String> = wanted.iter().map(|p| key(p)).collect();
    data.into_iter().filter(|(k, _)| keys.contains(k)).collect()
}

impl Fetched {
    pub fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        let bytes = self.lookup("variable", VARIABLES_SECRET, &self.variables, path)?;
        let text = String::from_utf8(bytes.0.clone()).map_err(|_| ResolveError::Invalid {
            kind: "variable",
            path: path.into(),
            reason: format!(
                "key {} of Secret {VARIABLES_SECRET} in namespace {} is not UTF-8 text",
                key(path),
                self.namespace
            ),
        })?;
        Ok(Value::String(text))
    }

    pub fn resource(&self, path: &str) -> Result<Value, ResolveError> {
        let bytes = self.lookup("resource", RESOURCES_SECRET, &self.resources, path)?;
        // The parser's message may quote the value: only its position is told.
        serde_json::from_slice(&bytes.0).map_err(|e| ResolveError::Invalid {
            kind: "resource",
            path: path.into(),
            reason: format!(
                "key {} of Secret {RESOURCES_SECRET} in namespace {} is not JSON (line {}, column {})",
                key(path),
                self.namespace,
                e.line(),
                e.column()
            ),
        })
    }

    fn lookup<'a>(
        &self,
        kind: &'static str,
        secret: &str,
        data: &'a Read,
        path: &str,
    ) -> Result<&'a ByteString, ResolveError> {
        let ns = &self.namespace;
        let key = key(path);
        let reason = match data {
            Read::NotNamed => format!(
                "only paths written literally in expressions (like {kind}('{path}')) are read from Secret {secret}"
            ),
            Read::Absent => {
                format!("there is no Secret {secret} in namespace {ns}; create it with key {key}")
            }
            Read::Present(data) => match data.get(&key) {
                Some(value) => return Ok(value),
                None => format!(
                    "Secret {secret} in namespace {ns} has no key {key}; add it ({kind} paths map to keys with `/` as `.`)"
                ),
            },
        };
        Err(ResolveError::Invalid {
            kind,
            path: path.into(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow(value: Value) -> OpenFlow {
        serde_json::from_value(json!({"summary": "s", "value": value})).unwrap()
    }

    #[test]
    fn only_the_paths_expressions_name_are_wanted() {
        let flow = flow(json!({"modules": [
            {"id": "a", "value": {"type": "rawscript", "language": "bash",
                "content": "echo \"variable('u/x/in_code')\"",
                "input_transforms": {
                    "t": {"type": "javascript", "expr": "variable('u/admin/token')"},
                    "s": {"type": "static", "value": "resource('f/not/an/expr')"}}}},
            {"id": "b", "value": {"type": "branchone", "default": [],
                "branches": [{"expr": "resource(\"f/db/main\").host != ''", "modules": []}]}},
        ]}));
        let wanted = referenced([&flow]);
        assert_eq!(
            wanted.variables.into_iter().collect::<Vec<_>>(),
            ["u/admin/token"]
        );
        assert_eq!(
            wanted.resources.into_iter().collect::<Vec<_>>(),
            ["f/db/main"]
        );
    }

    fn fetched() -> Fetched {
        let data = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect()
        };
        Fetched {
            namespace: "team".into(),
            variables: Read::Present(data(&[("u.admin.token", "s3cret")])),
            resources: Read::Present(data(&[
                ("f.db.main", "{\"host\": \"db\"}"),
                ("f.db.bad", "{s3cret"),
            ])),
        }
    }

    #[test]
    fn values_are_read_by_key_with_slashes_as_dots() {
        let fetched = fetched();
        assert_eq!(fetched.variable("u/admin/token").unwrap(), json!("s3cret"));
        assert_eq!(
            fetched.resource("f/db/main").unwrap(),
            json!({"host": "db"})
        );
    }

    #[test]
    fn a_missing_value_names_the_path_and_where_it_was_looked_for() {
        let err = fetched().variable("u/admin/other").unwrap_err().to_string();
        assert!(err.contains("`u/admin/other`"), "{err}");
        assert!(
            err.contains("Secret millrace-variables in namespace team has no key u.admin.other"),
            "{err}"
        );
        let none = Fetched {
            namespace: "team".into(),
            resources: Read::Absent,
            ..Fetched::default()
        };
        let err = none.resource("f/db/main").unwrap_err().to_string();
        assert!(
            err.contains("no Secret millrace-resources in namespace team"),
            "{err}"
        );
    }

    #[test]
    fn a_resource_that_is_not_json_is_an_error_without_its_value() {
        let err = fetched().resource("f/db/bad").unwrap_err().to_string();
        assert!(err.contains("is not JSON"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn keep_drops_keys_no_expression_names() {
        let Read::Present(data) = fetched().variables else {
            unreachable!()
        };
        let wanted = BTreeSet::from(["u/other".to_string()]);
        assert!(keep(data, &wanted).is_empty());
    }
}
