//! `millrace crds` and `millrace controller`: the Kubernetes side of the command line.

use super::Invalid;
use crate::expr::{Evaluator, Sandbox, SandboxConfig};
use crate::k8s::api::crdgen;
use crate::k8s::operator::leader::{self, Ended, Lease};
use crate::k8s::operator::throttle;
use crate::k8s::operator::{self, Config};
use crate::k8s::operator::{Allowed, PodDefaults};
use crate::k8s::operator::{health, metrics::Metrics};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into DIR (removing stale ones) instead of printing them; repeat for
    /// several directories (`--out crds --out charts/millrace/crds`).
    #[arg(long, value_name = "DIR")]
    out: Vec<PathBuf>,
}

#[derive(Args)]
#[command(after_help = "The log level is set by RUST_LOG (default: info).")]
pub struct ControllerArgs {
    /// Watch only this namespace [default: all namespaces].
    #[arg(long, env = "MILLRACE_NAMESPACE")]
    namespace: Option<String>,
    /// Default image of a language's step pods, e.g. python3=python:3.12-slim (repeatable).
    #[arg(long = "image", value_name = "LANGUAGE=IMAGE")]
    images: Vec<String>,
    /// ServiceAccount of step pods when the Flow names none.
    #[arg(long, value_name = "NAME", env = "MILLRACE_STEP_SERVICE_ACCOUNT")]
    step_service_account: Option<String>,
    /// ServiceAccounts a Flow may name for its step pods (runtime.serviceAccountName), besides
    /// --step-service-account; a run naming another fails [default: none].
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    allowed_service_accounts: Vec<String>,
    /// Secrets a Flow may take step environment from (runtime.envFrom secretRef); a run naming
    /// another fails. An empty value allows none.
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        default_value = "millrace-variables,millrace-resources"
    )]
    allowed_secrets: Vec<String>,
    /// Largest result a step may return.
    #[arg(long, value_name = "BYTES", default_value_t = PodDefaults::default().result_cap_bytes)]
    result_cap_bytes: u64,
    /// How long a step's pod may stay uncreated (quota, admission) or unscheduled before the
    /// attempt fails (a Flow's `runtime.podPendingTimeoutSeconds` wins).
    #[arg(long, value_name = "SECONDS", default_value_t = PodDefaults::default().pod_pending_timeout.as_secs())]
    pod_pending_timeout_seconds: u64,
    /// How long finished Jobs stay.
    #[arg(long, value_name = "SECONDS", default_value_t = PodDefaults::default().ttl_seconds_after_finished)]
    job_ttl_seconds: i32,
    /// Where to serve GET /metrics (Prometheus text), /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Run the controllers only while holding a Lease, so that replicas can stand by.
    #[arg(long)]
    leader_elect: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, value_name = "NAME", default_value = "millrace-controller")]
    lease_name: String,
    /// Namespace of the Lease (required with --leader-elect). The identity is $POD_NAME, or the
    /// host name with a random suffix.
    #[arg(long, value_name = "NAMESPACE", env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long the Lease holds without renewal: the longest a standby waits after the leader died.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// The leader renews the Lease this long before it would expire.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    lease_renew_before_seconds: u64,
    /// Requests a second the Kubernetes client may send on average (client-side rate limit).
    #[arg(long, value_name = "F", default_value_t = 50.0)]
    kube_qps: f64,
    /// Requests the Kubernetes client may send at once before --kube-qps paces it.
    #[arg(long, value_name = "N", default_value_t = 100)]
    kube_burst: u32,
    /// Reconciles in flight per controller (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: u16,
    /// Wall-clock time one expression may take, waiting for a free expression worker included.
    #[arg(long, value_name = "MS", default_value_t = SandboxConfig::DEFAULT_TIMEOUT_MS)]
    expression_timeout_ms: u64,
    /// Memory one expression worker may allocate beyond its startup footprint.
    #[arg(long, value_name = "MIB", default_value_t = SandboxConfig::DEFAULT_MEMORY_MIB)]
    expression_memory_mib: u64,
    /// Expression worker processes: how many expressions are evaluated at once.
    #[arg(long, value_name = "N", default_value_t = SandboxConfig::DEFAULT_WORKERS)]
    expression_workers: usize,
    /// Where GitSources keep their repository caches (one bare repository each) [default: a
    /// directory under the temp dir].
    #[arg(long, value_name = "DIR", env = "MILLRACE_GIT_CACHE")]
    git_cache: Option<PathBuf>,
}

pub fn crds(args: CrdsArgs) -> Result<ExitCode, Invalid> {
    if args.out.is_empty() {
        print!(
            "{}",
            crdgen::render_all().map_err(|e| Invalid::one(format!("cannot render CRDs: {e}")))?
        );
    }
    for dir in &args.out {
        crdgen::write_dir(dir)
            .map_err(|e| Invalid::one(format!("cannot write CRDs to {}: {e}", dir.display())))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn controller(args: ControllerArgs) -> Result<ExitCode, Invalid> {
    let mut pods = PodDefaults {
        service_account: args.step_service_account,
        result_cap_bytes: args.result_cap_bytes,
        ttl_seconds_after_finished: args.job_ttl_seconds,
        pod_pending_timeout: Duration::from_secs(args.pod_pending_timeout_seconds),
        ..PodDefaults::default()
    };
    for image in &args.images {
        let (language, image) = image.split_once('=').ok_or_else(|| {
            Invalid::one(format!(
                "--image {image}: expected LANGUAGE=IMAGE, like python3=python:3.12-slim"
            ))
        })?;
        pods.images.insert(language.into(), image.into());
    }
    if !(args.kube_qps.is_finite() && args.kube_qps > 0.0) || args.kube_burst == 0 {
        return Err(Invalid::one(format!(
            "--kube-qps {} --kube-burst {}: both must be positive",
            args.kube_qps, args.kube_burst
        )));
    }
    if args.expression_timeout_ms == 0
        || args.expression_memory_mib == 0
        || args.expression_workers == 0
    {
        return Err(Invalid::one(format!(
            "--expression-timeout-ms {} --expression-memory-mib {} --expression-workers {}: all \
             must be positive",
            args.expression_timeout_ms, args.expression_memory_mib, args.expression_workers
        )));
    }
    let lease = match (args.leader_elect, args.lease_namespace) {
        (false, _) => None,
        (true, None) => {
            return Err(Invalid::one(
                "--leader-elect needs --lease-namespace (or POD_NAMESPACE): the namespace of the Lease",
            ));
        }
        (true, Some(namespace)) => Some(Lease {
            duration: Duration::from_secs(args.lease_duration_seconds),
            renew_before: Duration::from_secs(args.lease_renew_before_seconds),
            ..Lease::new(&args.lease_name, &namespace, &identity())
        }),
    };
    let config = Config {
        pods,
        allowed: allowed(args.allowed_service_accounts, args.allowed_secrets),
        namespace: args.namespace,
        concurrency: args.concurrency,
        metrics: Arc::new(Metrics::default()),
        git_cache: args
            .git_cache
            .unwrap_or_else(|| Config::default().git_cache),
        ..Config::default()
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let evaluator = SandboxConfig::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|config| {
            Sandbox::new(SandboxConfig {
                workers: args.expression_workers,
                timeout: Duration::from_millis(args.expression_timeout_ms),
                memory_mib: args.expression_memory_mib,
                ..config
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| Invalid::one(format!("cannot start the expression sandbox: {e}")))?;
    let evaluator: Arc<dyn Evaluator> = Arc::new(evaluator);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Invalid::one(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let unreachable = |e: &dyn std::fmt::Display| {
            Invalid::one(format!(
                "cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {e}"
            ))
        };
        let kube_config = kube::Config::infer().await.map_err(|e| unreachable(&e))?;
        let client = throttle::client(kube_config, args.kube_qps, args.kube_burst)
            .map_err(|e| unreachable(&e))?;
        let listener = tokio::net::TcpListener::bind(args.metrics_addr)
            .await
            .map_err(|e| {
                Invalid::one(format!(
                    "--metrics-addr {}: cannot listen there: {e}",
                    args.metrics_addr
                ))
            })?;
        tokio::spawn(health::serve(
            listener,
            config.metrics.clone(),
            config.ready.clone(),
        ));
        tracing::info!(metrics = %args.metrics_addr, "millrace controller started");
        let Some(lease) = lease else {
            operator::run_controllers(client, config, evaluator, shutdown_signal()).await;
            return Ok(ExitCode::SUCCESS);
        };
        match leader::run(client, config, evaluator, lease, shutdown_signal()).await {
            Ok(Ended::Shutdown) => Ok(ExitCode::SUCCESS),
            Ok(Ended::LeaseLost) => {
                // A restart brings this replica back as a standby with fresh caches.
                tracing::error!("the leader lease was lost: exiting so that the pod restarts");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(Invalid::one(e.to_string())),
        }
    })
}

/// What steps may use, from the flags' lists (an empty value allows none).
fn allowed(service_accounts: Vec<String>, secrets: Vec<String>) -> Allowed {
    let names = |names: Vec<String>| names.into_iter().filter(|n| !n.is_empty()).collect();
    Allowed {
        service_accounts: names(service_accounts),
        secrets: names(secrets),
    }
}

/// This replica's name in the Lease: the pod's name, else the host's with a random suffix (two
/// processes on one host must differ).
fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "millrace".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}

/// Ctrl-C or SIGTERM (what Kubernetes sends a pod being stopped).
async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
    // Leave a moment for reconciles in flight to finish writing.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parsed(flags: &[&str]) -> Allowed {
        let args =
            Command::parse_from(std::iter::once("controller").chain(flags.iter().copied())).args;
        allowed(args.allowed_service_accounts, args.allowed_secrets)
    }

    #[test]
    fn steps_may_use_the_millrace_secrets_and_no_other_account_unless_told() {
        assert_eq!(parsed(&[]), Allowed::default());
        let told = parsed(&[
            "--allowed-service-accounts",
            "reporter,mailer",
            "--allowed-secrets",
            "smtp",
        ]);
        assert_eq!(
            told.service_accounts,
            ["mailer".into(), "reporter".into()].into()
        );
        assert_eq!(told.secrets, ["smtp".into()].into());
        // What the chart passes for empty lists.
        let none = parsed(&["--allowed-service-accounts", "", "--allowed-secrets", ""]);
        assert!(none.service_accounts.is_empty() && none.secrets.is_empty());
    }
}
