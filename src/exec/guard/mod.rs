//! The step guard: a process of this same binary between the executor and each step, so that
//! nothing a step started outlives its attempt or the run — even when `millrace run` is killed
//! with `SIGKILL` and runs no code of its own any more.
//!
//! The guard is a child subreaper: processes a step orphans (a double fork, a `setsid`
//! daemon) become its children, where it can find and kill them. It watches a control socket
//! the executor holds; the socket closes when the executor stops the attempt or dies in any
//! way, and the guard then kills everything. When the step ends by itself the guard kills what
//! it left behind, then reports how the step ended on the same socket.

mod serve;

use std::ffi::OsStr;
use std::path::PathBuf;

pub use serve::guard_main;

/// The hidden subcommand that makes the binary serve as a step guard ([`guard_main`]).
pub const GUARD_SUBCOMMAND: &str = "__step-guard";

/// Which binary guards the steps: one that runs [`guard_main`] for [`GUARD_SUBCOMMAND`].
#[derive(Debug, Clone)]
pub struct StepGuard {
    program: PathBuf,
}

impl StepGuard {
    /// The running binary itself, even if its file was replaced since it started.
    pub fn current_exe() -> StepGuard {
        StepGuard::new("/proc/self/exe")
    }

    /// Another millrace binary (tests run the one Cargo built).
    pub fn new(program: impl Into<PathBuf>) -> StepGuard {
        StepGuard {
            program: program.into(),
        }
    }

    pub(crate) fn program(&self) -> &OsStr {
        self.program.as_os_str()
    }
}

/// What the guard tells the executor once the step and everything it started are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    Exited(i32),
    Signaled(i32),
    /// The step's program could not be started; the `errno` of the failure.
    NotStarted(i32),
}

impl Report {
    fn line(self) -> String {
        match self {
            Report::Exited(code) => format!("exited {code}\n"),
            Report::Signaled(signal) => format!("signaled {signal}\n"),
            Report::NotStarted(errno) => format!("not-started {errno}\n"),
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Report> {
        let (word, number) = text.trim_end().split_once(' ')?;
        let number = number.parse().ok()?;
        match word {
            "exited" => Some(Report::Exited(number)),
            "signaled" => Some(Report::Signaled(number)),
            "not-started" => Some(Report::NotStarted(number)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for report in [
            Report::Exited(3),
            Report::Signaled(9),
            Report::NotStarted(2),
        ] {
            assert_eq!(Report::parse(&report.line()), Some(report));
        }
        assert_eq!(Report::parse(""), None);
    }
}
