//! Real git repositories for the sync tests, built with the `git` command: a work repository the
//! test writes and commits in, pushed to bare repositories that the servers in `git_servers`
//! serve.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository with a work tree, on branch `main`.
pub struct Repo {
    pub dir: PathBuf,
}

/// Runs `git` in `dir`, panicking with its output when it fails; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Millrace tests",
            "-c",
            "user.email=tests@millrace.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[allow(
    dead_code,
    reason = "each git test binary uses a different part of the builder"
)]
impl Repo {
    pub fn init(dir: &Path) -> Repo {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "--quiet", "--initial-branch=main"]);
        Repo {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes `path` (parents created).
    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Repo {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
        self
    }

    pub fn remove(&self, path: &str) -> &Repo {
        git(&self.dir, &["rm", "--quiet", "-r", path]);
        self
    }

    /// Copies every file of `source` (a directory) into the repository at `into`.
    pub fn copy_dir(&self, source: &Path, into: &str) -> &Repo {
        for entry in std::fs::read_dir(source).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let target = if into.is_empty() {
                name
            } else {
                format!("{into}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                self.copy_dir(&entry.path(), &target);
            } else {
                self.write(&target, std::fs::read(entry.path()).unwrap());
            }
        }
        self
    }

    /// Commits everything; returns the commit sha.
    pub fn commit(&self, message: &str) -> String {
        git(&self.dir, &["add", "--all"]);
        git(
            &self.dir,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        );
        self.head()
    }

    /// HEAD, after committing what is there when nothing was committed yet.
    pub fn head_or_commit(&self) -> String {
        let output = Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", "HEAD"])
            .current_dir(&self.dir)
            .output()
            .expect("git runs");
        if output.status.success() {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        } else {
            self.commit("initial")
        }
    }

    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    pub fn run(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    /// Pushes every branch and tag to the bare repository `bare` (created when missing).
    pub fn push_to(&self, bare: &Path) {
        if !bare.exists() {
            std::fs::create_dir_all(bare).unwrap();
            git(
                bare,
                &["init", "--quiet", "--bare", "--initial-branch=main"],
            );
        }
        let target = bare.to_str().unwrap();
        git(&self.dir, &["push", "--quiet", "--force", target, "--all"]);
        git(&self.dir, &["push", "--quiet", "--force", target, "--tags"]);
    }
}
