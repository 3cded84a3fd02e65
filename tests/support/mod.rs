//! Test support: a real Kubernetes control plane and a pod runner standing in for the kubelet,
//! plus helpers for the local-mode tests.
//!
//! The pod runner **ignores container images**: each container's command runs as a process on this
//! machine (see `pod_runner`). `runner.executions()` counts the process starts per pod.
//!
//! ```ignore
//! let Some(cp) = support::control_plane().await else { return }; // skipped without binaries
//! let client = cp.client();
//! let ns = cp.namespace("my-test").await;
//! let runner = cp.pod_runner(&ns).await;
//! ```

// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code, unused_imports, reason = "shared by several test binaries")]

pub mod certs;
pub mod control_plane;
pub mod http;
pub mod pod_runner;
pub mod process;
pub mod testbin;

pub use control_plane::control_plane;

use millrace::exec::runners::Toolchain;

/// True when bun or deno is installed. Under CI their absence is an error, not a skip.
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
