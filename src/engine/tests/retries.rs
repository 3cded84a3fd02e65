//! Retries: the constant-then-exponential formula, jitter, retry_if, reused arguments, attempts.

use super::*;

fn retried(retry: Value) -> OpenFlow {
    flow_of(
        json!([with(
            step("a", json!({"x": js("flow_input.n * 2")})),
            json!({"retry": retry})
        )]),
        json!({}),
    )
}

/// Fails every attempt and returns the delay between each failure and the next start.
fn delays(h: &mut Harness) -> Vec<u64> {
    let mut delays = Vec::new();
    while h.state.outcome().is_none() {
        let failed_at = h.now;
        h.finish("a", Err(boom("flaky")));
        if let Some(at) = h.wake {
            delays.push(at - failed_at);
            h.tick_at(at);
        }
    }
    delays
}

#[test]
fn retry_delays_follow_constant_then_exponential() {
    let flow = retried(json!({"constant": {"attempts": 2, "seconds": 3},
        "exponential": {"attempts": 3, "multiplier": 2, "seconds": 2}}));
    let mut h = Harness::start(flow, json!({"n": 1}));
    let delays = delays(&mut h);
    // Failures 0 and 1 wait 3 s; failures n = 2, 3, 4 wait 2 × 2^(n+1) s; failure 5 gives up.
    assert_eq!(delays, vec![3_000, 3_000, 16_000, 32_000, 64_000]);
    assert_eq!(h.started(), vec!["a#1", "a#2", "a#3", "a#4", "a#5", "a#6"]);
    assert_eq!(h.error().message, "flaky");
    let view = &h.state.steps(&h.flow)[0];
    assert_eq!((view.phase, view.attempts), (Phase::Failed, 6));
}

#[test]
fn retry_jitter_stays_within_the_random_factor_and_is_reproducible() {
    let retry = json!({"exponential": {"attempts": 4, "multiplier": 1, "seconds": 10, "random_factor": 50}});
    let mut h = Harness::start(retried(retry.clone()), json!({"n": 1}));
    let first = delays(&mut h);
    for (n, delay) in first.iter().enumerate() {
        let base = 10f64.powi(n as i32 + 1) * 1000.0;
        assert!(
            (base * 0.5..=base * 1.5).contains(&(*delay as f64)),
            "failure {n}: {delay} ms"
        );
    }
    let mut again = Harness::start(retried(retry), json!({"n": 1}));
    assert_eq!(
        delays(&mut again),
        first,
        "the same seed draws the same jitter"
    );
}

#[test]
fn a_retry_reuses_the_arguments_and_counts_attempts() {
    let flow = retried(json!({"constant": {"attempts": 1, "seconds": 0}}));
    let mut h = Harness::start(flow, json!({"n": 21}));
    let first = h.spec("a").clone();
    let actions = h.finish("a", Err(boom("once")));
    assert!(
        matches!(&actions[0], Action::StartAttempt { id, .. } if id.attempt == 2),
        "a zero wait retries at once"
    );
    assert_eq!(h.spec("a"), &first);
    assert_eq!(h.state.steps(&h.flow)[0].attempts, 2);
    assert_eq!(
        h.result("a").unwrap()["error"]["message"],
        "once",
        "status shows the last error while retrying"
    );
    h.finish("a", Ok(json!(42)));
    assert_eq!(h.value(), json!(42));
}

#[test]
fn retry_if_decides_on_the_error() {
    let flow = retried(json!({"constant": {"attempts": 5, "seconds": 1},
        "retry_if": {"expr": "error.name == 'Transient' && result.error.message != 'stop'"}}));
    let mut h = Harness::start(flow, json!({"n": 1}));
    h.finish("a", Err(StepError::new("Transient", "again")));
    assert_eq!(h.state.steps(&h.flow)[0].phase, Phase::Retrying);
    h.tick_at(h.wake.unwrap());
    h.finish("a", Err(StepError::new("Fatal", "no")));
    assert_eq!(h.error().name, "Fatal");
    assert_eq!(h.started(), vec!["a#1", "a#2"]);
}

#[test]
fn exponential_retry_with_zero_seconds_fails_the_step_with_a_clear_error() {
    let flow = retried(json!({"exponential": {"attempts": 2, "seconds": 0}}));
    let mut h = Harness::start(flow, json!({"n": 1}));
    h.finish("a", Err(boom("x")));
    let error = h.error();
    assert_eq!(error.name, "InvalidRetry");
    assert!(
        error.message.contains("step `a`") && error.message.contains("retry.exponential.seconds"),
        "{}",
        error.message
    );
}

#[test]
fn waits_longer_than_six_hours_are_capped() {
    let flow = retried(json!({"constant": {"attempts": 1, "seconds": 100000}}));
    let mut h = Harness::start(flow, json!({"n": 1}));
    h.finish("a", Err(boom("x")));
    assert_eq!(h.wake, Some(T0 + 6 * 3600 * 1000));
}
