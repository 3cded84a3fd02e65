//! Fetching a source's commit over every transport, from servers the tests start on loopback
//! ports: file://, git:// (git daemon), https with a token (git http-backend behind TLS with a
//! test CA), ssh with a key (sshd). Host keys and certificates are always checked.

mod support {
    #[path = "cluster/certs.rs"]
    pub mod certs;
    pub mod git_repos;
    pub mod git_servers;
    #[path = "cluster/process.rs"]
    pub mod process;
}

use git2::Repository;
use millrace::gitsync::fetch::{Credentials, FetchError, FetchRequest, GitRef, fetch};
use std::path::Path;
use std::time::Duration;
use support::git_repos::Repo;
use support::git_servers::{GitDaemon, HttpsGit, Sshd, ssh_key, sshd_binary};

fn request(url: &str, reference: GitRef, cache: &Path) -> FetchRequest {
    FetchRequest {
        url: url.to_string(),
        reference,
        credentials: Credentials::default(),
        cache: cache.to_path_buf(),
        timeout: Duration::from_secs(60),
    }
}

/// A work repository with two commits on main, pushed to `<base>/flows.git`; returns it and the
/// first commit.
fn published(base: &Path) -> (Repo, String) {
    let repo = Repo::init(&base.join("work"));
    repo.write("flows/a.yaml", "a: 1\n");
    let first = repo.commit("first");
    repo.write("flows/b.yaml", "b: 2\n");
    repo.commit("second");
    repo.push_to(&base.join("flows.git"));
    (repo, first)
}

fn has_commit(cache: &Path, sha: &str) -> bool {
    let repo = Repository::open_bare(cache).unwrap();
    repo.find_commit(git2::Oid::from_str(sha).unwrap()).is_ok()
}

#[test]
fn file_urls_and_paths_fetch_and_an_unmoved_ref_downloads_nothing() {
    let base = tempfile::tempdir().unwrap();
    let (repo, first) = published(base.path());
    let cache = base.path().join("cache");
    let url = format!("file://{}", base.path().join("flows.git").display());
    let fetched = fetch(&request(&url, GitRef::Head, &cache)).unwrap();
    assert_eq!(fetched.commit.to_string(), repo.head());
    assert_eq!(fetched.refname, "refs/heads/main");
    assert!(fetched.downloaded);
    let again = fetch(&request(&url, GitRef::Branch("main".into()), &cache)).unwrap();
    assert_eq!((again.commit, again.downloaded), (fetched.commit, false));
    // A new commit moves the ref: fetched.
    repo.write("flows/c.yaml", "c: 3\n");
    let third = repo.commit("third");
    repo.push_to(&base.path().join("flows.git"));
    let moved = fetch(&request(&url, GitRef::Head, &cache)).unwrap();
    assert_eq!((moved.commit.to_string(), moved.downloaded), (third, true));
    // A commit already in the cache: nothing asked of the remote, even a gone one.
    let gone = request(
        "file:///nonexistent/repo.git",
        GitRef::Commit(first.clone()),
        &cache,
    );
    let old = fetch(&gone).unwrap();
    assert_eq!((old.commit.to_string(), old.downloaded), (first, false));
    // A plain path of a work repository.
    let by_path = fetch(&request(
        repo.dir.to_str().unwrap(),
        GitRef::Head,
        &base.path().join("cache2"),
    ))
    .unwrap();
    assert_eq!(by_path.commit.to_string(), repo.head());
}

#[test]
fn branches_tags_and_commits_resolve_and_unknown_refs_say_what_exists() {
    let base = tempfile::tempdir().unwrap();
    let (repo, first) = published(base.path());
    repo.run(&["branch", "release", &first]);
    repo.run(&["tag", "-a", "v1", "-m", "version 1", &first]);
    repo.push_to(&base.path().join("flows.git"));
    let url = format!("file://{}", base.path().join("flows.git").display());
    for (n, reference) in [
        GitRef::Branch("release".into()),
        GitRef::Tag("v1".into()),
        GitRef::Name("v1".into()),
        GitRef::Commit(first.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let cache = base.path().join(format!("cache{n}"));
        let fetched = fetch(&request(&url, reference.clone(), &cache)).unwrap();
        assert_eq!(fetched.commit.to_string(), first, "{reference}");
        assert!(fetched.downloaded, "{reference}");
    }
    let error = fetch(&request(
        &url,
        GitRef::Branch("nope".into()),
        &base.path().join("c"),
    ))
    .unwrap_err();
    assert!(matches!(error, FetchError::RefNotFound { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("branch `nope` is not on the remote; it has main, release, v1"),
        "{message}"
    );
}

#[test]
fn git_daemon_fetches_shallow_and_only_when_the_ref_moved() {
    let base = tempfile::tempdir().unwrap();
    let (repo, first) = published(base.path());
    let daemon = GitDaemon::start(base.path()).unwrap();
    let url = format!("{}/flows.git", daemon.url);
    let cache = base.path().join("cache");
    let fetched = fetch(&request(&url, GitRef::Head, &cache)).unwrap();
    assert_eq!(fetched.commit.to_string(), repo.head());
    assert!(fetched.downloaded);
    // Depth 1: the parent commit was not downloaded.
    assert!(Repository::open_bare(&cache).unwrap().is_shallow());
    assert!(!has_commit(&cache, &first));
    let again = fetch(&request(&url, GitRef::Head, &cache)).unwrap();
    assert!(!again.downloaded);
    repo.write("flows/c.yaml", "c: 3\n");
    let third = repo.commit("third");
    repo.push_to(&base.path().join("flows.git"));
    let moved = fetch(&request(&url, GitRef::Head, &cache)).unwrap();
    assert_eq!((moved.commit.to_string(), moved.downloaded), (third, true));
    // A commit no ref points at, from a server that refuses fetching it by sha: found all the same.
    let old = fetch(&request(&url, GitRef::Commit(first.clone()), &cache)).unwrap();
    assert_eq!(old.commit.to_string(), first);
}

#[test]
fn https_takes_a_token_checks_the_certificate_and_refuses_a_wrong_token() {
    let base = tempfile::tempdir().unwrap();
    let (repo, _) = published(base.path());
    let server = HttpsGit::start(base.path(), "s3cret-token").unwrap();
    let url = format!("{}/flows.git", server.url);
    let with = |token: Option<&str>, ca: Option<&str>| Credentials {
        token: token.map(Into::into),
        ca: ca.map(Into::into),
        ..Credentials::default()
    };
    let mut good = request(&url, GitRef::Head, &base.path().join("cache"));
    good.credentials = with(Some("s3cret-token"), Some(&server.ca));
    let fetched = fetch(&good).unwrap();
    assert_eq!(fetched.commit.to_string(), repo.head());
    assert!(fetched.downloaded);
    assert!(
        Repository::open_bare(base.path().join("cache"))
            .unwrap()
            .is_shallow()
    );
    let uploads = server.uploads();
    assert!(uploads >= 1);
    // Unchanged: the refs are listed, no pack is asked for.
    assert!(!fetch(&good).unwrap().downloaded);
    assert_eq!(server.uploads(), uploads);

    let attempt = |credentials: Credentials, cache: &str| {
        let mut r = request(&url, GitRef::Head, &base.path().join(cache));
        r.credentials = credentials;
        fetch(&r).unwrap_err()
    };
    let wrong = attempt(with(Some("guessed"), Some(&server.ca)), "c1");
    assert!(matches!(wrong, FetchError::AuthFailed { .. }), "{wrong}");
    assert!(
        wrong.to_string().contains("refused the credentials"),
        "{wrong}"
    );
    let none = attempt(with(None, Some(&server.ca)), "c2");
    assert!(matches!(none, FetchError::NoCredentials { .. }), "{none}");
    // The test CA is not one the system trusts.
    let untrusted = attempt(with(Some("s3cret-token"), None), "c3");
    assert!(
        matches!(untrusted, FetchError::Certificate { .. }),
        "{untrusted}"
    );
    let other_ca = support::certs::Ca::new().unwrap().cert;
    let mismatch = attempt(with(Some("s3cret-token"), Some(&other_ca)), "c4");
    assert!(
        mismatch.to_string().contains("not signed by the given CA"),
        "{mismatch}"
    );
}

#[test]
fn ssh_takes_a_key_and_refuses_unknown_or_wrong_host_keys() {
    let Some(sshd) = sshd_binary() else { return };
    let base = tempfile::tempdir().unwrap();
    let (repo, _) = published(base.path());
    let server = Sshd::start(&sshd, base.path()).unwrap();
    let url = format!("{}{}", server.url, base.path().join("flows.git").display());
    let attempt = |identity: &str, known_hosts: Option<&str>, cache: &str| {
        let mut r = request(&url, GitRef::Head, &base.path().join(cache));
        r.credentials = Credentials {
            identity: Some(identity.into()),
            known_hosts: known_hosts.map(Into::into),
            ..Credentials::default()
        };
        fetch(&r)
    };
    let fetched = attempt(&server.identity, Some(&server.known_hosts), "cache").unwrap();
    assert_eq!(fetched.commit.to_string(), repo.head());
    assert!(fetched.downloaded);
    assert!(
        !attempt(&server.identity, Some(&server.known_hosts), "cache")
            .unwrap()
            .downloaded
    );

    let unknown = attempt(&server.identity, Some("# nothing here\n"), "c1").unwrap_err();
    assert!(
        matches!(unknown, FetchError::UnknownHost { .. }),
        "{unknown}"
    );
    assert!(unknown.to_string().contains("SHA256:"), "{unknown}");
    let (_, other_key) = ssh_key(base.path(), "impostor").unwrap();
    let host = server.known_hosts.split_whitespace().next().unwrap();
    let wrong = format!(
        "{host} {}",
        other_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let changed = attempt(&server.identity, Some(&wrong), "c2").unwrap_err();
    assert!(
        matches!(changed, FetchError::HostKeyChanged { .. }),
        "{changed}"
    );
    let missing = attempt(&server.identity, None, "c3").unwrap_err();
    assert!(
        missing.to_string().contains("ssh needs `known_hosts`"),
        "{missing}"
    );
    let (stranger, _) = ssh_key(base.path(), "stranger").unwrap();
    let refused = attempt(&stranger, Some(&server.known_hosts), "c4").unwrap_err();
    assert!(
        matches!(refused, FetchError::AuthFailed { .. }),
        "{refused}"
    );
}

#[test]
fn a_silent_server_is_bounded_by_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let base = tempfile::tempdir().unwrap();
    let mut r = request(
        &format!("git://127.0.0.1:{port}/flows.git"),
        GitRef::Head,
        &base.path().join("cache"),
    );
    r.timeout = Duration::from_secs(1);
    // The caller gets the timeout error although the server holds the connection open.
    let error = fetch(&r).unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
}
