//! `millrace sync now`: sets the annotation the GitSource controller syncs on at once, and with
//! `--wait` watches the GitSource until the controller has answered it.

use super::NowArgs;
use crate::cli::Invalid;
use crate::cli::cluster::{Cluster, block_on};
use crate::k8s::api::GitSource;
use crate::k8s::api::gitsource::REQUESTED_AT_ANNOTATION;
use chrono::{DateTime, SecondsFormat, Utc};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

pub fn now(args: NowArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let sources: Api<GitSource> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let requested = DateTime::<Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(SecondsFormat::Nanos, true);
        let patch = json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: requested}}});
        sources
            .patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| cluster.api_error("annotate", "GitSource", &args.name, e))?;
        if !args.wait {
            println!("sync of GitSource {} requested at {requested}", args.name);
            return Ok(ExitCode::SUCCESS);
        }
        let answered = |source: Option<&GitSource>| {
            source
                .and_then(|s| s.status.as_ref())
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(requested.as_str())
        };
        let waited = tokio::time::timeout(
            Duration::from_secs(args.timeout),
            await_condition(sources, &args.name, answered),
        )
        .await;
        let source: anyhow::Result<GitSource> = match waited {
            Ok(Ok(Some(source))) => Ok(source),
            Ok(Ok(None)) => Err(anyhow::anyhow!(
                "GitSource {} was deleted while waiting",
                args.name
            )),
            Ok(Err(error)) => Err(anyhow::anyhow!(
                "cannot watch GitSource {}: {error}",
                args.name
            )),
            Err(_) => Err(anyhow::anyhow!(
                "GitSource {} was not synced within {}s: is the operator running, and is the GitSource suspended? (`kubectl describe gitsource {} -n {}`)",
                args.name,
                args.timeout,
                args.name,
                cluster.namespace
            )),
        };
        let source = source?;
        let ready = source
            .status
            .iter()
            .flat_map(|s| &s.conditions)
            .find(|c| c.type_ == "Ready");
        match ready {
            Some(ready) if ready.status == "True" => {
                println!("{}", ready.message);
                Ok(ExitCode::SUCCESS)
            }
            Some(ready) => {
                println!("{}: {}", ready.reason, ready.message);
                Ok(ExitCode::from(2))
            }
            None => {
                println!("synced; no Ready condition yet");
                Ok(ExitCode::from(2))
            }
        }
    })
}
