//! Helpers for tests of local runs.

use millrace::exec::runners::Toolchain;
use std::process::{Command, Output, Stdio};

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
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.split(' ').nth(2) == Some("Z") => return true,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    false
}
