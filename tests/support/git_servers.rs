//! Git servers on 127.0.0.1 ports, each serving the bare repositories under one directory:
//! `git daemon` (git://), `git http-backend` as CGI behind a small TLS server that checks a token
//! (https, with a certificate from a test CA), and `sshd` with its own host key (ssh).

use super::certs::Ca;
use super::process::Daemon;
use anyhow::{Context, Result, bail};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`, or the daemon exits.
fn wait_for_port(daemon: &mut Daemon, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = daemon.exited() {
            bail!(
                "{} exited ({status}): {}",
                daemon.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} did not listen on port {port}", daemon.name)
}

/// `git daemon` serving `base`: `git://127.0.0.1:PORT/<name>.git`.
pub struct GitDaemon {
    pub url: String,
    _daemon: Daemon,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Result<GitDaemon> {
        let port = free_port();
        let log = base.join("git-daemon.log");
        let args: Vec<String> = vec![
            "daemon".into(),
            "--export-all".into(),
            "--reuseaddr".into(),
            "--informative-errors".into(),
            format!("--base-path={}", base.display()),
            "--listen=127.0.0.1".into(),
            format!("--port={port}"),
            base.display().to_string(),
        ];
        let mut daemon = Daemon::spawn("git daemon", Path::new("git"), &args, &log)?;
        wait_for_port(&mut daemon, port, &log)?;
        Ok(GitDaemon {
            url: format!("git://127.0.0.1:{port}"),
            _daemon: daemon,
        })
    }
}

/// `git http-backend` serving `base` over https, for requests whose password is the token:
/// `https://127.0.0.1:PORT/<name>.git`.
pub struct HttpsGit {
    pub url: String,
    /// The CA that signed the server's certificate, PEM.
    pub ca: String,
    uploads: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpsGit {
    pub fn start(base: &Path, token: &str) -> Result<HttpsGit> {
        let ca = Ca::new()?;
        let pair = ca.serving("git", &[])?;
        let certs =
            CertificateDer::pem_slice_iter(pair.cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(pair.key.as_bytes())?;
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let uploads = Arc::new(AtomicUsize::new(0));
        let backend = Arc::new(Backend {
            root: base.to_path_buf(),
            token: token.to_string(),
            uploads: uploads.clone(),
        });
        runtime.spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(|request| {
                        let backend = backend.clone();
                        async move { Ok::<_, Infallible>(backend.respond(request, peer).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(HttpsGit {
            url: format!("https://127.0.0.1:{port}"),
            ca: ca.cert,
            uploads,
            _runtime: runtime,
        })
    }

    /// How many `git-upload-pack` requests (pack downloads, as opposed to ref listings) it served.
    #[allow(
        dead_code,
        reason = "the fetch tests count uploads; the GitSource tests do not"
    )]
    pub fn uploads(&self) -> usize {
        self.uploads.load(Ordering::SeqCst)
    }
}

struct Backend {
    root: PathBuf,
    token: String,
    uploads: Arc<AtomicUsize>,
}

impl Backend {
    async fn respond(
        &self,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Response<Full<Bytes>> {
        if !self.authorized(&request) {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("WWW-Authenticate", "Basic realm=\"git\"")
                .body(Full::new(Bytes::from_static(b"token required\n")))
                .unwrap();
        }
        match self.cgi(request, peer).await {
            Ok(response) => response,
            Err(error) => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Full::new(Bytes::from(format!("{error:#}\n"))))
                .unwrap(),
        }
    }

    /// Basic auth with the token as the password (any user name).
    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(header) = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        let decoded = String::from_utf8_lossy(&decoded);
        decoded
            .split_once(':')
            .is_some_and(|(_, password)| password == self.token)
    }

    async fn cgi(
        &self,
        request: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Result<Response<Full<Bytes>>> {
        let (parts, body) = request.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        if parts.uri.path().ends_with("/git-upload-pack") {
            self.uploads.fetch_add(1, Ordering::SeqCst);
        }
        let body = body.collect().await?.to_bytes();
        let mut child = tokio::process::Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("GIT_PROTOCOL", header("git-protocol"))
            .env("REMOTE_USER", "git")
            .env("REMOTE_ADDR", peer.ip().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("git http-backend")?;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&body).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        let (head, content) = split_cgi(&output.stdout).with_context(|| {
            format!("http-backend: {}", String::from_utf8_lossy(&output.stderr))
        })?;
        let mut response = Response::builder();
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code: u16 = value.split(' ').next().unwrap_or("200").parse()?;
                response = response.status(code);
            } else {
                response = response.header(name, value);
            }
        }
        Ok(response.body(Full::new(Bytes::copy_from_slice(content)))?)
    }
}

/// CGI output: headers, a blank line, the body.
fn split_cgi(output: &[u8]) -> Result<(String, &[u8])> {
    for (separator, length) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = output.windows(length).position(|w| w == separator) {
            let head = String::from_utf8_lossy(&output[..at]).into_owned();
            return Ok((head, &output[at + length..]));
        }
    }
    bail!("no header block in {} bytes", output.len())
}

/// `sshd` on a loopback port with its own host key, letting in one client key as the current
/// user: `ssh://USER@127.0.0.1:PORT/<dir>/<name>.git`.
pub struct Sshd {
    /// `ssh://USER@127.0.0.1:PORT`; append an absolute path.
    pub url: String,
    /// The private key sshd accepts (OpenSSH format).
    pub identity: String,
    /// `[127.0.0.1]:PORT <type> <key>`: the line that makes this server known.
    pub known_hosts: String,
    _daemon: Daemon,
}

/// The sshd binary: `MILLRACE_SSHD`, else Debian's. `None` when neither exists: then ssh tests
/// are skipped, and fail under CI (`scripts/test` installs openssh-server).
pub fn sshd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("MILLRACE_SSHD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but there is no sshd at {}: run the tests through ./scripts/test",
            path.display()
        );
    }
    eprintln!(
        "skipping an ssh test: no sshd at {} (./scripts/test installs openssh-server)",
        path.display()
    );
    None
}

/// A new ed25519 key pair in `dir`: (private key, public key line).
pub fn ssh_key(dir: &Path, name: &str) -> Result<(String, String)> {
    let file = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&file)
        .status()?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    Ok((
        std::fs::read_to_string(&file)?,
        std::fs::read_to_string(file.with_extension("pub"))?,
    ))
}

impl Sshd {
    pub fn start(sshd: &Path, dir: &Path) -> Result<Sshd> {
        let dir = dir.join("sshd");
        std::fs::create_dir_all(&dir)?;
        let (_, host_public) = ssh_key(&dir, "host_key")?;
        let (identity, client_public) = ssh_key(&dir, "client_key")?;
        std::fs::write(dir.join("authorized_keys"), &client_public)?;
        // Privilege separation wants this directory; it exists once sshd was ever started.
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?
            .trim()
            .to_string();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowUsers {user}\nLogLevel VERBOSE\n",
                host = dir.join("host_key").display(),
                keys = dir.join("authorized_keys").display(),
            ),
        )?;
        let log = dir.join("sshd.log");
        let args = vec![
            "-D".to_string(),
            "-e".to_string(),
            "-f".to_string(),
            config.display().to_string(),
        ];
        let mut daemon = Daemon::spawn("sshd", sshd, &args, &log)?;
        wait_for_port(&mut daemon, port, &log)?;
        let mut key = host_public.split_whitespace();
        let known_hosts = format!(
            "[127.0.0.1]:{port} {} {}\n",
            key.next().context("host key type")?,
            key.next().context("host key")?
        );
        Ok(Sshd {
            url: format!("ssh://{user}@127.0.0.1:{port}"),
            identity,
            known_hosts,
            _daemon: daemon,
        })
    }
}
