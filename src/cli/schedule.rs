//! `millrace schedule`: check a cron expression before committing it (`next`), and start a
//! Schedule's run now (`trigger`).

use super::Invalid;
use super::cluster::{Cluster, Target, block_on};
use crate::k8s::api::Schedule;
use crate::k8s::api::schedule::runs::manual_run;
use crate::schedule::Cron;
use crate::schedule::names::manual_run_name;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use kube::Api;
use kube::api::PostParams;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times of a cron expression, RFC 3339 with the zone's offset.
    Next(NextArgs),
    /// Start a run of a Schedule now, as it would start one (its Flow, inputs, labels, owner);
    /// prints the run's name, which never meets a scheduled run's.
    Trigger(TriggerArgs),
}

#[derive(Args)]
pub struct TriggerArgs {
    /// The Schedule's name.
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct NextArgs {
    /// 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or a macro
    /// (@hourly @daily @weekly @monthly @yearly @annually).
    expr: String,
    /// The IANA time zone the expression is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    tz: String,
    /// Fire times strictly after this instant (RFC 3339) [default: now].
    #[arg(long, value_name = "RFC3339")]
    after: Option<String>,
    /// How many fire times to print.
    #[arg(short = 'n', value_name = "N", default_value_t = 5)]
    n: usize,
    /// Print a JSON array of the fire times.
    #[arg(long)]
    json: bool,
}

pub fn run(command: ScheduleCommand) -> Result<ExitCode, Invalid> {
    match command {
        ScheduleCommand::Next(args) => next(args),
        ScheduleCommand::Trigger(args) => trigger(args),
    }
}

fn trigger(args: TriggerArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let schedules: Api<Schedule> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let schedule = schedules
            .get_opt(&args.name)
            .await
            .map_err(|e| cluster.api_error("read", "Schedule", &args.name, e))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "Schedule \"{}\" not found in namespace \"{}\" (list them with `kubectl get schedules -n {}`, or pass --namespace)",
                    args.name,
                    cluster.namespace,
                    cluster.namespace
                )
            })?;
        let now = DateTime::<Utc>::from(std::time::SystemTime::now());
        let name = manual_run_name(&args.name, now, rand::random());
        let run = manual_run(&schedule, name.clone(), now);
        cluster
            .runs()
            .create(&PostParams::default(), &run)
            .await
            .map_err(|e| cluster.api_error("create", "FlowRun", &name, e))?;
        println!("{name}");
        Ok(ExitCode::SUCCESS)
    })
}

fn next(args: NextArgs) -> Result<ExitCode, Invalid> {
    let cron = Cron::parse(&args.expr, &args.tz).map_err(|e| Invalid::one(e.to_string()))?;
    let after = match &args.after {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                Invalid::one(format!(
                    "--after {text:?} is not an RFC 3339 instant ({e}); write one like \
                     2025-03-30T01:00:00Z or 2025-03-30T03:00:00+02:00"
                ))
            })?
            .with_timezone(&Utc),
        None => DateTime::<Utc>::from(std::time::SystemTime::now()),
    };
    let times: Vec<String> = cron
        .next_n(after, args.n)
        .iter()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
        .collect();
    if args.json {
        println!("{}", serde_json::Value::from(times));
    } else {
        for time in &times {
            println!("{time}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
