//! Flows and scripts of a Windmill workspace: `f/<folder>/<name>.flow/flow.yaml` with its
//! `!inline` files (read by the flow loader, from the revision instead of a disk), and
//! `f/<folder>/<name>.<ext>` with `<name>.script.yaml`.

use super::{Converted, Kind, Workspace, windmill_object};
use crate::exec::Language;
use crate::flow::{self, windmill::InlineFiles};
use crate::gitsync::plan::{FileError, Ignored};
use crate::k8s::api::naming::{derived_name, dns_label};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// Script file endings as Windmill writes them, and the language each stands for. Longest first:
/// `x.deno.ts` is deno, `x.ts` bun.
const SCRIPT_ENDINGS: [(&str, &str); 21] = [
    ("deno.ts", "deno"),
    ("bun.ts", "bun"),
    ("fetch.ts", "nativets"),
    ("pg.sql", "postgresql"),
    ("my.sql", "mysql"),
    ("bq.sql", "bigquery"),
    ("sf.sql", "snowflake"),
    ("ms.sql", "mssql"),
    ("odb.sql", "oracledb"),
    ("duckdb.sql", "duckdb"),
    ("ts", "bun"),
    ("py", "python3"),
    ("sh", "bash"),
    ("go", "go"),
    ("ps1", "powershell"),
    ("gql", "graphql"),
    ("php", "php"),
    ("rs", "rust"),
    ("cs", "csharp"),
    ("nu", "nu"),
    ("rb", "ruby"),
];

const FLOW_FILES: [&str; 3] = ["flow.yaml", "flow.yml", "flow.json"];

/// The object name for a Windmill path: the whole path made DNS-safe (`f/reports/daily` →
/// `f-reports-daily`), shortened with a hash of the path past 63 characters.
pub fn object_name(path: &str) -> String {
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    derived_name(&dns_label(folder), &dns_label(name))
}

/// The Windmill path of a flow folder: `f/reports/daily.flow` → `f/reports/daily`.
fn flow_path(folder: &str) -> &str {
    folder
        .strip_suffix(".flow")
        .or_else(|| folder.strip_suffix("__flow"))
        .unwrap_or(folder)
}

/// The files of one flow folder of the revision, for the flow loader's `!inline` references;
/// remembers which were read.
struct FlowFolder<'a> {
    workspace: &'a Workspace<'a>,
    /// From the repository root.
    folder: &'a str,
    read: RefCell<BTreeSet<String>>,
}

impl InlineFiles for FlowFolder<'_> {
    fn locate(&self, file: &Path) -> PathBuf {
        Path::new(self.folder).join(file)
    }

    fn read(&self, file: &Path) -> io::Result<String> {
        let key = self.locate(file).to_string_lossy().into_owned();
        let bytes = self.workspace.files.get(&key).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no such file in this revision")
        })?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.read.borrow_mut().insert(key);
        Ok(text.to_string())
    }
}

/// A flow folder (`folder` from the repository root) and the files in it.
pub(super) fn flow(workspace: &Workspace, folder: &str, members: &[&str], out: &mut Converted) {
    let inline = FlowFolder {
        workspace,
        folder,
        read: RefCell::new(BTreeSet::new()),
    };
    let flow_file = FLOW_FILES
        .iter()
        .map(|name| format!("{folder}/{name}"))
        .find(|file| workspace.files.contains_key(file));
    let Some(flow_file) = flow_file else {
        out.errors.push(FileError::new(
            format!("{folder}/"),
            None,
            "a flow folder needs a flow.yaml (or flow.json) holding the flow",
        ));
        return;
    };
    match workspace.text(&flow_file).and_then(|text| {
        flow::resolved_document(text, &flow_file, &inline).map_err(|e| {
            // The loader's messages start with the file, which the error names already.
            let message = e.to_string();
            let message = message
                .strip_prefix(&format!("{flow_file}: "))
                .unwrap_or(&message);
            FileError::new(&flow_file, e.line(), message)
        })
    }) {
        Ok(document) => {
            let path = flow_path(workspace.relative(folder));
            let spec = flow_spec(document);
            out.objects.push(windmill_object(
                workspace,
                Kind::Flow,
                path,
                &flow_file,
                spec,
            ));
        }
        Err(error) => out.errors.push(error),
    }
    let read = inline.read.into_inner();
    for member in members {
        if *member != flow_file && !read.contains(*member) {
            out.ignored.push(Ignored::new(
                *member,
                format!("in the flow folder {folder}/, but its flow does not refer to it"),
            ));
        }
    }
}

/// The spec of a Flow from a Windmill flow document: the OpenFlow fields the resource holds.
fn flow_spec(document: Value) -> Value {
    let Value::Object(mut document) = document else {
        // Not a mapping: the Flow's validation names what is wrong.
        return document;
    };
    let mut spec = Map::new();
    for field in ["summary", "description", "value", "schema"] {
        if let Some(value) = document.remove(field) {
            spec.insert(field.into(), value);
        }
    }
    Value::Object(spec)
}

/// `meta` is `<dir>/<name>.script.yaml`; the code is `<dir>/<name>.<ext>`.
pub(super) fn script(
    workspace: &Workspace,
    meta: &str,
    used: &mut BTreeSet<String>,
    out: &mut Converted,
) {
    let base = [".script.yaml", ".script.yml", ".script.json"]
        .iter()
        .find_map(|ending| meta.strip_suffix(ending))
        .expect("classified as script metadata by its ending");
    let code: Vec<(&String, &str)> = workspace
        .files
        .range(format!("{base}.")..)
        .take_while(|(file, _)| file.starts_with(&format!("{base}.")))
        .filter_map(|(file, _)| {
            let ending = &file[base.len() + 1..];
            SCRIPT_ENDINGS
                .iter()
                .find(|(e, _)| *e == ending)
                .map(|(_, language)| (file, *language))
        })
        .collect();
    let (code_file, ending_language) = match code.as_slice() {
        [one] => *one,
        [] => {
            let endings: Vec<_> = SCRIPT_ENDINGS
                .iter()
                .map(|(e, _)| format!(".{e}"))
                .collect();
            let message = format!(
                "no code beside it: expected {base}.<ext> with <ext> one of {}",
                endings.join(", ")
            );
            return out.errors.push(FileError::new(meta, None, message));
        }
        several => {
            let files: Vec<_> = several.iter().map(|(f, _)| f.as_str()).collect();
            let message = format!(
                "more than one code file for this script ({}); keep one",
                files.join(", ")
            );
            return out.errors.push(FileError::new(meta, None, message));
        }
    };
    used.insert(code_file.clone());
    let path = workspace.relative(base);
    match script_spec(workspace, meta, code_file, ending_language, used) {
        Ok(Some(spec)) => {
            out.objects
                .push(windmill_object(workspace, Kind::Script, path, meta, spec))
        }
        Ok(None) => {
            let reason = format!(
                "a {ending_language} script: Millrace runs {} scripts",
                Language::NAMES.join(", ")
            );
            out.ignored.push(Ignored::new(meta, reason.clone()));
            out.ignored.push(Ignored::new(code_file, reason));
        }
        Err(errors) => out.errors.extend(errors),
    }
}

/// The spec of a Script, `None` for a language Millrace does not run, or the errors of the files.
fn script_spec(
    workspace: &Workspace,
    meta: &str,
    code_file: &str,
    ending_language: &str,
    used: &mut BTreeSet<String>,
) -> Result<Option<Value>, Vec<FileError>> {
    let text = workspace.text(meta).map_err(|e| vec![e])?;
    let document = flow::yaml::to_json(text)
        .map_err(|e| vec![FileError::new(meta, e.line(), e.to_string())])?;
    let mut document = match document {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        _ => {
            let message = "a script's metadata is a mapping (summary, schema, lock)";
            return Err(vec![FileError::new(meta, None, message)]);
        }
    };
    let language = match document.remove("language") {
        None => ending_language.to_string(),
        Some(Value::String(language)) => language,
        Some(_) => {
            return Err(vec![FileError::new(
                meta,
                None,
                "language: must be a string",
            )]);
        }
    };
    if Language::from_name(&language).is_none() && language != ending_language {
        let message = format!(
            "language: `{language}` is not a language Millrace runs ({})",
            Language::NAMES.join(", ")
        );
        return Err(vec![FileError::new(meta, None, message)]);
    }
    if Language::from_name(&language).is_none() {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let content = workspace.text(code_file).map_err(|e| vec![e])?;
    let mut spec = Map::new();
    spec.insert("language".into(), language.into());
    spec.insert("content".into(), content.into());
    for field in ["summary", "schema"] {
        if let Some(value) = document.remove(field) {
            spec.insert(field.into(), value);
        }
    }
    match document.remove("lock") {
        None | Some(Value::Null) => {}
        Some(Value::String(lock)) => match lock.strip_prefix("!inline ") {
            // `!inline f/x/y.script.lock`: a path from the workspace root.
            Some(file) => {
                let file = workspace.in_repository(file.trim());
                match workspace.files.get(&file) {
                    Some(_) => match workspace.text(&file) {
                        Ok(text) if !text.is_empty() => {
                            spec.insert("lock".into(), text.into());
                            used.insert(file);
                        }
                        Ok(_) => {
                            used.insert(file);
                        }
                        Err(error) => errors.push(error),
                    },
                    None => errors.push(FileError::new(
                        meta,
                        None,
                        format!("lock: '!inline {file}' names a file that is not in this revision"),
                    )),
                }
            }
            None if lock.is_empty() => {}
            None => {
                spec.insert("lock".into(), lock.into());
            }
        },
        Some(_) => errors.push(FileError::new(meta, None, "lock: must be a string")),
    }
    if errors.is_empty() {
        Ok(Some(Value::Object(spec)))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_whole_path_made_dns_safe() {
        assert_eq!(object_name("f/reports/daily"), "f-reports-daily");
        assert_eq!(
            object_name("u/Alice/Growth_Report"),
            "u-alice-growth-report"
        );
        let long = object_name(&format!("f/{}/{}", "team".repeat(10), "report".repeat(5)));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(
            long,
            object_name(&format!("f/{}/{}", "team".repeat(10), "report".repeat(6)))
        );
    }

    #[test]
    fn flow_folders_give_the_flow_path() {
        assert_eq!(flow_path("f/reports/daily.flow"), "f/reports/daily");
        assert_eq!(flow_path("f/reports/daily__flow"), "f/reports/daily");
    }
}
