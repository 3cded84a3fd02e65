//! The `Script` resource: the code a flow's `script` step runs, found by its Windmill path.

// Each `printcolumn(...)` repeats `type_ = …`; clippy reads those as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use super::schema::any_json;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A script for `script` steps. A step with `path: f/team/name` runs the Script annotated
/// `millrace.dev/path: f/team/name`, else the Script named `name` (see the operator's path rule).
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "millrace.dev",
    version = "v1alpha1",
    kind = "Script",
    namespaced,
    shortname = "scr",
    category = "millrace",
    doc = "A script that flows run by path from their `script` steps",
    printcolumn(name = "Language", type_ = "string", json_path = ".spec.language"),
    printcolumn(name = "Summary", type_ = "string", json_path = ".spec.summary"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScriptSpec {
    /// `python3`, `bash`, `bun`, `deno` or `nativets`.
    pub language: String,
    /// The code, as Windmill stores it (a `main` function, or a bash script).
    pub content: String,
    /// The dependency lock, when the script has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// JSON Schema of the script's arguments, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub schema: Option<Value>,
}
