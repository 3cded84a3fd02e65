//! GitOps: the objects one revision of a repository holds, read the same way by the GitSource
//! controller and by `millrace sync plan`.
//!
//! fetch (I/O: the wanted commit into the source's bare repository cache) → tree (the commit's
//! files under the path, within limits) → objects (files → Flow, Script and Schedule manifests;
//! other objects refused, unused files ignored) → validate → plan (pure: ordered, cross-checked,
//! every error of every file). Against a cluster: [`cluster`] (I/O: read a GitSource's revision,
//! list, dry-run, apply, delete) and [`changes`] (pure: what a sync creates, updates and prunes).

pub mod changes;
pub mod cluster;
pub mod fetch;
pub mod objects;
pub mod plan;
pub mod tree;
pub mod validate;

pub use fetch::{Credentials, FetchError, FetchRequest, Fetched, GitRef, fetch};
pub use objects::{Kind, SyncObject};
pub use plan::{FileError, Ignored, Plan};
pub use tree::{Limits, TreeError};
pub use validate::ClusterFlows;

use crate::expr::Evaluator;
use git2::{Oid, Repository};

/// What to read of a revision, and for which namespace.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The directory of the repository to read (`""` for all of it).
    pub path: String,
    /// Where the objects go; manifests naming another namespace are refused. `None` accepts any.
    pub namespace: Option<String>,
    pub limits: Limits,
}

/// The plan of commit `commit` in `repo` (a cache [`fetch`] filled): every file read, converted
/// and checked. Flow expressions are parsed by `syntax`; Schedules may name the Flows of
/// `cluster` (when given) as well as the revision's own.
pub fn plan_revision(
    repo: &Repository,
    commit: Oid,
    source: &Source,
    syntax: &dyn Evaluator,
    cluster: Option<&ClusterFlows>,
) -> Result<Plan, TreeError> {
    let tree = tree::read_tree(repo, commit, &source.path, &source.limits)?;
    let root = tree::normalize_path(&source.path).unwrap_or_default();
    let converted = objects::convert(&tree.files, &root, source.namespace.as_deref());
    let checked = validate::validate(&converted.objects, syntax, cluster);
    let mut ignored = tree.ignored;
    ignored.extend(converted.ignored);
    let mut errors = tree.errors;
    errors.extend(converted.errors);
    errors.extend(checked.errors);
    Ok(plan::plan(
        &commit.to_string(),
        converted.objects,
        ignored,
        errors,
        checked.notes,
    ))
}
