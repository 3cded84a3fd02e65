//! Finds the helm binary that `scripts/helm` builds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit status of `scripts/helm` when helm is not cached and Go is not installed.
const GO_MISSING: i32 = 3;

/// The helm binary, `Ok(None)` when the chart tests should be skipped.
///
/// `MILLRACE_HELM` names it (set by `scripts/test`). Without it `scripts/helm` is asked, which
/// prints the cached binary or builds it. Skipping is only allowed when run by hand without Go:
/// under CI (`CI` set) a missing helm is a failure, not a silent pass.
pub fn locate() -> Result<Option<PathBuf>, String> {
    if let Some(helm) = std::env::var_os("MILLRACE_HELM") {
        let helm = PathBuf::from(helm);
        if !helm.is_file() {
            return Err(format!(
                "MILLRACE_HELM={} is not a file; run scripts/helm",
                helm.display()
            ));
        }
        return Ok(Some(helm));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/helm");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if output.status.success() {
        let helm = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if !helm.is_file() {
            return Err(format!(
                "scripts/helm printed {} but there is no such file",
                helm.display()
            ));
        }
        return Ok(Some(helm));
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    match (output.status.code() == Some(GO_MISSING), in_ci) {
        (true, false) => {
            eprintln!(
                "SKIPPED: the chart tests need helm; install Go and run scripts/helm \
                 (or set MILLRACE_HELM)"
            );
            Ok(None)
        }
        (true, true) => Err("CI is set but helm is missing and Go is not installed; \
             CI must run scripts/helm and export MILLRACE_HELM"
            .into()),
        (false, _) => Err(format!("scripts/helm failed ({})", output.status)),
    }
}

/// Runs helm with `args` in the repository and returns its stdout; `Ok(None)` when helm tests
/// are to be skipped (see `locate`).
pub fn run(args: &[&str]) -> anyhow::Result<Option<String>> {
    let Some(helm) = locate().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let output = Command::new(&helm)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "helm {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Some(String::from_utf8(output.stdout)?))
}
