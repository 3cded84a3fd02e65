//! Tools the project's scripts build from the Go module proxy and cache outside the clone (the
//! control-plane binaries, helm): where they are, or why the tests needing them skip or fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit status of the build scripts when the tool is not cached and Go is not installed.
const GO_MISSING: i32 = 3;

pub struct Tool {
    /// The variable naming the built path (set by `scripts/test`), like `MILLRACE_HELM`.
    pub env: &'static str,
    /// The script that prints the cached path, building it first when needed.
    pub script: &'static str,
    /// What the path must hold, for messages.
    pub holds: &'static str,
    /// The tests that need it, for the line saying they are skipped.
    pub needed_by: &'static str,
    /// Whether the path holds all of it.
    pub complete: fn(&Path) -> bool,
}

/// The tool's path, `Ok(None)` when the tests needing it should be skipped.
///
/// `tool.env` names it; without it `tool.script` is asked, which prints the cached path or builds
/// it. Skipping is only allowed when run by hand without Go: under CI (`CI` set) a missing tool
/// is a failure, not a silent pass.
pub fn locate(tool: &Tool) -> Result<Option<PathBuf>, String> {
    let Tool {
        env,
        script,
        holds,
        needed_by,
        complete,
    } = tool;
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        if !complete(&path) {
            return Err(format!(
                "{env}={} does not hold {holds}; run {script}",
                path.display()
            ));
        }
        return Ok(Some(path));
    }
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let output = Command::new(&program)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if !complete(&path) {
            return Err(format!(
                "{script} printed {}, which does not hold {holds}",
                path.display()
            ));
        }
        return Ok(Some(path));
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    match (output.status.code() == Some(GO_MISSING), in_ci) {
        (true, false) => {
            eprintln!(
                "SKIPPED: {needed_by} need {holds}; install Go and run {script} (or set {env})"
            );
            Ok(None)
        }
        (true, true) => Err(format!(
            "CI is set but there is no {holds} and Go is not installed; CI must run {script} and export {env}"
        )),
        (false, _) => Err(format!("{script} failed ({})", output.status)),
    }
}
