//! What a sync of one revision would do: the objects it applies, the files it ignores and every
//! problem found. Pure: [`plan`] orders and cross-checks what the earlier steps produced.

use super::objects::SyncObject;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A problem with one file (and the line, when known). Any error keeps the whole revision from
/// being applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileError {
    /// Path from the repository root.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl FileError {
    pub fn new(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        FileError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

/// A file a sync does not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ignored {
    pub file: String,
    pub reason: String,
}

impl Ignored {
    pub fn new(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Ignored {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// The outcome of reading one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The commit sha.
    pub revision: String,
    /// In the order a sync applies them: Scripts, Flows, Schedules; by name within a kind.
    pub objects: Vec<SyncObject>,
    pub ignored: Vec<Ignored>,
    /// Every problem found, by file and line.
    pub errors: Vec<FileError>,
    /// What was not checked here and must hold in the cluster (references to objects that are
    /// not in this revision). Not errors.
    pub notes: Vec<FileError>,
}

impl Plan {
    /// True when the revision can be applied: no file has an error.
    pub fn would_apply(&self) -> bool {
        self.errors.is_empty()
    }

    /// `{"revision", "objects": [{apiVersion, kind, name, namespace?, file}], "ignored": [file],
    /// "errors": [{file, line?, message}]}`, the shape `millrace sync plan --json` prints.
    pub fn to_json(&self) -> Value {
        let objects: Vec<Value> = self
            .objects
            .iter()
            .map(|object| {
                let mut entry = json!({
                    "apiVersion": super::objects::API_VERSION,
                    "kind": object.kind.as_str(),
                    "name": object.name,
                });
                if let Some(namespace) = &object.namespace {
                    entry["namespace"] = json!(namespace);
                }
                entry["file"] = json!(object.file);
                entry
            })
            .collect();
        let ignored: Vec<&str> = self.ignored.iter().map(|i| i.file.as_str()).collect();
        json!({
            "revision": self.revision,
            "objects": objects,
            "ignored": ignored,
            "errors": self.errors,
        })
    }
}

/// Orders everything and adds the errors only the whole revision shows: two files making the
/// same object, or two objects of a kind claiming the same Windmill path.
pub fn plan(
    revision: &str,
    mut objects: Vec<SyncObject>,
    mut ignored: Vec<Ignored>,
    mut errors: Vec<FileError>,
    mut notes: Vec<FileError>,
) -> Plan {
    objects.sort_by(|a, b| (a.kind, &a.name, &a.file).cmp(&(b.kind, &b.name, &b.file)));
    errors.extend(same_name(&objects));
    errors.extend(same_path(&objects));
    errors.sort();
    errors.dedup();
    ignored.sort();
    notes.sort();
    Plan {
        revision: revision.to_string(),
        objects,
        ignored,
        errors,
        notes,
    }
}

fn where_(object: &SyncObject) -> String {
    match object.line {
        Some(line) => format!("{}:{line}", object.file),
        None => object.file.clone(),
    }
}

fn same_name(objects: &[SyncObject]) -> Vec<FileError> {
    let mut first: BTreeMap<(_, &str), &SyncObject> = BTreeMap::new();
    let mut errors = Vec::new();
    for object in objects {
        match first.get(&(object.kind, object.name.as_str())) {
            None => {
                first.insert((object.kind, &object.name), object);
            }
            Some(earlier) => errors.push(FileError::new(
                &object.file,
                object.line,
                format!(
                    "{kind} {name} is also made by {other}; rename one of them (a name is unique per kind)",
                    kind = object.kind.as_str(),
                    name = object.name,
                    other = where_(earlier),
                ),
            )),
        }
    }
    errors
}

fn same_path(objects: &[SyncObject]) -> Vec<FileError> {
    let mut first: BTreeMap<(_, &str), &SyncObject> = BTreeMap::new();
    let mut errors = Vec::new();
    for object in objects {
        let Some(path) = object.windmill_path() else {
            continue;
        };
        match first.get(&(object.kind, path)) {
            None => {
                first.insert((object.kind, path), object);
            }
            Some(earlier) if earlier.name != object.name => errors.push(FileError::new(
                &object.file,
                object.line,
                format!(
                    "{kind} {name} and {kind} {other_name} ({other}) both have annotation {annotation}: {path}; keep it on one",
                    kind = object.kind.as_str(),
                    name = object.name,
                    other_name = earlier.name,
                    other = where_(earlier),
                    annotation = super::objects::PATH_ANNOTATION,
                ),
            )),
            Some(_) => {}
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitsync::objects::Kind;

    fn object(kind: Kind, name: &str, file: &str, path: Option<&str>) -> SyncObject {
        let mut manifest = json!({"apiVersion": "millrace.dev/v1alpha1", "kind": kind.as_str(),
            "metadata": {"name": name}, "spec": {}});
        if let Some(path) = path {
            manifest["metadata"]["annotations"] = json!({"millrace.dev/path": path});
        }
        SyncObject {
            kind,
            name: name.into(),
            namespace: None,
            file: file.into(),
            line: Some(1),
            manifest,
        }
    }

    #[test]
    fn orders_objects_for_applying_and_sorts_the_rest() {
        let plan = plan(
            "abc",
            vec![
                object(Kind::Schedule, "a", "s.yaml", None),
                object(Kind::Flow, "b", "f2.yaml", None),
                object(Kind::Flow, "a", "f1.yaml", None),
                object(Kind::Script, "z", "x.yaml", None),
            ],
            vec![
                Ignored::new("b.md", "not YAML"),
                Ignored::new("a.md", "not YAML"),
            ],
            vec![
                FileError::new("z.yaml", None, "bad"),
                FileError::new("a.yaml", Some(3), "bad"),
            ],
            Vec::new(),
        );
        let order: Vec<_> = plan
            .objects
            .iter()
            .map(|o| (o.kind, o.name.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (Kind::Script, "z"),
                (Kind::Flow, "a"),
                (Kind::Flow, "b"),
                (Kind::Schedule, "a")
            ]
        );
        assert_eq!(plan.ignored[0].file, "a.md");
        assert_eq!(plan.errors[0].file, "a.yaml");
        assert!(!plan.would_apply());
    }

    #[test]
    fn two_files_making_one_object_name_each_other() {
        let plan = plan(
            "abc",
            vec![
                object(Kind::Flow, "daily", "one.yaml", None),
                object(Kind::Flow, "daily", "two.yaml", None),
                object(Kind::Schedule, "daily", "three.yaml", None),
            ],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(plan.errors.len(), 1, "{:?}", plan.errors);
        assert_eq!(plan.errors[0].file, "two.yaml");
        assert!(
            plan.errors[0]
                .message
                .contains("Flow daily is also made by one.yaml:1"),
            "{}",
            plan.errors[0].message
        );
    }

    #[test]
    fn two_objects_claiming_one_path_are_an_error() {
        let plan = plan(
            "abc",
            vec![
                object(Kind::Flow, "a", "a.yaml", Some("f/x/y")),
                object(Kind::Flow, "b", "b.yaml", Some("f/x/y")),
                object(Kind::Script, "c", "c.yaml", Some("f/x/y")),
            ],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(plan.errors.len(), 1, "{:?}", plan.errors);
        assert!(plan.errors[0].message.contains("millrace.dev/path: f/x/y"));
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let mut flow = object(Kind::Flow, "a", "flows/a.yaml", None);
        flow.namespace = Some("team".into());
        let plan = plan(
            "0123",
            vec![flow, object(Kind::Script, "s", "s.yaml", None)],
            vec![Ignored::new("README.md", "not YAML")],
            vec![
                FileError::new("x.yaml", Some(2), "bad"),
                FileError::new("y.yaml", None, "worse"),
            ],
            Vec::new(),
        );
        assert_eq!(
            plan.to_json(),
            json!({
                "revision": "0123",
                "objects": [
                    {"apiVersion": "millrace.dev/v1alpha1", "kind": "Script", "name": "s", "file": "s.yaml"},
                    {"apiVersion": "millrace.dev/v1alpha1", "kind": "Flow", "name": "a", "namespace": "team", "file": "flows/a.yaml"},
                ],
                "ignored": ["README.md"],
                "errors": [
                    {"file": "x.yaml", "line": 2, "message": "bad"},
                    {"file": "y.yaml", "message": "worse"},
                ],
            })
        );
    }
}
