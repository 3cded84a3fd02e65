//! Helpers for tests of local runs.

use millrace::exec::runners::Toolchain;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the millrace binary with `args`, no stdin, and collects its output.
#[allow(dead_code, reason = "not every local test runs the binary")]
pub fn millrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the millrace binary runs")
}

/// True when bun or deno is installed. Under CI their absence is an error, not a skip.
#[allow(dead_code, reason = "only tests with TypeScript steps ask")]
pub fn typescript_available() -> bool {
    let toolchain = Toolchain::from_env();
    if toolchain.bun.is_some() || toolchain.deno.is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but neither bun nor deno is on PATH: run the tests through ./scripts/test"
        );
    }
    eprintln!(
        "skipping a TypeScript test: neither bun nor deno is on PATH (./scripts/test installs bun)"
    );
    false
}

/// True when no process with this pid exists any more (or it is a zombie awaiting its parent).
#[allow(dead_code, reason = "only the tests of killed runs ask")]
pub fn process_is_gone(pid: i32) -> bool {
    gone_within(pid, Duration::from_secs(1))
}

/// True when the process is gone (as [`process_is_gone`]) at the latest after `limit`.
#[allow(dead_code, reason = "only the tests of killed runs ask")]
pub fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.split(' ').nth(2) == Some("Z") => return true,
            Ok(_) if Instant::now() >= deadline => return false,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
