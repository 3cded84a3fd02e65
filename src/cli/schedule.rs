//! `millrace schedule`: check a cron expression before committing it.

use super::Invalid;
use crate::schedule::Cron;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times of a cron expression, RFC 3339 with the zone's offset.
    Next(NextArgs),
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
    }
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
