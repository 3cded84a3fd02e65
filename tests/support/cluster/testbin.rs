//! Finds the kube-apiserver, kube-controller-manager and etcd binaries that `scripts/testbin` builds.

use super::built::{self, Tool};
use std::path::{Path, PathBuf};

const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// The directory holding the binaries, `Ok(None)` when the control-plane tests should be skipped
/// (see `built::locate`).
pub fn locate() -> Result<Option<PathBuf>, String> {
    built::locate(&Tool {
        env: "MILLRACE_TESTBIN",
        script: "scripts/testbin",
        holds: "kube-apiserver, kube-controller-manager and etcd",
        needed_by: "the control-plane tests",
        complete,
    })
}

fn complete(dir: &Path) -> bool {
    BINARIES.iter().all(|b| dir.join(b).is_file())
}
