//! The run state: where every active sequence stands, what each active module waits for, and the
//! counters of loops. Values live in the [`ResultStore`]; this part stays small whatever the
//! size of the loops (a 10,000-iteration loop holds counters and its running iterations only).

use super::api::StepError;
use super::progress::{LoopProgress, Phase};
use super::store::ResultStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything needed to continue a run; serialise it to survive a restart.
///
/// `results` may be persisted apart from the rest (take it out with `std::mem::take`, store both,
/// put it back before the next `advance`): it is the only part that grows with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub(crate) flow: FlowNode,
    /// How the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ended: Option<Ended>,
    /// State of the jitter generator, so a resumed run draws the same numbers.
    pub(crate) rng: u64,
    /// Set when the last call stopped before the run was out of work (a loop that never waits):
    /// the engine wants a tick right away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) yielded_at: Option<u64>,
    #[serde(default)]
    pub results: ResultStore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(crate) enum Ended {
    /// The result is in `results` at `result_key` (usually the last step's key: not copied).
    Succeeded {
        result_key: String,
    },
    Failed {
        error: StepError,
    },
    /// Like `Succeeded`; states saved before skipped runs kept a result have no key (null).
    Skipped {
        #[serde(default)]
        result_key: String,
    },
    Canceled,
}

/// A flow being run: the top-level flow or a subflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlowNode {
    pub main: Seq,
    /// The failure module, once a step failed; the error it handles is in the store at `#error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<Seq>,
}

/// Modules run in order: the finished ones' records, then the one running now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Seq {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<Active>>,
}

/// A finished module, for progress reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    pub started_ms: u64,
    pub finished_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<LoopProgress>,
}

/// The module a sequence is at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Active {
    pub id: String,
    pub started_ms: u64,
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Node {
    /// Finished successfully (result stored) after `attempts`; its `sleep` delays the next
    /// module until `until_ms`.
    Sleeping {
        until_ms: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        attempts: u32,
    },
    /// A script step (`rawscript` / `script`) and its attempts.
    Script(Leaf),
    /// `forloopflow`, `whileloopflow` and `branchall`: numbered children run with a limit.
    Fan(Fan),
    BranchOne {
        branch: u32,
        body: Seq,
    },
    Subflow(Box<FlowNode>),
    /// Finished successfully (result stored) after `attempts`, now waiting for approvals. Its
    /// `sleep`, counted from the step's end, goes on until `sleep_until` once approved.
    Suspended {
        approvals: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "is_zero")]
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sleep_until: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Leaf {
    pub attempt: u32,
    pub phase: LeafPhase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LeafPhase {
    /// About to start `attempt` (never left in a state between two calls).
    Ready,
    Running,
    /// Waiting to start the next attempt.
    Backoff {
        until_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fan {
    /// Number of children; `None` for a while loop, which runs until broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// Index of the next child to start.
    pub next: u32,
    /// How many children may run at once; 0 means no limit.
    pub limit: u32,
    /// The children running now, by index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub running: BTreeMap<u32, Seq>,
    pub succeeded: u32,
    pub failed: u32,
    /// A `stop_after_if` inside broke the loop: start no more children.
    #[serde(default, skip_serializing_if = "is_false")]
    pub broken: bool,
    /// The earliest timer among the running children, or earlier (see `fan::drive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Fan {
    pub fn progress(&self) -> LoopProgress {
        LoopProgress {
            total: self.total,
            succeeded: self.succeeded,
            failed: self.failed,
            running: self.running.len() as u32,
        }
    }
}
