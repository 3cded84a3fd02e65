//! Running a flow on this machine: the driver loop over the engine, what it resolves locally, and
//! the run directories.

pub mod dirs;
pub mod driver;
pub mod resolve;
pub mod secrets;
