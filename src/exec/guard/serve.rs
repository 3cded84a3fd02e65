//! The guard process: `millrace __step-guard PROGRAM ARGS…` with the control socket as stdin,
//! and the step's working directory, environment, stdout and stderr, which the step inherits.

use super::Report;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

/// How often orphans that exited while the step runs are reaped, so they do not pile up as
/// zombies in a long step.
const REAP_INTERVAL_MS: i32 = 1000;
/// Pause between two rounds of killing the guard's children: orphans of the killed arrive.
const SWEEP_PAUSE: Duration = Duration::from_millis(5);

/// Runs one step until it ends or the executor goes away, then kills everything it started.
/// The binary calls this for its hidden [`super::GUARD_SUBCOMMAND`] before anything else.
pub fn guard_main() -> ExitCode {
    let mut args = std::env::args_os().skip(2);
    let Some(program) = args.next() else {
        eprintln!("step guard: no program to run");
        return ExitCode::FAILURE;
    };
    // SAFETY: the executor passes the control socket as stdin; nothing else here owns fd 0.
    let control = unsafe { UnixStream::from_raw_fd(0) };
    match guard(program, args.collect(), &control) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("step guard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn guard(program: OsString, args: Vec<OsString>, mut control: &UnixStream) -> io::Result<()> {
    // Before the step starts, so that none of its orphans can escape to init.
    // SAFETY: prctl with these arguments only changes a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let step = match spawn(program, args) {
        Ok(step) => step,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            return control.write_all(Report::NotStarted(errno).line().as_bytes());
        }
    };
    let pid = step.id() as i32;
    let ended = wait_or_stop(pid, control.as_raw_fd());
    if !matches!(ended, Ok(Some(_))) {
        // Stopped, or it cannot be watched: either way the step must not outlive its guard.
        // SAFETY: the step is not reaped yet, so its pid is still its own.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    sweep(pid);
    match ended? {
        Some(report) => control.write_all(report.line().as_bytes()),
        // The executor has gone or no longer listens.
        None => Ok(()),
    }
}

/// Starts the step in its own process group, killed if the guard itself is killed.
fn spawn(program: OsString, args: Vec<OsString>) -> io::Result<Child> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).process_group(0);
    let guard = std::process::id();
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (prctl, getppid) and builds errors without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The guard may have died before the death signal was armed.
            if libc::getppid() as u32 != guard {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Waits until the step exits (its report) or the control socket closes (`None`), reaping
/// exited orphans meanwhile.
fn wait_or_stop(step: i32, control: RawFd) -> io::Result<Option<Report>> {
    let exited = pidfd(step)?;
    let mut fds = [control, exited.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, REAP_INTERVAL_MS) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // The executor never writes: anything on the socket is its end closing.
        if fds[0].revents != 0 {
            return Ok(None);
        }
        if let Some(status) = reap_until(step) {
            return Ok(Some(report(status)));
        }
    }
}

/// A descriptor that becomes readable when the process exits.
fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("cannot watch the step (Linux 5.3 or later is needed): {error}"),
        ));
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reaps every exited child; the wait status of `step` if it was among them.
fn reap_until(step: i32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status of a reaped child into `status`.
        match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
            pid if pid == step => return Some(status),
            pid if pid > 0 => continue,
            _ => return None,
        }
    }
}

fn report(status: i32) -> Report {
    let status = std::process::ExitStatus::from_raw(status);
    match (status.code(), status.signal()) {
        (Some(code), _) => Report::Exited(code),
        (None, signal) => Report::Signaled(signal.unwrap_or(0)),
    }
}

/// Kills the step's process group, then every child of the guard, round after round: each
/// killed process's orphans become the guard's children. Returns once it has none left.
fn sweep(step: i32) {
    // SAFETY: killpg and kill only send signals; a group or process that is gone yields ESRCH.
    unsafe { libc::killpg(step, libc::SIGKILL) };
    loop {
        // Reaping first: a step that left nothing behind (the usual case) costs no scan of /proc.
        loop {
            // SAFETY: waitpid with a null status pointer only reaps.
            match unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } {
                pid if pid > 0 => continue,
                0 => break,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                // ECHILD: no child left, so no descendant either.
                _ => return,
            }
        }
        for child in children() {
            // SAFETY: as above; an unreaped child's pid cannot have been reused.
            unsafe { libc::kill(child, libc::SIGKILL) };
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
}

/// The pids of this process's children, from the parent pid in each `/proc/PID/stat`.
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: i32 = name.to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect()
}
