//! The files of one commit under a path, read straight from the commit's tree (there is no work
//! tree), within limits. Symbolic links and submodules are listed as ignored, never followed.

use super::plan::{FileError, Ignored};
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::BTreeMap;

/// How much a revision may hold under its path. Past `max_files` or `max_total_bytes` nothing is
/// read; a file over `max_file_bytes` is an error of that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_total_bytes: u64,
    pub max_files: usize,
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 50 << 20,
            max_files: 10_000,
            max_file_bytes: 1 << 20,
        }
    }
}

/// The files under the path, by their path from the repository root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tree {
    pub files: BTreeMap<String, Vec<u8>>,
    /// Symbolic links and submodules.
    pub ignored: Vec<Ignored>,
    /// Files over the size limit for one file.
    pub errors: Vec<FileError>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("commit {commit} is not in the repository cache; fetch it first")]
    MissingCommit { commit: Oid },
    #[error(
        "path `{path}`: a path is relative to the repository root and made of plain names (no `..`)"
    )]
    BadPath { path: String },
    #[error(
        "path `{path}` is not in commit {commit}; set the path to a directory of the repository"
    )]
    PathNotFound { path: String, commit: Oid },
    #[error("path `{path}` is a file in commit {commit}; the path names a directory")]
    NotADirectory { path: String, commit: Oid },
    #[error(
        "`{path}` holds more than {limit} files; narrow the path to the directory with the manifests, or raise the file limit"
    )]
    TooManyFiles { path: String, limit: usize },
    #[error(
        "the files under `{path}` add up to more than {limit} bytes; narrow the path to the directory with the manifests, or raise the size limit"
    )]
    TooLarge { path: String, limit: u64 },
    #[error("cannot read the repository cache: {0}")]
    Git(#[from] git2::Error),
}

/// `""` for the root; `a/b` for `./a/b/`, `/a/b` or `a//b`. `None` when it leaves the root.
pub fn normalize_path(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

/// Reads every file under `path` (see [`normalize_path`]) of `commit`.
pub fn read_tree(
    repo: &Repository,
    commit: Oid,
    path: &str,
    limits: &Limits,
) -> Result<Tree, TreeError> {
    let root = normalize_path(path).ok_or_else(|| TreeError::BadPath {
        path: path.to_string(),
    })?;
    let tree = repo
        .find_commit(commit)
        .map_err(|_| TreeError::MissingCommit { commit })?
        .tree()?;
    let tree = if root.is_empty() {
        tree
    } else {
        let entry =
            tree.get_path(std::path::Path::new(&root))
                .map_err(|_| TreeError::PathNotFound {
                    path: root.clone(),
                    commit,
                })?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(TreeError::NotADirectory { path: root, commit });
        }
        repo.find_tree(entry.id())?
    };
    let prefix = if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    };
    let odb = repo.odb()?;
    let mut out = Tree::default();
    let mut count = 0usize;
    let mut total = 0u64;
    let mut failure: Option<Result<(), TreeError>> = None;
    let shown = if root.is_empty() { "." } else { root.as_str() };
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            out.ignored.push(Ignored::new(
                format!("{prefix}{dir}{}", String::from_utf8_lossy(entry.name_bytes())),
                "the file name is not UTF-8",
            ));
            return TreeWalkResult::Skip;
        };
        let file = format!("{prefix}{dir}{name}");
        match entry.filemode() {
            0o040000 => return TreeWalkResult::Ok,
            0o120000 => {
                out.ignored
                    .push(Ignored::new(file, "a symbolic link: links are not followed"));
                return TreeWalkResult::Ok;
            }
            0o160000 => {
                out.ignored
                    .push(Ignored::new(file, "a submodule: submodules are not followed"));
                return TreeWalkResult::Ok;
            }
            _ => {}
        }
        count += 1;
        if count > limits.max_files {
            failure = Some(Err(TreeError::TooManyFiles {
                path: shown.to_string(),
                limit: limits.max_files,
            }));
            return TreeWalkResult::Abort;
        }
        let size = match odb.read_header(entry.id()) {
            Ok((size, _)) => size as u64,
            Err(error) => {
                failure = Some(Err(error.into()));
                return TreeWalkResult::Abort;
            }
        };
        if size > limits.max_file_bytes {
            out.errors.push(FileError::new(
                file,
                None,
                format!(
                    "the file is {size} bytes, over the limit of {} bytes for one file; keep it out of the synced path",
                    limits.max_file_bytes
                ),
            ));
            return TreeWalkResult::Ok;
        }
        total += size;
        if total > limits.max_total_bytes {
            failure = Some(Err(TreeError::TooLarge {
                path: shown.to_string(),
                limit: limits.max_total_bytes,
            }));
            return TreeWalkResult::Abort;
        }
        match repo.find_blob(entry.id()) {
            Ok(blob) => {
                out.files.insert(file, blob.content().to_vec());
                TreeWalkResult::Ok
            }
            Err(error) => {
                failure = Some(Err(error.into()));
                TreeWalkResult::Abort
            }
        }
    })
    .or_else(|error| match failure.take() {
        Some(result) => result,
        None => Err(error.into()),
    })?;
    if let Some(result) = failure {
        result?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_never_leave_the_root() {
        assert_eq!(normalize_path("").as_deref(), Some(""));
        assert_eq!(normalize_path(".").as_deref(), Some(""));
        assert_eq!(normalize_path("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_path("/a").as_deref(), Some("a"));
        assert_eq!(normalize_path("a/../b"), None);
    }
}
