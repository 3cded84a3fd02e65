//! Pure decisions about a remote: which transport a URL names, and which advertised ref (and
//! commit) a wanted ref is.

use super::FetchError;
use git2::Oid;
use std::fmt;

/// A branch, tag or commit to sync; `Head` is what the remote's HEAD points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Head,
    Branch(String),
    Tag(String),
    /// A full 40-character commit sha.
    Commit(String),
    /// A branch or tag, whichever the remote has (a branch first), as `git` reads a name.
    Name(String),
}

impl GitRef {
    /// Reads a ref as the command line takes it: `HEAD`, a commit sha, `refs/heads/B`,
    /// `refs/tags/T`, or a branch or tag name.
    pub fn parse(text: &str) -> GitRef {
        if text == "HEAD" {
            GitRef::Head
        } else if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            GitRef::Commit(text.to_ascii_lowercase())
        } else if let Some(branch) = text.strip_prefix("refs/heads/") {
            GitRef::Branch(branch.into())
        } else if let Some(tag) = text.strip_prefix("refs/tags/") {
            GitRef::Tag(tag.into())
        } else {
            GitRef::Name(text.into())
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Head => f.write_str("HEAD"),
            GitRef::Branch(b) => write!(f, "branch `{b}`"),
            GitRef::Tag(t) => write!(f, "tag `{t}`"),
            GitRef::Commit(c) => write!(f, "commit {c}"),
            GitRef::Name(n) => write!(f, "branch or tag `{n}`"),
        }
    }
}

/// How a URL is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A path or `file://` URL: read directly, no shallow fetch.
    Local,
    Git,
    Http,
    Https {
        host: String,
    },
    Ssh {
        host: String,
        port: u16,
    },
}

impl Transport {
    /// `https://`, `http://`, `ssh://[user@]host[:port]/path`, `user@host:path`, `git://`,
    /// `file://` or a path.
    pub fn of(url: &str) -> Result<Transport, FetchError> {
        let bad = |why: &str| FetchError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if let Some((scheme, rest)) = url.split_once("://") {
            let authority = rest.split('/').next().unwrap_or_default();
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let (host, port) = match host_port.rsplit_once(':') {
                Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                    let port = port.parse().map_err(|_| bad("the port is not a number"))?;
                    (
                        host.trim_start_matches('[').trim_end_matches(']'),
                        Some(port),
                    )
                }
                _ => (host_port, None),
            };
            return match scheme {
                "file" => Ok(Transport::Local),
                "git" => Ok(Transport::Git),
                "http" => Ok(Transport::Http),
                "https" if !host.is_empty() => Ok(Transport::Https { host: host.into() }),
                "ssh" | "git+ssh" | "ssh+git" if !host.is_empty() => Ok(Transport::Ssh {
                    host: host.into(),
                    port: port.unwrap_or(22),
                }),
                "https" | "ssh" | "git+ssh" | "ssh+git" => Err(bad("the URL names no host")),
                _ => Err(bad("use https://, ssh://, git:// or file:// (or a path)")),
            };
        }
        // scp-like `user@host:path`: a colon before the first slash.
        match url.split_once(':') {
            Some((authority, _)) if !authority.contains('/') && !authority.is_empty() => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                Ok(Transport::Ssh {
                    host: host.into(),
                    port: 22,
                })
            }
            _ => Ok(Transport::Local),
        }
    }

    /// Whether the server can send only the last commit (`file://` cannot).
    pub fn shallow(&self) -> bool {
        *self != Transport::Local
    }
}

/// One ref as the remote advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub name: String,
    pub oid: Oid,
    /// For HEAD, the branch it points at.
    pub symref: Option<String>,
}

/// The ref to fetch and the object it names on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The full ref name (`refs/heads/main`), or the sha for a commit or a HEAD without a branch.
    pub refname: String,
    /// What the ref points at: for an annotated tag, the tag object.
    pub oid: Oid,
    /// The commit an annotated tag points at, when the remote says (`refs/tags/T^{}`).
    pub peeled: Option<Oid>,
}

impl Wanted {
    /// The commit, as far as the remote has said.
    pub fn commit(&self) -> Oid {
        self.peeled.unwrap_or(self.oid)
    }
}

/// Finds `wanted` among the remote's refs.
pub fn resolve(url: &str, heads: &[Advertised], wanted: &GitRef) -> Result<Wanted, FetchError> {
    let find = |name: &str| {
        heads.iter().find(|h| h.name == name).map(|head| Wanted {
            refname: name.to_string(),
            oid: head.oid,
            peeled: heads
                .iter()
                .find(|h| h.name == format!("{name}^{{}}"))
                .map(|h| h.oid),
        })
    };
    let found = match wanted {
        GitRef::Head => heads.iter().find(|h| h.name == "HEAD").map(|head| {
            match head.symref.as_deref().and_then(find) {
                Some(branch) => branch,
                None => Wanted {
                    refname: head.oid.to_string(),
                    oid: head.oid,
                    peeled: None,
                },
            }
        }),
        GitRef::Branch(branch) => find(&format!("refs/heads/{branch}")),
        GitRef::Tag(tag) => find(&format!("refs/tags/{tag}")),
        GitRef::Name(name) => {
            find(&format!("refs/heads/{name}")).or_else(|| find(&format!("refs/tags/{name}")))
        }
        GitRef::Commit(sha) => {
            let oid = Oid::from_str(sha).map_err(|_| FetchError::BadUrl {
                url: url.to_string(),
                why: format!("`{sha}` is not a commit sha"),
            })?;
            Some(Wanted {
                refname: sha.clone(),
                oid,
                peeled: None,
            })
        }
    };
    found.ok_or_else(|| {
        let mut available: Vec<&str> = heads
            .iter()
            .filter_map(|h| {
                h.name
                    .strip_prefix("refs/heads/")
                    .or_else(|| h.name.strip_prefix("refs/tags/"))
            })
            .filter(|name| !name.ends_with("^{}"))
            .collect();
        let more = available.len() > 10;
        available.truncate(10);
        FetchError::RefNotFound {
            url: url.to_string(),
            reference: wanted.to_string(),
            available: if available.is_empty() {
                "none: the repository is empty".to_string()
            } else {
                format!("{}{}", available.join(", "), if more { ", …" } else { "" })
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    fn heads() -> Vec<Advertised> {
        let head = |name: &str, n, symref: Option<&str>| Advertised {
            name: name.into(),
            oid: oid(n),
            symref: symref.map(Into::into),
        };
        vec![
            head("HEAD", 1, Some("refs/heads/main")),
            head("refs/heads/main", 1, None),
            head("refs/heads/v1", 2, None),
            head("refs/tags/v1", 3, None),
            head("refs/tags/v1^{}", 4, None),
        ]
    }

    #[test]
    fn refs_read_from_the_command_line() {
        assert_eq!(GitRef::parse("HEAD"), GitRef::Head);
        assert_eq!(GitRef::parse("refs/tags/v1"), GitRef::Tag("v1".into()));
        assert_eq!(GitRef::parse("main"), GitRef::Name("main".into()));
        let sha = "A".repeat(40);
        assert_eq!(GitRef::parse(&sha), GitRef::Commit("a".repeat(40)));
    }

    #[test]
    fn resolves_branches_tags_and_head() {
        let heads = heads();
        let head = resolve("u", &heads, &GitRef::Head).unwrap();
        assert_eq!(
            (head.refname.as_str(), head.commit()),
            ("refs/heads/main", oid(1))
        );
        let tag = resolve("u", &heads, &GitRef::Tag("v1".into())).unwrap();
        assert_eq!((tag.oid, tag.commit()), (oid(3), oid(4)));
        let name = resolve("u", &heads, &GitRef::Name("v1".into())).unwrap();
        assert_eq!(name.refname, "refs/heads/v1");
        let error = resolve("u", &heads, &GitRef::Branch("dev".into()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("branch `dev` is not on the remote"),
            "{error}"
        );
        assert!(error.contains("main, v1, v1"), "{error}");
    }

    #[test]
    fn transports_by_url() {
        assert_eq!(Transport::of("/srv/repo").unwrap(), Transport::Local);
        assert_eq!(Transport::of("file:///srv/repo").unwrap(), Transport::Local);
        assert_eq!(
            Transport::of("git://127.0.0.1:9418/r").unwrap(),
            Transport::Git
        );
        assert_eq!(
            Transport::of("https://x:tok@github.com/o/r.git").unwrap(),
            Transport::Https {
                host: "github.com".into()
            }
        );
        assert_eq!(
            Transport::of("ssh://git@127.0.0.1:2222/srv/r.git").unwrap(),
            Transport::Ssh {
                host: "127.0.0.1".into(),
                port: 2222
            }
        );
        assert_eq!(
            Transport::of("git@github.com:o/r.git").unwrap(),
            Transport::Ssh {
                host: "github.com".into(),
                port: 22
            }
        );
        assert!(Transport::of("ftp://x/y").is_err());
        assert!(!Transport::Local.shallow());
    }
}
