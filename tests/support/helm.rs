//! Finds the helm binary that `scripts/helm` builds.

use super::cluster::built::{self, Tool};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The helm binary, `Ok(None)` when the chart tests should be skipped (see `built::locate`).
pub fn locate() -> Result<Option<PathBuf>, String> {
    built::locate(&Tool {
        env: "MILLRACE_HELM",
        script: "scripts/helm",
        holds: "helm",
        needed_by: "the chart tests",
        complete: Path::is_file,
    })
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
