//! OpenSSH `known_hosts` lines, and whether a server's host key is one of them. A host on another
//! port than 22 is written `[host]:port`, as OpenSSH writes it; hashed names (`|1|salt|hash`)
//! and `*`/`?` patterns match as in OpenSSH; `@cert-authority` lines are not supported (skipped).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// How a host key compares with known_hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    Known,
    /// No line names the host.
    Unknown,
    /// Lines name the host, with other keys (their types).
    Changed {
        known_types: Vec<String>,
    },
    /// A `@revoked` line holds this key.
    Revoked,
}

/// `host` as known_hosts names it for `port`.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's fingerprint of a key blob: `SHA256:` and the unpadded base64 of its digest.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// Compares `key` (the SSH wire-format blob) offered by `host` on `port` with `known_hosts`.
pub fn check(known_hosts: &str, host: &str, port: u16, key: &[u8]) -> HostKey {
    let name = host_name(host, port);
    let mut known_types = Vec::new();
    let mut known = false;
    for line in known_hosts.lines() {
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        if first.starts_with('#') {
            continue;
        }
        let revoked = first == "@revoked";
        if first.starts_with('@') {
            if !revoked {
                continue;
            }
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(key_type), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(first, &name) {
            continue;
        }
        let same = STANDARD.decode(blob).is_ok_and(|decoded| decoded == key);
        match (revoked, same) {
            (true, true) => return HostKey::Revoked,
            (true, false) => {}
            (false, true) => known = true,
            (false, false) => known_types.push(key_type.to_string()),
        }
    }
    if known {
        HostKey::Known
    } else if known_types.is_empty() {
        HostKey::Unknown
    } else {
        HostKey::Changed { known_types }
    }
}

/// A comma-separated host list: any positive pattern matches and no negated one (`!pattern`).
fn hosts_match(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, name) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, name),
        }
    }
    matched
}

/// `salt|hash`, both base64: the HMAC-SHA1 of the name keyed with the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` any run of characters, `?` one character; case-insensitive, as host names are.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"\0\0\0\x0bssh-ed25519 first key";
    const OTHER: &[u8] = b"\0\0\0\x0bssh-ed25519 other key";

    fn line(hosts: &str, key: &[u8]) -> String {
        format!("{hosts} ssh-ed25519 {}\n", STANDARD.encode(key))
    }

    #[test]
    fn finds_the_key_of_the_host_and_port() {
        let known = format!(
            "# comment\n{}{}",
            line("github.com,140.82.112.3", KEY),
            line("[127.0.0.1]:2222", OTHER)
        );
        assert_eq!(check(&known, "github.com", 22, KEY), HostKey::Known);
        assert_eq!(check(&known, "127.0.0.1", 2222, OTHER), HostKey::Known);
        assert_eq!(check(&known, "127.0.0.1", 22, OTHER), HostKey::Unknown);
        assert_eq!(
            check(&known, "github.com", 22, OTHER),
            HostKey::Changed {
                known_types: vec!["ssh-ed25519".into()]
            }
        );
    }

    #[test]
    fn hashed_names_patterns_and_revocations() {
        // `ssh-keygen -H` of "[127.0.0.1]:2222" with this salt.
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hashed = format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        );
        let known = line(&hashed, KEY);
        assert_eq!(check(&known, "127.0.0.1", 2222, KEY), HostKey::Known);
        assert_eq!(check(&known, "127.0.0.2", 2222, KEY), HostKey::Unknown);
        let known = line("*.example.com,!bad.example.com", KEY);
        assert_eq!(check(&known, "git.Example.com", 22, KEY), HostKey::Known);
        assert_eq!(check(&known, "bad.example.com", 22, KEY), HostKey::Unknown);
        let known = format!("@revoked {}{}", line("host", KEY), line("host", KEY));
        assert_eq!(check(&known, "host", 22, KEY), HostKey::Revoked);
    }

    #[test]
    fn fingerprints_read_like_openssh() {
        assert!(fingerprint(KEY).starts_with("SHA256:"));
        assert!(!fingerprint(KEY).ends_with('='));
    }
}
