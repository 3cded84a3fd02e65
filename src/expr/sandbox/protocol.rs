//! Messages between the sandbox and its workers: one JSON document per line.
//!
//! The parent opens with a [`Hello`]; the worker answers [`Reply::Ready`], then one
//! [`Reply`] per request line.

use std::collections::BTreeSet;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::expr::{ExprError, Limits, Scope};

/// The worker's limits, applied by the worker to itself once it has started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Address space the worker may add to its startup footprint.
    pub memory_mib: u64,
    /// CPU seconds one evaluation may use before the kernel stops the worker.
    pub cpu_seconds: u64,
    pub limits: Limits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    Ready,
    Ok(Value),
    Err(ExprError),
}

/// The `Reply::Ok` document for a result already in JSON text, without parsing it again.
pub(crate) fn ok_reply(json_text: &str) -> String {
    format!("{{\"ok\":{json_text}}}")
}

/// A request as the worker reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request {
    /// Evaluate; the reply is the result.
    Eval { source: String, scope: Box<Scope> },
    /// Parse only; the reply is `null` or a syntax error.
    Check { source: String },
}

/// An evaluation request line as the parent writes it: `scope` borrowed, `results` cut
/// to the steps the expression can reach when that is known.
pub(crate) fn eval_line(
    source: &str,
    scope: &Scope,
    reachable: Option<&BTreeSet<String>>,
) -> Vec<u8> {
    line(&RequestOut::Eval {
        source,
        scope: ScopeOut {
            flow_input: &scope.flow_input,
            previous_result: &scope.previous_result,
            results: Results {
                all: &scope.results,
                only: reachable,
            },
            flow_env: &scope.flow_env,
            result: scope.result.as_ref(),
            error: scope.error.as_ref(),
            resume: scope.resume.as_ref(),
            variables: &scope.variables,
            resources: &scope.resources,
        },
    })
}

pub(crate) fn check_line(source: &str) -> Vec<u8> {
    line(&RequestOut::Check { source })
}

fn line(request: &RequestOut) -> Vec<u8> {
    let mut line = serde_json::to_vec(request).expect("JSON values always serialise");
    line.push(b'\n');
    line
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum RequestOut<'a> {
    Eval {
        source: &'a str,
        scope: ScopeOut<'a>,
    },
    Check {
        source: &'a str,
    },
}

/// Mirrors [`Scope`]'s serialised form.
#[derive(Serialize)]
struct ScopeOut<'a> {
    flow_input: &'a Value,
    previous_result: &'a Value,
    results: Results<'a>,
    flow_env: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<&'a Value>,
    variables: &'a Map<String, Value>,
    resources: &'a Map<String, Value>,
}

struct Results<'a> {
    all: &'a Map<String, Value>,
    only: Option<&'a BTreeSet<String>>,
}

impl Serialize for Results<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (id, value) in self.all {
            if self.only.is_none_or(|only| only.contains(id)) {
                map.serialize_entry(id, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            flow_input: json!({"a": [1, 2.5, "é"]}),
            previous_result: json!(null),
            results: json!({"s1": 1, "s2": {"x": true}})
                .as_object()
                .unwrap()
                .clone(),
            flow_env: json!({"E": "v"}).as_object().unwrap().clone(),
            result: Some(Value::Null),
            error: None,
            resume: Some(json!({"ok": 1})),
            variables: json!({"f/v": "secret"}).as_object().unwrap().clone(),
            resources: Map::new(),
        }
    }

    fn parse(line: &[u8]) -> Request {
        assert_eq!(line.last(), Some(&b'\n'));
        serde_json::from_slice(line).unwrap()
    }

    #[test]
    fn an_eval_request_round_trips_the_whole_scope() {
        let Request::Eval {
            source,
            scope: sent,
        } = parse(&eval_line("results.s1", &scope(), None))
        else {
            panic!("an eval request");
        };
        assert_eq!(source, "results.s1");
        assert_eq!(*sent, scope());
    }

    #[test]
    fn an_eval_request_carries_only_reachable_results() {
        let only = BTreeSet::from(["s2".to_owned()]);
        let Request::Eval { scope: sent, .. } = parse(&eval_line("x", &scope(), Some(&only)))
        else {
            panic!("an eval request");
        };
        assert_eq!(Value::Object(sent.results), json!({"s2": {"x": true}}));
    }

    #[test]
    fn a_check_request_carries_the_source() {
        let Request::Check { source } = parse(&check_line("a +")) else {
            panic!("a check request");
        };
        assert_eq!(source, "a +");
    }

    #[test]
    fn replies_round_trip() {
        let ok: Reply = serde_json::from_str(&ok_reply("[1,{\"k\":2.5}]")).unwrap();
        assert_eq!(ok, Reply::Ok(json!([1, {"k": 2.5}])));
        for reply in [
            Reply::Ready,
            Reply::Err(ExprError::Thrown("TypeError: x".into())),
        ] {
            let text = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
        }
    }
}
