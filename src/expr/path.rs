//! Plain member paths (`flow_input.a.b`, `results['step-1'].items[0]`) answered straight
//! from the JSON values, without an engine: most input transforms are exactly that, and a
//! fresh engine context costs about a millisecond.
//!
//! Only a path whose every member exists is answered here; anything else (a missing
//! member, `.length`, a method, an unbound name) goes to the engine, so the answer is the
//! one JavaScript would give. Two differences remain, both in the value's favour, as in
//! Windmill's own shortcut: integers beyond 2^53 come back exact, and object keys keep
//! their order even when they look like integers.

use serde_json::{Map, Value};

use super::Scope;

/// The value of `source` if it is a plain path through existing members.
pub(crate) fn plain_path(source: &str, scope: &Scope) -> Option<Value> {
    let source = source.trim();
    let root_len = identifier_len(source);
    let mut node = match &source[..root_len] {
        "flow_input" => Node::Value(&scope.flow_input),
        "previous_result" => Node::Value(&scope.previous_result),
        "results" => Node::Map(&scope.results),
        "flow_env" => Node::Map(&scope.flow_env),
        "result" => Node::Value(scope.result.as_ref()?),
        "error" => Node::Value(scope.error.as_ref()?),
        "resume" => Node::Value(scope.resume.as_ref()?),
        _ => return None,
    };
    let mut rest = &source[root_len..];
    while !rest.is_empty() {
        let (member, after) = member(rest)?;
        node = node.get(member)?;
        rest = after;
    }
    match node {
        Node::Value(value) => Some(value.clone()),
        // A whole map (`results` alone) is rare; the engine answers it.
        Node::Map(_) => None,
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Value(&'a Value),
    Map(&'a Map<String, Value>),
}

enum Member<'a> {
    Name(&'a str),
    Index(&'a str),
}

impl<'a> Node<'a> {
    fn get(self, member: Member<'_>) -> Option<Node<'a>> {
        let map = match self {
            Node::Map(map) => map,
            Node::Value(Value::Object(map)) => map,
            Node::Value(Value::Array(items)) => {
                let Member::Index(index) = member else {
                    return None;
                };
                return items.get(index.parse::<usize>().ok()?).map(Node::Value);
            }
            Node::Value(_) => return None,
        };
        let (Member::Name(key) | Member::Index(key)) = member;
        map.get(key).map(Node::Value)
    }
}

/// One `.name`, `['name']`, `["name"]` or `[0]` at the start of `text`, and the text after it.
fn member(text: &str) -> Option<(Member<'_>, &str)> {
    if let Some(after_dot) = text.strip_prefix('.') {
        let len = identifier_len(after_dot);
        return (len > 0).then(|| (Member::Name(&after_dot[..len]), &after_dot[len..]));
    }
    let inside = text.strip_prefix('[')?;
    let close = inside.find(']')?;
    let (key, after) = (&inside[..close], &inside[close + 1..]);
    let member = match key.as_bytes() {
        [b'0'] => Member::Index(key),
        [b'1'..=b'9', digits @ ..] if digits.iter().all(u8::is_ascii_digit) => Member::Index(key),
        [quote @ (b'\'' | b'"'), body @ .., end]
            if end == quote && !body.contains(&b'\\') && !body.contains(quote) =>
        {
            Member::Name(&key[1..key.len() - 1])
        }
        _ => return None,
    };
    Some((member, after))
}

/// Length of the ASCII identifier at the start of `text`; 0 if there is none.
fn identifier_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'$')
    {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            flow_input: json!({"a": {"b": 3, "list": [10, {"k": "v"}]}, "big": 12345678901234567890u64}),
            results: json!({"step-1": {"ok": true}, "x": [1, 2]})
                .as_object()
                .unwrap()
                .clone(),
            result: Some(json!(null)),
            ..Scope::default()
        }
    }

    #[test]
    fn answers_paths_through_existing_members() {
        let scope = scope();
        for (source, expected) in [
            ("flow_input.a.b", json!(3)),
            (" flow_input['a'][\"list\"][1].k ", json!("v")),
            ("results['step-1'].ok", json!(true)),
            ("results.x[0]", json!(1)),
            ("flow_input.big", json!(12345678901234567890u64)),
            ("flow_input", scope.flow_input.clone()),
            ("result", json!(null)),
        ] {
            assert_eq!(plain_path(source, &scope), Some(expected), "{source}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_engine() {
        let scope = scope();
        for source in [
            "flow_input.missing",
            "flow_input.a.list.length",
            "flow_input.a.list[01]",
            "flow_input.a.list[2]",
            "flow_input.a.b.c",
            "flow_input.a. b",
            "flow_input.",
            "flow_input.a.b + 1",
            "flow_input?.a",
            "flow_input.a['b\\'']",
            "results",
            "error.message",
            "flow_inputs.a",
            "variable('x')",
            "",
        ] {
            assert_eq!(plain_path(source, &scope), None, "{source}");
        }
    }
}
