//! Fetching the commit a source wants into its own bare repository cache.
//!
//! The remote's refs are listed first; when the wanted commit is already in the cache nothing is
//! downloaded. Otherwise only that ref is fetched, shallow (depth 1) where the transport allows.
//! git2 blocks: the work runs on a thread of its own, bounded by the timeout (the transfer
//! callbacks abort once it has passed, and the caller stops waiting).

mod callbacks;
mod credentials;
mod known_hosts;
mod remote;
mod tls;

pub use credentials::{Credentials, NotText, TOKEN_USER};
pub use remote::{GitRef, Transport};

use callbacks::Session;
use git2::{AutotagOption, Direction, FetchOptions, Oid, Repository};
use remote::Advertised;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, mpsc};
use std::time::{Duration, Instant};

/// The timeout when a source names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The local ref the cache keeps the last fetched commit under.
const FETCHED_REF: &str = "refs/millrace/fetched";
/// The depth that asks for the whole history (libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`).
const UNSHALLOW: i32 = i32::MAX;
/// How long past the timeout the caller waits for the fetch thread's own, more precise, error.
const GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub url: String,
    pub reference: GitRef,
    pub credentials: Credentials,
    /// The bare repository cache of this source, created when missing. One per source.
    pub cache: PathBuf,
    pub timeout: Duration,
}

/// The commit a fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit sha.
    pub commit: Oid,
    /// The ref it was found under (`refs/heads/main`), or the sha itself.
    pub refname: String,
    /// False when the cache had the commit already and nothing was downloaded.
    pub downloaded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not a repository URL: {why}")]
    BadUrl { url: String, why: String },
    #[error(
        "{url}: the server asks for credentials and none fit: give `token` (or `username` and `password`) for https, `identity` for ssh"
    )]
    NoCredentials { url: String },
    #[error(
        "{url}: the server refused the credentials ({detail}); check the token, user name and password, or the ssh identity, and what they may read"
    )]
    AuthFailed { url: String, detail: String },
    #[error(
        "{url}: credentials are sent over https or ssh only, never over {scheme}; use https://"
    )]
    Cleartext { url: String, scheme: String },
    #[error("{url}: ssh needs `{what}` in the credentials ({why})")]
    SshSetup {
        url: String,
        what: &'static str,
        why: &'static str,
    },
    #[error(
        "{url}: host {host} is not in known_hosts; add its key (`ssh-keyscan -p PORT HOST` prints it; check it with the server's owner) — the server offered {fingerprint}"
    )]
    UnknownHost {
        url: String,
        host: String,
        fingerprint: String,
    },
    #[error(
        "{url}: the host key of {host} ({fingerprint}) is not the one in known_hosts (which has {known}); someone may be impersonating the server — if its key really changed, update known_hosts"
    )]
    HostKeyChanged {
        url: String,
        host: String,
        fingerprint: String,
        known: String,
    },
    #[error("{url}: the host key of {host} ({fingerprint}) is revoked in known_hosts")]
    HostKeyRevoked {
        url: String,
        host: String,
        fingerprint: String,
    },
    #[error(
        "{url}: {detail}; give the CA that signed it as `ca.crt`, or fix the server's certificate"
    )]
    Certificate { url: String, detail: String },
    #[error("{url}: {reference} is not on the remote; it has {available}")]
    RefNotFound {
        url: String,
        reference: String,
        available: String,
    },
    #[error("{url}: cannot reach the repository: {detail}")]
    Network { url: String, detail: String },
    #[error(
        "{url}: the fetch took longer than {}s and was stopped; raise the timeout, or check the network and the server",
        timeout.as_secs()
    )]
    Timeout { url: String, timeout: Duration },
    #[error("repository cache {}: {detail}", path.display())]
    Cache { path: PathBuf, detail: String },
    #[error("{url}: git: {detail}")]
    Git { url: String, detail: String },
}

/// Caches a fetch is writing into: one fetch per cache at a time (a timed-out one may still be
/// finishing).
static BUSY: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

struct Claim(PathBuf);

impl Claim {
    fn take(cache: &Path) -> Result<Claim, FetchError> {
        let mut busy = BUSY.lock().expect("busy caches");
        if !busy
            .get_or_insert_with(HashSet::new)
            .insert(cache.to_path_buf())
        {
            return Err(FetchError::Cache {
                path: cache.to_path_buf(),
                detail: "another fetch into it is still running (an earlier one may have timed out); try again later".into(),
            });
        }
        Ok(Claim(cache.to_path_buf()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(busy) = BUSY.lock().expect("busy caches").as_mut() {
            busy.remove(&self.0);
        }
    }
}

/// Brings the commit `request` wants into its cache; blocks up to the timeout (and a little).
pub fn fetch(request: &FetchRequest) -> Result<Fetched, FetchError> {
    server_timeouts();
    let claim = Claim::take(&request.cache)?;
    let deadline = Instant::now() + request.timeout;
    let (sender, receiver) = mpsc::channel();
    let owned = request.clone();
    std::thread::Builder::new()
        .name("git-fetch".into())
        .spawn(move || {
            let result = fetch_now(&owned, deadline);
            // Released before the caller hears back, so that it can fetch again at once.
            drop(claim);
            let _ = sender.send(result);
        })
        .map_err(|e| FetchError::Git {
            url: request.url.clone(),
            detail: format!("cannot start the fetch thread: {e}"),
        })?;
    receiver
        .recv_timeout(request.timeout + GRACE)
        .unwrap_or_else(|_| {
            Err(FetchError::Timeout {
                url: request.url.clone(),
                timeout: request.timeout,
            })
        })
}

/// libgit2's socket timeouts, so that a silent server cannot hold a fetch thread for long after
/// its caller stopped waiting. Process-wide; set once.
fn server_timeouts() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        // SAFETY: runs once, before this module's first libgit2 call; the options are plain ints.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(30_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(30_000);
        }
    });
}

fn fetch_now(request: &FetchRequest, deadline: Instant) -> Result<Fetched, FetchError> {
    let url = request.url.as_str();
    let transport = Transport::of(url)?;
    let session = Session::new(request, &transport, deadline)?;
    let repo = open_cache(&request.cache)?;
    if let GitRef::Commit(sha) = &request.reference
        && let Some(commit) = Oid::from_str(sha)
            .ok()
            .and_then(|oid| commit_in(&repo, oid))
    {
        // A commit never moves: when the cache has it, the remote is not even asked.
        return Ok(Fetched {
            commit,
            refname: sha.clone(),
            downloaded: false,
        });
    }
    let mut remote = repo
        .remote_anonymous(&git_url(url))
        .map_err(|e| session.error(e))?;
    let heads: Vec<Advertised> = {
        let connection = remote
            .connect_auth(Direction::Fetch, Some(session.callbacks()), None)
            .map_err(|e| session.error(e))?;
        connection
            .list()
            .map_err(|e| session.error(e))?
            .iter()
            .map(|head| Advertised {
                name: head.name().to_string(),
                oid: head.oid(),
                symref: head.symref_target().map(str::to_string),
            })
            .collect()
    };
    let wanted = remote::resolve(url, &heads, &request.reference)?;
    if let Some(commit) = commit_in(&repo, wanted.commit()) {
        keep(&repo, commit);
        return Ok(Fetched {
            commit,
            refname: wanted.refname,
            downloaded: false,
        });
    }
    let refspec = format!("+{}:{FETCHED_REF}", wanted.refname);
    let mut options = fetch_options(&session, transport.shallow().then_some(1));
    let first = remote.fetch(&[refspec.as_str()], Some(&mut options), None);
    let commit = match (first, commit_in(&repo, wanted.commit())) {
        (Ok(()), Some(commit)) => commit,
        (Ok(()), None) => commit_in(&repo, wanted.oid).ok_or_else(|| FetchError::Git {
            url: url.to_string(),
            detail: format!("the fetch of {} did not bring a commit", wanted.refname),
        })?,
        (Err(error), _) if !matches!(request.reference, GitRef::Commit(_)) => {
            return Err(session.error(error));
        }
        // Servers that refuse a commit by sha: fetch every branch and tag, and look for it.
        (Err(_), _) => {
            session.forget_failure();
            // The whole history: a shallow cache ends above older commits.
            let depth = repo.is_shallow().then_some(UNSHALLOW);
            let mut options = fetch_options(&session, depth);
            options.download_tags(AutotagOption::All);
            remote
                .fetch(
                    &["+refs/heads/*:refs/millrace/heads/*"],
                    Some(&mut options),
                    None,
                )
                .map_err(|e| session.error(e))?;
            commit_in(&repo, wanted.oid).ok_or_else(|| FetchError::RefNotFound {
                url: url.to_string(),
                reference: request.reference.to_string(),
                available: "no branch or tag that contains it".into(),
            })?
        }
    };
    keep(&repo, commit);
    Ok(Fetched {
        commit,
        refname: wanted.refname,
        downloaded: true,
    })
}

fn fetch_options<'a>(session: &'a Session, depth: Option<i32>) -> FetchOptions<'a> {
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(session.callbacks())
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    if let Some(depth) = depth {
        options.depth(depth);
    }
    options
}

/// libgit2 reads a plain path as a local repository; a relative one from the current directory.
fn git_url(url: &str) -> String {
    match Transport::of(url) {
        Ok(Transport::Local) if !url.starts_with("file://") => std::path::absolute(url)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| url.to_string()),
        _ => url.to_string(),
    }
}

fn open_cache(path: &Path) -> Result<Repository, FetchError> {
    let failed = |detail: String| FetchError::Cache {
        path: path.to_path_buf(),
        detail,
    };
    let empty = std::fs::read_dir(path).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        std::fs::create_dir_all(path).map_err(|e| failed(format!("cannot create it: {e}")))?;
        return Repository::init_bare(path).map_err(|e| failed(e.message().to_string()));
    }
    Repository::open_bare(path).map_err(|e| {
        failed(format!(
            "not a bare repository ({}); point the cache at an empty or a cache directory",
            e.message()
        ))
    })
}

/// The commit `oid` is or points at, when the cache has it.
fn commit_in(repo: &Repository, oid: Oid) -> Option<Oid> {
    repo.find_object(oid, None)
        .and_then(|object| object.peel_to_commit())
        .map(|commit| commit.id())
        .ok()
}

/// Points the cache's ref at the commit, so that it stays reachable there.
fn keep(repo: &Repository, commit: Oid) {
    // Best effort: the commit is read by id either way.
    let _ = repo.reference(FETCHED_REF, commit, true, "millrace fetch");
}
