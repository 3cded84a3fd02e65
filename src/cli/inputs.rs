//! Flow inputs from the command line: `--inputs JSON|@FILE` then `--input NAME=VALUE` on top.

use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputArgError {
    #[error("--input {0}: expected NAME=VALUE")]
    NotNameValue(String),
    #[error("{flag} {text}: {reason}")]
    BadDocument {
        flag: &'static str,
        text: String,
        reason: String,
    },
}

/// Merges `--inputs` (a JSON object, or `@FILE` holding one) with the `--input NAME=VALUE` pairs,
/// which win. A VALUE is taken as JSON when it parses (`n=3`, `tags=["a"]`), else as a string.
pub fn parse_inputs(
    document: Option<&str>,
    pairs: &[String],
) -> Result<Map<String, Value>, InputArgError> {
    let mut inputs = match document {
        Some(text) => json_object("--inputs", text)?,
        None => Map::new(),
    };
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| InputArgError::NotNameValue(pair.clone()))?;
        if name.is_empty() {
            return Err(InputArgError::NotNameValue(pair.clone()));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        inputs.insert(name.into(), value);
    }
    Ok(inputs)
}

/// A JSON object given inline or as `@FILE` (JSON or YAML).
pub fn json_object(flag: &'static str, text: &str) -> Result<Map<String, Value>, InputArgError> {
    let bad = |reason: String| InputArgError::BadDocument {
        flag,
        text: text.into(),
        reason,
    };
    let value: Value = match text.strip_prefix('@') {
        Some(file) => {
            let content = std::fs::read_to_string(Path::new(file))
                .map_err(|e| bad(format!("cannot read the file: {e}")))?;
            serde_yaml_ng::from_str(&content).map_err(|e| bad(format!("not JSON or YAML: {e}")))?
        }
        None => serde_json::from_str(text)
            .map_err(|e| bad(format!("not JSON: {e} (use @FILE to read a file)")))?,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(bad("expected an object of names to values".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_when_they_parse_else_strings() {
        let pairs = [
            "n=3",
            "flag=true",
            "name=world",
            "list=[1,2]",
            "eq=a=b",
            "empty=",
        ]
        .map(String::from);
        let inputs = parse_inputs(None, &pairs).unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"n": 3, "flag": true, "name": "world", "list": [1, 2], "eq": "a=b", "empty": ""})
        );
    }

    #[test]
    fn pairs_override_the_document() {
        let inputs = parse_inputs(Some(r#"{"a": 1, "b": 2}"#), &["b=x".into()]).unwrap();
        assert_eq!(Value::Object(inputs), json!({"a": 1, "b": "x"}));
    }

    #[test]
    fn documents_come_from_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inputs.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        let inputs = parse_inputs(Some(&format!("@{}", file.display())), &[]).unwrap();
        assert_eq!(Value::Object(inputs), json!({"a": 1}));
    }

    #[test]
    fn malformed_arguments_are_named() {
        assert_eq!(
            parse_inputs(None, &["novalue".into()])
                .unwrap_err()
                .to_string(),
            "--input novalue: expected NAME=VALUE"
        );
        let err = parse_inputs(Some("[1]"), &[]).unwrap_err().to_string();
        assert!(err.starts_with("--inputs [1]: expected an object"), "{err}");
    }
}
