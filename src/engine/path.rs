//! Stable names for steps and step attempts.
//!
//! A [`StepPath`] names one module instance in a run: module ids joined by `/`, with the iteration
//! or branch index in brackets after a loop or branch module (`loop_a[3]/b`, `br[1]/x`). A
//! subflow's steps sit under the subflow module's id (`sub/x`), the failure module under its own
//! id. Executors derive idempotency keys and Job names from (run, [`AttemptId`]), so the rendering
//! is part of the contract and never changes for a given flow.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Path of a module instance inside a run, e.g. `loop_a[3]/b`. The top-level flow is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StepPath(String);

/// One element of a [`StepPath`]: a module id and, for a loop iteration or a branch, its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub id: &'a str,
    pub index: Option<u32>,
}

impl StepPath {
    /// The path of the flow itself (no segments).
    pub fn root() -> Self {
        StepPath(String::new())
    }

    /// The path of module `id` inside this one.
    pub fn child(&self, id: &str) -> Self {
        if self.0.is_empty() {
            StepPath(id.to_string())
        } else {
            StepPath(format!("{}/{id}", self.0))
        }
    }

    /// The path of iteration (or branch) `index` of this loop (or branch) module.
    pub fn indexed(&self, index: u32) -> Self {
        StepPath(format!("{}[{index}]", self.0))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments from the outermost module inwards.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.0.split('/').filter(|s| !s.is_empty()).map(|s| {
            match s.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
                Some((id, index)) => match index.parse() {
                    Ok(index) => Segment {
                        id,
                        index: Some(index),
                    },
                    Err(_) => Segment { id: s, index: None },
                },
                None => Segment { id: s, index: None },
            }
        })
    }

    /// The id of the innermost module (`b` for `loop_a[3]/b`).
    pub fn module_id(&self) -> &str {
        self.segments().last().map(|s| s.id).unwrap_or("")
    }

    /// Parses the rendered form; any string is accepted since module ids are free-form.
    pub fn parse(s: &str) -> Self {
        StepPath(s.to_string())
    }
}

impl fmt::Display for StepPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StepPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StepPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(StepPath(String::deserialize(deserializer)?))
    }
}

/// One attempt of one step: what an executor starts, and the key that makes starting idempotent.
/// Rendered `path#attempt`, e.g. `loop_a[3]/b#2`; attempts count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptId {
    pub step: StepPath,
    pub attempt: u32,
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.step, self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_splits_nested_paths() {
        let p = StepPath::root().child("loop_a").indexed(3).child("b");
        assert_eq!(p.to_string(), "loop_a[3]/b");
        let segs: Vec<_> = p.segments().collect();
        assert_eq!(
            segs,
            vec![
                Segment {
                    id: "loop_a",
                    index: Some(3)
                },
                Segment {
                    id: "b",
                    index: None
                }
            ]
        );
        assert_eq!(p.module_id(), "b");
        let id = AttemptId {
            step: p,
            attempt: 2,
        };
        assert_eq!(id.to_string(), "loop_a[3]/b#2");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"step":"loop_a[3]/b","attempt":2}"#);
        assert_eq!(serde_json::from_str::<AttemptId>(&json).unwrap(), id);
    }
}
