//! Schedules, pure: fire times of a cron expression in a time zone, the occurrences that fell
//! due, and what to start, skip or cancel now. No I/O, no clock: time is always an argument.

pub mod cron;
pub mod decide;
pub mod handlers;
pub mod missed;
pub mod names;
pub mod policy;

pub use cron::{Cron, CronError};
pub use decide::{Plan, Policy, Situation, Skipped, decide};
pub use missed::Count;
pub use policy::{ConcurrencyPolicy, SkipReason};
