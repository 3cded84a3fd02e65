//! The files of a revision turned into the objects a sync applies: Millrace manifests (YAML,
//! several documents per file allowed) and a Windmill workspace as `wmill sync pull` writes it
//! (flow folders, scripts with their `.script.yaml`, `.schedule.yaml` files). Files Millrace does
//! not use are ignored and listed; any other object is refused: a sync creates nothing else with
//! the operator's rights.

mod classify;
mod manifests;
mod schedule;
mod windmill;

use super::plan::{FileError, Ignored};
use classify::Role;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub use windmill::object_name;

/// The group and version of every object a sync applies.
pub const API_VERSION: &str = "millrace.dev/v1alpha1";
/// Annotation tying an object to its Windmill path (the operator finds Flows and Scripts by it).
pub use crate::k8s::api::paths::PATH_ANNOTATION;

/// The kinds a sync applies, in the order it applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Script,
    Flow,
    Schedule,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Script, Kind::Flow, Kind::Schedule];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Script => "Script",
            Kind::Flow => "Flow",
            Kind::Schedule => "Schedule",
        }
    }

    pub fn from_name(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// One object of the revision and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncObject {
    pub kind: Kind,
    pub name: String,
    /// The target namespace when one was given, else the manifest's own, if any.
    pub namespace: Option<String>,
    /// Path from the repository root.
    pub file: String,
    /// Where its document starts, for manifests.
    pub line: Option<usize>,
    /// The whole object: `apiVersion`, `kind`, `metadata`, `spec`.
    pub manifest: Value,
}

impl SyncObject {
    /// The `millrace.dev/path` annotation.
    pub fn windmill_path(&self) -> Option<&str> {
        self.manifest
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PATH_ANNOTATION))
            .and_then(Value::as_str)
    }

    /// The spec, `Null` when it has none.
    pub fn spec(&self) -> &Value {
        self.manifest.get("spec").unwrap_or(&Value::Null)
    }
}

/// A test object of `kind` named `name` from file `<name>.yaml`, line 1.
#[cfg(test)]
pub(crate) fn fixture(kind: Kind, name: &str, spec: Value) -> SyncObject {
    SyncObject {
        kind,
        name: name.into(),
        namespace: None,
        file: format!("{name}.yaml"),
        line: Some(1),
        manifest: serde_json::json!({"apiVersion": API_VERSION, "kind": kind.as_str(),
            "metadata": {"name": name}, "spec": spec}),
    }
}

/// What the files of a revision became.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub objects: Vec<SyncObject>,
    pub ignored: Vec<Ignored>,
    pub errors: Vec<FileError>,
}

/// Converts every file of `files` (paths from the repository root) under `root` (the synced
/// directory, `""` for the whole repository; Windmill paths start there). `namespace` is where
/// the objects go: a manifest naming another one is refused; `None` accepts any.
pub fn convert(
    files: &BTreeMap<String, Vec<u8>>,
    root: &str,
    namespace: Option<&str>,
) -> Converted {
    let mut out = Converted::default();
    let workspace = Workspace {
        files,
        root,
        namespace,
    };
    let mut used = BTreeSet::new();
    let mut code = Vec::new();
    let mut flow_folders: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for file in files.keys() {
        match classify::role(workspace.relative(file)) {
            Role::Ignored(reason) => out.ignored.push(Ignored::new(file, reason)),
            Role::InFlowFolder { folder } => flow_folders
                .entry(workspace.in_repository(folder))
                .or_default()
                .push(file),
            Role::ScriptMeta => windmill::script(&workspace, file, &mut used, &mut out),
            Role::Schedule => schedule::convert(&workspace, file, &mut out),
            Role::Manifests => manifests::convert(&workspace, file, &mut out),
            Role::Code => code.push(file),
        }
    }
    for (folder, members) in &flow_folders {
        windmill::flow(&workspace, folder, members, &mut out);
    }
    for file in code {
        if !used.contains(file.as_str()) {
            out.ignored.push(Ignored::new(
                file,
                "not YAML, and no `.script.yaml` refers to it",
            ));
        }
    }
    out
}

/// The files of the revision and the directory Windmill paths start from.
struct Workspace<'a> {
    files: &'a BTreeMap<String, Vec<u8>>,
    root: &'a str,
    /// Where the objects go, when known.
    namespace: Option<&'a str>,
}

impl Workspace<'_> {
    /// `file` from the synced directory.
    fn relative<'f>(&self, file: &'f str) -> &'f str {
        if self.root.is_empty() {
            file
        } else {
            file.strip_prefix(self.root)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(file)
        }
    }

    /// A path from the synced directory as a path from the repository root.
    fn in_repository(&self, relative: &str) -> String {
        if self.root.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.root)
        }
    }

    /// The text of `file`, or the error to report for it.
    fn text(&self, file: &str) -> Result<&str, FileError> {
        std::str::from_utf8(&self.files[file])
            .map_err(|e| FileError::new(file, None, format!("the file is not UTF-8 text: {e}")))
    }
}

/// `metadata` of an object made from a Windmill file: its name, its namespace when known and the
/// Windmill path it stands for.
fn windmill_metadata(workspace: &Workspace, name: &str, path: &str) -> Value {
    let mut metadata = serde_json::json!({
        "name": name,
        "annotations": {PATH_ANNOTATION: path},
    });
    if let Some(namespace) = workspace.namespace {
        metadata["namespace"] = namespace.into();
    }
    metadata
}

/// An object made from a Windmill file.
fn windmill_object(
    workspace: &Workspace,
    kind: Kind,
    path: &str,
    file: &str,
    spec: Value,
) -> SyncObject {
    let name = object_name(path);
    SyncObject {
        kind,
        manifest: serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": kind.as_str(),
            "metadata": windmill_metadata(workspace, &name, path),
            "spec": spec,
        }),
        name,
        namespace: workspace.namespace.map(str::to_string),
        file: file.to_string(),
        line: None,
    }
}
