//! The `GitSource` resource: a branch, tag or commit of a git repository whose Flows, Scripts and
//! Schedules the operator keeps applied in the GitSource's namespace, one whole revision at a
//! time. What is read is `crate::gitsync`; how it is applied is the GitSource controller's.

// Each `printcolumn(...)` repeats `type_ = …`; clippy reads those as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use crate::gitsync::GitRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The label every object a GitSource applied carries: the GitSource's name.
pub const SOURCE_LABEL: &str = "millrace.dev/gitsource";
/// The annotation naming the file (from the repository root) an applied object came from.
pub const FILE_ANNOTATION: &str = "millrace.dev/source-file";
/// Set it (to any new value, by convention the time) to have the controller sync at once;
/// `status.lastHandledReconcileAt` echoes the value once that sync has run.
pub const REQUESTED_AT_ANNOTATION: &str = "millrace.dev/reconcile-requested-at";
/// How often the remote is checked when `interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The field manager a GitSource applies its objects with: one per GitSource, so that the
/// managed fields tell who set what.
pub fn field_manager(source: &str) -> String {
    format!("millrace-gitsource-{source}")
}

/// Keeps the Flows, Scripts and Schedules of a git repository applied in its namespace.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "millrace.dev",
    version = "v1alpha1",
    kind = "GitSource",
    namespaced,
    status = "GitSourceStatus",
    shortname = "gs",
    category = "millrace",
    doc = "Syncs Flows, Scripts and Schedules from a git repository",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "Ref", type_ = "string", json_path = ".spec.ref"),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.lastAppliedRevision"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceSpec {
    /// The repository: `https://`, `ssh://` (or `user@host:path`), `git://` or `file://`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// The branch, tag or commit to follow; the remote's default branch when none is given.
    #[serde(default, rename = "ref", skip_serializing_if = "SourceRef::is_empty")]
    pub reference: SourceRef,
    /// The directory of the repository to read (all of it when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// How often the remote is checked for a new commit, and drift corrected (`1m`, `30s`,
    /// `1h30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: Option<String>,
    /// How soon a failed sync is tried again (default: `interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub retry_interval: Option<String>,
    /// How long a fetch may take (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// A Secret in this namespace with the credentials: `token` (or `username` and `password`)
    /// for https, `identity` and `known_hosts` for ssh, `ca.crt` for a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Delete the objects a new revision no longer has (only those this GitSource applied).
    #[serde(default = "yes")]
    pub prune: bool,
    /// Do nothing until unset; the applied objects stay as they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

fn yes() -> bool {
    true
}

/// One of `branch`, `tag` or `commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A full 40-character sha.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{40}$"))]
    pub commit: Option<String>,
}

impl SourceRef {
    fn is_empty(&self) -> bool {
        *self == SourceRef::default()
    }

    /// The ref to fetch, or which fields are in each other's way.
    pub fn git_ref(&self) -> Result<GitRef, String> {
        match (&self.branch, &self.tag, &self.commit) {
            (None, None, None) => Ok(GitRef::Head),
            (Some(branch), None, None) => Ok(GitRef::Branch(branch.clone())),
            (None, Some(tag), None) => Ok(GitRef::Tag(tag.clone())),
            (None, None, Some(commit)) => Ok(GitRef::Commit(commit.to_ascii_lowercase())),
            _ => Err("spec.ref: give one of `branch`, `tag` or `commit`, not several".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The revision last fetched (`main@sha1:<sha>`), applied or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetched_revision: Option<String>,
    /// The revision whose objects are applied now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// The revision the latest sync tried to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// When the latest sync that changed anything in the cluster ended (a sync that finds
    /// everything as it should be writes nothing, this included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Every object this GitSource applied and has not pruned: what a later revision may prune.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryEntry>,
    /// The problems of the latest revision tried, by file: while there are any, nothing of that
    /// revision is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileProblem>,
    /// The `millrace.dev/reconcile-requested-at` value the latest sync answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// kstatus: `Ready`, `Reconciling` (a failure being retried), `Stalled` (waiting for a fix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// An object a GitSource applied, in its namespace.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct InventoryEntry {
    pub kind: String,
    pub name: String,
}

/// A problem with one file of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileProblem {
    /// From the repository root.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub message: String,
}

/// A revision as Flux writes it: `main@sha1:<sha>` (`sha1:<sha>` for a commit asked by sha).
pub fn revision(refname: &str, commit: &str) -> String {
    let short = refname
        .strip_prefix("refs/heads/")
        .or_else(|| refname.strip_prefix("refs/tags/"))
        .unwrap_or(refname);
    if short == commit || short.is_empty() {
        format!("sha1:{commit}")
    } else {
        format!("{short}@sha1:{commit}")
    }
}

/// The commit of a revision written by [`revision`].
pub fn revision_commit(revision: &str) -> Option<&str> {
    revision.rsplit_once("sha1:").map(|(_, sha)| sha)
}

/// Reads a duration as Go and Flux write them: `90s`, `1m30s`, `1.5h`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration; write it as `30s`, `5m` or `1h30m`");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

impl GitSourceSpec {
    /// `interval`, or why it cannot be read.
    pub fn interval(&self) -> Result<Duration, String> {
        duration_field("spec.interval", &self.interval, DEFAULT_INTERVAL)
    }

    /// `retryInterval`, `interval` when not given.
    pub fn retry_interval(&self) -> Result<Duration, String> {
        duration_field("spec.retryInterval", &self.retry_interval, self.interval()?)
    }

    /// `timeout`, 60 s when not given.
    pub fn timeout(&self) -> Result<Duration, String> {
        duration_field(
            "spec.timeout",
            &self.timeout,
            crate::gitsync::fetch::DEFAULT_TIMEOUT,
        )
    }
}

fn duration_field(
    field: &str,
    value: &Option<String>,
    default: Duration,
) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(text) => match parse_duration(text) {
            Ok(duration) if duration.is_zero() => Err(format!("{field}: must be more than 0")),
            Ok(duration) => Ok(duration),
            Err(why) => Err(format!("{field}: {why}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "5", "m", "5 minutes", "1d", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_durations_default_and_name_their_field() {
        let mut spec: GitSourceSpec =
            serde_json::from_value(serde_json::json!({"url": "file:///r"})).unwrap();
        assert!(spec.prune);
        assert_eq!(spec.interval(), Ok(DEFAULT_INTERVAL));
        assert_eq!(spec.retry_interval(), Ok(DEFAULT_INTERVAL));
        assert_eq!(spec.timeout(), Ok(Duration::from_secs(60)));
        spec.interval = Some("10s".into());
        assert_eq!(spec.retry_interval(), Ok(Duration::from_secs(10)));
        spec.timeout = Some("soon".into());
        assert!(
            spec.timeout()
                .unwrap_err()
                .starts_with("spec.timeout: `soon`")
        );
        spec.interval = Some("0s".into());
        assert_eq!(
            spec.interval(),
            Err("spec.interval: must be more than 0".into())
        );
    }

    #[test]
    fn one_ref_kind_at_a_time() {
        let both = SourceRef {
            branch: Some("main".into()),
            tag: Some("v1".into()),
            commit: None,
        };
        assert!(both.git_ref().unwrap_err().contains("spec.ref"));
        assert_eq!(SourceRef::default().git_ref(), Ok(GitRef::Head));
    }

    #[test]
    fn revisions_are_written_as_flux_writes_them() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(revision("refs/heads/main", sha), format!("main@sha1:{sha}"));
        assert_eq!(revision("refs/tags/v1", sha), format!("v1@sha1:{sha}"));
        assert_eq!(revision(sha, sha), format!("sha1:{sha}"));
        assert_eq!(
            revision_commit(&revision("refs/heads/main", sha)),
            Some(sha)
        );
    }
}
