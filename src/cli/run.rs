//! `millrace run`: load and check the flow and its inputs, then drive it with local processes.

use super::inputs::{json_object, parse_inputs};
use super::view::{LiveView, LoopIds, StepOutput};
use super::{Invalid, RunArgs, load_checked, preview};
use crate::engine::{Env, RunOutcome};
use crate::exec::StepGuard;
use crate::exec::local::LocalExecutor;
use crate::exec::runners::Toolchain;
use crate::expr::{Sandbox, SandboxConfig};
use crate::flow::{self, OpenFlow};
use crate::run::dirs::{self, RunDir};
use crate::run::driver::{self, Approvals};
use crate::run::resolve::LocalResolver;
use crate::run::secrets::Secrets;
use anyhow::Context;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Exit 2 (`Invalid`) when the flow, its inputs or the preview arguments are wrong; exit 1 when
/// this machine cannot run it (no sandbox, no run directory) or the flow failed.
pub fn run(args: RunArgs) -> Result<ExitCode, Invalid> {
    // Expressions come with the flow: parse and evaluate them in bounded worker processes.
    let evaluator = match SandboxConfig::current_exe()
        .context("cannot find the millrace binary")
        .and_then(|config| Sandbox::new(config).context("cannot start the expression sandbox"))
    {
        Ok(sandbox) => sandbox,
        Err(e) => return Ok(failed(e)),
    };
    let loaded = load_checked(&args.flow, &evaluator)?;
    let given = parse_inputs(args.inputs.as_deref(), &args.input)
        .map_err(|e| Invalid::one(e.to_string()))?;
    let inputs = flow::prepare_inputs(loaded.flow.schema.as_ref(), given).map_err(|problems| {
        let mut lines = vec![format!(
            "the inputs do not match the schema of {}:",
            args.flow.display()
        )];
        lines.extend(problems.iter().map(|p| format!("  {p}")));
        Invalid(lines)
    })?;
    let flow_dir = loaded
        .base_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let scripts = args
        .scripts
        .clone()
        .unwrap_or_else(|| LocalResolver::default_scripts_dir(&flow_dir));
    let secrets =
        Secrets::load(args.variables.as_deref()).map_err(|e| Invalid::one(e.to_string()))?;
    let resolver = LocalResolver::new(scripts, secrets);
    let env = Env {
        evaluator: &evaluator,
        resolver: &resolver,
    };
    let flow = match &args.step {
        Some(step) => {
            let results = match &args.results {
                Some(text) => {
                    json_object("--results", text).map_err(|e| Invalid::one(e.to_string()))?
                }
                None => Default::default(),
            };
            preview::one_step_flow(&loaded.flow, step, &inputs, results, env)?
        }
        None => loaded.flow,
    };
    Ok(execute(&args, &flow, Value::Object(inputs), env).unwrap_or_else(failed))
}

fn failed(error: anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}

/// Runs a checked flow with local processes and reports how it ended.
fn execute(
    args: &RunArgs,
    flow: &OpenFlow,
    inputs: Value,
    env: Env<'_>,
) -> anyhow::Result<ExitCode> {
    let approvals = if args.approve {
        Approvals::Auto
    } else if std::io::stdin().is_terminal() {
        Approvals::Ask
    } else {
        Approvals::Refuse
    };
    let max_parallel = args
        .max_parallel
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Held to the end: the lock on it tells other runs not to remove it.
    let dir = run_dir(args.keep_logs, args.keep_runs)?;
    let run_dir = dir.path();
    let loops = Arc::new(LoopIds::of(flow));
    let executor = LocalExecutor::new(
        run_dir.to_path_buf(),
        max_parallel,
        Toolchain::from_env(),
        StepGuard::current_exe(),
        Some(Arc::new(StepOutput(loops.clone()))),
    )
    .with_context(|| format!("cannot create {}", run_dir.display()))?;
    // One thread: the steps are processes; the driver only waits on them and on the engine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    let mut view = LiveView::new(loops);
    let outcome = runtime.block_on(driver::drive(
        flow,
        inputs,
        env,
        Arc::new(executor),
        approvals,
        &mut view,
    ))?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(report(flow, &outcome, args.json, elapsed, run_dir))
}

/// Prints the result (stdout) and the summary (stderr); the exit code says how the run ended.
fn report(
    flow: &OpenFlow,
    outcome: &RunOutcome,
    as_json: bool,
    seconds: f64,
    run_dir: &std::path::Path,
) -> ExitCode {
    let (document, succeeded, word) = match outcome {
        RunOutcome::Succeeded(result) => (result.clone(), true, "succeeded"),
        RunOutcome::Skipped(result) => (result.clone(), true, "was skipped"),
        RunOutcome::Failed(error) => (json!(error), false, "failed"),
        RunOutcome::Canceled => (
            json!({"name": "Canceled", "message": "the run was canceled"}),
            false,
            "was canceled",
        ),
    };
    match outcome {
        _ if as_json => println!("{document}"),
        RunOutcome::Failed(error) => {
            let step = error
                .step_id
                .as_deref()
                .map(|s| format!(" in step {s}"))
                .unwrap_or_default();
            eprintln!("error{step}: {}: {}", error.name, error.message);
        }
        RunOutcome::Canceled => {}
        RunOutcome::Succeeded(_) | RunOutcome::Skipped(_) => println!(
            "{}",
            serde_json::to_string_pretty(&document).expect("JSON values serialize")
        ),
    }
    let name = if flow.summary.is_empty() {
        "the flow"
    } else {
        flow.summary.as_str()
    };
    eprintln!(
        "{name} {word} in {seconds:.2}s (logs: {})",
        run_dir.join("logs").display()
    );
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A fresh directory for this run's logs and working directories; the oldest of earlier runs
/// beyond `keep_runs` go.
fn run_dir(keep_logs: bool, keep_runs: u16) -> anyhow::Result<RunDir> {
    let base = std::env::temp_dir().join("millrace");
    let dir = RunDir::create(&base, keep_logs).with_context(|| {
        format!(
            "cannot create a run directory in {} (set TMPDIR to a writable directory)",
            base.display()
        )
    })?;
    dirs::prune(&base, keep_runs.into());
    Ok(dir)
}
