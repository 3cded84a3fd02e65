//! Retry back-off: pure arithmetic over a module's `retry` policy.

use crate::flow::Retry;

/// No wait is longer than 6 hours, whatever the policy says.
pub(crate) const MAX_DELAY_MS: u64 = 6 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum RetryError {
    #[error(
        "retry.exponential has attempts {0} but seconds 0, which never waits: set retry.exponential.seconds to 1 or more"
    )]
    ZeroExponentialSeconds(u32),
}

/// The wait before the next attempt after failure number `failure` (0 for the first failure), or
/// `None` when the policy gives up. `random` (in [0, 1)) draws the ±`random_factor` % jitter.
///
/// While `failure < constant.attempts` the wait is `constant.seconds`; then, while
/// `failure − constant.attempts < exponential.attempts`, it is `multiplier × seconds^(failure+1)`.
pub(crate) fn delay_ms(
    retry: &Retry,
    failure: u32,
    random: f64,
) -> Result<Option<u64>, RetryError> {
    let constant_attempts = retry.constant.as_ref().map_or(0, |c| c.attempts);
    if let Some(constant) = &retry.constant
        && failure < constant.attempts
    {
        return Ok(Some(seconds_to_ms(constant.seconds)));
    }
    let Some(exp) = &retry.exponential else {
        return Ok(None);
    };
    if exp.attempts > 0 && exp.seconds == 0.0 {
        return Err(RetryError::ZeroExponentialSeconds(exp.attempts));
    }
    if failure - constant_attempts >= exp.attempts {
        return Ok(None);
    }
    let base = exp.multiplier * exp.seconds.powi(failure as i32 + 1);
    let factor = exp.random_factor.unwrap_or(0.0).clamp(0.0, 100.0) / 100.0;
    let jittered = base * (1.0 + factor * (2.0 * random - 1.0));
    Ok(Some(seconds_to_ms(jittered)))
}

fn seconds_to_ms(seconds: f64) -> u64 {
    let ms = (seconds * 1000.0).round();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        (ms as u64).min(MAX_DELAY_MS)
    }
}

/// Next number in [0, 1) from a SplitMix64 generator whose whole state is `state`.
pub(crate) fn next_random(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConstantRetry, ExponentialRetry};

    fn policy(c: (u32, f64), e: (u32, f64, f64, Option<f64>)) -> Retry {
        Retry {
            constant: Some(ConstantRetry {
                attempts: c.0,
                seconds: c.1,
            }),
            exponential: Some(ExponentialRetry {
                attempts: e.0,
                multiplier: e.1,
                seconds: e.2,
                random_factor: e.3,
            }),
            retry_if: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn constant_then_exponential_then_give_up() {
        let p = policy((2, 5.0), (3, 2.0, 3.0, None));
        let delays: Vec<_> = (0..6).map(|n| delay_ms(&p, n, 0.5).unwrap()).collect();
        // n = 2, 3, 4 → 2 × 3^(n+1) seconds.
        assert_eq!(
            delays,
            vec![
                Some(5_000),
                Some(5_000),
                Some(54_000),
                Some(162_000),
                Some(486_000),
                None
            ]
        );
    }

    #[test]
    fn jitter_stays_within_the_random_factor() {
        let p = policy((0, 0.0), (1, 1.0, 10.0, Some(20.0)));
        assert_eq!(delay_ms(&p, 0, 0.0).unwrap(), Some(8_000));
        assert_eq!(delay_ms(&p, 0, 0.5).unwrap(), Some(10_000));
        assert_eq!(delay_ms(&p, 0, 0.999_999).unwrap(), Some(12_000));
    }

    #[test]
    fn waits_are_capped_at_six_hours() {
        let p = policy((0, 0.0), (10, 1.0, 60.0, None));
        assert_eq!(delay_ms(&p, 5, 0.5).unwrap(), Some(MAX_DELAY_MS));
        let p = policy((1, 1e9), (0, 1.0, 1.0, None));
        assert_eq!(delay_ms(&p, 0, 0.5).unwrap(), Some(MAX_DELAY_MS));
    }

    #[test]
    fn exponential_with_zero_seconds_is_refused() {
        let p = policy((0, 0.0), (2, 1.0, 0.0, None));
        assert_eq!(
            delay_ms(&p, 0, 0.5),
            Err(RetryError::ZeroExponentialSeconds(2))
        );
    }

    #[test]
    fn no_policy_parts_means_no_retry() {
        let p = Retry {
            constant: None,
            exponential: None,
            retry_if: None,
            extra: Default::default(),
        };
        assert_eq!(delay_ms(&p, 0, 0.5).unwrap(), None);
    }

    #[test]
    fn random_numbers_are_in_range_and_reproducible() {
        let (mut a, mut b) = (42u64, 42u64);
        for _ in 0..1000 {
            let x = next_random(&mut a);
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, next_random(&mut b));
        }
    }
}
