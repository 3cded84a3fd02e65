//! Which handler flows a finished scheduled run triggers, from the runs before it.
//!
//! - `onFailure` with `times: N` fires for every failed run that ends a streak of at least N
//!   consecutive failures (Windmill's `on_failure_times` without `on_failure_exact`): with the
//!   default N = 1 every failure alerts; with N = 2 the first failure of a streak stays quiet.
//! - `onRecovery` fires for a success that ends a streak of one or more failures.
//! - `onSuccess` fires for every success.
//!
//! Canceled runs (stopped by `Replace` or by hand) neither fail nor succeed: they fire nothing
//! and neither break nor extend a streak.

use serde::{Deserialize, Serialize};

/// How a scheduled run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    Canceled,
}

/// The handlers the newest finished run triggers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fired {
    pub on_failure: bool,
    pub on_recovery: bool,
    pub on_success: bool,
    /// Consecutive failures ending with the newest run (for a success: the streak it ended).
    pub failures: usize,
}

/// Handlers for the last run of `history` (finished runs, oldest first); `failure_times` is
/// `onFailure.times` (0 counts as 1).
pub fn fired(history: &[Outcome], failure_times: usize) -> Fired {
    let mut runs = history.iter().rev().filter(|o| **o != Outcome::Canceled);
    let (Some(newest), false) = (runs.next(), history.last() == Some(&Outcome::Canceled)) else {
        return Fired::default();
    };
    let before = runs.take_while(|o| **o == Outcome::Failed).count();
    match newest {
        Outcome::Failed => Fired {
            on_failure: before + 1 >= failure_times.max(1),
            failures: before + 1,
            ..Fired::default()
        },
        _ => Fired {
            on_recovery: before > 0,
            on_success: true,
            failures: before,
            ..Fired::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome::{Canceled, Failed, Succeeded};
    use super::*;

    #[test]
    fn on_failure_with_times_two_waits_for_the_second_failure_in_a_row() {
        assert!(!fired(&[Succeeded, Failed], 2).on_failure);
        let second = fired(&[Succeeded, Failed, Failed], 2);
        assert!(second.on_failure);
        assert_eq!(second.failures, 2);
        // Every further failure of the streak alerts too.
        assert!(fired(&[Failed, Failed, Failed], 2).on_failure);
        // A success resets the streak.
        assert!(!fired(&[Failed, Succeeded, Failed], 2).on_failure);
    }

    #[test]
    fn on_failure_by_default_fires_for_every_failure() {
        assert!(fired(&[Failed], 1).on_failure);
        assert!(fired(&[Failed], 0).on_failure);
        assert!(fired(&[Failed, Failed], 1).on_failure);
        assert!(!fired(&[Failed, Succeeded], 1).on_failure);
    }

    #[test]
    fn recovery_follows_failures_and_success_fires_every_time() {
        let recovered = fired(&[Failed, Failed, Succeeded], 1);
        assert_eq!(
            recovered,
            Fired {
                on_recovery: true,
                on_success: true,
                failures: 2,
                ..Fired::default()
            }
        );
        let plain = fired(&[Succeeded, Succeeded], 1);
        assert!(plain.on_success && !plain.on_recovery && !plain.on_failure);
    }

    #[test]
    fn canceled_runs_fire_nothing_and_do_not_break_a_streak() {
        assert_eq!(fired(&[Failed, Canceled], 1), Fired::default());
        assert!(fired(&[Failed, Canceled, Failed], 2).on_failure);
        assert!(fired(&[Failed, Canceled, Succeeded], 1).on_recovery);
        assert_eq!(fired(&[], 1), Fired::default());
    }
}
