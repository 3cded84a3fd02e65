//! The local executor: each attempt is a process on this machine, in a fresh working directory,
//! bounded by a machine-wide parallelism limit.

use super::guard::StepGuard;
use super::process::{self, ProcessOutcome, ProcessSpec};
use super::runners::{self, Language, Toolchain};
use super::{AttemptError, AttemptOutput, Executor, LogSink};
use crate::engine::{AttemptId, StepSpec};
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

pub struct LocalExecutor {
    toolchain: Toolchain,
    guard: StepGuard,
    run_dir: PathBuf,
    limit: Semaphore,
    sink: Option<Arc<dyn LogSink>>,
    running: Mutex<HashMap<AttemptId, Arc<Notify>>>,
}

/// Where one attempt works and logs.
struct AttemptDirs {
    /// Holds the script, its arguments and the wrapper's result file; removed afterwards.
    control: PathBuf,
    /// The script's working directory, inside `control`.
    work: PathBuf,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

impl LocalExecutor {
    /// Attempts work in `run_dir/work/…` (removed after each attempt) and log to `run_dir/logs/`.
    /// At most `max_parallel` attempts run at once, each under a process of `guard`.
    pub fn new(
        run_dir: PathBuf,
        max_parallel: usize,
        toolchain: Toolchain,
        guard: StepGuard,
        sink: Option<Arc<dyn LogSink>>,
    ) -> io::Result<LocalExecutor> {
        std::fs::create_dir_all(run_dir.join("logs"))?;
        std::fs::create_dir_all(run_dir.join("work"))?;
        Ok(LocalExecutor {
            toolchain,
            guard,
            run_dir,
            limit: Semaphore::new(max_parallel.max(1)),
            sink,
            running: Mutex::new(HashMap::new()),
        })
    }

    async fn attempt(&self, id: &AttemptId, spec: &StepSpec, cancel: &Notify) -> AttemptOutput {
        let stem = file_stem(id);
        let control = self.run_dir.join("work").join(&stem);
        let dirs = AttemptDirs {
            work: control.join("work"),
            control,
            stdout_log: self.run_dir.join("logs").join(format!("{stem}.stdout")),
            stderr_log: self.run_dir.join("logs").join(format!("{stem}.stderr")),
        };
        let finished = self.run_in(&dirs, id, spec, cancel).await;
        // The working directory is per attempt; only the logs outlive it.
        let _ = std::fs::remove_dir_all(&dirs.control);
        let (result, outcome) = match finished {
            Ok((result, outcome)) => (result, Some(outcome)),
            Err(e) => (Err(e), None),
        };
        let logged = |pick: fn(&ProcessOutcome) -> bool| outcome.as_ref().is_some_and(pick);
        AttemptOutput {
            result: result.map_err(Into::into),
            stdout_log: logged(|o| o.stdout_logged).then_some(dirs.stdout_log),
            stderr_log: logged(|o| o.stderr_logged).then_some(dirs.stderr_log),
        }
    }

    async fn run_in(
        &self,
        dirs: &AttemptDirs,
        id: &AttemptId,
        spec: &StepSpec,
        cancel: &Notify,
    ) -> Result<(Result<Value, AttemptError>, ProcessOutcome), AttemptError> {
        let language = Language::from_name(&spec.language).ok_or_else(|| {
            AttemptError::Unavailable(format!(
                "local runs support the languages python3, bash, bun and deno, not `{}`",
                spec.language
            ))
        })?;
        let _ = std::fs::remove_dir_all(&dirs.control);
        std::fs::create_dir_all(&dirs.work)
            .map_err(|e| AttemptError::Io(format!("cannot create {}: {e}", dirs.work.display())))?;
        let launch = runners::prepare(
            language,
            &spec.content,
            &spec.args,
            &dirs.control,
            &self.toolchain,
        )?;
        let program = launch.program.to_string_lossy().into_owned();
        let process = ProcessSpec {
            program: launch.program,
            args: launch.args,
            cwd: dirs.work.clone(),
            env: launch.env,
            timeout: spec.timeout_ms.map(Duration::from_millis),
            stdout_log: dirs.stdout_log.clone(),
            stderr_log: dirs.stderr_log.clone(),
        };
        let outcome = process::run(process, &self.guard, id, self.sink.clone(), cancel)
            .await
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    AttemptError::Unavailable(format!(
                        "{language} steps need `{program}`, which is not installed or not on PATH"
                    ))
                } else {
                    AttemptError::Io(format!("cannot run `{program}`: {e}"))
                }
            })?;
        let timeout_seconds = spec.timeout_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let result = runners::collect(
            language,
            &dirs.control,
            &dirs.work,
            &outcome,
            timeout_seconds,
        );
        Ok((result, outcome))
    }
}

impl Executor for LocalExecutor {
    async fn run(&self, id: AttemptId, spec: StepSpec) -> AttemptOutput {
        let cancel = Arc::new(Notify::new());
        self.running
            .lock()
            .expect("lock")
            .insert(id.clone(), cancel.clone());
        let output = tokio::select! {
            permit = self.limit.acquire() => {
                let _permit = permit.expect("the semaphore is never closed");
                self.attempt(&id, &spec, &cancel).await
            }
            _ = cancel.notified() => AttemptOutput {
                result: Err(AttemptError::Canceled.into()),
                stdout_log: None,
                stderr_log: None,
            },
        };
        self.running.lock().expect("lock").remove(&id);
        output
    }

    fn cancel(&self, id: &AttemptId) {
        if let Some(cancel) = self.running.lock().expect("lock").get(id) {
            cancel.notify_one();
        }
    }
}

/// A single file name for an attempt: `loop_a[3]/b#1` → `loop_a_3_.b.attempt-1`.
fn file_stem(id: &AttemptId) -> String {
    let path: String = id
        .step
        .as_str()
        .chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' => c,
            _ => '_',
        })
        .collect();
    format!("{path}.attempt-{}", id.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepPath;

    #[test]
    fn file_stems_are_single_safe_names() {
        let id = AttemptId {
            step: StepPath::parse("loop_a[3]/b"),
            attempt: 1,
        };
        assert_eq!(file_stem(&id), "loop_a_3_.b.attempt-1");
    }
}
