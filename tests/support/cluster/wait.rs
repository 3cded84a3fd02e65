//! Waiting in the cluster and operator tests: the one timeout they share, a poll loop for
//! conditions read from the API server, and a deadline for a single future.

use anyhow::{Context, Result, bail};
use std::time::Duration;

/// How long a test waits for anything the control plane or the operator does. Generous: the
/// tests share two busy cores with other builds, and a wait that succeeds ends early anyway.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// How often `wait_until` asks again.
const POLL: Duration = Duration::from_millis(100);

/// Asks `probe` every `POLL` until it gives `Some`, and returns that. A probe error ends the wait
/// at once; after `timeout` the error names `what` was waited for.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(done) = probe().await? {
            return Ok(done);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "timed out after {}s waiting until {what}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `future`'s output, or an error naming `what` once `timeout` has passed.
pub async fn within<T>(
    what: &str,
    timeout: Duration,
    future: impl Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(timeout, future)
        .await
        .with_context(|| format!("timed out after {}s: {what}", timeout.as_secs()))
}
