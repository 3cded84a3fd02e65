//! Child processes that cannot outlive the tests: each runs in its own process group, is killed with
//! the group when its handle drops, and gets SIGKILL from the kernel if the spawning thread dies
//! (which covers statics that are never dropped and a test binary killed outright).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Makes `cmd` start in a new process group that dies with the thread spawning it.
pub fn isolate(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: plain syscall; a group that is already gone yields ESRCH, which is fine.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// A control-plane process with its output in a log file.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
}

impl Daemon {
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> io::Result<Daemon> {
        let out = std::fs::File::create(log)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        isolate(&mut cmd);
        Ok(Daemon {
            name,
            child: cmd.spawn()?,
        })
    }

    #[allow(
        dead_code,
        reason = "only the control plane tests signal daemons by pid"
    )]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}
