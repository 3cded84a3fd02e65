//! How long a leader may act without a renewal: the lease manager keeps reporting "leading"
//! while its renewals hang or fail, so a leader cut off from the API server would go on acting
//! after a standby took the expired lease. The leader therefore watches its own Lease and stops
//! once its last renewal that reached the API server is too old (client-go's renew deadline).
//!
//! Renewal times are the holder's wall clock, written into the Lease by the holder itself:
//! comparing them with this replica's clock involves no other clock.

use super::Lease;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease as LeaseObject;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How long after its last renewal a leader may act: halfway between when it renews and when
/// the lease expires (10 s of the default 15 s lease), leaving the other half for stopping.
pub fn acting_for(lease: &Lease) -> Duration {
    lease.duration.saturating_sub(lease.renew_before / 2)
}

/// The Lease's renewal time while `lease.identity` holds it (`None` while another replica or
/// nobody does), kept up to date by a task that ends when the receiver is dropped.
pub fn renewals(client: Client, lease: &Lease) -> watch::Receiver<Option<SystemTime>> {
    let api: Api<LeaseObject> = Api::namespaced(client, &lease.namespace);
    let selector = watcher::Config::default().fields(&format!("metadata.name={}", lease.name));
    let identity = lease.identity.clone();
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        // Restarts with backoff on errors: an unreachable API server only delays events.
        let mut events = watcher(api, selector).default_backoff().boxed();
        loop {
            let event = tokio::select! {
                _ = tx.closed() => return,
                event = events.next() => event,
            };
            match event {
                Some(Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease))) => {
                    tx.send_replace(renewed_by(&lease, &identity));
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    tx.send_replace(None);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => tracing::debug!(%error, "watching the lease"),
                None => return,
            }
        }
    });
    rx
}

fn renewed_by(lease: &LeaseObject, identity: &str) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    (spec.holder_identity.as_deref() == Some(identity))
        .then(|| spec.renew_time.as_ref().map(|t| SystemTime::from(t.0)))
        .flatten()
}

/// How much longer a leader last renewed at `renewed` may act at `now`.
fn left(renewed: Option<SystemTime>, now: SystemTime, acting_for: Duration) -> Duration {
    renewed
        .and_then(|renewed| (renewed + acting_for).duration_since(now).ok())
        .unwrap_or_default()
}

/// Whether a leader last renewed at `renewed` may act now.
pub fn fresh(renewed: Option<SystemTime>, acting_for: Duration) -> bool {
    !left(renewed, SystemTime::now(), acting_for).is_zero()
}

/// Resolves once no renewal was seen for `acting_for` (or the watch of the lease ended).
pub async fn passed(renewals: &mut watch::Receiver<Option<SystemTime>>, acting_for: Duration) {
    loop {
        let left = left(*renewals.borrow_and_update(), SystemTime::now(), acting_for);
        if left.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            changed = renewals.changed() => if changed.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_leader_acts_until_halfway_between_its_renewal_and_the_expiry() {
        assert_eq!(acting_for(&Lease::new("l", "ns", "me")), 10 * SECOND);
        let short = Lease {
            duration: 6 * SECOND,
            renew_before: 4 * SECOND,
            ..Lease::new("l", "ns", "me")
        };
        assert_eq!(acting_for(&short), 4 * SECOND);
    }

    #[test]
    fn the_time_left_counts_from_the_last_renewal_and_none_is_left_without_one() {
        let renewed = SystemTime::UNIX_EPOCH + 100 * SECOND;
        assert_eq!(
            left(Some(renewed), renewed + 3 * SECOND, 10 * SECOND),
            7 * SECOND
        );
        assert_eq!(
            left(Some(renewed), renewed + 11 * SECOND, 10 * SECOND),
            Duration::ZERO
        );
        assert_eq!(left(None, renewed, 10 * SECOND), Duration::ZERO);
    }

    #[test]
    fn only_the_holders_own_renewals_count() {
        let lease: LeaseObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": "me", "renewTime": "2026-01-02T03:04:05.000000Z"},
        }))
        .unwrap();
        assert!(renewed_by(&lease, "me").is_some());
        assert_eq!(renewed_by(&lease, "other"), None);
    }
}
