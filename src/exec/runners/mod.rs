//! Language runners: how a step's script becomes a process (`prepare`) and how the finished
//! process becomes a result (`collect`). Python and TypeScript run inside wrappers embedded in
//! the binary that write a result envelope to a file; bash follows Windmill's conventions
//! (`result.json`, `result.out`, last line of output).

mod bash;
mod python;
mod toolchain;
mod typescript;

use super::AttemptError;
use super::process::{Ending, ProcessOutcome};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;

pub use bash::{positional_args as bash_positional_args, result_of as bash_result};
pub use python::WRAPPER as PYTHON_WRAPPER;
pub use toolchain::Toolchain;
pub use typescript::{WRAPPER as TYPESCRIPT_WRAPPER, wrapper_args as typescript_wrapper_args};

/// The languages local steps can be written in, named as in OpenFlow's `language` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Python3,
    Bash,
    /// TypeScript for bun (also `bunnative`); runs under deno when only deno is installed.
    Bun,
    /// TypeScript for deno (also `nativets`); runs under bun when only bun is installed.
    Deno,
}

impl Language {
    /// Every `language` value Millrace runs, as [`Language::from_name`] accepts them.
    pub const NAMES: [&str; 6] = ["python3", "bash", "bun", "bunnative", "deno", "nativets"];

    /// Parses OpenFlow's `language` field; `None` for languages Millrace cannot run locally.
    pub fn from_name(name: &str) -> Option<Language> {
        match name {
            "python3" => Some(Language::Python3),
            "bash" => Some(Language::Bash),
            "bun" | "bunnative" => Some(Language::Bun),
            "deno" | "nativets" => Some(Language::Deno),
            _ => None,
        }
    }

    /// The language of a script file in a Windmill export (`.py`, `.sh`, `.ts`, `.deno.ts`).
    pub fn from_file_name(name: &str) -> Option<Language> {
        if name.ends_with(".deno.ts") {
            Some(Language::Deno)
        } else if name.ends_with(".ts") {
            Some(Language::Bun)
        } else if name.ends_with(".py") {
            Some(Language::Python3)
        } else if name.ends_with(".sh") {
            Some(Language::Bash)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Python3 => "python3",
            Language::Bash => "bash",
            Language::Bun => "bun",
            Language::Deno => "deno",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The command line of one attempt.
pub(crate) struct Launch {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
}

/// Writes the script and its arguments into `control` (a fresh directory outside the script's
/// working directory `work`) and says how to start it.
pub(crate) fn prepare(
    language: Language,
    content: &str,
    args: &serde_json::Map<String, Value>,
    control: &Path,
    toolchain: &Toolchain,
) -> Result<Launch, AttemptError> {
    match language {
        Language::Python3 => python::prepare(content, args, control, toolchain),
        Language::Bash => bash::prepare(content, args, control, toolchain),
        Language::Bun | Language::Deno => {
            typescript::prepare(language, content, args, control, toolchain)
        }
    }
}

/// Turns a finished process into the step's result.
pub(crate) fn collect(
    language: Language,
    control: &Path,
    work: &Path,
    outcome: &ProcessOutcome,
    timeout_seconds: f64,
) -> Result<Value, AttemptError> {
    // bash's stderr arrives merged into its stdout.
    let output_tail = || match language {
        Language::Bash => outcome.stdout_tail.clone(),
        _ => outcome.stderr_tail.clone(),
    };
    let code = match outcome.ending {
        Ending::TimedOut => {
            return Err(AttemptError::Timeout {
                seconds: timeout_seconds,
            });
        }
        Ending::Canceled => return Err(AttemptError::Canceled),
        Ending::Signaled(signal) => {
            return Err(AttemptError::Signaled {
                signal,
                output_tail: output_tail(),
            });
        }
        Ending::Exited(code) => code,
    };
    let value = match language {
        Language::Bash if code != 0 => {
            return Err(AttemptError::Exited {
                code,
                output_tail: output_tail(),
            });
        }
        Language::Bash => bash::result(work, outcome.last_stdout_line.as_deref())?,
        Language::Python3 | Language::Bun | Language::Deno => {
            match std::fs::read_to_string(control.join("result.json")) {
                Ok(text) => envelope_result(&text)?,
                Err(_) => return Err(missing_envelope(code, output_tail())),
            }
        }
    };
    reported_failure(value)
}

/// A result object with a top-level `wm_failure` key fails the step (Windmill's convention).
pub fn reported_failure(value: Value) -> Result<Value, AttemptError> {
    match value.get("wm_failure") {
        Some(_) => Err(AttemptError::Reported(value)),
        None => Ok(value),
    }
}

/// Why a wrapper wrote no envelope: the exit code explains it, else the script exited early.
pub fn missing_envelope(code: i32, output_tail: String) -> AttemptError {
    if code != 0 {
        AttemptError::Exited { code, output_tail }
    } else {
        AttemptError::BadResult("the script exited before its main function returned".into())
    }
}

/// Reads the `{"ok": true, "result": …}` / `{"ok": false, "error": …}` envelope a wrapper wrote.
/// A reported error wins over the exit code, which only explains a missing envelope.
pub fn envelope_result(text: &str) -> Result<Value, AttemptError> {
    let mut envelope: Value = serde_json::from_str(text)
        .map_err(|e| AttemptError::BadResult(format!("the wrapper's result envelope: {e}")))?;
    if envelope["ok"] == Value::Bool(true) {
        return Ok(envelope["result"].take());
    }
    let error = &envelope["error"];
    let text_of = |field: &str| error[field].as_str().map(str::to_string);
    let name = text_of("name").unwrap_or_else(|| "Error".into());
    let message = text_of("message").unwrap_or_default();
    if name == "ResultNotJson" {
        return Err(AttemptError::BadResult(message));
    }
    Err(AttemptError::Raised {
        name,
        message,
        stack: text_of("stack"),
    })
}

/// Writes `name` into `dir`, mapping the I/O error to a step error that names the file.
fn write_file(dir: &Path, name: &str, content: &[u8]) -> Result<(), AttemptError> {
    let path = dir.join(name);
    std::fs::write(&path, content)
        .map_err(|e| AttemptError::Io(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_names_follow_openflow() {
        assert_eq!(Language::from_name("python3"), Some(Language::Python3));
        assert_eq!(Language::from_name("nativets"), Some(Language::Deno));
        assert_eq!(Language::from_name("go"), None);
        for name in Language::NAMES {
            assert!(Language::from_name(name).is_some(), "{name}");
        }
        assert_eq!(
            Language::from_file_name("a/b.deno.ts"),
            Some(Language::Deno)
        );
        assert_eq!(Language::from_file_name("a/b.ts"), Some(Language::Bun));
        assert_eq!(Language::from_file_name("a/b.sh"), Some(Language::Bash));
        assert_eq!(Language::from_file_name("a/b.txt"), None);
    }
}
