//! `millrace submit`, `status`, `logs`, `approve` and `cancel`: FlowRuns on a cluster, from the
//! command line. The client comes from KUBECONFIG (or in-cluster), the namespace from `--namespace`
//! or the kubeconfig context.

mod approve;
mod logs;
mod refs;
mod status;
mod submit;

use super::Invalid;
use crate::k8s::api::FlowRun;
use clap::Args;
use kube::{Api, Client};
use std::process::ExitCode;

pub use approve::{approve, cancel};
pub use logs::logs;
pub use status::status;
pub use submit::submit;

/// Where the FlowRun (or Schedule) lives.
#[derive(Args)]
pub struct Target {
    /// The namespace [default: the kubeconfig context's namespace].
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
}

#[derive(Args)]
pub struct SubmitArgs {
    /// The name of a Flow in the namespace, or a flow file (YAML/JSON), a Millrace `Flow`
    /// manifest or a Windmill `name.flow/` folder, sent inline in the FlowRun.
    flow: String,
    /// One flow input; VALUE is parsed as JSON when it parses, else taken as a string.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    input: Vec<String>,
    /// All flow inputs as a JSON object, or @FILE (JSON or YAML); --input values win.
    #[arg(long, value_name = "JSON|@FILE")]
    inputs: Option<String>,
    /// The FlowRun's name [default: the flow's name and a random suffix].
    #[arg(long)]
    name: Option<String>,
    /// Follow the run to its end: print its result (exit 0) or its error (exit 1).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The FlowRun's name.
    run: String,
    /// Print the FlowRun's status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The FlowRun's name.
    run: String,
    /// Only this step: its path as in `millrace status` (like `loop_a[3]/b`), or its id (every
    /// iteration of a step inside a loop).
    step: Option<String>,
    /// Only this attempt of each step.
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct ApproveArgs {
    /// The FlowRun's name.
    run: String,
    /// The suspended step's path [default: the one suspended step].
    #[arg(long, value_name = "PATH")]
    step: Option<String>,
    /// What later steps see as `resume`: JSON, or @FILE (JSON or YAML).
    #[arg(long, value_name = "JSON|@FILE")]
    payload: Option<String>,
    /// Deny instead of approve: the suspended step fails.
    #[arg(long)]
    reject: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct CancelArgs {
    /// The FlowRun's name.
    run: String,
    #[command(flatten)]
    target: Target,
}

/// A client and the namespace to work in.
pub(in crate::cli) struct Cluster {
    pub(in crate::cli) client: Client,
    pub(in crate::cli) namespace: String,
}

impl Cluster {
    pub(in crate::cli) async fn connect(target: &Target) -> anyhow::Result<Cluster> {
        let config = kube::Config::infer().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot find a Kubernetes cluster: {e} (set KUBECONFIG or run inside a cluster)"
            )
        })?;
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| anyhow::anyhow!("cannot create a Kubernetes client: {e}"))?;
        Ok(Cluster { client, namespace })
    }

    pub(in crate::cli) fn runs(&self) -> Api<FlowRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The FlowRun `name`, or an error that says where it was looked for.
    async fn run(&self, name: &str) -> anyhow::Result<FlowRun> {
        self.runs()
            .get_opt(name)
            .await
            .map_err(|e| self.api_error("read", "FlowRun", name, e))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "FlowRun \"{name}\" not found in namespace \"{}\" (list them with `kubectl get flowruns -n {}`, or pass --namespace)",
                    self.namespace,
                    self.namespace
                )
            })
    }

    /// An API failure naming the object and, for the usual causes, what to do.
    pub(in crate::cli) fn api_error(
        &self,
        verb: &str,
        kind: &str,
        name: &str,
        error: kube::Error,
    ) -> anyhow::Error {
        let hint = match &error {
            kube::Error::Api(status) if status.code == 403 => {
                " (your account lacks the permission: ask for RBAC access to it)"
            }
            kube::Error::Api(status) if status.code == 409 && verb == "create" => {
                " (choose another name, or delete the old one first)"
            }
            kube::Error::Api(status)
                if status.code == 404 && matches!(kind, "FlowRun" | "Schedule" | "GitSource") =>
            {
                " (are the Millrace CRDs installed? `millrace crds | kubectl apply -f -`)"
            }
            _ => "",
        };
        anyhow::anyhow!(
            "cannot {verb} {kind} \"{name}\" in namespace \"{}\": {error}{hint}",
            self.namespace
        )
    }
}

/// Runs an async command on a small runtime; a failure prints its error and exits 1.
pub(in crate::cli) fn block_on(
    command: impl std::future::Future<Output = Result<ExitCode, Failure>>,
) -> Result<ExitCode, Invalid> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Invalid::one(format!("cannot start the async runtime: {e}")))?;
    match runtime.block_on(command) {
        Ok(code) => Ok(code),
        Err(Failure::Invalid(invalid)) => Err(invalid),
        Err(Failure::Other(error)) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Wrong arguments (exit 2, nothing was done) or a failure on the way (exit 1).
pub(in crate::cli) enum Failure {
    Invalid(Invalid),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Other(error)
    }
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Failure {
        Failure::Invalid(invalid)
    }
}
