//! A tower layer for a kube `Client` that "crashes" the process using it at a precise point: it
//! counts mutating requests (anything but GET) and trips on the N-th, either before sending it or
//! right after its response arrived. From then on every request of that client hangs, and
//! `tripped()` resolves, so the test can drop the controller with no chance to write anything more.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tokio::sync::watch;
use tower::{Layer, Service};

/// Where a kill landed, e.g. `after PUT configmaps` (the write's kind) and its number in the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KillPoint {
    pub after: bool,
    pub method: String,
    pub resource: String,
    /// Mutating requests of all incarnations before this one, plus one.
    pub write: usize,
}

struct Trip {
    /// Trip on this mutating request of the client (1-based).
    at: usize,
    /// Trip once its response arrived (else before it is sent).
    after: bool,
    /// Mutating requests of earlier clients, so that kill points number the run's writes.
    earlier: usize,
    writes: AtomicUsize,
    point: Mutex<Option<KillPoint>>,
    tripped: watch::Sender<bool>,
}

impl Trip {
    fn fire(&self, method: &Method, path: &str, write: usize) {
        *self.point.lock().unwrap() = Some(KillPoint {
            after: self.after,
            method: method.to_string(),
            resource: resource(path),
            write: self.earlier + write,
        });
        self.tripped.send_replace(true);
    }

    fn is_tripped(&self) -> bool {
        *self.tripped.borrow()
    }
}

/// A client for `config` that trips on mutating request `at` (before it, or after its response).
pub struct KillSwitch {
    trip: Arc<Trip>,
    pub client: Client,
}

impl KillSwitch {
    /// `earlier` mutating requests were made by the clients this one replaces.
    pub fn new(config: Config, at: usize, after: bool, earlier: usize) -> KillSwitch {
        let (tripped, _) = watch::channel(false);
        let trip = Arc::new(Trip {
            at,
            after,
            earlier,
            writes: AtomicUsize::new(0),
            point: Mutex::new(None),
            tripped,
        });
        let client = ClientBuilder::try_from(config)
            .expect("a client for the control plane")
            .with_layer(&KillLayer(trip.clone()))
            .build();
        KillSwitch { trip, client }
    }

    /// Resolves once the switch has tripped.
    #[allow(dead_code, reason = "a switch that never trips only counts writes")]
    pub async fn tripped(&self) {
        let mut rx = self.trip.tripped.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    pub fn point(&self) -> Option<KillPoint> {
        self.trip.point.lock().unwrap().clone()
    }

    /// Mutating requests sent so far (the tripping one included when it was sent).
    pub fn writes(&self) -> usize {
        let counted = self.trip.writes.load(Ordering::SeqCst);
        match self.point() {
            Some(point) if !point.after => counted - 1,
            _ => counted,
        }
    }
}

/// `configmaps`, `jobs`, `flowruns/status`, … from an API path.
fn resource(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let after_ns = parts
        .iter()
        .position(|p| *p == "namespaces")
        .map_or(parts.len(), |i| i + 2);
    let kind = parts.get(after_ns).copied().unwrap_or("?");
    match parts.get(after_ns + 2) {
        Some(sub) => format!("{kind}/{sub}"),
        None => kind.to_string(),
    }
}

struct KillLayer(Arc<Trip>);

impl<S> Layer<S> for KillLayer {
    type Service = KillService<S>;

    fn layer(&self, inner: S) -> KillService<S> {
        KillService {
            inner,
            trip: self.0.clone(),
        }
    }
}

pub struct KillService<S> {
    inner: S,
    trip: Arc<Trip>,
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for KillService<S>
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Boxed<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let trip = self.trip.clone();
        if trip.is_tripped() {
            return Box::pin(std::future::pending());
        }
        let write = (request.method() != Method::GET)
            .then(|| trip.writes.fetch_add(1, Ordering::SeqCst) + 1);
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        if write == Some(trip.at) && !trip.after {
            trip.fire(&method, &path, trip.at);
            return Box::pin(std::future::pending());
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if write == Some(trip.at) {
                trip.fire(&method, &path, trip.at);
                std::future::pending::<()>().await;
            }
            response
        })
    }
}
