//! The `millrace` command line. Exit codes: 0 the command succeeded, 1 the flow failed,
//! 2 the flow or its inputs were invalid (nothing ran).

mod cluster;
mod inputs;
mod operator;
mod preview;
mod run;
mod schedule;
mod sync;
mod view;

use crate::expr::{Evaluator, ExprError, Sandbox, SandboxConfig};
use crate::flow::{self, LoadedFlow};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "millrace",
    version,
    about = "Run Windmill-style OpenFlow flows"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a flow on this machine, each step as a local process.
    Run(RunArgs),
    /// Check a flow and list every problem with the path of its module.
    Validate {
        /// A flow file (YAML/JSON), a Millrace `Flow` manifest or a Windmill `name.flow/` folder.
        flow: PathBuf,
    },
    /// Print the flow as a Mermaid diagram (steps, loops, branches).
    Graph {
        /// A flow file (YAML/JSON), a Millrace `Flow` manifest or a Windmill `name.flow/` folder.
        flow: PathBuf,
    },
    /// Print the CustomResourceDefinitions (or write them with --out).
    Crds(operator::CrdsArgs),
    /// Run the Kubernetes operator: validate Flows, run FlowRuns as one Job per step.
    Controller(operator::ControllerArgs),
    /// Start a run on Kubernetes: create a FlowRun of a Flow (by name) or of a flow file; prints its name.
    Submit(cluster::SubmitArgs),
    /// Show a FlowRun: phase, steps, loops, and its result or error.
    Status(cluster::StatusArgs),
    /// Print what a FlowRun's step pods printed, one section per step attempt.
    Logs(cluster::LogsArgs),
    /// Answer a FlowRun's suspended step (approve, or --reject).
    Approve(cluster::ApproveArgs),
    /// Cancel a FlowRun: its running steps are stopped.
    Cancel(cluster::CancelArgs),
    /// Cron schedules: check an expression's next fire times, or start a Schedule's run now.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Git sync: what a revision of a flows repository would apply.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
}

#[derive(Args)]
pub struct RunArgs {
    /// A flow file (YAML/JSON), a Millrace `Flow` manifest or a Windmill `name.flow/` folder.
    flow: PathBuf,
    /// One flow input; VALUE is parsed as JSON when it parses, else taken as a string.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    input: Vec<String>,
    /// All flow inputs as a JSON object, or @FILE (JSON or YAML); --input values win.
    #[arg(long, value_name = "JSON|@FILE")]
    inputs: Option<String>,
    /// Print only the flow's result (or its error) as JSON on stdout; everything else goes to stderr.
    #[arg(long)]
    json: bool,
    /// Preview one step: run only the step with this id, with --results as earlier results.
    #[arg(long, value_name = "ID")]
    step: Option<String>,
    /// Results of earlier steps for --step, as a JSON object by step id, or @FILE.
    #[arg(long, value_name = "JSON|@FILE", requires = "step")]
    results: Option<String>,
    /// Where `f/…`, `u/…` and `g/…` scripts and subflows are found [default: the Windmill export
    /// root the flow sits in, else the flow's directory].
    #[arg(long, value_name = "DIR")]
    scripts: Option<PathBuf>,
    /// Values for variable(path) and resource(path): a JSON or YAML map from path to value.
    #[arg(long, value_name = "FILE")]
    variables: Option<PathBuf>,
    /// Approve every suspended step without asking.
    #[arg(long)]
    approve: bool,
    /// The most steps running at once on this machine [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    max_parallel: Option<usize>,
    /// Keep this run's directory (logs) for good: later runs do not remove it.
    #[arg(long)]
    keep_logs: bool,
    /// How many run directories to keep in the temp dir, this run's included; older ones of
    /// finished runs are removed when a run starts.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    keep_runs: u16,
}

/// A command that could not start: what is wrong, one line per problem. Exits with 2.
#[derive(Debug)]
pub struct Invalid(pub Vec<String>);

impl Invalid {
    fn one(message: impl Into<String>) -> Invalid {
        Invalid(vec![message.into()])
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { flow } => validate(&flow),
        Command::Graph { flow } => load_valid(&flow).map(|loaded| {
            print!("{}", crate::graph::mermaid(&loaded.flow));
            ExitCode::SUCCESS
        }),
        Command::Crds(args) => operator::crds(args),
        Command::Controller(args) => operator::controller(args),
        Command::Submit(args) => cluster::submit(args),
        Command::Status(args) => cluster::status(args),
        Command::Logs(args) => cluster::logs(args),
        Command::Approve(args) => cluster::approve(args),
        Command::Cancel(args) => cluster::cancel(args),
        Command::Schedule(command) => schedule::run(command),
        Command::Sync(command) => sync::run(command),
    };
    result.unwrap_or_else(|Invalid(lines)| {
        for (i, line) in lines.iter().enumerate() {
            let prefix = if i == 0 { "error: " } else { "" };
            eprintln!("{prefix}{line}");
        }
        ExitCode::from(2)
    })
}

fn validate(path: &Path) -> Result<ExitCode, Invalid> {
    let loaded = load_valid(path)?;
    eprintln!(
        "{} is valid: {} top-level steps",
        path.display(),
        loaded.flow.value.modules.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads a flow and checks it; any problem makes the command invalid.
fn load_valid(path: &Path) -> Result<LoadedFlow, Invalid> {
    load_checked(path, &syntax_checker()?)
}

/// One expression worker to parse a flow's expressions: a deeply nested one overflows the
/// parser's stack, which must cost a worker, not this process.
fn syntax_checker() -> Result<Sandbox, Invalid> {
    SandboxConfig::current_exe()
        .map_err(|e| ExprError::Internal(format!("cannot find the millrace binary: {e}")))
        .and_then(|config| {
            Sandbox::new(SandboxConfig {
                workers: 1,
                ..config
            })
        })
        .map_err(|e| Invalid::one(format!("cannot check the flow's expressions: {e}")))
}

/// Loads a flow and checks it with `syntax`; any problem makes the command invalid.
fn load_checked(path: &Path, syntax: &dyn Evaluator) -> Result<LoadedFlow, Invalid> {
    let loaded = flow::load_path(path).map_err(|e| Invalid::one(e.to_string()))?;
    let problems = flow::validate(&loaded.flow, syntax);
    if !problems.is_empty() {
        let mut lines = vec![format!(
            "{} has {} problem(s):",
            path.display(),
            problems.len()
        )];
        lines.extend(problems.iter().map(|p| format!("  {p}")));
        return Err(Invalid(lines));
    }
    Ok(loaded)
}
