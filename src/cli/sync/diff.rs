//! `millrace sync diff`: the revision a GitSource follows, read as its controller reads it (with
//! its Secret, through the caller's own rights), against the objects of its namespace; every
//! object it would write is dry-run on the API server.

use super::{DiffArgs, located};
use crate::cli::Invalid;
use crate::cli::cluster::{Cluster, block_on};
use crate::expr::InProcess;
use crate::gitsync::SyncObject;
use crate::gitsync::changes::{Changes, Live, changes, desired, differences};
use crate::gitsync::cluster::{self, Read};
use crate::gitsync::plan::FileError;
use crate::k8s::api::GitSource;
use kube::Api;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;

pub fn diff(args: DiffArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let ns = cluster.namespace.clone();
        let sources: Api<GitSource> = Api::namespaced(cluster.client.clone(), &ns);
        let source = sources
            .get_opt(&args.name)
            .await
            .map_err(|e| cluster.api_error("read", "GitSource", &args.name, e))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "GitSource \"{}\" not found in namespace \"{ns}\" (list them with `kubectl get gitsources -n {ns}`, or pass --namespace)",
                    args.name
                )
            })?;
        let live = cluster::list_live(&cluster.client, &ns)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot list the Flows, Scripts and Schedules of namespace {ns}: {e}"
                )
            })?;
        let cache = tempfile::Builder::new()
            .prefix("millrace-sync-")
            .tempdir()
            .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
        let read = cluster::read(
            &cluster.client,
            &source,
            cache.path().join("repository"),
            Arc::new(InProcess::default()),
            cluster::flow_names(&live),
        )
        .await
        .map_err(|e| anyhow::anyhow!("GitSource {}: {e}", args.name))?;
        let inventory = source.status.clone().unwrap_or_default().inventory;
        let found = changes(&read.plan.objects, &live, &inventory, &args.name);
        let mut errors = read.plan.errors.clone();
        errors.extend(found.conflicts.iter().cloned());
        if errors.is_empty() {
            let writes = found.create.iter().chain(&found.update);
            let writing: Vec<&SyncObject> = writes.map(|&i| &read.plan.objects[i]).collect();
            let refused = cluster::refusals(&cluster.client, &ns, &args.name, &writing)
                .await
                .map_err(|e| anyhow::anyhow!("cannot dry-run the revision's objects: {e}"))?;
            errors.extend(refused);
        }
        let report = Report {
            read: &read,
            changes: &found,
            live: &live,
            source: &args.name,
            prune: source.spec.prune,
            errors: &errors,
        };
        if args.json {
            println!("{:#}", report.to_json());
        } else {
            print!("{}", report.human());
        }
        Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    })
}

struct Report<'a> {
    read: &'a Read,
    changes: &'a Changes,
    live: &'a [Live],
    source: &'a str,
    prune: bool,
    errors: &'a [FileError],
}

impl Report<'_> {
    fn object(&self, index: usize) -> &SyncObject {
        &self.read.plan.objects[index]
    }

    /// The fields an update changes.
    fn fields(&self, index: usize) -> Vec<String> {
        let object = self.object(index);
        self.live
            .iter()
            .find(|l| l.kind == object.kind && l.name == object.name)
            .map(|l| differences(&l.object, &desired(object, self.source)))
            .unwrap_or_default()
    }

    fn entry(&self, index: usize) -> Value {
        let object = self.object(index);
        json!({"kind": object.kind.as_str(), "name": object.name, "file": object.file})
    }

    fn to_json(&self) -> Value {
        let entries =
            |indexes: &[usize]| -> Vec<Value> { indexes.iter().map(|&i| self.entry(i)).collect() };
        let update: Vec<Value> = self
            .changes
            .update
            .iter()
            .map(|&i| {
                let mut entry = self.entry(i);
                entry["fields"] = json!(self.fields(i));
                entry
            })
            .collect();
        let prune: Vec<Value> = if self.prune {
            self.changes
                .prune
                .iter()
                .map(|e| json!({"kind": e.kind, "name": e.name}))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "revision": self.read.revision,
            "create": entries(&self.changes.create),
            "update": update,
            "prune": prune,
            "unchanged": entries(&self.changes.unchanged),
            "errors": self.errors,
        })
    }

    fn human(&self) -> String {
        let mut out = String::new();
        let line = |verb: &str, index: usize| {
            let object = self.object(index);
            format!(
                "{verb:<9} {} {}  ({})",
                object.kind.as_str(),
                object.name,
                object.file
            )
        };
        for &index in &self.changes.create {
            out.push_str(&format!("{}\n", line("create", index)));
        }
        for &index in &self.changes.update {
            let fields = self.fields(index).join(", ");
            out.push_str(&format!("{}: {fields}\n", line("update", index)));
        }
        for entry in &self.changes.prune {
            let verb = if self.prune { "prune" } else { "keep" };
            let why = if self.prune {
                ""
            } else {
                "  (not in the revision; spec.prune is false)"
            };
            out.push_str(&format!("{verb:<9} {} {}{why}\n", entry.kind, entry.name));
        }
        for &index in &self.changes.unchanged {
            out.push_str(&format!("{}\n", line("unchanged", index)));
        }
        for error in self.errors {
            out.push_str(&format!(
                "error     {}: {}\n",
                located(&error.file, error.line),
                error.message
            ));
        }
        let pruned = if self.prune {
            self.changes.prune.len()
        } else {
            0
        };
        let verdict = if self.errors.is_empty() {
            format!(
                "{} to create, {} to update, {pruned} to prune, {} unchanged",
                self.changes.create.len(),
                self.changes.update.len(),
                self.changes.unchanged.len()
            )
        } else {
            format!(
                "{} error(s): the controller would apply nothing of this revision",
                self.errors.len()
            )
        };
        out.push_str(&format!("revision {}: {verdict}\n", self.read.revision));
        out
    }
}
