//! The live view on stderr: steps as they start, succeed (with a preview of the result), retry or
//! fail, and loop progress. Steps inside loops are shown only when they fail or retry, and the
//! loop's counters stand for the rest, so a 10,000-iteration loop stays readable.

use crate::engine::{AttemptId, LoopProgress, Phase, RunState, StepPath, StepSpec};
use crate::exec::{AttemptOutput, LogSink, Stream};
use crate::flow::OpenFlow;
use crate::run::driver::{Approvals, Observer};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

const PREVIEW_CHARS: usize = 72;
/// Loop counters are redrawn at most this often (and whenever a top-level step starts or ends).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub struct LiveView {
    last_progress: Option<Instant>,
    shown: HashMap<StepPath, (Phase, LoopProgress)>,
}

impl LiveView {
    pub fn new() -> LiveView {
        LiveView {
            last_progress: None,
            shown: HashMap::new(),
        }
    }
}

fn in_loop(path: &StepPath) -> bool {
    path.segments().any(|segment| segment.index.is_some())
}

fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

impl Observer for LiveView {
    fn attempt_started(&mut self, id: &AttemptId, spec: &StepSpec) {
        if id.attempt > 0 {
            say(&format!("↻ {}  retry, attempt {}", id.step, id.attempt + 1));
        } else if !in_loop(&id.step) {
            // A new top-level step: whatever loop ran before it is over, show its final count.
            self.last_progress = None;
            let summary = spec
                .summary
                .as_deref()
                .map(|s| format!("  {s}"))
                .unwrap_or_default();
            say(&format!("▶ {}  {}{summary}", id.step, spec.language));
        }
    }

    fn attempt_finished(&mut self, id: &AttemptId, output: &AttemptOutput, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        match &output.result {
            Ok(value) if !in_loop(&id.step) => {
                say(&format!("✓ {}  {seconds:.2}s  {}", id.step, preview(value)));
            }
            Ok(_) => {}
            Err(error) => {
                let logs = output
                    .stderr_log
                    .as_ref()
                    .map(|path| format!(" (stderr: {})", path.display()))
                    .unwrap_or_default();
                say(&format!(
                    "✗ {}  {seconds:.2}s  {}: {}{logs}",
                    id.step, error.name, error.message
                ));
            }
        }
    }

    fn advanced(&mut self, flow: &OpenFlow, state: &RunState) {
        let due = self
            .last_progress
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if !due && state.outcome().is_none() {
            return;
        }
        self.last_progress = Some(Instant::now());
        for view in state.steps(flow) {
            let Some(progress) = view.progress else {
                continue;
            };
            if self.shown.get(&view.path) == Some(&(view.phase, progress)) {
                continue;
            }
            self.shown.insert(view.path.clone(), (view.phase, progress));
            let total = progress.total.map_or("?".to_string(), |t| t.to_string());
            let mut line = format!(
                "  {}: {}/{total}",
                view.path,
                progress.succeeded + progress.failed
            );
            if progress.running > 0 {
                line.push_str(&format!(", {} running", progress.running));
            }
            if progress.failed > 0 {
                line.push_str(&format!(", {} failed", progress.failed));
            }
            if !matches!(
                view.phase,
                Phase::Pending | Phase::Running | Phase::Sleeping | Phase::Retrying
            ) {
                line.push_str(&format!(" ({})", phase_name(view.phase)));
            }
            say(&line);
        }
    }

    fn approval_needed(&mut self, step: &StepPath, approvals: Approvals) {
        match approvals {
            Approvals::Auto => say(&format!("⏸ {step}  approved (--approve)")),
            Approvals::Ask => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "⏸ {step}  waits for approval. Approve? [y/N] ");
                let _ = err.flush();
            }
            Approvals::Refuse => say(&format!(
                "⏸ {step}  waits for approval, but there is no terminal to ask on: \
                 pass --approve to approve suspended steps"
            )),
        }
    }

    fn early_return(&mut self, result: &Value) {
        say(&format!("↩ early return: {}", preview(result)));
    }

    fn canceling(&mut self) {
        say("■ canceling: stopping running steps");
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Sleeping => "sleeping",
        Phase::Running => "running",
        Phase::Retrying => "retrying",
        Phase::Suspended => "suspended",
        Phase::Succeeded => "done",
        Phase::Failed => "failed",
        Phase::Skipped => "skipped",
        Phase::Canceled => "canceled",
    }
}

/// The result on one line, cut to a readable length.
pub fn preview(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= PREVIEW_CHARS {
        return text;
    }
    let cut: String = text.chars().take(PREVIEW_CHARS - 1).collect();
    format!("{cut}…")
}

/// Shows what top-level steps print, indented under them; loop iterations keep theirs in the logs.
pub struct StepOutput;

impl LogSink for StepOutput {
    fn line(&self, id: &AttemptId, stream: Stream, line: &str) {
        if in_loop(&id.step) {
            return;
        }
        let mark = match stream {
            Stream::Stdout => "│",
            Stream::Stderr => "┆",
        };
        say(&format!("  {mark} {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previews_are_one_line_and_short() {
        assert_eq!(preview(&json!({"a": 1})), r#"{"a":1}"#);
        let long = preview(&json!("x".repeat(200)));
        assert_eq!(long.chars().count(), PREVIEW_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn loop_iterations_are_recognised_by_their_index() {
        assert!(in_loop(&StepPath::parse("loop_a[3]/b")));
        assert!(!in_loop(&StepPath::parse("b")));
        assert!(!in_loop(&StepPath::parse("branch/b")));
    }
}
