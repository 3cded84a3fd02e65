//! Windmill export folders: `name.flow/flow.yaml` with scripts in sibling files, referenced as
//! `content: '!inline name.inline_script.py'` (lock files likewise). The files are read from a
//! folder on disk or from any other [`InlineFiles`], such as a revision read from git.

use serde_json::Value;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The prefix of a string that stands for the text of a file next to the flow.
const INLINE: &str = "!inline ";

/// Folder suffixes of a flow export: `name.flow`, or `name__flow` with non-dotted paths.
const FOLDER_SUFFIXES: [&str; 2] = [".flow", "__flow"];

/// Where the files named by `!inline` references are read from.
pub trait InlineFiles {
    /// Where `file` (a relative path of plain names) is, as error messages show it.
    fn locate(&self, file: &Path) -> PathBuf;
    /// The text of `file`.
    fn read(&self, file: &Path) -> io::Result<String>;
}

/// A flow's folder on disk.
impl InlineFiles for PathBuf {
    fn locate(&self, file: &Path) -> PathBuf {
        self.join(file)
    }

    fn read(&self, file: &Path) -> io::Result<String> {
        std::fs::read_to_string(self.join(file))
    }
}

/// Why an `!inline` reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    #[error("{at}: cannot read '{INLINE}{file}' ({}): {source}", path.display())]
    Unreadable {
        at: String,
        file: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{at}: '{INLINE}{file}' must name a file inside the flow's folder")]
    OutsideFolder { at: String, file: String },
    #[error(
        "{at}: '{INLINE}{file}' refers to a file, but this flow was not loaded from a folder; load it from its file"
    )]
    NoFolder { at: String, file: String },
}

/// The flow file of an export folder: `flow.yaml`, `flow.yml` or `flow.json`.
pub fn flow_file_in(folder: &Path) -> Option<PathBuf> {
    ["flow.yaml", "flow.yml", "flow.json"]
        .iter()
        .map(|name| folder.join(name))
        .find(|path| path.is_file())
}

/// The flow's name from its export folder's name: `growth_report.flow` → `growth_report`.
pub fn name_of_folder(folder_name: &str) -> &str {
    FOLDER_SUFFIXES
        .iter()
        .find_map(|suffix| folder_name.strip_suffix(suffix))
        .filter(|name| !name.is_empty())
        .unwrap_or(folder_name)
}

/// Replaces every string `!inline FILE` in `doc` by the text of `FILE` in `folder`. Without a
/// folder, any such string is an error.
pub fn resolve_inline(
    doc: &mut Value,
    folder: Option<&dyn InlineFiles>,
) -> Result<(), InlineError> {
    resolve(doc, folder, &mut String::new(), None)
}

fn resolve(
    value: &mut Value,
    folder: Option<&dyn InlineFiles>,
    path: &mut String,
    module: Option<&str>,
) -> Result<(), InlineError> {
    match value {
        Value::String(text) => {
            if let Some(file) = text.strip_prefix(INLINE) {
                *text = read_inline(file.trim(), folder, &locate(path, module))?;
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                resolve(item, folder, path, module)?;
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            // Objects with an `id` and a `value` are modules: errors below name them.
            let id = match (fields.get("id"), fields.contains_key("value")) {
                (Some(Value::String(id)), true) => Some(id.clone()),
                _ => None,
            };
            let module = id.as_deref().or(module);
            for (key, field) in fields.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                resolve(field, folder, path, module)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn locate(path: &str, module: Option<&str>) -> String {
    match module {
        Some(id) => format!("module '{id}' ({path})"),
        None => path.to_string(),
    }
}

fn read_inline(
    file: &str,
    folder: Option<&dyn InlineFiles>,
    at: &str,
) -> Result<String, InlineError> {
    let Some(folder) = folder else {
        return Err(InlineError::NoFolder {
            at: at.to_string(),
            file: file.to_string(),
        });
    };
    let relative = Path::new(file);
    // Flows come from repositories others write to: an export never reaches outside its folder.
    if file.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(InlineError::OutsideFolder {
            at: at.to_string(),
            file: file.to_string(),
        });
    }
    folder
        .read(relative)
        .map_err(|source| InlineError::Unreadable {
            at: at.to_string(),
            file: file.to_string(),
            path: folder.locate(relative),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_come_from_folder_names() {
        assert_eq!(name_of_folder("growth_report.flow"), "growth_report");
        assert_eq!(name_of_folder("growth_report__flow"), "growth_report");
        assert_eq!(name_of_folder("plain"), "plain");
        assert_eq!(name_of_folder(".flow"), ".flow");
    }

    #[test]
    fn replaces_every_inline_string_with_the_file_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "def main():\n    return 1\n").unwrap();
        std::fs::write(dir.path().join("a.lock"), "requests==2.0\n").unwrap();
        let mut doc = json!({"value": {"modules": [{"id": "a", "value": {
            "type": "rawscript", "content": "!inline a.py", "lock": "!inline a.lock", "language": "python3"
        }}]}});
        resolve_inline(&mut doc, Some(&dir.path().to_path_buf())).unwrap();
        let module = &doc["value"]["modules"][0]["value"];
        assert_eq!(module["content"], "def main():\n    return 1\n");
        assert_eq!(module["lock"], "requests==2.0\n");
        assert_eq!(module["language"], "python3");
    }

    #[test]
    fn a_missing_file_names_the_module_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = json!({"value": {"modules": [{"id": "fetch", "value": {"content": "!inline gone.ts"}}]}});
        let error = resolve_inline(&mut doc, Some(&dir.path().to_path_buf()))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "module 'fetch' (value.modules[0].value.content): cannot read '!inline gone.ts'"
            ),
            "{error}"
        );
    }

    #[test]
    fn refuses_files_outside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["../secret", "/etc/hostname", "a/../../b"] {
            let mut doc = json!({"content": format!("!inline {file}")});
            let error = resolve_inline(&mut doc, Some(&dir.path().to_path_buf())).unwrap_err();
            assert!(
                matches!(error, InlineError::OutsideFolder { .. }),
                "{file}: {error}"
            );
        }
    }

    #[test]
    fn without_a_folder_inline_strings_are_errors() {
        let mut doc = json!({"content": "!inline a.py"});
        let error = resolve_inline(&mut doc, None).unwrap_err();
        assert!(matches!(error, InlineError::NoFolder { .. }), "{error}");
        let mut plain = json!({"content": "print('!inline is only a prefix')"});
        resolve_inline(&mut plain, None).unwrap();
    }
}
