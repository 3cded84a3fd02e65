//! Finds the kube-apiserver, kube-controller-manager and etcd binaries that `scripts/testbin` builds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// Exit status of `scripts/testbin` when the binaries are not cached and Go is not installed.
const GO_MISSING: i32 = 3;

/// The directory holding the binaries, `Ok(None)` when the control-plane tests should be skipped.
///
/// `MILLRACE_TESTBIN` names the directory (set by `scripts/test`). Without it `scripts/testbin` is asked,
/// which prints the cached directory or builds it. Skipping is only allowed when run by hand without Go:
/// under CI (`CI` set) a missing control plane is a failure, not a silent pass.
pub fn locate() -> Result<Option<PathBuf>, String> {
    if let Some(dir) = std::env::var_os("MILLRACE_TESTBIN") {
        let dir = PathBuf::from(dir);
        if !complete(&dir) {
            return Err(format!(
                "MILLRACE_TESTBIN={} lacks one of {BINARIES:?}; run scripts/testbin",
                dir.display()
            ));
        }
        return Ok(Some(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbin");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if output.status.success() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if !complete(&dir) {
            return Err(format!(
                "scripts/testbin printed {} without the binaries",
                dir.display()
            ));
        }
        return Ok(Some(dir));
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    match (output.status.code() == Some(GO_MISSING), in_ci) {
        (true, false) => {
            eprintln!(
                "SKIPPED: the control-plane tests need kube-apiserver, kube-controller-manager and etcd; \
                 install Go and run scripts/testbin (or set MILLRACE_TESTBIN)"
            );
            Ok(None)
        }
        (true, true) => Err(
            "CI is set but the control-plane binaries are missing and Go is not installed; \
             CI must run scripts/testbin and export MILLRACE_TESTBIN"
                .into(),
        ),
        (false, _) => Err(format!("scripts/testbin failed ({})", output.status)),
    }
}

fn complete(dir: &Path) -> bool {
    BINARIES.iter().all(|b| dir.join(b).is_file())
}
