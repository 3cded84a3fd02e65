//! `millrace sync`: GitSources from the command line. `plan` reads a revision of a repository
//! with no cluster; `diff` compares the revision a GitSource follows with the cluster; `now`
//! asks the controller to sync at once.

mod diff;
mod now;
mod plan;

use super::Invalid;
use super::cluster::Target;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Print what a sync of a revision would apply, ignore and refuse; exits 2 when a file has an
    /// error (then nothing would be applied).
    Plan(plan::PlanArgs),
    /// Print what the next sync of a GitSource would create, update, prune and leave unchanged
    /// (a server-side dry-run against the cluster); exits 2 when the revision would be refused.
    Diff(DiffArgs),
    /// Ask the controller to sync a GitSource now (sets `millrace.dev/reconcile-requested-at`).
    Now(NowArgs),
}

#[derive(Args)]
pub struct DiffArgs {
    /// The GitSource's name.
    name: String,
    /// Print one JSON object: {revision, create, update, prune, unchanged, errors}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct NowArgs {
    /// The GitSource's name.
    name: String,
    /// Wait until the controller has synced, print its verdict, and exit 2 when it is not Ready.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    target: Target,
}

pub fn run(command: SyncCommand) -> Result<ExitCode, Invalid> {
    match command {
        SyncCommand::Plan(args) => plan::plan(args),
        SyncCommand::Diff(args) => diff::diff(args),
        SyncCommand::Now(args) => now::now(args),
    }
}

/// `file:line`, or the file alone.
fn located(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    }
}
