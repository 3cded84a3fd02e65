//! The report `entry.sh` leaves behind: its first line says what kind it is, the rest is the
//! content. Decoding it uses the same result rules as local mode (`exec::runners`).

use crate::engine::StepError;
use crate::exec::runners::{bash_result, envelope_result, missing_envelope, reported_failure};
use serde_json::Value;

/// What a termination message says about the attempt's result.
#[derive(Debug, PartialEq)]
pub enum Report {
    /// The result (or the step's error) is here.
    Done(Result<Value, StepError>),
    /// The report was too large for the termination message: read it from the pod log.
    InLog,
}

/// Decodes the termination message of a finished step container. `exit_code` explains an
/// empty message (the container was killed before `entry.sh` could write one).
pub fn from_termination_message(message: &str, exit_code: i32) -> Report {
    if message.starts_with("framed ") {
        return Report::InLog;
    }
    Report::Done(decode(message, exit_code))
}

/// Finds the report framed with `nonce` in a pod log (the last frame wins) and decodes it.
pub fn from_log(log: &str, nonce: &str, exit_code: i32) -> Result<Value, StepError> {
    let begin = format!("\nMILLRACE_RESULT_{nonce}_BEGIN\n");
    let end = format!("\nMILLRACE_RESULT_{nonce}_END");
    let framed = log.rfind(&begin).and_then(|start| {
        let body = &log[start + begin.len()..];
        body.rfind(&end).map(|stop| &body[..stop])
    });
    match framed {
        Some(report) => decode(report, exit_code),
        None => Err(StepError::new(
            "ResultLost",
            "the result was too large for the termination message and its frame is missing from \
             the pod log (was the log rotated or the pod deleted?)",
        )),
    }
}

fn decode(report: &str, exit_code: i32) -> Result<Value, StepError> {
    let (kind, body) = report.split_once('\n').unwrap_or((report, ""));
    let kind = kind.trim_end();
    let result = match kind.split_once(' ').unwrap_or((kind, "")) {
        ("envelope", _) => envelope_result(body),
        ("bash-json", _) => bash_result(Some(body), None, None),
        ("bash-out", _) => bash_result(None, Some(body), None),
        ("bash-line", _) => {
            let line = body.strip_suffix('\n').unwrap_or(body);
            bash_result(None, None, Some(line).filter(|l| !l.is_empty()))
        }
        ("exit", code) => Err(missing_envelope(
            code.parse().unwrap_or(exit_code),
            body.trim_end().to_string(),
        )),
        ("too-large", size) => {
            return Err(StepError::new(
                "ResultTooLarge",
                format!(
                    "result too large: {size} bytes, over the configured cap; return less (or store it elsewhere and return a reference)"
                ),
            ));
        }
        _ => {
            return Err(StepError::new(
                "ExecutionErr",
                format!(
                    "the step container exited with code {exit_code} without reporting a result \
                     (was it killed, or does its image lack sh?)"
                ),
            ));
        }
    };
    result.and_then(reported_failure).map_err(StepError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn done(message: &str) -> Result<Value, StepError> {
        match from_termination_message(message, 0) {
            Report::Done(result) => result,
            Report::InLog => panic!("expected a result in {message:?}"),
        }
    }

    #[test]
    fn envelopes_and_bash_results_decode_like_local_mode() {
        assert_eq!(
            done("envelope\n{\"ok\":true,\"result\":[1,2]}"),
            Ok(json!([1, 2]))
        );
        assert_eq!(done("bash-json\n{\"a\": 1}\n"), Ok(json!({"a": 1})));
        assert_eq!(done("bash-out\ntext\n"), Ok(json!("text\n")));
        assert_eq!(done("bash-line\n42\n"), Ok(json!("42")));
        assert_eq!(done("bash-line\nhello\n"), Ok(json!("hello")));
        assert_eq!(done("bash-line\n"), Ok(json!("")));
    }

    #[test]
    fn errors_keep_name_message_and_stack() {
        let err = done(
            "envelope\n{\"ok\":false,\"error\":{\"name\":\"ValueError\",\"message\":\"bad\",\"stack\":\"tb\"}}",
        )
        .unwrap_err();
        assert_eq!(
            (err.name.as_str(), err.message.as_str()),
            ("ValueError", "bad")
        );
        assert_eq!(err.stack.as_deref(), Some("tb"));
        let err = done("exit 3\nboom\n").unwrap_err();
        assert_eq!(err.name, "ExecutionErr");
        assert!(
            err.message.contains("code 3") && err.message.ends_with("boom"),
            "{}",
            err.message
        );
        let err = done("envelope\n{\"ok\":true,\"result\":{\"wm_failure\":1}}").unwrap_err();
        assert_eq!(err.name, "Failure");
    }

    #[test]
    fn oversized_results_fail_clearly() {
        let err = done("too-large 2000000\n").unwrap_err();
        assert_eq!(err.name, "ResultTooLarge");
        assert!(
            err.message.starts_with("result too large: 2000000 bytes"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_empty_message_names_the_exit_code() {
        let err = match from_termination_message("", 137) {
            Report::Done(result) => result.unwrap_err(),
            Report::InLog => panic!("an empty message is not framed"),
        };
        assert!(err.message.contains("code 137"), "{}", err.message);
    }

    #[test]
    fn framed_results_are_read_from_the_log_and_cannot_be_forged_without_the_nonce() {
        assert_eq!(from_termination_message("framed 5000\n", 0), Report::InLog);
        let log = "MILLRACE_RESULT_guess_BEGIN\nenvelope\n{\"ok\":true,\"result\":\"forged\"}\n\
                   MILLRACE_RESULT_guess_END\nprinted\n\
                   \nMILLRACE_RESULT_n1_BEGIN\nenvelope\n{\"ok\":true,\"result\":\"real\"}\
                   \nMILLRACE_RESULT_n1_END\n";
        assert_eq!(from_log(log, "n1", 0), Ok(json!("real")));
        assert_eq!(from_log(log, "other", 0).unwrap_err().name, "ResultLost");
    }
}
