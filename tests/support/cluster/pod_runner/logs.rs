//! Container output, kept per line with its timestamp and stream, and served the way the kubelet serves
//! it (`GET /containerLogs/{namespace}/{pod}/{container}` over HTTPS), so that the apiserver's
//! `pods/log` proxy and `kubectl logs` work unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use futures::SinkExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::cluster::certs::CertPair;

#[derive(Clone, Copy, PartialEq)]
pub enum Stream {
    Stdout,
    Stderr,
}

struct Line {
    time: Timestamp,
    stream: Stream,
    bytes: Vec<u8>,
}

/// The output of one run of a container.
pub struct ContainerLog {
    lines: Mutex<Vec<Line>>,
    /// Bumped on every new line and when the run ends; `true` once it has ended.
    done: watch::Sender<bool>,
}

impl ContainerLog {
    fn new() -> ContainerLog {
        ContainerLog {
            lines: Mutex::new(Vec::new()),
            done: watch::channel(false).0,
        }
    }

    /// Appends one line (with its newline, if it had one).
    pub fn push(&self, stream: Stream, bytes: Vec<u8>) {
        self.lines.lock().unwrap().push(Line {
            time: Timestamp::now(),
            stream,
            bytes,
        });
        self.done.send_modify(|_| {});
    }

    pub fn close(&self) {
        self.done.send_replace(true);
    }

    /// The last `max_lines` lines, at most `max_bytes` of them, as kubelet's FallbackToLogsOnError reads them.
    pub fn tail(&self, max_lines: usize, max_bytes: usize) -> String {
        let lines = self.lines.lock().unwrap();
        let start = lines.len().saturating_sub(max_lines);
        let text: Vec<u8> = lines[start..]
            .iter()
            .flat_map(|l| l.bytes.iter().copied())
            .collect();
        String::from_utf8_lossy(&text[text.len().saturating_sub(max_bytes)..]).into_owned()
    }
}

/// The current run of a container and the one before it (`previous=true`).
type Runs = (Arc<ContainerLog>, Option<Arc<ContainerLog>>);

/// Logs by (pod, container).
#[derive(Default)]
pub struct LogStore {
    runs: Mutex<HashMap<(String, String), Runs>>,
}

impl LogStore {
    /// Starts the log of a new run; the current one becomes the previous one.
    pub fn start(&self, pod: &str, container: &str) -> Arc<ContainerLog> {
        let log = Arc::new(ContainerLog::new());
        let mut runs = self.runs.lock().unwrap();
        let key = (pod.to_string(), container.to_string());
        let previous = runs.remove(&key).map(|(current, _)| current);
        runs.insert(key, (log.clone(), previous));
        log
    }

    fn get(&self, pod: &str, container: &str, previous: bool) -> Option<Arc<ContainerLog>> {
        let runs = self.runs.lock().unwrap();
        let (current, before) = runs.get(&(pod.to_string(), container.to_string()))?;
        if previous {
            before.clone()
        } else {
            Some(current.clone())
        }
    }
}

/// The query parameters the apiserver forwards from `pods/log` (PodLogOptions).
#[derive(Default)]
struct Query {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
    since: Option<Timestamp>,
    stream: Option<Stream>,
}

impl Query {
    fn parse(raw: &str) -> Result<Query> {
        let mut q = Query::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key {
                "follow" => q.follow = value == "true",
                "previous" => q.previous = value == "true",
                "timestamps" => q.timestamps = value == "true",
                "tailLines" => q.tail_lines = Some(value.parse()?),
                "limitBytes" => q.limit_bytes = Some(value.parse()?),
                "sinceSeconds" => {
                    let secs: i64 = value.parse()?;
                    q.since = Some(Timestamp::now() - SignedDuration::from_secs(secs));
                }
                "sinceTime" => q.since = Some(value.parse()?),
                "stream" => {
                    q.stream = match value.as_str() {
                        "Stdout" => Some(Stream::Stdout),
                        "Stderr" => Some(Stream::Stderr),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn keeps(&self, line: &Line) -> bool {
        self.stream.is_none_or(|s| s == line.stream) && self.since.is_none_or(|t| line.time >= t)
    }

    fn render(&self, line: &Line) -> Vec<u8> {
        if !self.timestamps {
            return line.bytes.clone();
        }
        let mut out = format!("{} ", line.time).into_bytes();
        out.extend_from_slice(&line.bytes);
        out
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves the logs of pods in `namespace` on a free loopback port; returns the port. Unlike a kubelet it
/// does not check the caller's client certificate: it listens on loopback only and serves test output.
pub async fn serve(
    store: Arc<LogStore>,
    namespace: String,
    tls: &CertPair,
) -> Result<(u16, JoinHandle<()>)> {
    let certs =
        CertificateDer::pem_slice_iter(tls.cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(tls.key.as_bytes())?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, store, namespace) = (acceptor.clone(), store.clone(), namespace.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|req| {
                    let response = respond(&store, &namespace, &req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((port, task))
}

fn respond(store: &LogStore, namespace: &str, req: &Request<Incoming>) -> Response<Body> {
    let text = |status: StatusCode, msg: String| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(msg)).boxed())
            .unwrap()
    };
    let parts: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let ["containerLogs", ns, pod, container] = parts[..] else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no handler for {}", req.uri().path()),
        );
    };
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad query: {e}")),
    };
    let log = (ns == namespace)
        .then(|| store.get(pod, container, query.previous))
        .flatten();
    let Some(log) = log else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container} of pod {ns}/{pod} has no logs here"),
        );
    };
    let (mut out, seen) = snapshot(&log, &query);
    let budget = query.limit_bytes.unwrap_or(usize::MAX);
    out.truncate(budget);
    if !query.follow || out.len() >= budget {
        return Response::new(Full::new(Bytes::from(out)).boxed());
    }
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        let mut sent = out.len();
        let mut seen = seen;
        let mut changes = log.done.subscribe();
        if tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
            return;
        }
        loop {
            let ended = *changes.borrow_and_update();
            let fresh: Vec<u8> = {
                let lines = log.lines.lock().unwrap();
                let new = lines[seen..]
                    .iter()
                    .filter(|l| query.keeps(l))
                    .flat_map(|l| query.render(l));
                let chunk = new.collect();
                seen = lines.len();
                chunk
            };
            let room = budget - sent;
            let chunk = &fresh[..fresh.len().min(room)];
            sent += chunk.len();
            if !chunk.is_empty()
                && tx
                    .send(Ok(Frame::data(Bytes::copy_from_slice(chunk))))
                    .await
                    .is_err()
            {
                return;
            }
            if ended || sent >= budget || changes.changed().await.is_err() {
                return;
            }
        }
    });
    Response::new(StreamBody::new(rx).boxed())
}

/// The lines selected so far, and how many lines the log held.
fn snapshot(log: &ContainerLog, query: &Query) -> (Vec<u8>, usize) {
    let lines = log.lines.lock().unwrap();
    let kept: Vec<&Line> = lines.iter().filter(|l| query.keeps(l)).collect();
    let start = query.tail_lines.map_or(0, |n| kept.len().saturating_sub(n));
    let out = kept[start..].iter().flat_map(|l| query.render(l)).collect();
    (out, lines.len())
}
