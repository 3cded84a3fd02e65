//! Running the operator: its metrics and health endpoint, and leader election between replicas,
//! on the real control plane with the pod runner playing the kubelet.

mod support;

use support::flows::{install_crds, run_ended, sandbox};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease as LeaseObject;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::{Flow, FlowRun};
use millrace::k8s::operator::health::{self, Readiness};
use millrace::k8s::operator::leader::{self, Lease};
use millrace::k8s::operator::metrics::Metrics;
use millrace::k8s::operator::throttle;
use millrace::k8s::operator::{self, Config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(90);

fn config(ns: &str, metrics: &Arc<Metrics>, ready: &Readiness) -> Config {
    Config {
        namespace: Some(ns.to_string()),
        resync: Duration::from_secs(5),
        metrics: metrics.clone(),
        ready: ready.clone(),
        ..Config::default()
    }
}

fn bash(id: &str, content: &str) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": "bash", "content": content, "input_transforms": {}}})
}

async fn create_flow_and_run(client: &Client, ns: &str, name: &str, modules: Value) -> Result<()> {
    let flow: Flow = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"summary": name, "value": {"modules": modules}},
    }))?;
    let run: FlowRun = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": format!("{name}-1")},
        "spec": {"flowRef": {"name": name}, "inputs": {}},
    }))?;
    Api::<Flow>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &flow)
        .await?;
    Api::<FlowRun>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &run)
        .await?;
    Ok(())
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
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("ops-metrics").await;
    let _runner = cp.pod_runner(&ns).await;
    let metrics = Arc::new(Metrics::default());
    let ready = Readiness::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(health::serve(listener, metrics.clone(), ready.clone()));
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    assert_eq!(get(addr, "/readyz").await?.0, 503, "nothing watches yet");

    // The controller's client is paced as in production, tighter.
    let paced = throttle::client(cp.config().clone(), 20.0, 5)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let controllers = tokio::spawn(operator::run_controllers(
        paced,
        config(&ns, &metrics, &ready),
        sandbox(),
        async move {
            let _ = stopped.await;
        },
    ));
    let modules = json!([bash("hello", "echo '{\"said\": \"hello\"}'")]);
    create_flow_and_run(&client, &ns, "hello", modules).await?;
    let run = run_ended(&client, &ns, "hello-1").await?;
    assert_eq!(
        run.status.as_ref().and_then(|s| s.phase),
        Some(RunPhase::Succeeded)
    );

    // The controller's cache sees the final status a moment after it was written.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let text = loop {
        let (code, text) = get(addr, "/metrics").await?;
        assert_eq!(code, 200);
        if sample(&text, "millrace_flowruns{phase=\"Succeeded\"}") == Some(1.0) {
            break text;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the run is not counted as Succeeded:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    assert_eq!(sample(&text, "millrace_leader"), Some(1.0));
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    assert_eq!(get(addr, "/readyz").await?.0, 200);

    drop(stop);
    controllers.await?;
    let (_, text) = get(addr, "/metrics").await?;
    assert_eq!(sample(&text, "millrace_leader"), Some(0.0), "{text}");
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
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn holder(client: &Client, ns: &str) -> Result<Option<String>> {
    let leases: Api<LeaseObject> = Api::namespaced(client.clone(), ns);
    let lease = leases.get_opt("millrace-controller").await?;
    Ok(lease.and_then(|l| l.spec?.holder_identity))
}

async fn wait_for_holder(client: &Client, ns: &str, identity: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let now = holder(client, ns).await?;
        if now.as_deref() == Some(identity) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the lease is held by {now:?}, not {identity}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_the_lease_holder_acts_and_a_standby_takes_over_a_run_when_it_dies() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("ops-leader").await;
    let runner = cp.pod_runner(&ns).await;

    let mut first = Replica::start(cp.config(), &ns, "replica-a");
    wait_for_holder(&client, &ns, &first.identity).await?;
    let second = Replica::start(cp.config(), &ns, "replica-b");

    // The first step outlives the leader: the standby must pick it up where it was.
    let modules = json!([
        bash("slow", "sleep 4\necho '{\"n\": 1}' > result.json"),
        bash("after", "echo '{\"n\": 2}' > result.json"),
    ]);
    create_flow_and_run(&client, &ns, "handover", modules).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while jobs.list(&ListParams::default()).await?.items.is_empty() {
        if tokio::time::Instant::now() > deadline {
            bail!("the leader started no Job");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The Job came from the leader; the standby, ready all along, did nothing.
    until("the leader counts its reconciles", || {
        first.reconciles() > 0.0
    })
    .await?;
    assert!(first.leading());
    assert!(!second.leading());
    assert_eq!(second.reconciles(), 0.0);
    assert!(second.ready.get(), "a standby is ready");
    assert_eq!(holder(&client, &ns).await?.as_deref(), Some("replica-a"));

    first.kill();
    wait_for_holder(&client, &ns, &second.identity).await?;
    let run = run_ended(&client, &ns, "handover-1").await?;
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
    let executions = runner.executions();
    assert_eq!(executions.len(), 2, "{executions:?}");
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    Ok(())
}

#[test]
fn the_command_refuses_leader_election_without_a_lease_namespace_and_a_zero_rate() -> Result<()> {
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
    Ok(())
}

/// `millrace controller` as a pod runs it: elected through the Lease named by its flags, serving
/// its endpoint, running a flow, and releasing the Lease when Kubernetes stops it (SIGTERM).
#[tokio::test]
async fn the_command_leads_through_its_lease_serves_probes_and_releases_the_lease_on_sigterm()
-> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace("ops-command").await;
    let _runner = cp.pod_runner(&ns).await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    cp.write_kubeconfig(&kubeconfig, &ns)?;
    let log = tempfile::NamedTempFile::new()?;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_millrace"));
    command
        .args(["controller", "--namespace", &ns, "--leader-elect"])
        .args([
            "--lease-duration-seconds",
            "3",
            "--lease-renew-before-seconds",
            "2",
        ])
        .args(["--metrics-addr", &addr.to_string(), "--kube-qps", "20"])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", &ns)
        .env("POD_NAME", "controller-0")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen()?);
    support::process::isolate(&mut command);
    let mut controller = command.spawn()?;

    wait_for_holder(&client, &ns, "controller-0").await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !matches!(get(addr, "/readyz").await, Ok((200, _))) {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "/readyz never answered 200: {}",
                std::fs::read_to_string(log.path())?
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    create_flow_and_run(
        &client,
        &ns,
        "hello",
        json!([bash("hello", "echo '\"hi\"'")]),
    )
    .await?;
    let run = run_ended(&client, &ns, "hello-1").await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let (_, text) = get(addr, "/metrics").await?;
    assert_eq!(sample(&text, "millrace_leader"), Some(1.0), "{text}");

    support::process::signal_group(controller.id(), libc::SIGTERM);
    let exit = tokio::task::spawn_blocking(move || controller.wait()).await??;
    let log = std::fs::read_to_string(log.path())?;
    assert!(exit.success(), "{exit}: {log}");
    assert_eq!(holder(&client, &ns).await?, None, "released on exit");
    Ok(())
}

/// The chart's RBAC is enough for the lease manager: its ServiceAccount takes, renews and releases
/// the Lease that the chart's flags name.
#[tokio::test]
async fn with_the_charts_service_account_the_operator_holds_and_releases_its_lease() -> Result<()> {
    let Some(cp) = support::control_plane().await else {
        return Ok(());
    };
    let admin = cp.client();
    install_crds(&admin).await?;
    let ns = cp.namespace("ops-chart").await;
    let Some(objects) = support::chart::render("millrace", &ns, &[])? else {
        return Ok(());
    };
    support::manifests::apply(&admin, &objects, "millrace-test").await?;
    let account = support::chart::operator_account(&objects)?;
    let operator = support::accounts::client_as(cp, &ns, &account).await?;

    let metrics = Arc::new(Metrics::default());
    let lease = Lease {
        duration: Duration::from_secs(3),
        renew_before: Duration::from_secs(2),
        ..Lease::new("millrace-controller", &ns, "operator-0")
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let elected = tokio::spawn(leader::run(
        operator,
        config(&ns, &metrics, &Readiness::default()),
        sandbox(),
        lease,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for_holder(&admin, &ns, "operator-0").await?;
    until("the controllers run", || {
        sample(&metrics.render(), "millrace_leader") == Some(1.0)
    })
    .await?;
    // Past a renewal or two, it still holds the lease.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(holder(&admin, &ns).await?.as_deref(), Some("operator-0"));

    drop(stop);
    assert_eq!(elected.await??, leader::Ended::Shutdown);
    assert_eq!(holder(&admin, &ns).await?, None, "released at shutdown");
    Ok(())
}
