//! Client-side rate limit of the Kubernetes API client (kube has none): a token bucket of `qps`
//! tokens a second holding at most `burst`, as a tower layer around the client's service. Every
//! request, watches included, takes one token, as in client-go.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::time::Sleep;
use tower::{Layer, Service};

/// The bucket's arithmetic, with time passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `qps` must be positive and `burst` at least 1.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// A client for `config` whose requests are paced by a [`ThrottleLayer`].
pub fn client(config: kube::Config, qps: f64, burst: u32) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&ThrottleLayer::new(qps, burst))
        .build())
}

/// The layer: one bucket shared by every service it wraps.
#[derive(Clone, Debug)]
pub struct ThrottleLayer {
    bucket: Arc<Mutex<TokenBucket>>,
}

impl ThrottleLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        ThrottleLayer {
            bucket: Arc::new(Mutex::new(TokenBucket::new(qps, burst, Instant::now()))),
        }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            granted: false,
        }
    }
}

/// Ready only once it holds a token; each call spends it.
pub struct Throttle<S> {
    inner: S,
    bucket: Arc<Mutex<TokenBucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    granted: bool,
}

impl<S, R> Service<R> for Throttle<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.granted {
            if let Some(wait) = self.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            let taken = self
                .bucket
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(Instant::now());
            match taken {
                Ok(()) => self.granted = true,
                Err(wait) => self.wait = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.granted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_then_waits_one_token_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let wait = bucket.take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn tokens_refill_at_qps_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 4, start);
        for _ in 0..4 {
            bucket.take(start).unwrap();
        }
        // An hour idle refills no more than the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..4 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
        // Half a second at 2 qps is one token.
        let soon = later + Duration::from_millis(500);
        assert_eq!(bucket.take(soon), Ok(()));
        assert!(bucket.take(soon).is_err());
    }

    #[test]
    fn a_clock_read_out_of_order_does_not_mint_tokens() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1, start + Duration::from_secs(5));
        bucket.take(start + Duration::from_secs(5)).unwrap();
        assert!(bucket.take(start).is_err());
        assert!(bucket.take(start + Duration::from_secs(5)).is_err());
        assert_eq!(bucket.take(start + Duration::from_secs(6)), Ok(()));
    }

    #[tokio::test]
    async fn the_service_waits_for_a_token_before_each_call() {
        use tower::ServiceExt;
        let layer = ThrottleLayer::new(20.0, 1);
        let mut service = layer.layer(tower::service_fn(|n: u32| async move {
            Ok::<_, std::convert::Infallible>(n)
        }));
        let started = tokio::time::Instant::now();
        assert_eq!(service.ready().await.unwrap().call(1).await, Ok(1));
        assert_eq!(service.ready().await.unwrap().call(2).await, Ok(2));
        // The second call waited for the token that 20 qps mints every 50 ms.
        assert!(started.elapsed() >= Duration::from_millis(45));
    }
}
