//! Loading a flow: an OpenFlow file (YAML or JSON), a Millrace `Flow` manifest, or a Windmill
//! export (`name.flow/` folder, `name.flow.yaml`, `name.flow.json`).

use super::model::OpenFlow;
use super::windmill::{self, InlineError, InlineFiles};
use super::yaml::{self, YamlError};
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};

const MANIFEST_API_VERSION: &str = "millrace.dev/v1alpha1";
const MANIFEST_KIND: &str = "Flow";

/// A flow and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedFlow {
    /// `metadata.name` of a manifest, else the export folder's or the file's name without
    /// `.flow` and extension.
    pub name: String,
    pub flow: OpenFlow,
    /// The directory the flow file (or export folder) sits in, where `f/…` and `u/…` script
    /// paths are looked up from. `None` for a flow parsed from text.
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a flow: a flow folder holds flow.yaml or flow.json", folder.display())]
    NoFlowFile { folder: PathBuf },
    #[error("{origin}: not valid JSON: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("{origin}: {source}")]
    Yaml { origin: String, source: YamlError },
    #[error("{origin}: {message}")]
    Document { origin: String, message: String },
    #[error("{origin}: {source}")]
    Inline { origin: String, source: InlineError },
    #[error("{origin}: {field}: {message}")]
    Field {
        origin: String,
        field: String,
        message: String,
    },
}

impl LoadError {
    /// The line of the file the error is on, when the parser knows it.
    pub fn line(&self) -> Option<usize> {
        match self {
            LoadError::Json { source, .. } => Some(source.line()),
            LoadError::Yaml { source, .. } => source.line(),
            _ => None,
        }
    }
}

/// Loads a flow file or a Windmill export folder. `!inline FILE` strings are replaced by the
/// text of FILE, relative to the directory of the flow file.
pub fn load_path(path: &Path) -> Result<LoadedFlow, LoadError> {
    let file = if path.is_dir() {
        windmill::flow_file_in(path).ok_or_else(|| LoadError::NoFlowFile {
            folder: path.to_path_buf(),
        })?
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
        path: file.clone(),
        source,
    })?;
    let folder = dir_or_dot(file.parent());
    let origin = file.display().to_string();
    let mut loaded = parse(
        &text,
        &origin,
        name_of_file(&file),
        Some(&folder as &dyn InlineFiles),
    )?;
    loaded.base_dir = Some(match export_folder(&file) {
        Some(export) => dir_or_dot(export.parent()),
        None => folder,
    });
    Ok(loaded)
}

/// Parses a flow from text. `origin` names it in errors and gives the flow its name (as a file
/// name would). `!inline` references are errors: they need the folder, use [`load_path`].
pub fn parse_str(text: &str, origin: &str) -> Result<LoadedFlow, LoadError> {
    parse(text, origin, name_of_file(Path::new(origin)), None)
}

/// The document of a flow file with its `!inline` references replaced by the files they name in
/// `folder`, as JSON: for callers that read flows from elsewhere than a folder on disk.
pub fn resolved_document(
    text: &str,
    origin: &str,
    folder: &dyn InlineFiles,
) -> Result<Value, LoadError> {
    let mut doc = document(text, origin)?;
    resolve(&mut doc, origin, Some(folder))?;
    Ok(doc)
}

fn parse(
    text: &str,
    origin: &str,
    name: String,
    folder: Option<&dyn InlineFiles>,
) -> Result<LoadedFlow, LoadError> {
    build(document(text, origin)?, origin, name, folder)
}

/// The text of a flow file as JSON; an empty file is an error.
fn document(text: &str, origin: &str) -> Result<Value, LoadError> {
    let doc = if origin.ends_with(".json") {
        serde_json::from_str(text).map_err(|source| LoadError::Json {
            origin: origin.to_string(),
            source,
        })?
    } else {
        yaml::to_json(text).map_err(|source| LoadError::Yaml {
            origin: origin.to_string(),
            source,
        })?
    };
    if doc.is_null() {
        return Err(LoadError::Document {
            origin: origin.to_string(),
            message: "the file is empty; a flow needs at least `summary` and `value.modules`"
                .to_string(),
        });
    }
    Ok(doc)
}

fn resolve(
    doc: &mut Value,
    origin: &str,
    folder: Option<&dyn InlineFiles>,
) -> Result<(), LoadError> {
    windmill::resolve_inline(doc, folder).map_err(|source| LoadError::Inline {
        origin: origin.to_string(),
        source,
    })
}

fn build(
    doc: Value,
    origin: &str,
    name: String,
    folder: Option<&dyn InlineFiles>,
) -> Result<LoadedFlow, LoadError> {
    let (mut doc, name, prefix) = if is_manifest(&doc) {
        let (spec, name) = manifest_spec(doc, origin)?;
        (spec, name, "spec.")
    } else {
        (doc, name, "")
    };
    resolve(&mut doc, origin, folder)?;
    let flow = serde_path_to_error::deserialize(doc).map_err(|error| {
        let path = error.path().to_string();
        let field = match path.as_str() {
            "." => format!("{prefix}(document)"),
            _ => format!("{prefix}{path}"),
        };
        LoadError::Field {
            origin: origin.to_string(),
            field,
            message: error.into_inner().to_string(),
        }
    })?;
    Ok(LoadedFlow {
        name,
        flow,
        base_dir: None,
    })
}

fn is_manifest(doc: &Value) -> bool {
    doc.get("apiVersion").is_some() || doc.get("kind").is_some()
}

/// A Millrace `Flow` manifest's `spec` (the OpenFlow document) and `metadata.name`.
fn manifest_spec(mut doc: Value, origin: &str) -> Result<(Value, String), LoadError> {
    let wrong = |message: String| LoadError::Document {
        origin: origin.to_string(),
        message,
    };
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version != MANIFEST_API_VERSION || kind != MANIFEST_KIND {
        return Err(wrong(format!(
            "a manifest here must have apiVersion: {MANIFEST_API_VERSION} and kind: {MANIFEST_KIND} \
             (found apiVersion '{api_version}', kind '{kind}')"
        )));
    }
    let name = match doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
    {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(wrong(
                "metadata.name: a Flow manifest needs a name".to_string(),
            ));
        }
    };
    match doc.get_mut("spec").map(Value::take) {
        Some(spec @ Value::Object(_)) => Ok((spec, name)),
        _ => Err(wrong(format!(
            "spec: Flow '{name}' needs a spec holding the flow (summary, value, schema)"
        ))),
    }
}

/// A file's directory; `.` for a bare file name.
fn dir_or_dot(parent: Option<&Path>) -> PathBuf {
    match parent {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The export folder a flow file is the `flow.yaml` of (`x.flow/flow.yaml` → `x.flow`).
fn export_folder(file: &Path) -> Option<&Path> {
    let stem = file.file_stem()?.to_str()?;
    let folder = file.parent()?;
    let folder_name = folder.file_name()?.to_str()?;
    (stem == "flow" && windmill::name_of_folder(folder_name) != folder_name).then_some(folder)
}

/// `report.flow.yaml` → `report`; `x.flow/flow.yaml` → `x`.
fn name_of_file(file: &Path) -> String {
    if let Some(folder) = export_folder(file)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        return windmill::name_of_folder(folder).to_string();
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("flow");
    windmill::name_of_folder(stem).to_string()
}

#[cfg(test)]
mod tests;
