//! Values of `variable(path)` and `resource(path)` in local runs: from a `--variables` file
//! (a JSON or YAML map from path to value) or from environment variables named after the path:
//! `variable("f/team/token")` reads `MILLRACE_VAR_F_TEAM_TOKEN`, `resource("f/team/db")` reads
//! `MILLRACE_RES_F_TEAM_DB` (parsed as JSON when it parses). The file wins over the environment.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read the variables file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the variables file {path} must be a JSON or YAML map from path to value (e.g. `f/team/token: abc`): {reason}"
    )]
    Parse { path: PathBuf, reason: String },
}

/// Which function an expression called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Variable,
    Resource,
}

impl SecretKind {
    fn env_prefix(self) -> &'static str {
        match self {
            SecretKind::Variable => "MILLRACE_VAR_",
            SecretKind::Resource => "MILLRACE_RES_",
        }
    }
}

#[derive(Debug, Default)]
pub struct Secrets {
    file: Map<String, Value>,
}

impl Secrets {
    /// Reads the `--variables` file, if one was given.
    pub fn load(file: Option<&Path>) -> Result<Secrets, SecretsError> {
        let Some(path) = file else {
            return Ok(Secrets::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| SecretsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // YAML is a superset of JSON, so one parser reads both.
        let parsed: Value = serde_yaml_ng::from_str(&text).map_err(|e| SecretsError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        match parsed {
            Value::Object(file) => Ok(Secrets { file }),
            Value::Null => Ok(Secrets::default()),
            other => Err(SecretsError::Parse {
                path: path.to_path_buf(),
                reason: format!("found {}", type_name(&other)),
            }),
        }
    }

    /// The value for `path`, looking the environment up with `env`.
    pub fn lookup(
        &self,
        kind: SecretKind,
        path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Value> {
        if let Some(value) = self.file.get(path) {
            return Some(value.clone());
        }
        let text = env(&env_name(kind, path))?;
        Some(match kind {
            SecretKind::Variable => Value::String(text),
            SecretKind::Resource => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }
}

/// The environment variable that holds `path`: the prefix, then the path upper-cased with every
/// other character than a letter or digit turned into `_`.
pub fn env_name(kind: SecretKind, path: &str) -> String {
    let suffix: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{}{suffix}", kind.env_prefix())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn env_names_follow_the_path() {
        assert_eq!(
            env_name(SecretKind::Variable, "f/team/api-token"),
            "MILLRACE_VAR_F_TEAM_API_TOKEN"
        );
        assert_eq!(
            env_name(SecretKind::Resource, "u/ada/db"),
            "MILLRACE_RES_U_ADA_DB"
        );
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.yaml");
        std::fs::write(
            &file,
            "f/team/token: from-file\nf/team/db: {host: localhost}\n",
        )
        .unwrap();
        let secrets = Secrets::load(Some(&file)).unwrap();
        let env = env(&[
            ("MILLRACE_VAR_F_TEAM_TOKEN", "from-env"),
            ("MILLRACE_VAR_F_OTHER", "x"),
        ]);
        assert_eq!(
            secrets.lookup(SecretKind::Variable, "f/team/token", &env),
            Some(json!("from-file"))
        );
        assert_eq!(
            secrets.lookup(SecretKind::Resource, "f/team/db", &env),
            Some(json!({"host": "localhost"}))
        );
        assert_eq!(
            secrets.lookup(SecretKind::Variable, "f/other", &env),
            Some(json!("x"))
        );
        assert_eq!(
            secrets.lookup(SecretKind::Variable, "f/missing", &env),
            None
        );
    }

    #[test]
    fn resources_from_the_environment_are_json_when_they_parse() {
        let env = env(&[
            ("MILLRACE_RES_F_DB", r#"{"port": 5432}"#),
            ("MILLRACE_RES_F_URL", "http://x"),
        ]);
        let secrets = Secrets::default();
        assert_eq!(
            secrets.lookup(SecretKind::Resource, "f/db", &env),
            Some(json!({"port": 5432}))
        );
        assert_eq!(
            secrets.lookup(SecretKind::Resource, "f/url", &env),
            Some(json!("http://x"))
        );
    }

    #[test]
    fn a_file_that_is_not_a_map_is_rejected_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.json");
        std::fs::write(&file, "[1, 2]").unwrap();
        let err = Secrets::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("vars.json") && err.contains("found a list"),
            "{err}"
        );
    }
}
