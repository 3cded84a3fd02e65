//! What a fetch authenticates with, as a Secret holds it: `token` (or `username` + `password`)
//! for https, `identity` + `known_hosts` for ssh, `ca.crt` for an https server whose certificate
//! a private CA signed.

use std::collections::BTreeMap;
use std::fmt;

/// The user name a token is sent with unless `username` is given: GitHub takes it for app and
/// personal tokens; GitLab and Gitea take any user name with a personal token (give `username`
/// for the few servers that want a particular one, such as Bitbucket's `x-token-auth`).
pub const TOKEN_USER: &str = "x-access-token";

/// Secret keys, as a GitSource's Secret holds them.
pub const TOKEN_KEY: &str = "token";
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";
pub const IDENTITY_KEY: &str = "identity";
pub const KNOWN_HOSTS_KEY: &str = "known_hosts";
/// The CA certificate(s), PEM; `caFile` is read too, the older name Flux used.
pub const CA_KEYS: [&str; 2] = ["ca.crt", "caFile"];

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// https: a token, sent as the password of `username` (default [`TOKEN_USER`]).
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// ssh: the private key (OpenSSH or PEM format, without a passphrase).
    pub identity: Option<String>,
    /// ssh: the lines the server's host key must match; ssh needs them, host keys are always
    /// verified.
    pub known_hosts: Option<String>,
    /// https: PEM certificates of the CA that signed the server's certificate, trusted instead
    /// of the system's CAs.
    pub ca: Option<String>,
}

/// Secrets never reach logs: only which fields are set is shown.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("Credentials")
            .field("token", &set(&self.token))
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("identity", &set(&self.identity))
            .field("known_hosts", &set(&self.known_hosts))
            .field("ca", &set(&self.ca))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret key `{key}` is not UTF-8 text; store it as text")]
pub struct NotText {
    pub key: String,
}

impl Credentials {
    /// Reads the keys a GitSource's Secret may hold; other keys are left alone.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Credentials, NotText> {
        let text = |key: &str| -> Result<Option<String>, NotText> {
            data.get(key)
                .map(|bytes| {
                    String::from_utf8(bytes.clone()).map_err(|_| NotText { key: key.into() })
                })
                .transpose()
        };
        let mut ca = None;
        for key in CA_KEYS {
            ca = ca.or(text(key)?);
        }
        Ok(Credentials {
            token: text(TOKEN_KEY)?,
            username: text(USERNAME_KEY)?,
            password: text(PASSWORD_KEY)?,
            identity: text(IDENTITY_KEY)?,
            known_hosts: text(KNOWN_HOSTS_KEY)?,
            ca,
        })
    }

    /// The user name and password for https, if any: a token wins over a password.
    pub fn https_login(&self) -> Option<(&str, &str)> {
        match (&self.token, &self.username, &self.password) {
            (Some(token), username, _) => Some((username.as_deref().unwrap_or(TOKEN_USER), token)),
            (None, Some(username), Some(password)) => Some((username, password)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_secret_and_never_shows_it() {
        let data = BTreeMap::from([
            ("token".to_string(), b"s3cr3t".to_vec()),
            ("caFile".to_string(), b"PEM".to_vec()),
            ("other".to_string(), vec![0xff]),
        ]);
        let credentials = Credentials::from_secret_data(&data).unwrap();
        assert_eq!(credentials.https_login(), Some((TOKEN_USER, "s3cr3t")));
        assert_eq!(credentials.ca.as_deref(), Some("PEM"));
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
        let bad = BTreeMap::from([("identity".to_string(), vec![0xff])]);
        assert_eq!(
            Credentials::from_secret_data(&bad).unwrap_err().to_string(),
            "secret key `identity` is not UTF-8 text; store it as text"
        );
    }

    #[test]
    fn a_token_goes_with_the_given_user_name() {
        let credentials = Credentials {
            token: Some("t".into()),
            username: Some("oauth2".into()),
            password: Some("ignored".into()),
            ..Credentials::default()
        };
        assert_eq!(credentials.https_login(), Some(("oauth2", "t")));
        let basic = Credentials {
            username: Some("u".into()),
            password: Some("p".into()),
            ..Credentials::default()
        };
        assert_eq!(basic.https_login(), Some(("u", "p")));
    }
}
