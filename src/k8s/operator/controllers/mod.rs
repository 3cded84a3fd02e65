//! One folder per controller, each read top-down from its `reconcile.rs`: load (I/O) → decide
//! (pure, unit-tested) → apply (I/O) → status. Each has a `register` function, listed in
//! `operator::CONTROLLERS`, that sets up its watches.
//!
//! - [`flow`]: checks every Flow and reports the result as its `Ready` condition.
//! - [`flowrun`]: drives every FlowRun with the engine, one Job per step attempt.
//! - [`schedule`]: starts FlowRuns at a Schedule's cron times, and runs its handlers.
//! - [`gitsource`]: keeps the Flows, Scripts and Schedules of a git revision applied.

pub mod flow;
pub mod flowrun;
pub mod gitsource;
pub mod schedule;
