//! Running a flow on this machine: the driver loop over the engine, and what it resolves locally.

pub mod driver;
pub mod resolve;
pub mod secrets;
