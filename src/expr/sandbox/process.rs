//! One worker process seen from the parent: start it, send it a request, and tell what
//! happened when it does not answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

use super::protocol::{Hello, Reply};
use super::spawner::Spawner;
use super::{SandboxConfig, WORKER_SUBCOMMAND};
use crate::expr::ExprError;
use crate::expr::convert::unreadable_result;

/// How long a new worker may take to answer its [`Hello`].
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a worker's stderr is kept to explain its death.
const STDERR_TAIL_BYTES: usize = 4096;

/// Why a call left the worker unusable.
#[derive(Debug)]
pub(super) enum CallError {
    /// The request could not be written: the worker was gone before the expression ran.
    Unsent,
    /// The worker must be discarded; the error is the evaluation's outcome.
    Broken(ExprError),
}

pub(super) struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Line>,
    stderr_tail: Option<JoinHandle<Vec<u8>>>,
    timeout: Duration,
    memory_mib: u64,
    max_result_bytes: usize,
}

enum Line {
    Complete(Vec<u8>),
    TooLong,
}

impl WorkerProcess {
    pub(super) fn start(config: &SandboxConfig, spawner: &Spawner) -> Result<Self, ExprError> {
        let cannot_start = |why: String| {
            ExprError::Internal(format!(
                "cannot start the expression worker `{} {}`: {why}; the program must be this binary \
                 and the arguments its `{WORKER_SUBCOMMAND}` subcommand",
                config.program.display(),
                config.args.join(" "),
            ))
        };
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut command);
        let mut child = spawner
            .spawn(command)
            .map_err(|e| cannot_start(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three streams are piped");
        };
        let replies =
            read_lines(stdout, config.max_result_bytes).map_err(|e| cannot_start(e.to_string()))?;
        let stderr_tail = Some(keep_tail(stderr).map_err(|e| cannot_start(e.to_string()))?);
        let mut worker = Self {
            child,
            stdin,
            replies,
            stderr_tail,
            timeout: config.timeout,
            memory_mib: config.memory_mib,
            max_result_bytes: config.max_result_bytes,
        };

        let hello = Hello {
            memory_mib: config.memory_mib,
            cpu_seconds: config.timeout.as_secs() + 1,
            limits: config.limits,
        };
        let mut line = serde_json::to_vec(&hello).expect("Hello serialises");
        line.push(b'\n');
        match worker.exchange(&line, STARTUP_TIMEOUT) {
            Ok(Reply::Ready) => Ok(worker),
            Ok(other) => Err(cannot_start(format!(
                "it answered {other:?} instead of being ready"
            ))),
            Err(CallError::Unsent) => Err(cannot_start(format!(
                "it exited at once{}",
                worker.last_words()
            ))),
            Err(CallError::Broken(ExprError::Internal(why))) => Err(cannot_start(why)),
            Err(CallError::Broken(e)) => Err(cannot_start(e.to_string())),
        }
    }

    /// Sends one request line and waits for the result for at most `left`, what remains of
    /// the configured timeout; running out is a timeout of the whole limit.
    pub(super) fn call(
        &mut self,
        request: &[u8],
        left: Duration,
    ) -> Result<Result<Value, ExprError>, CallError> {
        let reply = match self.exchange(request, left) {
            Err(CallError::Broken(ExprError::Timeout(_))) => Err(CallError::Broken(
                ExprError::Timeout(self.timeout.as_millis() as u64),
            )),
            other => other,
        };
        match reply? {
            Reply::Ok(value) => Ok(Ok(value)),
            Reply::Err(error) => Ok(Err(error)),
            Reply::Ready => Err(CallError::Broken(ExprError::Internal(
                "the expression worker answered out of turn".into(),
            ))),
        }
    }

    fn exchange(&mut self, line: &[u8], timeout: Duration) -> Result<Reply, CallError> {
        if self
            .stdin
            .write_all(line)
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(CallError::Unsent);
        }
        match self.replies.recv_timeout(timeout) {
            Ok(Line::Complete(reply)) => {
                serde_json::from_slice(&reply).map_err(|e| CallError::Broken(unreadable_result(e)))
            }
            Ok(Line::TooLong) => Err(CallError::Broken(ExprError::ResultTooLarge(
                self.max_result_bytes,
            ))),
            Err(RecvTimeoutError::Timeout) => Err(CallError::Broken(ExprError::Timeout(
                timeout.as_millis() as u64,
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::Broken(self.died())),
        }
    }

    /// Explains why the worker stopped answering mid-evaluation.
    fn died(&mut self) -> ExprError {
        let status = self.child.wait();
        let last_words = self.last_words();
        if last_words.contains("memory allocation of") {
            return ExprError::Memory(self.memory_mib);
        }
        if last_words.contains("overflowed its stack") {
            return ExprError::Internal(
                "the expression nests too deeply: the worker's stack overflowed".into(),
            );
        }
        match status {
            Ok(status) if status.signal() == Some(libc::SIGXCPU) => {
                ExprError::Timeout(self.timeout.as_millis() as u64)
            }
            Ok(status) => {
                ExprError::Internal(format!("the expression worker died ({status}){last_words}"))
            }
            Err(e) => ExprError::Internal(format!("the expression worker vanished: {e}")),
        }
    }

    /// The end of the worker's stderr on one line, as `: text`, once it has exited.
    fn last_words(&mut self) -> String {
        let tail = self
            .stderr_tail
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&tail);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(": {}", lines.join("; "))
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Killing an exited child fails harmlessly; waiting reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the worker when the thread that spawned it (the spawner's, which lives as long as
/// the sandbox) ends, so a crashed parent leaves no workers behind.
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (prctl, getppid) and builds errors without allocating.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the death signal was armed.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Forwards the worker's stdout line by line. A line longer than `max_bytes` ends the
/// forwarding: the parent never holds more than that of one reply.
fn read_lines(stdout: impl Read + Send + 'static, max_bytes: usize) -> io::Result<Receiver<Line>> {
    let (lines, receiver) = mpsc::channel();
    thread::Builder::new()
        .name("expr-worker-out".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match (&mut reader)
                    .take(max_bytes as u64 + 1)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.ends_with(b"\n") => {
                        if lines.send(Line::Complete(line)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {
                        if line.len() > max_bytes {
                            let _ = lines.send(Line::TooLong);
                        }
                        return;
                    }
                }
            }
        })?;
    Ok(receiver)
}

/// Drains the worker's stderr, keeping its last few KiB.
fn keep_tail(mut stderr: impl Read + Send + 'static) -> io::Result<JoinHandle<Vec<u8>>> {
    thread::Builder::new()
        .name("expr-worker-err".into())
        .spawn(move || {
            let mut tail = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
            tail
        })
}
