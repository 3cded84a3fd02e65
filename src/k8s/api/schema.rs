//! Schema helpers for fields that hold arbitrary JSON (flow documents, inputs, results).
//!
//! A structural CRD schema must say where arbitrary JSON may appear, or the apiserver prunes it.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Any JSON value: object, array, string, number, boolean or null.
pub fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true,
    })
}

/// A JSON object with free-form keys and values.
pub fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
