//! The OpenFlow document as serde types.
//!
//! Windmill adds fields often, so every object keeps the fields Millrace does not know in `extra`
//! (they survive a round trip) instead of failing to parse. Module types Millrace does not know
//! parse as [`ModuleValue::Unknown`] so validation can name the module instead of serde failing
//! somewhere deep in the document.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Fields Millrace does not interpret, kept as they came.
pub type Extra = Map<String, Value>;

/// A whole flow: `summary`, `description`, `value` (the modules) and the input `schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenFlow {
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub value: FlowValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowValue {
    #[serde(default)]
    pub modules: Vec<FlowModule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_module: Option<Box<FlowModule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessor_module: Option<Box<FlowModule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_env: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_return: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_expr: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One step of a flow: its `id`, what it runs (`value`) and the behaviour around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowModule {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub value: ModuleValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_if: Option<StopAfterIf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_all_iters_if: Option<StopAfterIf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_if: Option<SkipIf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<InputTransform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<Suspend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<Mock>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How one input of a step is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum InputTransform {
    Static {
        #[serde(default)]
        value: Value,
    },
    Javascript {
        expr: String,
    },
}

pub type InputTransforms = BTreeMap<String, InputTransform>;

/// `timeout` is seconds, either a plain number or a transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timeout {
    Seconds(f64),
    Transform(InputTransform),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<ConstantRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential: Option<ExponentialRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_if: Option<RetryIf>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstantRetry {
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExponentialRetry {
    #[serde(default)]
    pub attempts: u32,
    #[serde(default = "one")]
    pub multiplier: f64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_factor: Option<f64>,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryIf {
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopAfterIf {
    pub expr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_if_stopped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipIf {
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_events: Option<u32>,
    /// Seconds to wait for approval before the step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_form: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_disapprove_timeout: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mock {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub return_value: Value,
}

/// What a module runs. Unknown `type`s are kept as [`ModuleValue::Unknown`] for validation to report.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleValue {
    RawScript(RawScript),
    Script(ScriptRef),
    Flow(ScriptRef),
    ForLoop(ForLoop),
    WhileLoop(WhileLoop),
    BranchOne(BranchOne),
    BranchAll(BranchAll),
    Identity(Extra),
    Unknown { type_name: String, raw: Value },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawScript {
    #[serde(default)]
    pub content: String,
    pub language: String,
    #[serde(default)]
    pub input_transforms: InputTransforms,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `script` or `flow` module: something found by path (`hub/…`, `f/…`, `u/…`, `g/…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRef {
    pub path: String,
    #[serde(default)]
    pub input_transforms: InputTransforms,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForLoop {
    pub iterator: InputTransform,
    #[serde(default)]
    pub modules: Vec<FlowModule>,
    #[serde(default)]
    pub skip_failures: bool,
    #[serde(default)]
    pub parallel: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<Parallelism>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `parallelism` is a number in older exports and a transform in newer ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Parallelism {
    Count(u64),
    Transform(InputTransform),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhileLoop {
    #[serde(default)]
    pub modules: Vec<FlowModule>,
    #[serde(default)]
    pub skip_failures: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchOne {
    #[serde(default)]
    pub branches: Vec<ConditionalBranch>,
    #[serde(default)]
    pub default: Vec<FlowModule>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionalBranch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub expr: String,
    #[serde(default)]
    pub modules: Vec<FlowModule>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchAll {
    #[serde(default)]
    pub branches: Vec<ParallelBranch>,
    #[serde(default)]
    pub parallel: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelBranch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub skip_failure: bool,
    #[serde(default)]
    pub modules: Vec<FlowModule>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ModuleValue {
    /// The `type` tag as written in the document.
    pub fn type_name(&self) -> &str {
        match self {
            ModuleValue::RawScript(_) => "rawscript",
            ModuleValue::Script(_) => "script",
            ModuleValue::Flow(_) => "flow",
            ModuleValue::ForLoop(_) => "forloopflow",
            ModuleValue::WhileLoop(_) => "whileloopflow",
            ModuleValue::BranchOne(_) => "branchone",
            ModuleValue::BranchAll(_) => "branchall",
            ModuleValue::Identity(_) => "identity",
            ModuleValue::Unknown { type_name, .. } => type_name,
        }
    }

    /// The input transforms of a leaf module (script-like); loops and branches have none.
    pub fn input_transforms(&self) -> Option<&InputTransforms> {
        match self {
            ModuleValue::RawScript(s) => Some(&s.input_transforms),
            ModuleValue::Script(s) | ModuleValue::Flow(s) => Some(&s.input_transforms),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for ModuleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut raw = Map::<String, Value>::deserialize(deserializer)?;
        let type_name = match raw.remove("type") {
            Some(Value::String(t)) => t,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`type` must be a string, got {other}"
                )));
            }
            None => return Err(D::Error::custom("missing field `type`")),
        };
        let rest = Value::Object(raw);
        fn parse<T: serde::de::DeserializeOwned, E: Error>(v: Value) -> Result<T, E> {
            serde_json::from_value(v).map_err(E::custom)
        }
        Ok(match type_name.as_str() {
            "rawscript" => ModuleValue::RawScript(parse(rest)?),
            "script" => ModuleValue::Script(parse(rest)?),
            "flow" => ModuleValue::Flow(parse(rest)?),
            "forloopflow" => ModuleValue::ForLoop(parse(rest)?),
            "whileloopflow" => ModuleValue::WhileLoop(parse(rest)?),
            "branchone" => ModuleValue::BranchOne(parse(rest)?),
            "branchall" => ModuleValue::BranchAll(parse(rest)?),
            "identity" => ModuleValue::Identity(parse(rest)?),
            _ => ModuleValue::Unknown {
                type_name,
                raw: rest,
            },
        })
    }
}

impl Serialize for ModuleValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let body = match self {
            ModuleValue::RawScript(v) => serde_json::to_value(v),
            ModuleValue::Script(v) | ModuleValue::Flow(v) => serde_json::to_value(v),
            ModuleValue::ForLoop(v) => serde_json::to_value(v),
            ModuleValue::WhileLoop(v) => serde_json::to_value(v),
            ModuleValue::BranchOne(v) => serde_json::to_value(v),
            ModuleValue::BranchAll(v) => serde_json::to_value(v),
            ModuleValue::Identity(v) => serde_json::to_value(v),
            ModuleValue::Unknown { raw, .. } => Ok(raw.clone()),
        }
        .map_err(S::Error::custom)?;
        let mut map = Map::new();
        map.insert("type".into(), Value::String(self.type_name().to_string()));
        if let Value::Object(fields) = body {
            map.extend(fields);
        }
        map.serialize(serializer)
    }
}
