//! One OS process per attempt, under a [step guard](super::guard) so that a timeout, a cancel,
//! the end of the attempt or the death of this process kills everything the script started.
//! Output is streamed line by line to log files and to a [`LogSink`]; it never carries the result
//! (see the runners).

use super::guard::{GUARD_SUBCOMMAND, Report, StepGuard};
use super::{LogSink, Stream};
use crate::engine::AttemptId;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
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
/// How long to wait for output still buffered in pipes once the guard is gone.
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

pub(crate) async fn run(
    spec: ProcessSpec,
    guard: &StepGuard,
    id: &AttemptId,
    sink: Option<Arc<dyn LogSink>>,
    cancel: &Notify,
) -> io::Result<ProcessOutcome> {
    // Closing `control` (dropping it, also when this future is dropped) stops the guard.
    let (control, guard_end) = UnixStream::pair()?;
    // Its own process group keeps the guard out of the terminal's Ctrl-C: the run cancels.
    let mut child = Command::new(guard.program())
        .arg(GUARD_SUBCOMMAND)
        .arg(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(guard_end)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            io::Error::other(format!(
                "cannot start the step guard `{}`: {e}",
                guard.program().display()
            ))
        })?;

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
            match read_report(&control)? {
                Some(Report::Exited(code)) => Ending::Exited(code),
                Some(Report::Signaled(signal)) => Ending::Signaled(signal),
                Some(Report::NotStarted(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                // The guard itself died (killed from outside): its own status is all there is.
                None => match status.code() {
                    Some(code) => Ending::Exited(code),
                    None => Ending::Signaled(status.signal().unwrap_or(0)),
                },
            }
        }
        _ = deadline => Ending::TimedOut,
        _ = cancel.notified() => Ending::Canceled,
    };
    // Whatever happened, nothing the script started outlives the attempt: the guard kills it
    // all once its socket closes, then exits.
    drop(control);
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

/// What the guard reported before it exited, if anything.
fn read_report(control: &UnixStream) -> io::Result<Option<Report>> {
    // The guard has exited, so all it wrote is there; never wait for more.
    control.set_nonblocking(true)?;
    let mut text = String::new();
    match (&*control).read_to_string(&mut text) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(Report::parse(&text))
}

#[derive(Default)]
struct Pumped {
    last_line: Option<String>,
    tail: VecDeque<String>,
    logged: bool,
}

async fn drain(task: tokio::task::JoinHandle<io::Result<Pumped>>) -> io::Result<Pumped> {
    // A process that escaped the guard (through a service manager, say) may hold the pipe open:
    // stop waiting after a grace.
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
