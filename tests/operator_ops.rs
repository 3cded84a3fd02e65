//! Running the operator: its metrics and health endpoint, and leader election between replicas,
//! on the real control plane with the pod runner playing the kubelet.

mod support {
    pub mod accounts;
    pub mod chart;
    pub mod cluster;
    pub mod flows;
    pub mod helm;
    pub mod manifests;
    pub mod operator;
    pub mod replica;
}

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease as LeaseObject;
use kube::{Api, Client};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::operator::health::{self, Readiness};
use millrace::k8s::operator::leader::{self, Lease};
use millrace::k8s::operator::metrics::Metrics;
use millrace::k8s::operator::{Config, throttle};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::step;
use support::operator::{self as harness, Controllers, Harness, sandbox};
use support::replica;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(ns: &str, metrics: &Arc<Metrics>, ready: &Readiness) -> Config {
    Config {
        metrics: metrics.clone(),
        ready: ready.clone(),
        ..harness::config(Some(ns))
    }
}

fn bash(id: &str, content: &str) -> Value {
    step(id, "bash", content, json!({}))
}

/// A Flow `name` of `modules` and its run `name-1`.
async fn flow_and_run(t: &Harness, name: &str, modules: Value) -> Result<()> {
    t.modules(name, modules).await?;
    t.run(&format!("{name}-1"), name, json!({})).await
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .context("a status code")?
        .parse()?;
    Ok((code, body.to_owned()))
}

/// The value of the sample `name` (with its labels, as rendered) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_the_reconciles_and_the_succeeded_run_and_the_probes_answer() -> Result<()> {
    let Some(t) = Harness::without_controllers("ops-metrics").await? else {
        return Ok(());
    };
    let metrics = Arc::new(Metrics::default());
    let ready = Readiness::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(health::serve(listener, metrics.clone(), ready.clone()));
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    assert_eq!(get(addr, "/readyz").await?.0, 503, "nothing watches yet");

    // The controller's client is paced as in production, tighter.
    let paced = throttle::client(t.cp.config().clone(), 20.0, 5)?;
    let controllers = Controllers::start(paced, config(&t.ns, &metrics, &ready));
    let modules = json!([bash("hello", "echo '{\"said\": \"hello\"}'")]);
    flow_and_run(&t, "hello", modules).await?;
    let run = t.run_ended("hello-1").await?;
    assert_eq!(
        run.status.as_ref().and_then(|s| s.phase),
        Some(RunPhase::Succeeded)
    );

    // The controller's cache sees the final status a moment after it was written.
    let text = wait_until("the run is counted as Succeeded", TIMEOUT, || async {
        let (code, text) = get(addr, "/metrics").await?;
        assert_eq!(code, 200);
        let counted = sample(&text, "millrace_flowruns{phase=\"Succeeded\"}") == Some(1.0);
        Ok(counted.then_some(text))
    })
    .await?;
    for reconciles in [
        "millrace_reconciles_total{controller=\"flow\"}",
        "millrace_reconciles_total{controller=\"flowrun\"}",
    ] {
        assert!(
            sample(&text, reconciles) > Some(0.0),
            "{reconciles}:\n{text}"
        );
    }
    assert_eq!(
        sample(&text, "millrace_flowruns{phase=\"Running\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "millrace_step_attempts_total{outcome=\"succeeded\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "millrace_step_attempt_duration_seconds_count{outcome=\"succeeded\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // Without leader election there is nothing to lead: no leader gauge, election reported off.
    assert_eq!(sample(&text, "millrace_leader"), None, "{text}");
    assert_eq!(sample(&text, "millrace_leader_election_enabled"), Some(0.0));
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    assert_eq!(get(addr, "/readyz").await?.0, 200);

    controllers.stop().await?;
    server.abort();
    Ok(())
}

/// One replica with leader election, on its own runtime so that it can die abruptly: its
/// runtime is dropped with every task in it, and nothing releases its lease.
struct Replica {
    identity: String,
    metrics: Arc<Metrics>,
    ready: Readiness,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    fn start(kube: &kube::Config, ns: &str, identity: &str) -> Replica {
        let metrics = Arc::new(Metrics::default());
        let ready = Readiness::default();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let config = config(ns, &metrics, &ready);
        let lease = Lease {
            duration: Duration::from_secs(3),
            renew_before: Duration::from_secs(2),
            ..Lease::new("millrace-controller", ns, identity)
        };
        let kube = kube.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.spawn(async move {
                let client = Client::try_from(kube).expect("a client");
                let ended = leader::run(client, config, sandbox(), lease, std::future::pending());
                ended.await.expect("leader election runs");
            });
            let _ = killed.recv();
            runtime.shutdown_background();
        });
        Replica {
            identity: identity.into(),
            metrics,
            ready,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn reconciles(&self) -> f64 {
        let text = self.metrics.render();
        ["flow", "flowrun"]
            .iter()
            .filter_map(|c| {
                sample(
                    &text,
                    &format!("millrace_reconciles_total{{controller=\"{c}\"}}"),
                )
            })
            .sum()
    }

    fn leading(&self) -> bool {
        sample(&self.metrics.render(), "millrace_leader") == Some(1.0)
    }

    fn kill(&mut self) {
        drop(self.kill.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the replica's thread ends");
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) -> Result<()> {
    wait_until(what, TIMEOUT, || async { Ok(done().then_some(())) }).await
}

async fn holder(client: &Client, ns: &str) -> Result<Option<String>> {
    let leases: Api<LeaseObject> = Api::namespaced(client.clone(), ns);
    let lease = leases.get_opt("millrace-controller").await?;
    Ok(lease.and_then(|l| l.spec?.holder_identity))
}

async fn wait_for_holder(client: &Client, ns: &str, identity: &str) -> Result<()> {
    let what = format!("the lease is held by {identity}");
    wait_until(&what, TIMEOUT, || async {
        let now = holder(client, ns).await?;
        Ok((now.as_deref() == Some(identity)).then_some(()))
    })
    .await
}

#[tokio::test]
async fn only_the_lease_holder_acts_and_a_standby_takes_over_a_run_when_it_dies() -> Result<()> {
    let Some(t) = Harness::without_controllers("ops-leader").await? else {
        return Ok(());
    };
    let (cp, client, ns) = (t.cp, &t.client, &t.ns);

    let mut first = Replica::start(cp.config(), ns, "replica-a");
    wait_for_holder(client, ns, &first.identity).await?;
    let second = Replica::start(cp.config(), ns, "replica-b");

    // The first step outlives the leader: the standby must pick it up where it was.
    let modules = json!([
        bash("slow", "sleep 4\necho '{\"n\": 1}' > result.json"),
        bash("after", "echo '{\"n\": 2}' > result.json"),
    ]);
    flow_and_run(&t, "handover", modules).await?;
    wait_until("the leader starts a Job", TIMEOUT, || async {
        Ok((!t.jobs("handover-1").await?.is_empty()).then_some(()))
    })
    .await?;
    // The Job came from the leader; the standby, ready all along, did nothing.
    until("the leader counts its reconciles", || {
        first.reconciles() > 0.0
    })
    .await?;
    assert!(first.leading());
    assert!(!second.leading());
    assert_eq!(second.reconciles(), 0.0);
    assert!(second.ready.get(), "a standby is ready");
    assert_eq!(holder(client, ns).await?.as_deref(), Some("replica-a"));

    first.kill();
    wait_for_holder(client, ns, &second.identity).await?;
    let run = t.run_ended("handover-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"n": 2})));
    // A reconcile is counted once it returns, just after it wrote the status.
    until("the new leader counts its reconciles", || {
        second.reconciles() > 0.0
    })
    .await?;
    assert!(second.leading());
    // Each step ran once: the new leader did not start the running step again.
    let executions = t.executions();
    assert_eq!(executions.len(), 2, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}

/// Two replicas of the real command: the leader's processes are killed mid-run (SIGKILL, nothing
/// released), the standby takes the lease over and finishes the run, and no step runs twice.
#[tokio::test]
async fn two_replica_processes_hand_a_run_over_when_the_leader_is_killed() -> Result<()> {
    let Some(t) = Harness::without_controllers("ops-replicas").await? else {
        return Ok(());
    };
    let (client, ns) = (&t.client, &t.ns);
    let mut replicas = [
        replica::Replica::start(t.cp, ns, "controller-a", 4, 2)?,
        replica::Replica::start(t.cp, ns, "controller-b", 4, 2)?,
    ];
    let leader = wait_until("a replica holds the lease", TIMEOUT, || async {
        replica::holder(client, ns).await
    })
    .await?;
    let (leading, standby) = if leader == replicas[0].identity {
        (0, 1)
    } else {
        (1, 0)
    };
    let gauges = wait_until(
        "both replicas serve their leader gauge",
        TIMEOUT,
        || async {
            let leader = replicas[leading].leader_gauge().await.ok().flatten();
            let standby = replicas[standby].leader_gauge().await.ok().flatten();
            Ok(leader.zip(standby).filter(|(leader, _)| *leader == 1.0))
        },
    )
    .await;
    let gauges = gauges.with_context(|| replicas[leading].log())?;
    assert_eq!(gauges, (1.0, 0.0), "1 on the leader, 0 on the standby");

    let steps = 5;
    let modules: Vec<Value> = (1..=steps)
        .map(|n| {
            bash(
                &format!("s{n}"),
                &format!("sleep 1\necho '{{\"n\": {n}}}' > result.json"),
            )
        })
        .collect();
    flow_and_run(&t, "relay", json!(modules)).await?;
    wait_until("the leader has started two steps", TIMEOUT, || async {
        Ok((t.jobs("relay-1").await?.len() >= 2).then_some(()))
    })
    .await?;
    replicas[leading].kill()?;

    wait_for_holder(client, ns, &replicas[standby].identity).await?;
    let run = t.run_ended("relay-1").await?;
    let status = run.status.context("status")?;
    let log = replicas[standby].log();
    assert_eq!(
        status.phase,
        Some(RunPhase::Succeeded),
        "{status:#?}\n{log}"
    );
    assert_eq!(status.result, Some(json!({"n": steps})));
    assert_eq!(replicas[standby].leader_gauge().await?, Some(1.0));
    let executions = t.executions();
    assert_eq!(executions.len(), steps, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}

#[test]
fn the_command_refuses_leader_election_without_a_lease_namespace_and_zero_rates_or_limits()
-> Result<()> {
    let refusal = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
            .arg("controller")
            .args(args)
            .env_remove("POD_NAMESPACE")
            .output()?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        Ok(String::from_utf8(out.stderr)?)
    };
    let stderr = refusal(&["--leader-elect"])?;
    assert!(stderr.contains("--lease-namespace"), "{stderr}");
    let stderr = refusal(&["--kube-qps", "0"])?;
    assert!(stderr.contains("--kube-qps 0"), "{stderr}");
    let stderr = refusal(&["--expression-workers", "0"])?;
    assert!(stderr.contains("--expression-workers 0"), "{stderr}");
    Ok(())
}

/// `millrace controller` as a pod runs it: elected through the Lease named by its flags, serving
/// its endpoint, running a flow, and releasing the Lease when Kubernetes stops it (SIGTERM).
#[tokio::test]
async fn the_command_leads_through_its_lease_serves_probes_and_releases_the_lease_on_sigterm()
-> Result<()> {
    let Some(t) = Harness::without_controllers("ops-command").await? else {
        return Ok(());
    };
    let (client, ns) = (&t.client, &t.ns);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    t.cp.write_kubeconfig(&kubeconfig, ns)?;
    let log = tempfile::NamedTempFile::new()?;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_millrace"));
    command
        .args(["controller", "--namespace", ns, "--leader-elect"])
        .args([
            "--lease-duration-seconds",
            "3",
            "--lease-renew-before-seconds",
            "2",
        ])
        .args(["--metrics-addr", &addr.to_string(), "--kube-qps", "20"])
        .args([
            "--expression-timeout-ms",
            "3000",
            "--expression-workers",
            "1",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", ns)
        .env("POD_NAME", "controller-0")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen()?);
    support::cluster::process::isolate(&mut command);
    let mut controller = command.spawn()?;

    wait_for_holder(client, ns, "controller-0").await?;
    let ready = wait_until("/readyz answers 200", TIMEOUT, || async {
        Ok(matches!(get(addr, "/readyz").await, Ok((200, _))).then_some(()))
    })
    .await;
    if let Err(e) = ready {
        return Err(e.context(std::fs::read_to_string(log.path())?));
    }
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    flow_and_run(&t, "hello", json!([bash("hello", "echo '\"hi\"'")])).await?;
    let run = t.run_ended("hello-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let (_, text) = get(addr, "/metrics").await?;
    assert_eq!(sample(&text, "millrace_leader"), Some(1.0), "{text}");

    support::cluster::process::signal_group(controller.id(), libc::SIGTERM);
    let exit = tokio::task::spawn_blocking(move || controller.wait()).await??;
    let log = std::fs::read_to_string(log.path())?;
    assert!(exit.success(), "{exit}: {log}");
    assert_eq!(holder(client, ns).await?, None, "released on exit");
    Ok(())
}

/// The chart's RBAC is enough for the lease manager: its ServiceAccount takes, renews and releases
/// the Lease that the chart's flags name.
#[tokio::test]
async fn with_the_charts_service_account_the_operator_holds_and_releases_its_lease() -> Result<()> {
    let Some(t) = Harness::without_controllers("ops-chart").await? else {
        return Ok(());
    };
    let (cp, admin, ns) = (t.cp, &t.client, &t.ns);
    let Some(objects) = support::chart::render("millrace", ns, &[])? else {
        return Ok(());
    };
    support::manifests::apply(admin, &objects, "millrace-test").await?;
    let account = support::chart::operator_account(&objects)?;
    let operator = support::accounts::client_as(cp, ns, &account).await?;

    let metrics = Arc::new(Metrics::default());
    let lease = Lease {
        duration: Duration::from_secs(3),
        renew_before: Duration::from_secs(2),
        ..Lease::new("millrace-controller", ns, "operator-0")
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let elected = tokio::spawn(leader::run(
        operator,
        config(ns, &metrics, &Readiness::default()),
        sandbox(),
        lease,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for_holder(admin, ns, "operator-0").await?;
    until("the controllers run", || {
        sample(&metrics.render(), "millrace_leader") == Some(1.0)
    })
    .await?;
    // Past a renewal or two, it still holds the lease.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(holder(admin, ns).await?.as_deref(), Some("operator-0"));

    drop(stop);
    assert_eq!(elected.await??, leader::Ended::Shutdown);
    assert_eq!(holder(admin, ns).await?, None, "released at shutdown");
    Ok(())
}
