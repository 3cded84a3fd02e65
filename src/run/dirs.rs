//! Run directories of `millrace run`: one per run under a base directory (in the temp dir),
//! holding its logs and working directories. A run holds a lock on its own directory while it
//! runs; when a run starts, the oldest directories of finished runs are removed.

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Locked by the run while it runs; the lock goes with the process, however it ends.
const LOCK: &str = "lock";
/// Present in the directory of a run started with `--keep-logs`: never removed.
const KEEP: &str = "keep";
const PREFIX: &str = "run-";

/// This run's directory, locked until dropped.
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Creates `base/run-MILLIS-PID`; `keep` exempts it from [`prune`] for good.
    pub fn create(base: &Path, keep: bool) -> io::Result<RunDir> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!("{PREFIX}{stamp}-{}", std::process::id());
        // Locked under a name `prune` ignores, then renamed: no run ever sees it unlocked.
        let staging = base.join(format!(".{name}"));
        fs::create_dir_all(&staging)?;
        let lock = File::create(staging.join(LOCK))?;
        lock.lock()?;
        if keep {
            File::create(staging.join(KEEP))?;
        }
        let path = base.join(name);
        fs::rename(&staging, &path)?;
        Ok(RunDir { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes run directories under `base` but the newest `keep`, except those of runs in
/// progress and those kept with `--keep-logs` (which do not count either).
pub fn prune(base: &Path, keep: usize) {
    // Removal is housekeeping: a directory that cannot be read or removed stays, silently.
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let mut runs: Vec<((u128, u32), PathBuf)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let order = run_order(path.file_name()?.to_str()?)?;
            (!path.join(KEEP).exists()).then_some((order, path))
        })
        .collect();
    runs.sort_unstable_by_key(|(order, _)| std::cmp::Reverse(*order));
    for (_, path) in runs.into_iter().skip(keep) {
        // A lock that cannot be taken belongs to a run in progress. Held while removing, so
        // that two runs pruning at once do not trip over each other.
        let lock = match File::open(path.join(LOCK)) {
            Ok(lock) => match lock.try_lock() {
                Ok(()) => Some(lock),
                Err(TryLockError::WouldBlock | TryLockError::Error(_)) => continue,
            },
            // Made before runs locked their directories.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(_) => continue,
        };
        let _ = fs::remove_dir_all(&path);
        drop(lock);
    }
}

/// `run-MILLIS-PID` → (millis, pid), the order runs started in; `None` for other names.
fn run_order(name: &str) -> Option<(u128, u32)> {
    let (millis, pid) = name.strip_prefix(PREFIX)?.split_once('-')?;
    Some((millis.parse().ok()?, pid.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(path: &Path) -> String {
        path.file_name().unwrap().to_str().unwrap().to_string()
    }

    fn names(base: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_oldest_finished_runs_go_first_and_other_names_stay() {
        let base = tempfile::tempdir().unwrap();
        for i in 10..35 {
            fs::create_dir(base.path().join(format!("run-{i}-7"))).unwrap();
        }
        fs::create_dir(base.path().join("notes")).unwrap();
        prune(base.path(), 20);
        let left = names(base.path());
        assert_eq!(left.len(), 21, "{left:?}");
        assert!(left.contains(&"notes".to_string()));
        assert!(left.contains(&"run-15-7".to_string()), "{left:?}");
        assert!(!left.contains(&"run-14-7".to_string()), "{left:?}");
    }

    #[test]
    fn runs_in_progress_and_kept_runs_stay() {
        let base = tempfile::tempdir().unwrap();
        let running = RunDir::create(base.path(), false).unwrap();
        // One run per process in real use: a later millisecond keeps the names apart.
        std::thread::sleep(std::time::Duration::from_millis(2));
        // Finished (unlocked), but kept.
        let kept = name(RunDir::create(base.path(), true).unwrap().path());
        fs::create_dir(base.path().join("run-1-1")).unwrap();
        let newest = format!("run-{}-1", u64::MAX);
        fs::create_dir(base.path().join(&newest)).unwrap();
        prune(base.path(), 1);
        let mut expected = vec![newest, name(running.path()), kept];
        expected.sort();
        assert_eq!(names(base.path()), expected);
    }
}
