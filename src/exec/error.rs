use serde_json::{Value, json};

/// Why a step attempt failed. [`StepError::to_value`] gives the `{name, message, stack}` object
/// that flows see as `previous_result` / `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
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
    #[error("the process exited with code {code}{}", tail_suffix(.stderr_tail))]
    Exited { code: i32, stderr_tail: String },
    #[error("the process was killed by signal {signal}{}", tail_suffix(.stderr_tail))]
    Signaled { signal: i32, stderr_tail: String },
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
        format!("; last stderr lines:\n{tail}")
    }
}

impl StepError {
    /// The error as a flow sees it: `{name, message, stack}` (plus `result` for `wm_failure`).
    pub fn to_value(&self) -> Value {
        let name = match self {
            StepError::Raised { name, .. } => name.as_str(),
            StepError::Reported(_) => "Failure",
            StepError::Exited { .. } | StepError::Signaled { .. } => "ExecutionErr",
            StepError::Timeout { .. } => "TimeoutError",
            StepError::Canceled => "Canceled",
            StepError::BadResult(_) => "ResultNotJson",
            StepError::Unavailable(_) => "Unavailable",
            StepError::Io(_) => "IoError",
        };
        let message = match self {
            StepError::Raised { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let stack = match self {
            StepError::Raised { stack, .. } => stack.clone(),
            _ => None,
        };
        let mut value = json!({ "name": name, "message": message, "stack": stack });
        if let StepError::Reported(result) = self {
            value["result"] = result.clone();
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_error_keeps_class_message_and_stack() {
        let err = StepError::Raised {
            name: "ValueError".into(),
            message: "bad".into(),
            stack: Some("Traceback".into()),
        };
        assert_eq!(
            err.to_value(),
            json!({"name": "ValueError", "message": "bad", "stack": "Traceback"})
        );
    }

    #[test]
    fn exit_error_names_code_and_stderr() {
        let err = StepError::Exited {
            code: 3,
            stderr_tail: "boom".into(),
        };
        let v = err.to_value();
        assert_eq!(v["name"], "ExecutionErr");
        assert_eq!(
            v["message"],
            "the process exited with code 3; last stderr lines:\nboom"
        );
    }

    #[test]
    fn reported_failure_carries_the_result() {
        let result = json!({"wm_failure": "nope"});
        let v = StepError::Reported(result.clone()).to_value();
        assert_eq!(v["name"], "Failure");
        assert_eq!(v["result"], result);
    }
}
