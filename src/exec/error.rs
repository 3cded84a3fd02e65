use crate::engine::StepError;
use serde_json::Value;

/// Why a local attempt failed; it reaches the engine as the `{name, message, stack}`
/// [`StepError`] that flows see as `previous_result` / `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttemptError {
    /// The script raised or threw; `name` is the exception class.
    #[error("{name}: {message}")]
    Raised {
        name: String,
        message: String,
        stack: Option<String>,
    },
    /// The script returned an object with a top-level `wm_failure` key.
    #[error("the script reported a failure (wm_failure): {0}")]
    Reported(Value),
    #[error("the process exited with code {code}{}", tail_suffix(.output_tail))]
    Exited { code: i32, output_tail: String },
    #[error("the process was killed by signal {signal}{}", tail_suffix(.output_tail))]
    Signaled { signal: i32, output_tail: String },
    #[error("the step ran longer than its timeout of {seconds} s; its processes were killed")]
    Timeout { seconds: f64 },
    #[error("the step was canceled")]
    Canceled,
    /// The script finished but what it returned cannot be used as a JSON result.
    #[error("the step's result is not valid JSON: {0}")]
    BadResult(String),
    /// The step cannot run on this machine (missing interpreter, unsupported language…).
    #[error("{0}")]
    Unavailable(String),
    #[error("could not run the step: {0}")]
    Io(String),
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last output lines:\n{tail}")
    }
}

impl From<AttemptError> for StepError {
    fn from(err: AttemptError) -> StepError {
        let name = match &err {
            AttemptError::Raised { name, .. } => name.as_str(),
            AttemptError::Reported(_) => "Failure",
            AttemptError::Exited { .. } | AttemptError::Signaled { .. } => "ExecutionErr",
            AttemptError::Timeout { .. } => "TimeoutError",
            AttemptError::Canceled => "Canceled",
            AttemptError::BadResult(_) => "ResultNotJson",
            AttemptError::Unavailable(_) => "Unavailable",
            AttemptError::Io(_) => "IoError",
        };
        let mut step_error = StepError::new(name, err.to_string());
        if let AttemptError::Raised { message, stack, .. } = err {
            step_error.message = message;
            step_error.stack = stack;
        }
        step_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raised_error_keeps_class_message_and_stack() {
        let err = AttemptError::Raised {
            name: "ValueError".into(),
            message: "bad".into(),
            stack: Some("Traceback".into()),
        };
        let mut expected = StepError::new("ValueError", "bad");
        expected.stack = Some("Traceback".into());
        assert_eq!(StepError::from(err), expected);
    }

    #[test]
    fn exit_error_names_code_and_output() {
        let err = StepError::from(AttemptError::Exited {
            code: 3,
            output_tail: "boom".into(),
        });
        assert_eq!(err.name, "ExecutionErr");
        assert_eq!(
            err.message,
            "the process exited with code 3; last output lines:\nboom"
        );
    }

    #[test]
    fn reported_failure_shows_the_result() {
        let err = StepError::from(AttemptError::Reported(json!({"wm_failure": "nope"})));
        assert_eq!(err.name, "Failure");
        assert!(
            err.message.contains(r#"{"wm_failure":"nope"}"#),
            "{}",
            err.message
        );
    }
}
