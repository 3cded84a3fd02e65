//! `millrace run` leaves nothing behind: a killed or signaled run takes every process its steps
//! started with it, and old run directories are removed. Real processes, through the binary.

mod support {
    pub mod local;
}

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::local::{gone_within, process_is_gone};

/// The acceptance bound: what a step started is gone this long after `millrace run` was killed.
const GONE_AFTER_KILL: Duration = Duration::from_secs(2);

fn write_flow(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A flow of one bash step that runs `script` (one line), writes its own pid to `step_pid` and
/// sleeps; `failure_module` tells whether a handler ran.
fn sleepy_flow(dir: &Path, script: &str, step_pid: &Path) -> PathBuf {
    write_flow(
        dir,
        "sleepy.yaml",
        &format!(
            r#"
summary: sleepy
value:
  modules:
    - id: nap
      value:
        type: rawscript
        language: bash
        content: |
          {script}
          echo $$ > {pid}.tmp && mv {pid}.tmp {pid}
          sleep 300
  failure_module:
    id: failure
    value:
      type: rawscript
      language: bash
      content: echo handler ran
"#,
            pid = step_pid.display()
        ),
    )
}

/// Starts `millrace run FLOW --json` with `tmp` as its temp dir.
fn start(flow: &Path, tmp: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(["run", flow.to_str().unwrap(), "--json"])
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for pid files the steps write (atomically); a run that never writes them fails the test.
fn read_pids(run: &mut Child, files: &[&Path]) -> Vec<i32> {
    let give_up = Instant::now() + Duration::from_secs(120);
    while !files.iter().all(|f| f.exists()) {
        if let Some(status) = run.try_wait().unwrap() {
            panic!("the run ended ({status}) before its steps wrote {files:?}");
        }
        assert!(Instant::now() < give_up, "no pid files {files:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
        .collect()
}

/// The `index`-th field of `/proc/PID/stat` after the command name (0 is the state, 3 the session).
fn stat_field(pid: i32, index: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields = stat.rsplit_once(')').unwrap().1;
    fields.split_whitespace().nth(index).unwrap().to_string()
}

/// SIGKILLs a run whose step started `escape` (which writes its pid to `ESCAPED`) and checks
/// that the step and the escaped process are gone within the bound. Returns the escaped
/// process's pid and the session it was in.
fn a_killed_run_takes_with_it(escape: &str) -> (i32, i32) {
    let dir = tempfile::tempdir().unwrap();
    let escaped_pid = dir.path().join("escaped.pid");
    let step_pid = dir.path().join("step.pid");
    let script = escape.replace("ESCAPED", &escaped_pid.display().to_string());
    let flow = sleepy_flow(dir.path(), &script, &step_pid);
    let mut run = start(&flow, dir.path());
    let pids = read_pids(&mut run, &[&escaped_pid, &step_pid]);
    let (escaped, step) = (pids[0], pids[1]);
    let session = stat_field(escaped, 3).parse().unwrap();
    run.kill().unwrap();
    run.wait().unwrap();
    for (pid, what) in [(escaped, "escaped process"), (step, "step")] {
        assert!(
            gone_within(pid, GONE_AFTER_KILL),
            "the {what} {pid} survived the SIGKILL of its run by {GONE_AFTER_KILL:?}"
        );
    }
    (escaped, session)
}

#[test]
fn a_killed_run_takes_a_double_forked_process_with_it() {
    // The middle process exits at once: `sleep` is orphaned, as a daemon's double fork does.
    a_killed_run_takes_with_it(
        "( sleep 300 > /dev/null 2>&1 & echo $! > ESCAPED.tmp && mv ESCAPED.tmp ESCAPED ) &",
    );
}

#[test]
fn a_killed_run_takes_a_setsid_process_with_it() {
    let (escaped, session) = a_killed_run_takes_with_it(
        "setsid bash -c 'echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 300' ESCAPED > /dev/null 2>&1 &",
    );
    assert_eq!(session, escaped, "setsid gave it a session of its own");
}

/// Sends `signal` to a run with a sleeping step: the run is canceled, the step killed, the
/// failure module skipped.
fn a_signal_cancels_the_run(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let flow = sleepy_flow(dir.path(), "true", &pid_file);
    let mut run = start(&flow, dir.path());
    let step = read_pids(&mut run, &[&pid_file])[0];
    // SAFETY: sends a signal to the child we spawned.
    unsafe { libc::kill(run.id() as i32, signal) };
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["name"], "Canceled");
    assert!(!stderr.contains("handler ran"), "{stderr}");
    assert!(process_is_gone(step), "the step's process {step} survived");
}

#[test]
fn ctrl_c_cancels_the_run_kills_its_steps_and_skips_the_failure_module() {
    a_signal_cancels_the_run(libc::SIGINT);
}

#[test]
fn sigterm_cancels_the_run_like_ctrl_c() {
    a_signal_cancels_the_run(libc::SIGTERM);
}

#[test]
fn sighup_cancels_the_run_like_sigterm() {
    a_signal_cancels_the_run(libc::SIGHUP);
}

#[test]
fn sigquit_cancels_the_run_like_sigterm() {
    a_signal_cancels_the_run(libc::SIGQUIT);
}

/// Runs a one-step flow to its end with `tmp` as the temp dir; returns its run directory.
fn run_quick(tmp: &Path, extra: &[&str]) -> PathBuf {
    let flow = write_flow(
        tmp,
        "quick.yaml",
        "value:\n  modules:\n    - id: a\n      value:\n        type: rawscript\n        language: bash\n        content: echo hi\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(["run", flow.to_str().unwrap()])
        .args(extra)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let logs = stderr
        .split_once("(logs: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("no logs path in {stderr}"))
        .0;
    Path::new(logs).parent().unwrap().to_path_buf()
}

/// The run directories under `tmp`, sorted.
fn run_dirs(tmp: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(tmp.join("millrace"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("run-"))
        .collect();
    dirs.sort();
    dirs
}

fn sorted(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs
}

#[test]
fn a_run_removes_the_oldest_run_directories_but_those_kept_with_keep_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = run_quick(tmp.path(), &["--keep-logs"]);
    let _oldest = run_quick(tmp.path(), &[]);
    let older = run_quick(tmp.path(), &[]);
    let newest = run_quick(tmp.path(), &["--keep-runs", "2"]);
    assert_eq!(run_dirs(tmp.path()), sorted(vec![kept, older, newest]));
}

#[test]
fn a_run_in_progress_keeps_its_directory_until_it_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    let flow = sleepy_flow(tmp.path(), "true", &pid_file);
    let mut running = start(&flow, tmp.path());
    read_pids(&mut running, &[&pid_file]);
    let in_progress = run_dirs(tmp.path());
    assert_eq!(in_progress.len(), 1);
    let later = run_quick(tmp.path(), &["--keep-runs", "1"]);
    assert_eq!(
        run_dirs(tmp.path()),
        sorted(vec![in_progress[0].clone(), later.clone()])
    );
    // However it ends, a run lets go of its directory.
    running.kill().unwrap();
    running.wait().unwrap();
    let last = run_quick(tmp.path(), &["--keep-runs", "1"]);
    assert_eq!(run_dirs(tmp.path()), vec![last]);
}
