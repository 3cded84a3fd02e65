//! When a GitSource is due for a sync. The watch wakes the controller for every change of the
//! object, its own status writes among them; those find the sync not yet due and sleep the rest
//! of the interval. A new generation or a new `reconcile-requested-at` value is due at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a GitSource's last sync saw, and when the next one is due.
#[derive(Debug, Clone, PartialEq)]
struct Synced {
    generation: Option<i64>,
    requested: Option<String>,
    at: Instant,
    wait: Duration,
}

/// The last sync of every GitSource this process synced, by uid.
#[derive(Debug, Default)]
pub struct Pace(Mutex<HashMap<String, Synced>>);

impl Pace {
    /// How long until GitSource `uid` (at `generation`, with annotation `requested`) is due;
    /// `None` when it is due now.
    pub fn wait(
        &self,
        uid: &str,
        generation: Option<i64>,
        requested: Option<&str>,
        now: Instant,
    ) -> Option<Duration> {
        let synced = self.0.lock().expect("pace").get(uid).cloned()?;
        let same = synced.generation == generation && synced.requested.as_deref() == requested;
        let left = (synced.at + synced.wait).checked_duration_since(now)?;
        (same && !left.is_zero()).then_some(left)
    }

    /// Records a sync of `uid` that ended at `at`; the next is due `wait` later.
    pub fn synced(
        &self,
        uid: &str,
        generation: Option<i64>,
        requested: Option<&str>,
        at: Instant,
        wait: Duration,
    ) {
        let synced = Synced {
            generation,
            requested: requested.map(str::to_string),
            at,
            wait,
        };
        self.0.lock().expect("pace").insert(uid.to_string(), synced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_due_after_its_wait_or_when_the_object_changed() {
        let pace = Pace::default();
        let start = Instant::now();
        assert_eq!(pace.wait("u", Some(1), None, start), None);
        pace.synced("u", Some(1), None, start, Duration::from_secs(60));
        let later = start + Duration::from_secs(20);
        assert_eq!(
            pace.wait("u", Some(1), None, later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(pace.wait("u", Some(2), None, later), None);
        assert_eq!(pace.wait("u", Some(1), Some("now"), later), None);
        assert_eq!(
            pace.wait("u", Some(1), None, start + Duration::from_secs(60)),
            None
        );
        assert_eq!(pace.wait("other", Some(1), None, later), None);
    }
}
