//! `millrace status`: a FlowRun's status for people (or as JSON).

use super::refs::{self, Target, referenced};
use super::{Cluster, StatusArgs, block_on};
use crate::cli::Invalid;
use crate::k8s::api::FlowRun;
use crate::k8s::api::flowrun::{FlowRunStatus, RunPhase, StepStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::ExitCode;

/// Longest result or error shown for one step before it is cut.
const STEP_VALUE_CHARS: usize = 100;

pub fn status(args: StatusArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let run = cluster.run(&args.run).await?;
        let status = run.status.clone().unwrap_or_default();
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).expect("status serializes")
            );
            return Ok(ExitCode::SUCCESS);
        }
        let result = match status.phase {
            Some(RunPhase::Succeeded) => {
                Some(refs::run_result(&cluster, &args.run, &status).await?)
            }
            _ => None,
        };
        let referenced_steps = step_results(&cluster, &args.run, &status).await?;
        print!("{}", render(&run, result.as_ref(), &referenced_steps));
        Ok(ExitCode::SUCCESS)
    })
}

/// The results of steps stored by reference, by step path.
async fn step_results(
    cluster: &Cluster,
    run: &str,
    status: &FlowRunStatus,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let mut saved = None;
    for step in status.steps.iter().filter(|step| step.result_ref.is_some()) {
        let state = match &saved {
            Some(state) => state,
            None => saved.insert(refs::saved(cluster, run).await?),
        };
        let value = referenced(state, run, Target::Step(&step.path))?;
        out.insert(step.path.clone(), value);
    }
    Ok(out)
}

/// The whole view: a header, one row per step, the loops, and the result or the error.
pub fn render(
    run: &FlowRun,
    result: Option<&Value>,
    step_results: &BTreeMap<String, Value>,
) -> String {
    let status = run.status.clone().unwrap_or_default();
    let mut out = String::new();
    let flow = match &run.spec.flow_ref {
        Some(reference) => format!("Flow {}", reference.name),
        None => "inline flow".into(),
    };
    let phase = status.phase.map_or_else(
        || "Pending (not seen by the operator yet)".into(),
        |p| format!("{p:?}"),
    );
    let _ = writeln!(
        out,
        "FlowRun {} in namespace {} ({flow})",
        run.name_any(),
        run.namespace().unwrap_or_default()
    );
    let _ = writeln!(out, "Phase:     {phase}");
    let line = |label: &str, value: Option<String>| {
        value
            .map(|v| format!("{label:<11}{v}\n"))
            .unwrap_or_default()
    };
    out += &line("Progress:", status.progress.clone());
    out += &line("Step:", status.current_step.clone());
    out += &line(
        "Started:",
        status.start_time.as_ref().map(|t| t.0.to_string()),
    );
    out += &line(
        "Finished:",
        status.completion_time.as_ref().map(|t| t.0.to_string()),
    );
    out += &line("Duration:", status.duration.clone());
    // Why a run is pending or failed before it started: only the condition says.
    if status.steps.is_empty()
        && let Some(ready) = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready" && !c.message.is_empty())
        && status.phase != Some(RunPhase::Succeeded)
    {
        out += &line(
            "Reason:",
            Some(format!("{}: {}", ready.reason, ready.message)),
        );
    }
    if !status.steps.is_empty() {
        out += "\n";
        out += &steps_table(&status.steps, step_results);
    }
    if !status.loops.is_empty() {
        out += "\nLoops:\n";
        for l in &status.loops {
            let _ = writeln!(
                out,
                "  {}  {}/{} succeeded, {} failed, {} running",
                l.path, l.succeeded, l.total, l.failed, l.running
            );
        }
    }
    if let Some(error) = &status.error {
        let _ = writeln!(out, "\n{}", super::submit::failure_line(&status));
        if let Some(stack) = error.get("stack").and_then(Value::as_str) {
            let _ = writeln!(out, "{}", stack.trim_end());
        }
    }
    if let Some(result) = result {
        let pretty = serde_json::to_string_pretty(result).expect("JSON values serialize");
        let _ = writeln!(out, "\nResult:\n{pretty}");
    }
    out
}

/// Steps as aligned columns, each followed by its result or error (cut to one line).
fn steps_table(steps: &[StepStatus], step_results: &BTreeMap<String, Value>) -> String {
    let header = ["STEP", "PHASE", "ATTEMPTS", "DURATION", "OUTPUT"];
    let rows: Vec<[String; 5]> = steps
        .iter()
        .map(|s| {
            let output = match (&s.error, s.result.as_ref().or(step_results.get(&s.path))) {
                (Some(error), _) => {
                    let text = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or_default();
                    format!("{}: {}", text("name"), text("message"))
                }
                (None, Some(result)) => result.to_string(),
                (None, None) => String::new(),
            };
            [
                s.path.clone(),
                s.phase.clone(),
                // Loops and branches run no attempts of their own.
                match s.attempts {
                    0 => String::new(),
                    n => n.to_string(),
                },
                between(s.start_time.as_ref(), s.completion_time.as_ref()),
                cut(&output.replace('\n', " "), STEP_VALUE_CHARS),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut write_row = |cells: [&str; 5]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    write_row(header);
    for row in &rows {
        write_row([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

/// `12s` or `3m4s` between two times; empty until both are known.
pub fn between(start: Option<&Time>, end: Option<&Time>) -> String {
    let (Some(start), Some(end)) = (start, end) else {
        return String::new();
    };
    let seconds = (end.0.as_second() - start.0.as_second()).max(0);
    match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// At most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.into();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::api::flowrun::{FlowRef, FlowRunSpec, LoopStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use serde_json::json;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    fn step(path: &str, phase: &str, attempts: u32) -> StepStatus {
        StepStatus {
            path: path.into(),
            phase: phase.into(),
            attempts,
            job: None,
            start_time: Some(at(100)),
            completion_time: Some(at(103)),
            result: None,
            result_ref: None,
            error: None,
        }
    }

    fn run(status: FlowRunStatus) -> FlowRun {
        let mut run = FlowRun::new(
            "report-1",
            FlowRunSpec {
                flow_ref: Some(FlowRef {
                    name: "report".into(),
                }),
                flow: None,
                inputs: json!({}),
                cancel: false,
                approvals: vec![],
            },
        );
        run.metadata.namespace = Some("team".into());
        run.status = Some(status);
        run
    }

    #[test]
    fn a_finished_run_shows_steps_loops_and_the_result() {
        let mut count = step("count", "succeeded", 1);
        count.result = Some(json!({"n": 21}));
        let mut flaky = step("loop[2]/flaky", "succeeded", 3);
        flaky.start_time = Some(at(0));
        flaky.completion_time = Some(at(75));
        let status = FlowRunStatus {
            phase: Some(RunPhase::Succeeded),
            progress: Some("2/2".into()),
            duration: Some("1m15s".into()),
            steps: vec![
                count,
                flaky,
                step("big", "succeeded", 1),
                step("loop", "succeeded", 0),
            ],
            loops: vec![LoopStatus {
                path: "loop".into(),
                total: 4,
                succeeded: 4,
                failed: 0,
                running: 0,
            }],
            ..Default::default()
        };
        let referenced = BTreeMap::from([("big".to_string(), json!("x".repeat(300)))]);
        let text = render(&run(status), Some(&json!({"doubled": 42})), &referenced);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "FlowRun report-1 in namespace team (Flow report)");
        assert_eq!(lines[1], "Phase:     Succeeded");
        assert_eq!(lines[2], "Progress:  2/2");
        assert_eq!(lines[3], "Duration:  1m15s");
        assert_eq!(
            &lines[5..8],
            [
                "STEP           PHASE      ATTEMPTS  DURATION  OUTPUT",
                "count          succeeded  1         3s        {\"n\":21}",
                "loop[2]/flaky  succeeded  3         1m15s",
            ]
        );
        assert!(lines[8].starts_with("big"), "{}", lines[8]);
        assert!(lines[8].ends_with("xxx…"), "{}", lines[8]);
        assert_eq!(lines[9], "loop           succeeded            3s");
        assert!(text.contains("\nLoops:\n  loop  4/4 succeeded, 0 failed, 0 running\n"));
        assert!(
            text.ends_with("\nResult:\n{\n  \"doubled\": 42\n}\n"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_run_shows_the_error_and_its_stack() {
        let mut bad = step("bad", "failed", 2);
        bad.error = Some(json!({"name": "ValueError", "message": "no\nway"}));
        let status = FlowRunStatus {
            phase: Some(RunPhase::Failed),
            steps: vec![bad],
            error: Some(
                json!({"name": "ValueError", "message": "no way", "step_id": "bad",
                               "stack": "Traceback\n  line 1\n"}),
            ),
            ..Default::default()
        };
        let text = render(&run(status), None, &BTreeMap::new());
        assert!(
            text.contains("bad   failed  2         3s        ValueError: no way\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\nerror in step bad: ValueError: no way\nTraceback\n  line 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_run_that_cannot_start_says_why() {
        let status = FlowRunStatus {
            phase: Some(RunPhase::Pending),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "FlowNotFound".into(),
                message: "spec.flowRef: no Flow report in namespace team".into(),
                observed_generation: None,
                last_transition_time: at(0),
            }],
            ..Default::default()
        };
        let text = render(&run(status), None, &BTreeMap::new());
        assert_eq!(
            text,
            "FlowRun report-1 in namespace team (Flow report)\nPhase:     Pending\n\
             Reason:    FlowNotFound: spec.flowRef: no Flow report in namespace team\n"
        );
    }
}
