//! Applying one revision: refuse it whole when any file or object has a problem (server-side
//! dry-run of everything it would write), else apply Scripts, Flows, Schedules in that order,
//! then prune what the revision no longer has.

use super::decide::Outcome;
use crate::gitsync::SyncObject;
use crate::gitsync::changes::{Changes, Live, changes, entry};
use crate::gitsync::cluster::{self, Read};
use crate::k8s::api::GitSource;
use crate::k8s::api::gitsource::InventoryEntry;
use kube::{Client, ResourceExt};
use std::collections::BTreeSet;

/// Syncs the revision `read` into the GitSource's namespace, whose objects are `live`.
pub async fn sync(client: &Client, source: &GitSource, read: &Read, live: &[Live]) -> Outcome {
    let ns = source.namespace().unwrap_or_default();
    let name = source.name_any();
    let revision = read.revision.clone();
    let previous: Vec<InventoryEntry> = source
        .status
        .as_ref()
        .map(|s| s.inventory.clone())
        .unwrap_or_default();
    if !read.plan.would_apply() {
        return Outcome::ValidationFailed {
            revision,
            errors: read.plan.errors.clone(),
        };
    }
    let objects = &read.plan.objects;
    let changes = changes(objects, live, &previous, &name);
    if !changes.conflicts.is_empty() {
        return Outcome::ValidationFailed {
            revision,
            errors: changes.conflicts,
        };
    }
    let writes = to_write(&changes);
    // Every object the API server would refuse, before anything is written.
    let writing: Vec<&SyncObject> = writes.iter().map(|&i| &objects[i]).collect();
    let refused = match cluster::refusals(client, &ns, &name, &writing).await {
        Ok(refused) => refused,
        Err(error) => {
            return Outcome::ApplyFailed {
                revision,
                message: format!("the dry-run of the revision's objects: {error}"),
                inventory: previous,
            };
        }
    };
    if !refused.is_empty() {
        return Outcome::ValidationFailed {
            revision,
            errors: refused,
        };
    }
    let mut applied: BTreeSet<InventoryEntry> = previous.iter().cloned().collect();
    for object in writing {
        if let Err(error) = cluster::apply(client, &ns, &name, object).await {
            return Outcome::ApplyFailed {
                revision,
                message: format!(
                    "{} {} ({}): {error}",
                    object.kind.as_str(),
                    object.name,
                    object.file
                ),
                inventory: applied.into_iter().collect(),
            };
        }
        applied.insert(entry(object.kind, &object.name));
    }
    let mut inventory: BTreeSet<InventoryEntry> =
        objects.iter().map(|o| entry(o.kind, &o.name)).collect();
    let mut unpruned = Vec::new();
    if source.spec.prune {
        for old in &changes.prune {
            if let Err(error) = cluster::delete(client, &ns, old).await {
                unpruned.push(format!("{} {}: {error}", old.kind, old.name));
                inventory.insert(old.clone());
            }
        }
    }
    Outcome::Synced {
        revision,
        inventory: inventory.into_iter().collect(),
        wrote: !writes.is_empty() || (source.spec.prune && !changes.prune.is_empty()),
        unpruned,
    }
}

/// The objects to write, in the plan's order (Scripts, Flows, Schedules).
fn to_write(changes: &Changes) -> Vec<usize> {
    let mut writes: Vec<usize> = changes
        .create
        .iter()
        .chain(&changes.update)
        .copied()
        .collect();
    writes.sort_unstable();
    writes
}
