//! The worker process: reads requests on stdin, evaluates (or parses) each in a fresh
//! context, answers on stdout.
//!
//! The worker limits itself once started (it knows its own footprint, the parent does
//! not): address space to its footprint plus the budget, so an allocation past the budget
//! aborts the worker; CPU time per evaluation, a backstop behind the parent's wall clock.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use super::protocol::{Hello, Reply, Request, ok_reply};
use crate::expr::{ExprError, InProcess, Scope, check_syntax};

/// Request buffer capacity kept between requests.
const REQUEST_BUFFER_BYTES: usize = 64 * 1024;

/// Runs the worker until stdin closes. The binary calls this for its hidden
/// [`super::WORKER_SUBCOMMAND`] before setting up anything else (logging included).
pub fn worker_main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("expression worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> io::Result<()> {
    let mut replies = BufWriter::new(take_stdout()?);
    let mut requests = io::stdin().lock();
    let mut line = String::new();
    if requests.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let hello: Hello = serde_json::from_str(&line).map_err(io::Error::other)?;
    let evaluator = InProcess::new(hello.limits);
    // Warm up first so that lazily built engine state counts as footprint, not budget.
    evaluator
        .eval_to_json_text("0", &Scope::default())
        .map_err(io::Error::other)?;
    limit_memory(hello.memory_mib)?;
    set_limit(libc::RLIMIT_CORE, 0)?;
    send(&mut replies, &serde_json::to_string(&Reply::Ready)?)?;

    // The next evaluation's context is built while the parent is busy elsewhere, and
    // serves that evaluation only.
    let mut next = Some(evaluator.fresh_context().map_err(io::Error::other)?);
    loop {
        // One large request must not hold its buffer, and so the memory budget, for good.
        line.clear();
        line.shrink_to(REQUEST_BUFFER_BYTES);
        if requests.read_line(&mut line)? == 0 {
            return Ok(());
        }
        limit_cpu(hello.cpu_seconds)?;
        let outcome = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Eval { source, scope }) => match next.take() {
                Some(fresh) => InProcess::eval_in(fresh, &source, &scope),
                None => evaluator.eval_to_json_text(&source, &scope),
            },
            Ok(Request::Check { source }) => check_syntax(&source).map(|()| "null".to_owned()),
            Err(e) => Err(ExprError::Internal(format!(
                "the worker got a malformed request: {e}"
            ))),
        };
        let reply = match outcome {
            Ok(text) => ok_reply(&text),
            Err(error) => serde_json::to_string(&Reply::Err(error))?,
        };
        send(&mut replies, &reply)?;
        if next.is_none() {
            next = Some(evaluator.fresh_context().map_err(io::Error::other)?);
        }
    }
}

fn send(out: &mut BufWriter<File>, line: &str) -> io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Keeps the real stdout for replies and points fd 1 at stderr, so that a stray print
/// anywhere in the process cannot corrupt the protocol.
fn take_stdout() -> io::Result<File> {
    // SAFETY: plain descriptor calls; the duplicate is owned by the returned File only.
    unsafe {
        let replies = libc::dup(libc::STDOUT_FILENO);
        if replies < 0 || libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(replies))
    }
}

fn limit_memory(budget_mib: u64) -> io::Result<()> {
    let footprint = address_space_bytes()?;
    set_limit(libc::RLIMIT_AS, footprint + budget_mib * 1024 * 1024)
}

/// The process's current virtual size, from /proc/self/statm.
fn address_space_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected /proc/self/statm: {statm:?}")))?;
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * u64::try_from(page_size).map_err(|_| io::Error::last_os_error())?)
}

/// Lets the next evaluation use `seconds` more CPU time; past it the kernel sends SIGXCPU,
/// which ends the worker.
fn limit_cpu(seconds: u64) -> io::Result<()> {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Err(io::Error::last_os_error());
        }
        usage
    };
    let used = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1) as u64;
    set_limit(libc::RLIMIT_CPU, used + seconds)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Sets the soft limit, never above the hard one.
fn set_limit(resource: Resource, value: u64) -> io::Result<()> {
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(resource, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = value.min(limit.rlim_max);
        if libc::setrlimit(resource, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
