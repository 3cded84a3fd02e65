//! `millrace sync plan` over a generated flows repository: wall time and peak resident memory of
//! the command (fetch into a fresh cache, read, convert, validate, plan).
//!
//! `cargo bench --profile dev --bench gitsync [-- FLOWS]` (default 500 flows, as Windmill flow
//! folders with two inline scripts each, plus a script and a schedule for every tenth flow).

// Shared with the tests, which use more of it.
#[allow(dead_code)]
#[path = "../tests/support/git_repos.rs"]
mod git_repos;

use git_repos::Repo;
use std::process::Command;
use std::time::Instant;

fn workspace(repo: &Repo, flows: usize) {
    for n in 0..flows {
        let folder = format!("f/team{}/flow_{n}.flow", n % 20);
        repo.write(
            &format!("{folder}/flow.yaml"),
            format!(
                "summary: Flow {n}\nvalue:\n  modules:\n    - id: fetch\n      value:\n        type: rawscript\n        language: python3\n        content: '!inline fetch.inline_script.py'\n        input_transforms:\n          n: {{type: javascript, expr: 'flow_input.n + {n}'}}\n    - id: report\n      value:\n        type: rawscript\n        language: bash\n        content: '!inline report.inline_script.sh'\n        input_transforms:\n          total: {{type: javascript, expr: results.fetch}}\nschema:\n  type: object\n  properties:\n    n: {{type: integer, default: 1}}\n"
            ),
        );
        repo.write(
            &format!("{folder}/fetch.inline_script.py"),
            format!("def main(n: int):\n    return [i * {n} for i in range(n)]\n"),
        );
        repo.write(
            &format!("{folder}/report.inline_script.sh"),
            "total=\"$1\"\necho \"$total\"\n",
        );
        if n % 10 == 0 {
            let base = format!("f/team{}/helper_{n}", n % 20);
            repo.write(&format!("{base}.py"), "def main():\n    return 1\n");
            repo.write(
                &format!("{base}.script.yaml"),
                "summary: Helper\nlock: ''\n",
            );
            repo.write(
                &format!("f/team{}/flow_{n}.schedule.yaml", n % 20),
                format!("schedule: 0 0 6 * * *\ntimezone: UTC\nscript_path: f/team{}/flow_{n}\nis_flow: true\nargs: {{n: 3}}\nenabled: true\n", n % 20),
            );
        }
    }
}

/// Runs the command and returns (seconds, peak resident KiB, stdout).
#[allow(
    clippy::zombie_processes,
    reason = "waited for with wait4, which also gives its peak memory"
)]
fn measure(args: &[&str]) -> (f64, i64, Vec<u8>) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("millrace starts");
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).expect("stdout");
        out
    });
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `usage` is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "sync plan failed: {status}"
    );
    (seconds, usage.ru_maxrss, reader.join().expect("reader"))
}

fn main() {
    let flows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().expect("temporary directory");
    let repo = Repo::init(&dir.path().join("flows"));
    workspace(&repo, flows);
    repo.commit("generated");
    let url = format!("file://{}", repo.dir.display());
    for round in 1..=3 {
        let (seconds, kib, stdout) = measure(&["sync", "plan", &url, "--json", "-n", "bench"]);
        let plan: serde_json::Value = serde_json::from_slice(&stdout).expect("one JSON object");
        let objects = plan["objects"].as_array().map_or(0, Vec::len);
        println!(
            "round {round}: {flows} flows → {objects} objects in {seconds:.2} s, peak {:.1} MiB resident",
            kib as f64 / 1024.0
        );
    }
}
