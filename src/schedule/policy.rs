//! Policy values a Schedule holds and reports, shared with its CRD type.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What to do when an occurrence is due while a run of the same schedule is still active.
///
/// Variants carry plain comments: documented variants would turn the schema's `enum` into a
/// `oneOf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    // Start the new run alongside the active ones.
    #[default]
    Allow,
    // Skip the occurrence while a run is active (Windmill's `no_flow_overlap`).
    Forbid,
    // Cancel the active runs, then start the new one.
    Replace,
}

/// Why an occurrence that fell due was not started. Each reason is its own event reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SkipReason {
    // `concurrencyPolicy: Forbid` and a run was active, or would be: an older catch-up
    // occurrence that the latest one would overlap.
    ForbidOverlap,
    // Later than `startingDeadlineSeconds` after its scheduled time.
    MissedDeadline,
    // `suspend: true`.
    Suspended,
    // Before `pausedUntil`.
    Paused,
    // `concurrencyPolicy: Replace`: an older catch-up occurrence the latest one replaces.
    Superseded,
    // The Flow named by `flowRef` does not exist (the controller decides this, not `decide`).
    FlowMissing,
    // The Schedule has another problem its `Stalled` condition names (inputs, a handler's Flow).
    Invalid,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_read_and_write_as_their_names() {
        assert_eq!(
            serde_json::to_value(ConcurrencyPolicy::Replace).unwrap(),
            json!("Replace")
        );
        let forbid: ConcurrencyPolicy = serde_json::from_value(json!("Forbid")).unwrap();
        assert_eq!(forbid, ConcurrencyPolicy::Forbid);
        assert!(serde_json::from_value::<ConcurrencyPolicy>(json!("forbid")).is_err());
        assert_eq!(ConcurrencyPolicy::default(), ConcurrencyPolicy::Allow);
        assert_eq!(
            serde_json::to_value(SkipReason::MissedDeadline).unwrap(),
            json!("MissedDeadline")
        );
        assert_eq!(SkipReason::ForbidOverlap.to_string(), "ForbidOverlap");
    }

    #[test]
    fn the_schema_lists_the_values() {
        let schema = serde_json::to_value(schemars::schema_for!(ConcurrencyPolicy)).unwrap();
        assert_eq!(schema["enum"], json!(["Allow", "Forbid", "Replace"]));
    }
}
