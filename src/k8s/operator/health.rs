//! The operator's HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process answers)
//! and `/readyz` (the replica is doing its job, see [`Readiness`]).

use super::metrics::Metrics;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// Whether `/readyz` answers 200. A leader is ready once its controllers' watch streams have
/// listed everything; a standby replica (waiting for the lease) is ready too: waiting is its job,
/// and a rolling update must not stall on a replica that will never lead.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the endpoint answers to `method path` (pure, apart from reading the metrics).
fn respond(method: &Method, path: &str, metrics: &Metrics, ready: &Readiness) -> Response<String> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/readyz") if ready.get() => (StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the controllers are not watching yet\n".into(),
        ),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET is served\n".into(),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, ready: Readiness) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("metrics endpoint: cannot accept a connection: {error}");
                continue;
            }
        };
        let (metrics, ready) = (metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let response = respond(request.method(), request.uri().path(), &metrics, &ready)
                    .map(|body| Full::new(Bytes::from(body)));
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            // A scraper that hangs up mid-answer is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_always_ok_and_readiness_follows_the_flag() {
        let metrics = Metrics::default();
        let ready = Readiness::default();
        let status = |path| respond(&Method::GET, path, &metrics, &ready).status();
        assert_eq!(status("/healthz"), StatusCode::OK);
        assert_eq!(status("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        ready.set(true);
        assert_eq!(status("/readyz"), StatusCode::OK);
        assert_eq!(status("/nope"), StatusCode::NOT_FOUND);
        let post = respond(&Method::POST, "/metrics", &metrics, &ready);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn metrics_are_served_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.use_leader_election();
        metrics.set_leader(true);
        let response = respond(&Method::GET, "/metrics", &metrics, &Readiness::default());
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().contains("millrace_leader 1"));
        assert!(response.body().ends_with("# EOF\n"));
    }
}
