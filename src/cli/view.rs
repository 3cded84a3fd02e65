//! The live view on stderr: steps as they start, succeed (with a preview of the result), retry or
//! fail, and loop progress. Steps inside loops are shown only when they fail or retry, and the
//! loop's counters stand for the rest, so a 10,000-iteration loop stays readable.

use crate::engine::{AttemptId, LoopProgress, Phase, RunState, StepPath, StepSpec};
use crate::exec::{AttemptOutput, LogSink, Stream};
use crate::flow::{FlowModule, ModuleValue, OpenFlow};
use crate::run::driver::{Approvals, Observer};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREVIEW_CHARS: usize = 72;
/// Loop counters are redrawn at most this often (and whenever a top-level step starts or ends).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub struct LiveView {
    loops: Arc<LoopIds>,
    last_progress: Option<Instant>,
    shown: HashMap<StepPath, (Phase, LoopProgress)>,
}

impl LiveView {
    pub fn new(loops: Arc<LoopIds>) -> LiveView {
        LiveView {
            loops,
            last_progress: None,
            shown: HashMap::new(),
        }
    }
}

/// The ids of a flow's loop steps: a path segment with an index is a loop iteration when its id
/// is a loop's, and a branch otherwise.
pub struct LoopIds(HashSet<String>);

impl LoopIds {
    pub fn of(flow: &OpenFlow) -> LoopIds {
        fn collect(modules: &[FlowModule], ids: &mut HashSet<String>) {
            for module in modules {
                match &module.value {
                    ModuleValue::ForLoop(l) => {
                        ids.insert(module.id.clone());
                        collect(&l.modules, ids);
                    }
                    ModuleValue::WhileLoop(l) => {
                        ids.insert(module.id.clone());
                        collect(&l.modules, ids);
                    }
                    ModuleValue::BranchOne(b) => {
                        b.branches
                            .iter()
                            .for_each(|branch| collect(&branch.modules, ids));
                        collect(&b.default, ids);
                    }
                    ModuleValue::BranchAll(b) => {
                        b.branches
                            .iter()
                            .for_each(|branch| collect(&branch.modules, ids));
                    }
                    _ => {}
                }
            }
        }
        let mut ids = HashSet::new();
        collect(&flow.value.modules, &mut ids);
        LoopIds(ids)
    }

    fn contain(&self, path: &StepPath) -> bool {
        path.segments()
            .any(|s| s.index.is_some() && self.0.contains(s.id))
    }
}

fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

impl Observer for LiveView {
    fn attempt_started(&mut self, id: &AttemptId, spec: &StepSpec) {
        // Attempts count from 1.
        if id.attempt > 1 {
            say(&format!("↻ {}  retry, attempt {}", id.step, id.attempt));
        } else if !self.loops.contain(&id.step) {
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
            Ok(value) if !self.loops.contain(&id.step) => {
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

/// Shows what steps print, each line under the step's name; loop iterations keep theirs in the logs.
pub struct StepOutput(pub Arc<LoopIds>);

impl LogSink for StepOutput {
    fn line(&self, id: &AttemptId, stream: Stream, line: &str) {
        if self.0.contain(&id.step) {
            return;
        }
        let mark = match stream {
            Stream::Stdout => "│",
            Stream::Stderr => "┆",
        };
        say(&format!("  {mark} {}: {line}", id.step));
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
    fn loop_iterations_are_told_from_branches() {
        let flow: OpenFlow = serde_yaml_ng::from_str(
            r#"
summary: s
value:
  modules:
    - id: pick
      value:
        type: branchall
        branches:
          - modules:
              - id: each
                value:
                  type: forloopflow
                  iterator: {type: javascript, expr: "[1]"}
                  modules:
                    - id: b
                      value: {type: identity}
"#,
        )
        .unwrap();
        let loops = LoopIds::of(&flow);
        assert!(loops.contain(&StepPath::parse("pick[0]/each[3]/b")));
        assert!(!loops.contain(&StepPath::parse("pick[0]/each")));
        assert!(!loops.contain(&StepPath::parse("b")));
    }
}
