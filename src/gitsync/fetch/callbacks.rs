//! One fetch's callbacks into libgit2: credentials (each offered once), host keys checked
//! against known_hosts, https certificates against the source's CA, and the deadline. A callback
//! that refuses records why, so the error says what failed rather than libgit2's summary.

use super::credentials::Credentials;
use super::known_hosts::{self, HostKey};
use super::remote::Transport;
use super::{FetchError, FetchRequest, tls};
use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};
use rustls_pki_types::CertificateDer;
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub struct Session<'r> {
    url: &'r str,
    transport: &'r Transport,
    credentials: &'r Credentials,
    cas: Option<Vec<CertificateDer<'static>>>,
    deadline: Instant,
    timeout: Duration,
    failure: RefCell<Option<FetchError>>,
}

impl<'r> Session<'r> {
    /// Checks that the credentials suit the transport.
    pub fn new(
        request: &'r FetchRequest,
        transport: &'r Transport,
        deadline: Instant,
    ) -> Result<Session<'r>, FetchError> {
        let url = request.url.as_str();
        let credentials = &request.credentials;
        match transport {
            Transport::Ssh { .. } if credentials.known_hosts.is_none() => {
                return Err(FetchError::SshSetup {
                    url: url.into(),
                    what: "known_hosts",
                    why: "host keys are always verified",
                });
            }
            Transport::Ssh { .. } if credentials.identity.is_none() => {
                return Err(FetchError::SshSetup {
                    url: url.into(),
                    what: "identity",
                    why: "a private key the server accepts",
                });
            }
            Transport::Http if credentials.https_login().is_some() => {
                return Err(FetchError::Cleartext {
                    url: url.into(),
                    scheme: "http://".into(),
                });
            }
            _ => {}
        }
        let cas =
            match (&credentials.ca, transport) {
                (Some(pem), Transport::Https { .. }) => Some(tls::parse_ca(pem).map_err(
                    |detail| FetchError::Certificate {
                        url: url.into(),
                        detail,
                    },
                )?),
                _ => None,
            };
        Ok(Session {
            url,
            transport,
            credentials,
            cas,
            deadline,
            timeout: request.timeout,
            failure: RefCell::new(None),
        })
    }

    /// Callbacks for one libgit2 operation (a connection or a fetch).
    pub fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        // The kinds of credentials offered in this operation: asked again means refused.
        let mut offered = HashSet::new();
        callbacks
            .credentials(move |_url, user, allowed| self.credential(user, allowed, &mut offered));
        callbacks.certificate_check(|cert, host| {
            if self.past_deadline() {
                return Err(git2::Error::from_str("the fetch timed out"));
            }
            let verdict = if let Some(key) = cert.as_hostkey() {
                self.host_key(key.hostkey())
            } else if let Some(x509) = cert.as_x509() {
                self.certificate(x509.data(), host)
            } else {
                Ok(CertificateCheckStatus::CertificatePassthrough)
            };
            verdict.map_err(|failure| self.fail(failure))
        });
        callbacks.transfer_progress(|_| !self.past_deadline());
        callbacks.sideband_progress(|_| !self.past_deadline());
        callbacks
    }

    /// The error for a failed libgit2 call: what a callback recorded, else libgit2's, sorted.
    pub fn error(&self, error: git2::Error) -> FetchError {
        if let Some(failure) = self.failure.borrow_mut().take() {
            return failure;
        }
        let url = self.url.to_string();
        if Instant::now() >= self.deadline {
            return FetchError::Timeout {
                url,
                timeout: self.timeout,
            };
        }
        let detail = error.message().to_string();
        let refused = ["401", "403", "authentication", "credentials"]
            .iter()
            .any(|word| detail.contains(word));
        match (error.code(), error.class()) {
            (ErrorCode::Auth, _) => FetchError::AuthFailed { url, detail },
            // libgit2's own check of the certificate (against the system's CAs) failed.
            (ErrorCode::Certificate, _) | (_, ErrorClass::Ssl)
                if detail.contains("certificate") =>
            {
                FetchError::Certificate { url, detail }
            }
            (_, ErrorClass::Http | ErrorClass::Ssh) if refused => {
                FetchError::AuthFailed { url, detail }
            }
            (_, ErrorClass::Net | ErrorClass::Os | ErrorClass::Ssl | ErrorClass::Ssh)
            | (_, ErrorClass::Http) => FetchError::Network { url, detail },
            _ => FetchError::Git { url, detail },
        }
    }

    /// Drops a recorded failure before a second attempt.
    pub fn forget_failure(&self) {
        self.failure.borrow_mut().take();
    }

    fn past_deadline(&self) -> bool {
        let past = Instant::now() >= self.deadline;
        if past {
            self.failure
                .borrow_mut()
                .get_or_insert(FetchError::Timeout {
                    url: self.url.to_string(),
                    timeout: self.timeout,
                });
        }
        past
    }

    fn fail(&self, failure: FetchError) -> git2::Error {
        let error = git2::Error::from_str(&failure.to_string());
        self.failure.borrow_mut().replace(failure);
        error
    }

    fn credential(
        &self,
        user: Option<&str>,
        allowed: CredentialType,
        offered: &mut HashSet<&'static str>,
    ) -> Result<Cred, git2::Error> {
        if self.past_deadline() {
            return Err(git2::Error::from_str("the fetch timed out"));
        }
        let url = self.url.to_string();
        let ssh_user = user.unwrap_or("git");
        let (kind, cred) =
            if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) {
                let Some(identity) = &self.credentials.identity else {
                    return Err(self.fail(FetchError::NoCredentials { url }));
                };
                (
                    "ssh key",
                    Cred::ssh_key_from_memory(ssh_user, None, identity, None),
                )
            } else if allowed.contains(CredentialType::USERNAME) {
                ("user name", Cred::username(ssh_user))
            } else if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                let Some((user, password)) = self.credentials.https_login() else {
                    return Err(self.fail(FetchError::NoCredentials { url }));
                };
                ("password", Cred::userpass_plaintext(user, password))
            } else {
                return Err(self.fail(FetchError::NoCredentials { url }));
            };
        if !offered.insert(kind) {
            let detail = format!("the {kind} was not accepted");
            return Err(self.fail(FetchError::AuthFailed { url, detail }));
        }
        cred.map_err(|e| {
            let detail = format!("the {kind} cannot be used: {}", e.message());
            self.fail(FetchError::AuthFailed { url, detail })
        })
    }

    fn host_key(&self, key: Option<&[u8]>) -> Result<CertificateCheckStatus, FetchError> {
        let Transport::Ssh { host: name, port } = self.transport else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let url = self.url.to_string();
        let host = known_hosts::host_name(name, *port);
        let Some(key) = key else {
            return Err(FetchError::UnknownHost {
                url,
                host,
                fingerprint: "a key libgit2 could not show".into(),
            });
        };
        let fingerprint = known_hosts::fingerprint(key);
        let known = self.credentials.known_hosts.as_deref().unwrap_or_default();
        match known_hosts::check(known, name, *port, key) {
            HostKey::Known => Ok(CertificateCheckStatus::CertificateOk),
            HostKey::Unknown => Err(FetchError::UnknownHost {
                url,
                host,
                fingerprint,
            }),
            HostKey::Changed { known_types } => Err(FetchError::HostKeyChanged {
                url,
                host,
                fingerprint,
                known: known_types.join(", "),
            }),
            HostKey::Revoked => Err(FetchError::HostKeyRevoked {
                url,
                host,
                fingerprint,
            }),
        }
    }

    fn certificate(&self, der: &[u8], host: &str) -> Result<CertificateCheckStatus, FetchError> {
        let Some(cas) = &self.cas else {
            // No CA of the source's own: libgit2's check against the system's CAs decides.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        tls::verify(cas, der, host)
            .map(|()| CertificateCheckStatus::CertificateOk)
            .map_err(|detail| FetchError::Certificate {
                url: self.url.to_string(),
                detail,
            })
    }
}
