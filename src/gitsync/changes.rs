//! What a sync changes in the cluster: the revision's objects against the live ones and the
//! GitSource's inventory. Pure: the controller (and `millrace sync diff`) list the live objects
//! and act on what [`changes`] decides.
//!
//! An object is up to date when every field the revision sets has that value live: fields other
//! managers added are theirs (server-side apply leaves them too), so a sync of an unchanged
//! revision over unchanged objects writes nothing.

use super::objects::{Kind, SyncObject};
use super::plan::FileError;
use crate::k8s::api::gitsource::{FILE_ANNOTATION, InventoryEntry, SOURCE_LABEL};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A live object, as listed: its labels and the whole object.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub kind: Kind,
    pub name: String,
    pub object: Value,
}

impl Live {
    /// The GitSource that applied it, from its label.
    pub fn source(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(SOURCE_LABEL))
            .and_then(Value::as_str)
    }
}

/// What a sync does, each list in the order it is done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Objects of the revision that are not in the cluster (indexes into the objects given).
    pub create: Vec<usize>,
    /// Objects in the cluster with a field that differs from the revision.
    pub update: Vec<usize>,
    pub unchanged: Vec<usize>,
    /// Objects of the inventory the revision no longer has, still labelled as this GitSource's:
    /// Schedules first, so that none starts a run of a Flow being deleted. (Those gone already,
    /// or taken over by another GitSource, just leave the inventory.)
    pub prune: Vec<InventoryEntry>,
    /// Objects of the revision that another GitSource applied: never taken over.
    pub conflicts: Vec<FileError>,
}

/// The manifest a GitSource applies for `object`: the revision's, labelled with the source and
/// annotated with its file.
pub fn desired(object: &SyncObject, source: &str) -> Value {
    let mut manifest = object.manifest.clone();
    let metadata = &mut manifest["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    metadata["labels"][SOURCE_LABEL] = json!(source);
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][FILE_ANNOTATION] = json!(object.file);
    manifest
}

/// The inventory entry of an object.
pub fn entry(kind: Kind, name: &str) -> InventoryEntry {
    InventoryEntry {
        kind: kind.as_str().to_string(),
        name: name.to_string(),
    }
}

/// Compares the revision's `objects` (as [`desired`] makes them) with the `live` objects of the
/// namespace and the `inventory` of GitSource `source`.
pub fn changes(
    objects: &[SyncObject],
    live: &[Live],
    inventory: &[InventoryEntry],
    source: &str,
) -> Changes {
    let live: BTreeMap<(Kind, &str), &Live> = live
        .iter()
        .map(|object| ((object.kind, object.name.as_str()), object))
        .collect();
    let mut changes = Changes::default();
    let mut wanted = BTreeSet::new();
    for (index, object) in objects.iter().enumerate() {
        wanted.insert(entry(object.kind, &object.name));
        match live.get(&(object.kind, object.name.as_str())) {
            None => changes.create.push(index),
            Some(found) if found.source().is_some_and(|other| other != source) => {
                changes.conflicts.push(FileError::new(
                    &object.file,
                    object.line,
                    format!(
                        "{} {} is already synced by GitSource {}; a GitSource never takes over another's objects: remove it from one of the repositories",
                        object.kind.as_str(),
                        object.name,
                        found.source().unwrap_or_default()
                    ),
                ));
            }
            Some(found) if contains(&found.object, &desired(object, source)) => {
                changes.unchanged.push(index)
            }
            Some(_) => changes.update.push(index),
        }
    }
    let mut gone: Vec<InventoryEntry> = inventory
        .iter()
        .filter(|e| !wanted.contains(*e))
        .filter(|e| {
            Kind::from_name(&e.kind)
                .and_then(|kind| live.get(&(kind, e.name.as_str())))
                .is_some_and(|found| found.source() == Some(source))
        })
        .cloned()
        .collect();
    // Schedules, then Flows, then Scripts: the reverse of the order they are applied in.
    gone.sort_by_key(|e| std::cmp::Reverse(Kind::from_name(&e.kind)));
    changes.prune = gone;
    changes
}

/// Every field of `want` has the same value in `have` (which may have more). A `null` in `want`
/// asks for the field to be absent; numbers are compared as numbers.
pub fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => {
            want.iter().all(|(key, want)| match have.get(key) {
                Some(have) => contains(have, want),
                None => want.is_null(),
            })
        }
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| contains(h, w))
        }
        (Value::Number(have), Value::Number(want)) => have.as_f64() == want.as_f64(),
        (have, want) => have == want,
    }
}

/// The paths of the fields where `want` differs from `have`, for `sync diff` (`spec.schedule`,
/// `spec.value.modules[0]`).
pub fn differences(have: &Value, want: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(have, want, String::new(), &mut paths);
    paths
}

fn walk(have: &Value, want: &Value, at: String, paths: &mut Vec<String>) {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => {
            for (key, want) in want {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match have.get(key) {
                    Some(have) => walk(have, want, path, paths),
                    None if want.is_null() => {}
                    None => paths.push(path),
                }
            }
        }
        (have, want) if contains(have, want) => {}
        _ => paths.push(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::gitsync::objects::fixture as object;

    /// The object as the API server would list it after applying it: defaults and server fields
    /// added.
    fn applied(object: &SyncObject, source: &str) -> Live {
        let mut live = desired(object, source);
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["resourceVersion"] = json!("7");
        live["spec"]["timeZone"] = json!("UTC");
        live["status"] = json!({"conditions": []});
        Live {
            kind: object.kind,
            name: object.name.clone(),
            object: live,
        }
    }

    #[test]
    fn an_unchanged_revision_over_unchanged_objects_changes_nothing() {
        let objects = [
            object(
                Kind::Flow,
                "a",
                json!({"value": {"modules": [{"id": "x"}]}}),
            ),
            object(
                Kind::Schedule,
                "s",
                json!({"schedule": "0 * * * *", "retries": 1}),
            ),
        ];
        let live: Vec<Live> = objects.iter().map(|o| applied(o, "repo")).collect();
        let inventory = [entry(Kind::Flow, "a"), entry(Kind::Schedule, "s")];
        let changes = changes(&objects, &live, &inventory, "repo");
        assert!(
            changes.create.is_empty() && changes.update.is_empty() && changes.prune.is_empty(),
            "{changes:?}"
        );
        assert_eq!(changes.unchanged, [0, 1]);
    }

    #[test]
    fn hand_edits_of_synced_fields_are_updates_and_added_fields_are_left_alone() {
        let objects = [
            object(Kind::Flow, "a", json!({"summary": "git"})),
            object(Kind::Flow, "b", json!({"summary": "git"})),
        ];
        let mut live: Vec<Live> = objects.iter().map(|o| applied(o, "repo")).collect();
        live[0].object["spec"]["summary"] = json!("edited by hand");
        live[1].object["spec"]["description"] = json!("added by hand");
        let changes = changes(&objects, &live, &[], "repo");
        assert_eq!(changes.update, [0]);
        assert_eq!(changes.unchanged, [1]);
        assert_eq!(
            differences(&live[0].object, &desired(&objects[0], "repo")),
            ["spec.summary"]
        );
    }

    #[test]
    fn new_objects_are_created_and_old_ones_pruned_schedules_first() {
        let objects = [object(Kind::Flow, "new", json!({}))];
        let old = [
            object(Kind::Script, "old-script", json!({})),
            object(Kind::Flow, "old-flow", json!({})),
            object(Kind::Schedule, "old-schedule", json!({})),
        ];
        let live: Vec<Live> = old.iter().map(|o| applied(o, "repo")).collect();
        let inventory: Vec<_> = old.iter().map(|o| entry(o.kind, &o.name)).collect();
        let changes = changes(&objects, &live, &inventory, "repo");
        assert_eq!(changes.create, [0]);
        let pruned: Vec<_> = changes.prune.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(pruned, ["Schedule", "Flow", "Script"]);
    }

    #[test]
    fn objects_of_another_source_are_neither_taken_over_nor_pruned() {
        let objects = [object(Kind::Flow, "shared", json!({}))];
        let theirs = [
            applied(&objects[0], "other"),
            applied(&object(Kind::Flow, "was-ours", json!({})), "other"),
        ];
        let inventory = [entry(Kind::Flow, "was-ours"), entry(Kind::Flow, "deleted")];
        let changes = changes(&objects, &theirs, &inventory, "repo");
        assert!(changes.create.is_empty() && changes.update.is_empty());
        assert_eq!(changes.conflicts.len(), 1);
        assert!(changes.conflicts[0].message.contains("GitSource other"));
        assert!(changes.prune.is_empty());
    }

    #[test]
    fn an_unlabelled_object_of_the_same_name_is_adopted() {
        let objects = [object(Kind::Flow, "a", json!({"summary": "git"}))];
        let mut live = applied(&objects[0], "repo");
        live.object["metadata"]["labels"] = json!({});
        let changes = changes(&objects, &[live], &[], "repo");
        assert_eq!(changes.update, [0]);
    }

    #[test]
    fn contains_reads_numbers_as_numbers_and_null_as_absent() {
        assert!(contains(&json!({"a": 1.0}), &json!({"a": 1})));
        assert!(contains(&json!({}), &json!({"a": null})));
        assert!(!contains(&json!({"a": [1, 2]}), &json!({"a": [1]})));
        assert!(!contains(&json!({"a": "x"}), &json!({"a": "y"})));
    }
}
