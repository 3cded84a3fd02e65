//! What `script` and `flow` steps, `variable()` and `resource()` refer to, found on this machine:
//! `hub/…` in the bundled hub, `f/…`, `u/…`, `g/…` under a scripts directory laid out like a
//! Windmill export (`f/folder/name.py|.ts|.deno.ts|.sh`, `f/folder/name.flow/`), secrets from
//! [`Secrets`].

use super::secrets::{SecretKind, Secrets};
use crate::engine::{ResolveError, ResolvedScript, Resolver};
use crate::exec::Language;
use crate::flow::{self, OpenFlow};
use crate::hub;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Script file endings tried, in order, for a script path.
const SCRIPT_ENDINGS: &[&str] = &[".py", ".ts", ".deno.ts", ".bun.ts", ".sh"];

pub struct LocalResolver {
    scripts_dir: PathBuf,
    secrets: Secrets,
    /// Subflows loaded so far: the same path yields the same flow for the whole run.
    flows: Mutex<HashMap<String, Arc<OpenFlow>>>,
}

impl LocalResolver {
    pub fn new(scripts_dir: PathBuf, secrets: Secrets) -> LocalResolver {
        LocalResolver {
            scripts_dir,
            secrets,
            flows: Mutex::new(HashMap::new()),
        }
    }

    /// The export root a flow's scripts resolve against when `--scripts` is not given: for a
    /// flow inside an export (`ROOT/f/folder/name.flow`), ROOT; else the flow's directory.
    pub fn default_scripts_dir(flow_dir: &Path) -> PathBuf {
        flow_dir
            .ancestors()
            .find(|dir| {
                dir.file_name()
                    .is_some_and(|name| ["f", "u", "g"].contains(&name.to_str().unwrap_or("")))
            })
            .and_then(Path::parent)
            .unwrap_or(flow_dir)
            .to_path_buf()
    }

    fn local_path(&self, kind: &'static str, path: &str) -> Result<PathBuf, ResolveError> {
        let relative = Path::new(path);
        let escapes = relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)));
        if escapes {
            return Err(ResolveError::Invalid {
                kind,
                path: path.into(),
                reason: "a path is relative and made of plain names (no `..`, no leading `/`)"
                    .into(),
            });
        }
        Ok(self.scripts_dir.join(relative))
    }
}

impl Resolver for LocalResolver {
    fn script(&self, path: &str) -> Result<ResolvedScript, ResolveError> {
        if path.starts_with("hub/") {
            let script = hub::find(path).ok_or_else(|| ResolveError::Invalid {
                kind: "script",
                path: path.into(),
                reason: format!(
                    "the bundled hub has {}",
                    hub::SCRIPTS
                        .iter()
                        .map(|s| format!("hub/{}", s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            return Ok(ResolvedScript {
                language: script.language.name().into(),
                content: script.content.into(),
                lock: None,
            });
        }
        let base = self.local_path("script", path)?;
        for ending in SCRIPT_ENDINGS {
            let file = PathBuf::from(format!("{}{ending}", base.display()));
            let Ok(content) = std::fs::read_to_string(&file) else {
                continue;
            };
            let language = Language::from_file_name(ending).expect("every ending has a language");
            return Ok(ResolvedScript {
                language: language.name().into(),
                content,
                lock: None,
            });
        }
        Err(ResolveError::Invalid {
            kind: "script",
            path: path.into(),
            reason: format!(
                "no file {}{{{}}}; scripts are looked up under the scripts directory (--scripts DIR)",
                base.display(),
                SCRIPT_ENDINGS.join(",")
            ),
        })
    }

    fn flow(&self, path: &str) -> Result<Arc<OpenFlow>, ResolveError> {
        if let Some(flow) = self.flows.lock().expect("lock").get(path) {
            return Ok(flow.clone());
        }
        let base = self.local_path("flow", path)?;
        let candidates = [".flow", ".flow.yaml", ".flow.json"]
            .map(|ending| PathBuf::from(format!("{}{ending}", base.display())));
        let file = candidates
            .iter()
            .find(|candidate| candidate.exists())
            .ok_or_else(|| ResolveError::Invalid {
                kind: "flow",
                path: path.into(),
                reason: format!(
                    "no {}.flow/ folder (or .flow.yaml / .flow.json file); flows are looked up under the scripts directory (--scripts DIR)",
                    base.display()
                ),
            })?;
        let loaded = flow::load_path(file).map_err(|e| ResolveError::Invalid {
            kind: "flow",
            path: path.into(),
            reason: e.to_string(),
        })?;
        let flow = Arc::new(loaded.flow);
        self.flows
            .lock()
            .expect("lock")
            .insert(path.into(), flow.clone());
        Ok(flow)
    }

    fn variable(&self, path: &str) -> Result<Value, ResolveError> {
        secret(&self.secrets, SecretKind::Variable, path)
    }

    fn resource(&self, path: &str) -> Result<Value, ResolveError> {
        secret(&self.secrets, SecretKind::Resource, path)
    }
}

fn secret(secrets: &Secrets, kind: SecretKind, path: &str) -> Result<Value, ResolveError> {
    secrets.lookup(kind, path, |name| std::env::var(name).ok()).ok_or_else(|| {
        let (kind_name, env) = match kind {
            SecretKind::Variable => ("variable", super::secrets::env_name(kind, path)),
            SecretKind::Resource => ("resource", super::secrets::env_name(kind, path)),
        };
        ResolveError::Invalid {
            kind: kind_name,
            path: path.into(),
            reason: format!("it is not set: set the environment variable {env} or give `{path}` in --variables FILE"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(dir: &Path) -> LocalResolver {
        LocalResolver::new(dir.to_path_buf(), Secrets::default())
    }

    #[test]
    fn hub_scripts_are_bundled() {
        let dir = tempfile::tempdir().unwrap();
        let script = resolver(dir.path()).script("hub/http_request").unwrap();
        assert_eq!(script.language, "python3");
        let err = resolver(dir.path())
            .script("hub/nope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hub/slack_post"), "{err}");
    }

    #[test]
    fn workspace_scripts_take_their_language_from_the_file_ending() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("f/team")).unwrap();
        std::fs::write(
            dir.path().join("f/team/greet.deno.ts"),
            "export function main() {}",
        )
        .unwrap();
        std::fs::write(dir.path().join("f/team/count.sh"), "echo 1").unwrap();
        let r = resolver(dir.path());
        assert_eq!(r.script("f/team/greet").unwrap().language, "deno");
        assert_eq!(r.script("f/team/count").unwrap().content, "echo 1");
        let err = r.script("f/team/missing").unwrap_err().to_string();
        assert!(
            err.contains("f/team/missing") && err.contains("--scripts"),
            "{err}"
        );
        let err = r.script("f/../../etc/passwd").unwrap_err().to_string();
        assert!(err.contains("no `..`"), "{err}");
    }

    #[test]
    fn subflows_load_once_from_flow_folders() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("f/team/sub.flow");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("flow.yaml"),
            "summary: sub\nvalue:\n  modules: []\n",
        )
        .unwrap();
        let r = resolver(dir.path());
        let first = r.flow("f/team/sub").unwrap();
        assert_eq!(first.summary, "sub");
        assert!(Arc::ptr_eq(&first, &r.flow("f/team/sub").unwrap()));
        assert!(r.flow("f/team/other").is_err());
    }

    #[test]
    fn the_default_scripts_dir_is_the_export_root() {
        let dir = tempfile::tempdir().unwrap();
        let flow_dir = dir.path().join("export/f/team");
        std::fs::create_dir_all(&flow_dir).unwrap();
        assert_eq!(
            LocalResolver::default_scripts_dir(&flow_dir),
            dir.path().join("export")
        );
        let plain = dir.path().join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        assert_eq!(LocalResolver::default_scripts_dir(&plain), plain);
    }

    #[test]
    fn unset_variables_say_how_to_set_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolver(dir.path())
            .variable("f/team/not_set_anywhere")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MILLRACE_VAR_F_TEAM_NOT_SET_ANYWHERE"),
            "{err}"
        );
    }
}
