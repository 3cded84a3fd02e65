//! Which interpreters run the steps on this machine.

use super::Language;
use crate::exec::AttemptError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The interpreters found on this machine, looked up once per run.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub python: OsString,
    pub bash: OsString,
    pub bun: Option<PathBuf>,
    pub deno: Option<PathBuf>,
}

/// Which program runs a TypeScript step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsRuntime {
    Bun,
    Deno,
}

impl Toolchain {
    /// `python3` and `bash` from `PATH`; bun and deno from `MILLRACE_BUN` / `MILLRACE_DENO`
    /// when set, else from `PATH`.
    pub fn from_env() -> Toolchain {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let find = |override_var: &str, name: &str| {
            std::env::var_os(override_var)
                .map(PathBuf::from)
                .or_else(|| find_in_path(&path, name))
        };
        Toolchain {
            python: "python3".into(),
            bash: "bash".into(),
            bun: find("MILLRACE_BUN", "bun"),
            deno: find("MILLRACE_DENO", "deno"),
        }
    }

    /// The runtime for a TypeScript step: the one its language names when installed, else the other.
    pub(crate) fn typescript(
        &self,
        language: Language,
    ) -> Result<(TsRuntime, &Path), AttemptError> {
        let bun = self.bun.as_deref().map(|p| (TsRuntime::Bun, p));
        let deno = self.deno.as_deref().map(|p| (TsRuntime::Deno, p));
        let found = match language {
            Language::Deno => deno.or(bun),
            _ => bun.or(deno),
        };
        found.ok_or_else(|| {
            AttemptError::Unavailable(format!(
                "TypeScript steps ({language}) need bun or deno, and neither is on PATH: install one \
                 (`npm install -g bun`, or see deno.com), or point MILLRACE_BUN / MILLRACE_DENO at it"
            ))
        })
    }
}

fn find_in_path(path: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain(bun: Option<&str>, deno: Option<&str>) -> Toolchain {
        Toolchain {
            python: "python3".into(),
            bash: "bash".into(),
            bun: bun.map(PathBuf::from),
            deno: deno.map(PathBuf::from),
        }
    }

    #[test]
    fn typescript_prefers_the_named_runtime_and_falls_back_to_the_other() {
        let both = toolchain(Some("/b/bun"), Some("/d/deno"));
        assert_eq!(both.typescript(Language::Bun).unwrap().0, TsRuntime::Bun);
        assert_eq!(both.typescript(Language::Deno).unwrap().0, TsRuntime::Deno);
        let only_bun = toolchain(Some("/b/bun"), None);
        assert_eq!(
            only_bun.typescript(Language::Deno).unwrap().0,
            TsRuntime::Bun
        );
    }

    #[test]
    fn typescript_without_a_runtime_says_what_to_install() {
        let err = toolchain(None, None).typescript(Language::Bun).unwrap_err();
        assert!(err.to_string().contains("npm install -g bun"), "{err}");
    }

    #[test]
    fn finds_executables_on_path() {
        let found = find_in_path(std::ffi::OsStr::new("/nonexistent:/bin:/usr/bin"), "sh");
        assert!(found.is_some());
        assert_eq!(
            find_in_path(std::ffi::OsStr::new("/nonexistent"), "sh"),
            None
        );
    }
}
