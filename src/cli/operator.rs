//! `millrace crds` and `millrace controller`: the Kubernetes side of the command line.

use super::Invalid;
use crate::expr::{Evaluator, Sandbox, SandboxConfig};
use crate::k8s::controller::{self, Config};
use crate::k8s::crdgen;
use crate::k8s::pod::PodDefaults;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into DIR (removing stale ones) instead of printing them.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
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
    /// Largest result a step may return.
    #[arg(long, value_name = "BYTES", default_value_t = PodDefaults::default().result_cap_bytes)]
    result_cap_bytes: u64,
    /// How long finished Jobs stay.
    #[arg(long, value_name = "SECONDS", default_value_t = PodDefaults::default().ttl_seconds_after_finished)]
    job_ttl_seconds: i32,
}

pub fn crds(args: CrdsArgs) -> Result<ExitCode, Invalid> {
    match args.out {
        Some(dir) => crdgen::write_dir(&dir)
            .map_err(|e| Invalid::one(format!("cannot write CRDs to {}: {e}", dir.display())))?,
        None => print!(
            "{}",
            crdgen::render_all().map_err(|e| Invalid::one(format!("cannot render CRDs: {e}")))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn controller(args: ControllerArgs) -> Result<ExitCode, Invalid> {
    let mut pods = PodDefaults {
        service_account: args.step_service_account,
        result_cap_bytes: args.result_cap_bytes,
        ttl_seconds_after_finished: args.job_ttl_seconds,
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
    let config = Config {
        pods,
        namespace: args.namespace,
        ..Config::default()
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let evaluator = SandboxConfig::current_exe()
        .map_err(|e| e.to_string())
        .and_then(|config| Sandbox::new(config).map_err(|e| e.to_string()))
        .map_err(|e| Invalid::one(format!("cannot start the expression sandbox: {e}")))?;
    let evaluator: Arc<dyn Evaluator> = Arc::new(evaluator);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Invalid::one(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|e| {
            Invalid::one(format!(
                "cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {e}"
            ))
        })?;
        tracing::info!("millrace controller started");
        controller::run(client, config, evaluator, shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
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
