//! YAML text to a JSON value, keeping what Windmill exports mean.
//!
//! `content: !inline a.py` (unquoted, so a YAML tag) means the same as the quoted
//! `'!inline a.py'`; it becomes that string. Merge keys (`<<: *base`) are applied.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("not valid YAML: {0}")]
    Syntax(#[from] serde_yaml_ng::Error),
    #[error("{at}: {message}")]
    Value { at: String, message: String },
}

impl YamlError {
    /// The line (from 1) of a syntax error; `None` for an error about a value.
    pub fn line(&self) -> Option<usize> {
        match self {
            YamlError::Syntax(error) => error.location().map(|l| l.line()),
            YamlError::Value { .. } => None,
        }
    }
}

pub fn to_json(text: &str) -> Result<Value, YamlError> {
    let mut yaml: Yaml = serde_yaml_ng::from_str(text)?;
    yaml.apply_merge()?;
    convert(yaml, &mut String::new())
}

fn convert(yaml: Yaml, at: &mut String) -> Result<Value, YamlError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::String(s) => Value::String(s),
        Yaml::Number(n) => {
            number(&n).ok_or_else(|| error(at, format!("{n} is not a number JSON can hold")))?
        }
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{index}]"));
                out.push(convert(item, at)?);
                at.truncate(len);
            }
            Value::Array(out)
        }
        Yaml::Mapping(fields) => {
            let mut out = Map::new();
            for (key, field) in fields {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Number(n) => n.to_string(),
                    other => {
                        return Err(error(at, format!("a key must be a string, not {other:?}")));
                    }
                };
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(&key);
                let value = convert(field, at)?;
                at.truncate(len);
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => match (tagged.tag.to_string().as_str(), tagged.value) {
            ("!inline", Yaml::String(file)) => Value::String(format!("!inline {file}")),
            (tag, _) => {
                return Err(error(
                    at,
                    format!("unsupported YAML tag {tag}; quote the value"),
                ));
            }
        },
    })
}

fn number(n: &serde_yaml_ng::Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        Some(Value::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(Value::from(u))
    } else {
        n.as_f64().and_then(Number::from_f64).map(Value::Number)
    }
}

fn error(at: &str, message: String) -> YamlError {
    let at = if at.is_empty() { "document" } else { at }.to_string();
    YamlError::Value { at, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_scalars_lists_and_maps() {
        let value = to_json("a: 1\nb: [true, null, 2.5, -3]\n7: seven\nc: {d: 'x'}").unwrap();
        assert_eq!(
            value,
            json!({"a": 1, "b": [true, null, 2.5, -3], "7": "seven", "c": {"d": "x"}})
        );
    }

    #[test]
    fn an_unquoted_inline_tag_is_the_inline_string() {
        let value = to_json("content: !inline a.inline_script.py").unwrap();
        assert_eq!(value, json!({"content": "!inline a.inline_script.py"}));
    }

    #[test]
    fn applies_merge_keys() {
        let value = to_json("base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2").unwrap();
        assert_eq!(value["derived"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn errors_say_where() {
        let error = to_json("a:\n  - b: !weird x").unwrap_err().to_string();
        assert_eq!(
            error,
            "a[0].b: unsupported YAML tag !weird; quote the value"
        );
        let error = to_json("a: .nan").unwrap_err().to_string();
        assert_eq!(error, "a: .nan is not a number JSON can hold");
        let error = to_json("a: [").unwrap_err().to_string();
        assert!(error.starts_with("not valid YAML: "), "{error}");
    }
}
