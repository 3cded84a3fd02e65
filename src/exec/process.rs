//! One OS process per attempt, in its own process group so that a timeout, a cancel or the end
//! of the attempt can kill everything the script started. Output is streamed line by line to log
//! files and to a [`LogSink`]; it never carries the result (see the runners).

use super::{LogSink, Stream};
use crate::engine::AttemptId;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::Notify;

const TAIL_LINES: usize = 20;
const TAIL_LINE_CHARS: usize = 500;
/// How long to wait for output still buffered in pipes once the process group is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct ProcessSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(String, OsString)>,
    pub timeout: Option<Duration>,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Ending {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Canceled,
}

#[derive(Debug)]
pub(crate) struct ProcessOutcome {
    pub ending: Ending,
    /// The last line the process printed on stdout (empty or not), `None` when it printed none.
    pub last_stdout_line: Option<String>,
    /// The last non-empty lines printed on stdout and on stderr, joined with newlines.
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub stdout_logged: bool,
    pub stderr_logged: bool,
}

/// Kills the process group when dropped: an attempt whose future is dropped (Ctrl-C, abort)
/// leaves no process behind.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; a group that is already gone yields ESRCH.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) async fn run(
    spec: ProcessSpec,
    id: &AttemptId,
    sink: Option<Arc<dyn LogSink>>,
    cancel: &Notify,
) -> io::Result<ProcessOutcome> {
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let mut guard = GroupGuard {
        pgid: child.id().map(|id| id as i32),
    };

    let stdout = tokio::spawn(pump(
        child.stdout.take().expect("stdout is piped"),
        spec.stdout_log,
        id.clone(),
        Stream::Stdout,
        sink.clone(),
    ));
    let stderr = tokio::spawn(pump(
        child.stderr.take().expect("stderr is piped"),
        spec.stderr_log,
        id.clone(),
        Stream::Stderr,
        sink,
    ));

    let deadline = async {
        match spec.timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let ending = tokio::select! {
        status = child.wait() => {
            let status = status?;
            match status.code() {
                Some(code) => Ending::Exited(code),
                None => Ending::Signaled(status.signal().unwrap_or(0)),
            }
        }
        _ = deadline => Ending::TimedOut,
        _ = cancel.notified() => Ending::Canceled,
    };
    // Whatever happened, nothing the script started outlives the attempt.
    guard.kill();
    child.wait().await?;

    let stdout = drain(stdout).await?;
    let stderr = drain(stderr).await?;
    Ok(ProcessOutcome {
        ending,
        last_stdout_line: stdout.last_line,
        stdout_tail: stdout.tail.into_iter().collect::<Vec<_>>().join("\n"),
        stderr_tail: stderr.tail.into_iter().collect::<Vec<_>>().join("\n"),
        stdout_logged: stdout.logged,
        stderr_logged: stderr.logged,
    })
}

#[derive(Default)]
struct Pumped {
    last_line: Option<String>,
    tail: VecDeque<String>,
    logged: bool,
}

async fn drain(task: tokio::task::JoinHandle<io::Result<Pumped>>) -> io::Result<Pumped> {
    // A process that escaped the group (setsid) may hold the pipe open: stop waiting after a grace.
    let abort = task.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, task).await {
        Ok(Ok(pumped)) => pumped,
        Ok(Err(join)) => Err(io::Error::other(join)),
        Err(_) => {
            abort.abort();
            Ok(Pumped::default())
        }
    }
}

/// Copies a pipe to its log file (created on the first byte) and to the sink, line by line.
async fn pump(
    pipe: impl AsyncRead + Unpin,
    log_path: PathBuf,
    id: AttemptId,
    stream: Stream,
    sink: Option<Arc<dyn LogSink>>,
) -> io::Result<Pumped> {
    let mut reader = BufReader::new(pipe);
    let mut log = None;
    let mut pumped = Pumped::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).await? == 0 {
            break;
        }
        let file = match &mut log {
            Some(file) => file,
            None => log.insert(std::fs::File::create(&log_path)?),
        };
        // Small synchronous writes: cheaper than a round trip through tokio's blocking pool.
        file.write_all(&buf)?;
        pumped.logged = true;
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(sink) = &sink {
            sink.line(&id, stream, line);
        }
        pumped.last_line = Some(line.to_string());
        if line.trim().is_empty() {
            continue;
        }
        if pumped.tail.len() == TAIL_LINES {
            pumped.tail.pop_front();
        }
        pumped
            .tail
            .push_back(line.chars().take(TAIL_LINE_CHARS).collect());
    }
    Ok(pumped)
}
