//! The local executor: each attempt is a process on this machine, in a fresh working directory,
//! bounded by a machine-wide parallelism limit.

use super::process::{self, ProcessSpec};
use super::runners::{self, Toolchain};
use super::{AttemptKey, AttemptOutput, Executor, LogSink, StepError, StepSpec};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};

pub struct LocalExecutor {
    toolchain: Toolchain,
    run_dir: PathBuf,
    limit: Semaphore,
    sink: Option<Arc<dyn LogSink>>,
    running: Mutex<HashMap<AttemptKey, Arc<Notify>>>,
}

impl LocalExecutor {
    /// Attempts work in `run_dir/work/…` (removed after each attempt) and log to `run_dir/logs/`.
    /// At most `max_parallel` attempts run at once.
    pub fn new(
        run_dir: PathBuf,
        max_parallel: usize,
        toolchain: Toolchain,
        sink: Option<Arc<dyn LogSink>>,
    ) -> io::Result<LocalExecutor> {
        std::fs::create_dir_all(run_dir.join("logs"))?;
        std::fs::create_dir_all(run_dir.join("work"))?;
        Ok(LocalExecutor {
            toolchain,
            run_dir,
            limit: Semaphore::new(max_parallel.max(1)),
            sink,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Where the run's logs are kept.
    pub fn logs_dir(&self) -> PathBuf {
        self.run_dir.join("logs")
    }

    async fn attempt(&self, key: &AttemptKey, spec: StepSpec, cancel: &Notify) -> AttemptOutput {
        let stem = key.file_stem();
        let stdout_log = self.run_dir.join("logs").join(format!("{stem}.stdout"));
        let stderr_log = self.run_dir.join("logs").join(format!("{stem}.stderr"));
        let control = self.run_dir.join("work").join(&stem);
        let outcome = self
            .run_in(&control, &spec, cancel, key, &stdout_log, &stderr_log)
            .await;
        // The working directory is per attempt; only the logs outlive it.
        let _ = std::fs::remove_dir_all(&control);
        let (result, stdout_logged, stderr_logged) = match outcome {
            Ok(done) => done,
            Err(e) => (Err(e), false, false),
        };
        AttemptOutput {
            result,
            stdout_log: stdout_logged.then_some(stdout_log),
            stderr_log: stderr_logged.then_some(stderr_log),
        }
    }

    async fn run_in(
        &self,
        control: &Path,
        spec: &StepSpec,
        cancel: &Notify,
        key: &AttemptKey,
        stdout_log: &Path,
        stderr_log: &Path,
    ) -> Result<(Result<serde_json::Value, StepError>, bool, bool), StepError> {
        let work = control.join("work");
        let _ = std::fs::remove_dir_all(control);
        std::fs::create_dir_all(&work)
            .map_err(|e| StepError::Io(format!("cannot create {}: {e}", work.display())))?;
        let launch = runners::prepare(
            spec.language,
            &spec.content,
            &spec.args,
            control,
            &self.toolchain,
        )?;
        let program = launch.program.clone();
        let process = ProcessSpec {
            program: launch.program,
            args: launch.args,
            cwd: work.clone(),
            env: launch.env,
            timeout: spec.timeout,
            stdout_log: stdout_log.to_path_buf(),
            stderr_log: stderr_log.to_path_buf(),
        };
        let outcome = process::run(process, key, self.sink.clone(), cancel)
            .await
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    StepError::Unavailable(format!(
                        "{} steps need `{}`, which is not installed or not on PATH",
                        spec.language,
                        program.to_string_lossy()
                    ))
                } else {
                    StepError::Io(format!("cannot run `{}`: {e}", program.to_string_lossy()))
                }
            })?;
        let timeout_seconds = spec.timeout.map_or(0.0, |t| t.as_secs_f64());
        let result = runners::collect(spec.language, control, &work, &outcome, timeout_seconds);
        Ok((result, outcome.stdout_logged, outcome.stderr_logged))
    }
}

impl Executor for LocalExecutor {
    async fn run(&self, key: AttemptKey, spec: StepSpec) -> AttemptOutput {
        let cancel = Arc::new(Notify::new());
        self.running
            .lock()
            .expect("lock")
            .insert(key.clone(), cancel.clone());
        let output = tokio::select! {
            permit = self.limit.acquire() => {
                let _permit = permit.expect("the semaphore is never closed");
                self.attempt(&key, spec, &cancel).await
            }
            _ = cancel.notified() => AttemptOutput {
                result: Err(StepError::Canceled),
                stdout_log: None,
                stderr_log: None,
            },
        };
        self.running.lock().expect("lock").remove(&key);
        output
    }

    fn cancel(&self, key: &AttemptKey) {
        if let Some(cancel) = self.running.lock().expect("lock").get(key) {
            cancel.notify_one();
        }
    }
}
