//! The `millrace` binary's cluster commands (submit, status, logs, approve, cancel) against the real
//! control plane, with the controller running in this process and the pod runner playing the
//! kubelet; and the Kubernetes example manifests, applied as written.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod operator;
}

use anyhow::{Context, Result, bail};
use kube::api::ListParams;
use millrace::k8s::api::FlowRun;
use millrace::k8s::api::flowrun::RunPhase;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::cluster::wait::{TIMEOUT, wait_until, within};
use support::flows::step;
use support::operator::Harness;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The operator harness and a kubeconfig whose default is its namespace, for the binary.
struct Setup {
    t: Harness,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(prefix: &str) -> Result<Option<Setup>> {
        let Some(t) = Harness::start(prefix).await? else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        t.cp.write_kubeconfig(&dir.path().join("kubeconfig"), &t.ns)?;
        Ok(Some(Setup { t, dir }))
    }

    /// Runs `millrace ARGS` with this namespace as the kubeconfig's default.
    async fn millrace(&self, args: &[&str]) -> Result<Output> {
        Ok(self.command(args).output().await?)
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_millrace"));
        command
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .kill_on_drop(true);
        command
    }

    /// Writes a flow file next to the kubeconfig.
    fn flow_file(&self, name: &str, flow: Value) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&flow)?)?;
        Ok(path)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and returns (stdout, stderr).
fn exited(output: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn submit_by_name_and_from_a_file_then_read_status_and_logs() -> Result<()> {
    let Some(setup) = Setup::new("cli-submit").await? else {
        return Ok(());
    };
    let ns = setup.t.ns.clone();
    setup
        .t
        .create_manifests("examples/kubernetes/hello.flow.yaml")
        .await?;

    // By name, followed to the end: the result on stdout, the steps on stderr.
    let output = setup
        .millrace(&["submit", "hello", "--input", "name=cli", "--wait"])
        .await?;
    let (stdout, stderr) = exited(&output, 0);
    assert_eq!(stdout, "\"HELLO, CLI!\"\n");
    assert!(stderr.contains("  shout succeeded"), "{stderr}");
    assert!(stderr.contains(" succeeded in "), "{stderr}");
    let runs = setup
        .t
        .api::<FlowRun>()
        .list(&ListParams::default())
        .await?
        .items;
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0]
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("hello-")
    );

    // Inputs that do not fit the Flow's schema create nothing.
    let output = setup
        .millrace(&["submit", "hello", "--input", "name=3"])
        .await?;
    let (_, stderr) = exited(&output, 2);
    assert!(
        stderr.contains("the inputs do not match the schema of Flow \"hello\""),
        "{stderr}"
    );
    let output = setup.millrace(&["submit", "nosuch"]).await?;
    let (_, stderr) = exited(&output, 2);
    assert!(
        stderr.contains(&format!(
            "Flow \"nosuch\" not found in namespace \"{ns}\", and there is no file nosuch here"
        )),
        "{stderr}"
    );
    assert_eq!(
        setup
            .t
            .api::<FlowRun>()
            .list(&ListParams::default())
            .await?
            .items
            .len(),
        1
    );

    // From a file, inline: a result large enough to come back framed in the pod log and to be
    // stored by reference rather than in status.
    let rows = "def main():\n    print('making rows')\n    return {'rows': ['r%05d' % i for i in range(2000)]}";
    let file = setup.flow_file(
        "rows.flow.json",
        json!({"summary": "rows", "value": {"modules": [step("rows", "python3", rows, json!({}))]}}),
    )?;
    let output = setup
        .millrace(&["submit", file.to_str().unwrap(), "--name", "rows-1"])
        .await?;
    assert_eq!(exited(&output, 0).0, "rows-1\n");
    setup.t.run_ended("rows-1").await?;
    let output = setup
        .millrace(&["submit", file.to_str().unwrap(), "--name", "rows-1"])
        .await?;
    let (_, stderr) = exited(&output, 1);
    assert!(
        stderr.contains(&format!(
            "cannot create FlowRun \"rows-1\" in namespace \"{ns}\": "
        )) && stderr.contains("already exists")
            && stderr.contains("(choose another name, or delete the old one first)"),
        "{stderr}"
    );

    let output = setup.millrace(&["status", "rows-1"]).await?;
    let (stdout, _) = exited(&output, 0);
    assert!(
        stdout.starts_with(&format!(
            "FlowRun rows-1 in namespace {ns} (inline flow)\nPhase:     Succeeded\nProgress:  1/1\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\nrows  succeeded  1 "), "{stdout}");
    // The result is read from the ConfigMap the status points to.
    assert!(
        stdout.contains("\nResult:\n{\n  \"rows\": [\n    \"r00000\",\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\"r01999\"\n  ]\n}\n"), "{stdout}");
    let output = setup.millrace(&["status", "rows-1", "--json"]).await?;
    let status: Value = serde_json::from_str(&exited(&output, 0).0)?;
    assert_eq!(status["phase"], "Succeeded");
    assert!(status.get("result").is_none() && status["resultRef"].is_object());

    let output = setup.millrace(&["logs", "rows-1"]).await?;
    let (stdout, _) = exited(&output, 0);
    assert!(
        stdout.starts_with("==> step rows, attempt 1 (pod rows-1-rows-a1-"),
        "{stdout}"
    );
    assert!(stdout.contains("\nmaking rows\n"), "{stdout}");
    assert!(
        !stdout.contains("MILLRACE_RESULT") && !stdout.contains("r01999"),
        "{stdout}"
    );

    let output = setup.millrace(&["logs", "rows-1", "nosuch"]).await?;
    let (_, stderr) = exited(&output, 1);
    assert!(
        stderr
            .contains("FlowRun \"rows-1\" has no pod for step nosuch; it has: rows (attempts 1-1)"),
        "{stderr}"
    );
    let output = setup
        .millrace(&["status", "nosuch", "-n", "elsewhere"])
        .await?;
    let (_, stderr) = exited(&output, 1);
    assert!(
        stderr.contains("FlowRun \"nosuch\" not found in namespace \"elsewhere\""),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn a_suspended_run_is_approved_and_a_waited_for_run_is_canceled() -> Result<()> {
    let Some(setup) = Setup::new("cli-approve").await? else {
        return Ok(());
    };
    let mut ask = step("ask", "bash", "echo asked", json!({}));
    ask["suspend"] = json!({"required_events": 1});
    let after = step(
        "after",
        "python3",
        "def main(answer):\n    return answer",
        json!({"answer": {"type": "javascript", "expr": "resume"}}),
    );
    let file = setup.flow_file(
        "approval.flow.json",
        json!({"summary": "approval", "value": {"modules": [ask, after]}}),
    )?;
    let mut waiting = setup
        .command(&[
            "submit",
            file.to_str().unwrap(),
            "--name",
            "approval-1",
            "--wait",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Approve once `--wait` has said how to: it reads the run every half second.
    let hint = format!(
        "FlowRun approval-1 waits for an approval: millrace approve approval-1 -n {} [--payload JSON]",
        setup.t.ns
    );
    let mut progress = BufReader::new(waiting.stderr.take().context("stderr")?).lines();
    let mut seen = Vec::new();
    within("the approval hint", TIMEOUT, async {
        while let Some(line) = progress.next_line().await? {
            let done = line == hint;
            seen.push(line);
            if done {
                return Ok(());
            }
        }
        bail!("`submit --wait` ended without the hint: {seen:?}")
    })
    .await??;
    let output = setup
        .millrace(&["approve", "approval-1", "--payload", r#"{"ok": "yes"}"#])
        .await?;
    let (_, stderr) = exited(&output, 0);
    assert_eq!(stderr, "FlowRun approval-1: step ask approved\n");
    let run = setup.t.run_ended("approval-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"ok": "yes"})));
    assert_eq!(run.spec.approvals.len(), 1);
    let output = within("submit --wait", TIMEOUT, waiting.wait_with_output()).await??;
    let (stdout, _) = exited(&output, 0);
    assert_eq!(stdout, "{\n  \"ok\": \"yes\"\n}\n");
    let mut rest = Vec::new();
    while let Some(line) = progress.next_line().await? {
        rest.push(line);
    }
    assert!(!rest.contains(&hint), "said twice: {rest:?}");
    assert!(
        rest.last()
            .is_some_and(|l| l.starts_with("FlowRun approval-1 succeeded")),
        "{rest:?}"
    );
    let output = setup.millrace(&["approve", "approval-1"]).await?;
    let (_, stderr) = exited(&output, 2);
    assert!(
        stderr.contains("FlowRun \"approval-1\" is not waiting for an approval (phase Succeeded)"),
        "{stderr}"
    );

    // Rejected: the suspended step fails.
    let output = setup
        .millrace(&["submit", file.to_str().unwrap(), "--name", "approval-2"])
        .await?;
    exited(&output, 0);
    setup.t.phase_is("approval-2", RunPhase::Suspended).await?;
    let output = setup
        .millrace(&["approve", "approval-2", "--step", "ask", "--reject"])
        .await?;
    assert_eq!(
        exited(&output, 0).1,
        "FlowRun approval-2: step ask rejected\n"
    );
    let status = setup
        .t
        .run_ended("approval-2")
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    assert_eq!(status.error.context("error")?["name"], "Disapproved");

    // `--wait` follows a run that gets canceled from elsewhere, and says so.
    let slow = setup.flow_file(
        "slow.flow.json",
        json!({"summary": "slow", "value": {"modules": [step("slow", "bash", "sleep 60", json!({}))]}}),
    )?;
    let waiting = setup
        .command(&[
            "submit",
            slow.to_str().unwrap(),
            "--name",
            "slow-1",
            "--wait",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    wait_until("slow-1 starts a Job", TIMEOUT, || async {
        Ok((!setup.t.jobs("slow-1").await?.is_empty()).then_some(()))
    })
    .await?;
    let output = setup.millrace(&["cancel", "slow-1"]).await?;
    exited(&output, 0);
    let output = within("submit --wait", TIMEOUT, waiting.wait_with_output()).await??;
    let (stdout, stderr) = exited(&output, 1);
    assert_eq!(stdout, "");
    assert!(stderr.contains("FlowRun slow-1 was canceled"), "{stderr}");
    let output = setup.millrace(&["cancel", "slow-1"]).await?;
    let (_, stderr) = exited(&output, 2);
    assert!(
        stderr.contains("FlowRun \"slow-1\" has already ended (Canceled): nothing to cancel"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn the_kubernetes_examples_run_as_written() -> Result<()> {
    let Some(setup) = Setup::new("cli-examples").await? else {
        return Ok(());
    };
    for file in [
        "hello.flow.yaml",
        "hello.run.yaml",
        "parse-numbers.flow.yaml",
        "parse-numbers.run.yaml",
    ] {
        setup
            .t
            .create_manifests(Path::new("examples/kubernetes").join(file))
            .await?;
    }
    let hello = setup
        .t
        .run_ended("hello-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(hello.phase, Some(RunPhase::Succeeded), "{hello:#?}");
    assert_eq!(hello.result, Some(json!("HELLO, KUBERNETES!")));

    let parsed = setup
        .t
        .run_ended("parse-numbers-1")
        .await?
        .status
        .context("status")?;
    assert_eq!(parsed.phase, Some(RunPhase::Succeeded), "{parsed:#?}");
    assert_eq!(
        parsed.result,
        Some(json!({"sum": 12, "parsed": 4, "failed": 1}))
    );
    let parse_all = &parsed.loops[0];
    assert_eq!(
        (parse_all.total, parse_all.succeeded, parse_all.failed),
        (5, 4, 1)
    );
    // The text that is no number was tried three times, each in its own pod.
    let output = setup
        .millrace(&["logs", "parse-numbers-1", "parse", "--attempt", "3"])
        .await?;
    let (stdout, _) = exited(&output, 0);
    assert!(
        stdout.starts_with("==> step parse_all[2]/parse, attempt 3 (pod "),
        "{stdout}"
    );
    assert!(stdout.contains("parsing 'three'"), "{stdout}");
    // The script's error, which its wrapper reported rather than printed.
    assert!(
        stdout.contains(
            "\n--- attempt failed: ValueError: invalid literal for int() with base 10: 'three'\n"
        ),
        "{stdout}"
    );
    let output = setup
        .millrace(&["logs", "parse-numbers-1", "parse"])
        .await?;
    let (stdout, _) = exited(&output, 0);
    assert_eq!(
        stdout.matches("==> step parse_all[").count(),
        5 + 2,
        "{stdout}"
    );
    Ok(())
}
