//! YAML files of Kubernetes-style manifests: each document a Millrace `Flow`, `Script` or
//! `Schedule`, or refused. A file without any `apiVersion`/`kind` is not manifests: ignored.

use super::{API_VERSION, Converted, Kind, SyncObject, Workspace};
use crate::flow::yaml;
use crate::gitsync::plan::{FileError, Ignored};
use serde_json::{Map, Value};

/// The `metadata` fields a sync takes from git; anything else there is the cluster's business.
const METADATA_FIELDS: [&str; 4] = ["name", "namespace", "labels", "annotations"];

/// One document of a file: where it starts and its text.
struct Document<'a> {
    /// The line (from 1) its text starts on.
    first_line: usize,
    text: &'a str,
}

impl Document<'_> {
    /// The line of its first content (past `---`, blank lines and comments).
    fn content_line(&self) -> usize {
        let skipped = self
            .text
            .lines()
            .take_while(|line| {
                let line = line.trim();
                line.is_empty() || line.starts_with('#') || line == "---"
            })
            .count();
        self.first_line + skipped
    }
}

/// Splits a YAML stream at its `---` lines (a marker line stays with the document it opens, so
/// `--- {a: 1}` keeps its content) and drops `...` end markers.
fn documents(text: &str) -> Vec<Document<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let opens = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let closes = bare == "...";
        if opens || closes {
            out.push(Document {
                first_line,
                text: &text[start..offset],
            });
            start = if closes { offset + line.len() } else { offset };
            first_line = if closes { index + 2 } else { index + 1 };
        }
        offset += line.len();
    }
    out.push(Document {
        first_line,
        text: &text[start..],
    });
    out
}

pub(super) fn convert(workspace: &Workspace, file: &str, out: &mut Converted) {
    let text = match workspace.text(file) {
        Ok(text) => text,
        Err(error) => return out.errors.push(error),
    };
    let mut objects = Vec::new();
    let mut plain = Vec::new();
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for document in documents(text) {
        let value = match yaml::to_json(document.text) {
            Ok(value) => value,
            Err(error) => {
                let mut message = error.to_string();
                let line = match error.line() {
                    Some(line) => {
                        // The parser counts from the document's start; the file counts from its own.
                        let in_file = document.first_line + line - 1;
                        message = message.replace(
                            &format!("at line {line} column"),
                            &format!("at line {in_file} column"),
                        );
                        in_file
                    }
                    None => document.content_line(),
                };
                errors.push(FileError::new(file, Some(line), message));
                continue;
            }
        };
        let line = document.content_line();
        let declares = value
            .as_object()
            .is_some_and(|o| o.contains_key("apiVersion") || o.contains_key("kind"));
        match value {
            Value::Null => {}
            _ if !declares => plain.push(line),
            _ if is_gitsource(&value) => sources.push(line),
            Value::Object(fields) => match object(fields, file, line, workspace.namespace) {
                Ok(object) => objects.push(object),
                Err(messages) => errors.extend(
                    messages
                        .into_iter()
                        .map(|message| FileError::new(file, Some(line), message)),
                ),
            },
            _ => unreachable!("only objects declare a kind"),
        }
    }
    if objects.is_empty() && errors.is_empty() && plain.is_empty() && !sources.is_empty() {
        let reason = "a GitSource is applied to the cluster, never synced from a repository";
        return out.ignored.push(Ignored::new(file, reason));
    }
    errors.extend(sources.into_iter().map(|line| {
        let message =
            "a GitSource is never synced: keep it in a file of its own (then the file is ignored)";
        FileError::new(file, Some(line), message)
    }));
    if objects.is_empty() && errors.is_empty() {
        let reason = "YAML without `apiVersion` and `kind`: not an object to sync";
        return out.ignored.push(Ignored::new(file, reason));
    }
    // A file of manifests with a document that is none: a glitch, never silently dropped.
    errors.extend(plain.into_iter().map(|line| {
        let message = format!(
            "this document has no `apiVersion` and `kind`; every document of a file of manifests is an object ({API_VERSION} Flow, Script or Schedule)"
        );
        FileError::new(file, Some(line), message)
    }));
    out.objects.extend(objects);
    out.errors.extend(errors);
}

/// The repository may hold the GitSource that syncs it (as Flux repositories hold theirs); a
/// sync never applies one: a GitSource made by a GitSource would reach further than its own.
fn is_gitsource(value: &Value) -> bool {
    value.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
        && value.get("kind").and_then(Value::as_str) == Some("GitSource")
}

/// A Millrace object from a manifest, or every reason it is refused.
fn object(
    mut fields: Map<String, Value>,
    file: &str,
    line: usize,
    namespace: Option<&str>,
) -> Result<SyncObject, Vec<String>> {
    let api_version = fields.get("apiVersion").and_then(Value::as_str);
    let kind_name = fields.get("kind").and_then(Value::as_str);
    let kind = match (api_version, kind_name.and_then(Kind::from_name)) {
        (Some(API_VERSION), Some(kind)) => kind,
        _ => {
            return Err(vec![format!(
                "refused: {} ({}): a GitSource applies only {API_VERSION} Flow, Script and Schedule objects, never other kinds (which the operator's rights would create)",
                kind_name.unwrap_or("no kind"),
                api_version.unwrap_or("no apiVersion"),
            )]);
        }
    };
    let mut problems = Vec::new();
    // Status is the cluster's; a manifest copied from `kubectl get -o yaml` may carry one.
    fields.remove("status");
    for key in fields.keys() {
        if !["apiVersion", "kind", "metadata", "spec"].contains(&key.as_str()) {
            problems.push(format!(
                "{key}: a {} has apiVersion, kind, metadata and spec; remove `{key}`",
                kind.as_str()
            ));
        }
    }
    let mut name = String::new();
    let mut own_namespace = None;
    match fields.get_mut("metadata") {
        Some(Value::Object(metadata)) => {
            for key in metadata.keys() {
                if !METADATA_FIELDS.contains(&key.as_str()) {
                    problems.push(format!(
                        "metadata.{key}: not taken from git (only {}); remove it",
                        METADATA_FIELDS.join(", ")
                    ));
                }
            }
            match metadata.get("name").and_then(Value::as_str) {
                Some(n) if is_dns_subdomain(n) => name = n.to_string(),
                Some(n) => problems.push(format!(
                    "metadata.name: `{n}` is not a valid name: lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters"
                )),
                None => problems.push(format!("metadata.name: a {} needs a name", kind.as_str())),
            }
            for map in ["labels", "annotations"] {
                if let Some(value) = metadata.get(map)
                    && !value
                        .as_object()
                        .is_some_and(|m| m.values().all(Value::is_string))
                {
                    problems.push(format!("metadata.{map}: must map names to strings"));
                }
            }
            match (metadata.get("namespace"), namespace) {
                (None, _) => {}
                (Some(Value::String(own)), Some(target)) if own != target => {
                    problems.push(format!(
                        "refused: metadata.namespace is `{own}`, but this source syncs into namespace `{target}`; remove metadata.namespace"
                    ));
                }
                (Some(Value::String(own)), _) => own_namespace = Some(own.clone()),
                (Some(_), _) => problems.push("metadata.namespace: must be a string".to_string()),
            }
            if let Some(target) = namespace {
                metadata.insert("namespace".into(), target.into());
            }
        }
        _ => problems.push(format!(
            "metadata: a {} needs metadata with a name",
            kind.as_str()
        )),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SyncObject {
        kind,
        name,
        namespace: namespace.map(str::to_string).or(own_namespace),
        file: file.to_string(),
        line: Some(line),
        manifest: Value::Object(fields),
    })
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(text: &str, namespace: Option<&str>) -> Converted {
        let files = BTreeMap::from([("deploy/all.yaml".to_string(), text.as_bytes().to_vec())]);
        let workspace = Workspace {
            files: &files,
            root: "",
            namespace,
        };
        let mut out = Converted::default();
        convert(&workspace, "deploy/all.yaml", &mut out);
        out
    }

    const FLOW: &str = "apiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {name: a}\nspec: {value: {modules: []}}\n";

    #[test]
    fn documents_keep_their_lines() {
        let docs = documents("a: 1\n---\nb: 2\n--- {c: 3}\n...\n# note\nd: 4\n");
        let found: Vec<_> = docs.iter().map(|d| (d.first_line, d.text)).collect();
        assert_eq!(
            found,
            [
                (1, "a: 1\n"),
                (2, "---\nb: 2\n"),
                (4, "--- {c: 3}\n"),
                (6, "# note\nd: 4\n")
            ]
        );
        assert_eq!(docs[1].content_line(), 3);
        assert_eq!(docs[3].content_line(), 7);
    }

    #[test]
    fn reads_every_document_of_a_file() {
        let text = format!("{FLOW}---\n{}", FLOW.replace("name: a", "name: b"));
        let out = run(&text, Some("team"));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let found: Vec<_> = out
            .objects
            .iter()
            .map(|o| (o.name.as_str(), o.line, o.namespace.as_deref()))
            .collect();
        assert_eq!(
            found,
            [("a", Some(1), Some("team")), ("b", Some(6), Some("team"))]
        );
        assert_eq!(out.objects[0].manifest["metadata"]["namespace"], "team");
    }

    #[test]
    fn a_syntax_error_names_its_line_in_the_file() {
        let text =
            format!("{FLOW}---\napiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: [\n");
        let out = run(&text, None);
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        let line = out.errors[0].line.unwrap();
        assert!((8..=9).contains(&line), "{:?}", out.errors[0]);
        assert!(
            out.errors[0].message.starts_with("not valid YAML"),
            "{:?}",
            out.errors[0]
        );
    }

    #[test]
    fn the_repository_s_own_gitsource_is_ignored_alone_and_refused_among_objects() {
        let source = "apiVersion: millrace.dev/v1alpha1\nkind: GitSource\nmetadata: {name: flows}\nspec: {url: x}\n";
        let alone = run(source, None);
        assert!(alone.objects.is_empty() && alone.errors.is_empty());
        assert!(
            alone.ignored[0].reason.contains("never synced"),
            "{:?}",
            alone.ignored
        );
        let mixed = run(&format!("{FLOW}---\n{source}"), None);
        assert_eq!(mixed.objects.len(), 1);
        assert_eq!(mixed.errors.len(), 1, "{:?}", mixed.errors);
        assert_eq!(mixed.errors[0].line, Some(6));
        assert!(mixed.errors[0].message.contains("a file of its own"));
    }

    #[test]
    fn other_kinds_and_namespaces_are_refused() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n\
            apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n---\n\
            apiVersion: millrace.dev/v1alpha1\nkind: FlowRun\nmetadata: {name: r}\n---\n\
            apiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {name: x, namespace: kube-system}\nspec: {}\n";
        let out = run(text, Some("team"));
        assert!(out.objects.is_empty());
        let expected = [
            (1, "refused: Secret (v1): "),
            (5, "refused: ClusterRole (rbac.authorization.k8s.io/v1): "),
            (9, "refused: FlowRun (millrace.dev/v1alpha1): "),
            (
                13,
                "refused: metadata.namespace is `kube-system`, but this source syncs into namespace `team`",
            ),
        ];
        assert_eq!(out.errors.len(), expected.len(), "{:?}", out.errors);
        for (error, (line, start)) in out.errors.iter().zip(expected) {
            assert_eq!(error.line, Some(line), "{error:?}");
            assert!(error.message.starts_with(start), "{error:?}");
        }
    }

    #[test]
    fn metadata_is_checked() {
        let text = "apiVersion: millrace.dev/v1alpha1\nkind: Script\nmetadata: {name: Bad_Name, ownerReferences: [], labels: {a: 1}}\nspec: {}\nextra: 1\n";
        let out = run(text, None);
        let messages: Vec<_> = out.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].starts_with("extra: "), "{messages:?}");
        assert!(messages[1].starts_with("metadata.ownerReferences: not taken from git"));
        assert!(messages[2].starts_with("metadata.name: `Bad_Name` is not a valid name"));
        assert!(messages[3].starts_with("metadata.labels: must map names to strings"));
    }

    #[test]
    fn plain_yaml_is_ignored_but_not_inside_manifests() {
        let out = run("name: ci\non: push\n", None);
        assert_eq!(out.ignored.len(), 1);
        assert!(out.errors.is_empty());
        let out = run(&format!("{FLOW}---\njust: data\n"), None);
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].line, Some(6));
    }
}
