//! Leader election over a coordination.k8s.io Lease: of the replicas sharing a lease, only the
//! holder runs the controllers; the others wait as standbys.
//!
//! A leader that loses the lease, or whose renewals stop reaching the API server for longer
//! than it may act on its last one (see [`deadline`]), drops its controllers and [`run`] returns
//! [`Ended::LeaseLost`]; the command then exits with an error so that Kubernetes restarts the
//! pod, which comes back as a standby with fresh caches. Going back to standby in-process would
//! have to reset every controller's cache and queue by hand; a restart does that for free and is
//! what client-go controllers do too.
//!
//! Two leaders for a moment (a renewal that reached the API server late) do no harm beyond
//! wasted work: a run's state is replaced only at the version that was read, and Jobs are
//! created under deterministic names.

mod deadline;

use crate::expr::Evaluator;
use crate::k8s::operator::{self, Config};
use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::sync::Arc;
use std::time::Duration;

/// Which lease, who we are, and how long a holder's claim lasts.
#[derive(Debug, Clone)]
pub struct Lease {
    pub name: String,
    pub namespace: String,
    /// Unique among the replicas: the pod's name.
    pub identity: String,
    /// How long the lease holds after its last renewal: a standby takes over at most this long
    /// after the leader stopped renewing.
    pub duration: Duration,
    /// The holder renews this long before the lease would expire.
    pub renew_before: Duration,
}

impl Lease {
    /// A 15 s lease renewed every 5 s (10 s before it expires).
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Lease {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_before: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `shutdown` resolved (as a standby, or as the leader: the lease was then released).
    Shutdown,
    /// Another replica holds the lease now; the controllers were stopped.
    LeaseLost,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "lease {namespace}/{name}: {source} (check that the namespace exists and that the \
         controller may get, create and patch leases there)"
    )]
    Lease {
        name: String,
        namespace: String,
        source: LeaseManagerError,
    },
    #[error(
        "lease {namespace}/{name}: the duration ({duration:?}) must be whole seconds, longer \
         than the renewal margin ({renew_before:?}), which must be at least a second"
    )]
    Timing {
        name: String,
        namespace: String,
        duration: Duration,
        renew_before: Duration,
    },
}

/// Waits for the lease, then runs the controllers (see [`operator::run_controllers`]) until `shutdown`
/// resolves or the lease is lost. The replica reports ready while it waits: a standby is doing
/// its job.
pub async fn run(
    client: Client,
    config: Config,
    evaluator: Arc<dyn Evaluator>,
    lease: Lease,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Ended, LeaderError> {
    let (duration, renew_before) = seconds(&lease)?;
    let failed = |source| LeaderError::Lease {
        name: lease.name.clone(),
        namespace: lease.namespace.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(duration)
        .with_grace(renew_before)
        .build()
        .await
        .map_err(failed)?;
    let acting_for = deadline::acting_for(&lease);
    let mut renewals = deadline::renewals(client.clone(), &lease);
    let (mut leading, task) = manager.watch().await;
    let metrics = config.metrics.clone();
    metrics.use_leader_election();
    config.ready.set(true);
    let mut shutdown = Box::pin(shutdown);
    tracing::info!(lease = %lease.name, identity = %lease.identity, "waiting for the lease");
    // Leading takes both the manager's word and a renewal of ours seen in the Lease: the
    // manager also says so for a lease it merely finds in our name, renewed long ago.
    while !(*leading.borrow_and_update()
        && deadline::fresh(*renewals.borrow_and_update(), acting_for))
    {
        tokio::select! {
            _ = &mut shutdown => {
                drop(leading);
                return finish(task, Ended::Shutdown).await.map_err(failed);
            }
            changed = leading.changed() => if changed.is_err() {
                // The lease task ended on its own: report why.
                return finish(task, Ended::LeaseLost).await.map_err(failed);
            },
            changed = renewals.changed() => if changed.is_err() {
                return finish(task, Ended::LeaseLost).await.map_err(failed);
            }
        }
    }
    tracing::info!(lease = %lease.name, identity = %lease.identity, "leading: controllers start");
    let lost = async {
        tokio::select! {
            // An error means the lease task is gone, and with it any claim to lead.
            _ = leading.wait_for(|leading| !*leading) => {
                tracing::warn!("another replica holds the lease: controllers stop");
            }
            () = deadline::passed(&mut renewals, acting_for) => tracing::warn!(
                "no renewal of the lease reached the API server for {acting_for:?}: controllers \
                 stop before another replica can take the lease"
            ),
        }
    };
    let lost = tokio::select! {
        () = operator::run_controllers(client, config, evaluator, shutdown) => false,
        () = lost => true,
    };
    if lost {
        // The controllers are dropped, not stopped: a stop waits for the reconciles in flight,
        // and one waiting on an unreachable API server would write once it is back, after
        // another replica took over. Nor is the lease released: it is not ours any more.
        metrics.set_leader(false);
        task.abort();
        return Ok(Ended::LeaseLost);
    }
    // Dropping the receiver makes the lease task release the lease and end.
    drop(leading);
    finish(task, Ended::Shutdown).await.map_err(failed)
}

/// The lease's duration and renewal margin in whole seconds (what the Lease object holds), the
/// margin at least one and shorter than the duration.
fn seconds(lease: &Lease) -> Result<(u64, u64), LeaderError> {
    let whole = |d: Duration| (d.subsec_nanos() == 0).then_some(d.as_secs());
    match (whole(lease.duration), whole(lease.renew_before)) {
        (Some(duration), Some(renew_before)) if renew_before > 0 && renew_before < duration => {
            Ok((duration, renew_before))
        }
        _ => Err(LeaderError::Timing {
            name: lease.name.clone(),
            namespace: lease.namespace.clone(),
            duration: lease.duration,
            renew_before: lease.renew_before,
        }),
    }
}

/// Waits for the lease task to release the lease and end.
async fn finish(
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    ended: Ended,
) -> Result<Ended, LeaseManagerError> {
    match task.await {
        Ok(Ok(_)) => Ok(ended),
        Ok(Err(error)) => Err(error),
        // The task panicked or was cancelled: nothing is left to release.
        Err(_) => Ok(ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(duration: f64, renew_before: f64) -> Lease {
        Lease {
            duration: Duration::from_secs_f64(duration),
            renew_before: Duration::from_secs_f64(renew_before),
            ..Lease::new("l", "ns", "me")
        }
    }

    #[test]
    fn the_default_lease_is_15_s_renewed_10_s_before_it_ends() {
        assert_eq!(seconds(&Lease::new("l", "ns", "me")).unwrap(), (15, 10));
    }

    #[test]
    fn timings_the_lease_cannot_hold_are_refused_naming_the_lease() {
        for (duration, renew_before) in [(10.0, 10.0), (10.0, 0.0), (2.5, 1.0), (3.0, 0.5)] {
            let error = seconds(&lease(duration, renew_before)).unwrap_err();
            assert!(error.to_string().starts_with("lease ns/l: "), "{error}");
        }
    }
}
