//! bash steps, as Windmill runs them: positional arguments in the order of the script's
//! `name="$1"` lines, `set -e` without `pipefail`, stderr merged into stdout in the order
//! written; the result is `./result.json`, else `./result.out`, else the last line printed, as a
//! string.

use super::{Launch, Toolchain, write_file};
use crate::exec::AttemptError;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::path::Path;

pub(super) fn prepare(
    content: &str,
    args: &Map<String, Value>,
    control: &Path,
    toolchain: &Toolchain,
) -> Result<Launch, AttemptError> {
    write_file(control, "main.sh", content.as_bytes())?;
    // One pipe for both streams keeps their order, so the last line is the last one written.
    let mut argv: Vec<OsString> = vec!["-c".into(), "exec \"$BASH\" -e \"$0\" \"$@\" 2>&1".into()];
    argv.push(control.join("main.sh").into());
    argv.extend(
        positional_args(content, args)
            .into_iter()
            .map(OsString::from),
    );
    Ok(Launch {
        program: toolchain.bash.clone(),
        args: argv,
        env: Vec::new(),
    })
}

/// The values for `$1`, `$2`, … : strings as they are, null or missing as "", anything else as JSON.
pub fn positional_args(content: &str, args: &Map<String, Value>) -> Vec<String> {
    let declared = declared_params(content);
    let count = declared.iter().map(|(_, n)| *n).max().unwrap_or(0);
    (1..=count)
        .map(|position| {
            let name = declared
                .iter()
                .find(|(_, n)| *n == position)
                .map(|(name, _)| name);
            match name.and_then(|name| args.get(*name)) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }
        })
        .collect()
}

/// `(name, position)` for each line `name="$N"`, `name="${N}"` or `name="${N:-default}"`.
fn declared_params(content: &str) -> Vec<(&str, usize)> {
    content
        .lines()
        .filter_map(|line| parse_param_line(line.trim()))
        .collect()
}

fn parse_param_line(line: &str) -> Option<(&str, usize)> {
    let (name, rest) = line.split_once("=\"$")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let digits = match rest.strip_prefix('{') {
        Some(braced) => braced.split(['}', ':']).next()?,
        None => rest.strip_suffix('"')?,
    };
    let position: usize = digits.parse().ok()?;
    (position > 0).then_some((name, position))
}

pub(super) fn result(work: &Path, last_line: Option<&str>) -> Result<Value, AttemptError> {
    let result_json = std::fs::read_to_string(work.join("result.json")).ok();
    let result_out = std::fs::read_to_string(work.join("result.out")).ok();
    result_of(result_json.as_deref(), result_out.as_deref(), last_line)
}

/// The result from what a finished bash script left: `./result.json`, `./result.out` and the
/// last line it printed (stdout and stderr together), in that order of preference. The last
/// line is always a string, trimmed, and empty when the script printed nothing (Windmill's
/// `tail -1`).
pub fn result_of(
    result_json: Option<&str>,
    result_out: Option<&str>,
    last_line: Option<&str>,
) -> Result<Value, AttemptError> {
    if let Some(text) = result_json {
        return serde_json::from_str(text).map_err(|e| {
            AttemptError::BadResult(format!(
                "the script wrote ./result.json, which is not JSON: {e}"
            ))
        });
    }
    if let Some(text) = result_out {
        return Ok(Value::String(text.to_string()));
    }
    Ok(Value::String(
        last_line.unwrap_or_default().trim().to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_follow_the_dollar_n_lines() {
        let script = "second=\"$2\"\nfirst=\"$1\"\nthird=\"${3:-x}\"\necho hi\nnot_a=$1\n";
        let args = json!({"first": "a b", "second": {"k": 1}, "third": null});
        let args = args.as_object().unwrap();
        assert_eq!(positional_args(script, args), vec!["a b", r#"{"k":1}"#, ""]);
    }

    #[test]
    fn gaps_in_positions_get_empty_strings() {
        let args = json!({"b": 2});
        assert_eq!(
            positional_args("b=\"${2}\"", args.as_object().unwrap()),
            vec!["", "2"]
        );
    }

    #[test]
    fn result_prefers_result_json_then_result_out_then_last_line() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(result(dir.path(), Some("42")).unwrap(), json!("42"));
        assert_eq!(result(dir.path(), Some(" done \t")).unwrap(), json!("done"));
        assert_eq!(result(dir.path(), None).unwrap(), json!(""));
        std::fs::write(dir.path().join("result.out"), "text").unwrap();
        assert_eq!(result(dir.path(), Some("42")).unwrap(), json!("text"));
        std::fs::write(dir.path().join("result.json"), "{\"a\": 1}").unwrap();
        assert_eq!(result(dir.path(), Some("42")).unwrap(), json!({"a": 1}));
        std::fs::write(dir.path().join("result.json"), "{oops").unwrap();
        let err = result(dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("./result.json"), "{err}");
    }
}
