//! Values across the boundary: JSON in, JSON text out, errors as text.
//!
//! Results leave through the engine's own `JSON.stringify` (captured before any author
//! code runs, so redefining it changes nothing): that gives exact JS semantics for
//! `toJSON`, dropped `undefined` members, non-enumerable properties and NaN/Infinity →
//! null. The text is then parsed by serde_json, which turns integral numbers into JSON
//! integers and keeps key order.

use boa_engine::object::JsObject;
use boa_engine::{Context, JsError, JsResult, JsValue, js_string};
use serde_json::Value;

use super::ExprError;

/// The realm's original `JSON.stringify`.
pub(crate) struct Stringify(JsObject);

impl Stringify {
    /// Must be called on a fresh context, before author code can replace the function.
    pub(crate) fn capture(context: &mut Context) -> JsResult<Self> {
        let json = context.global_object().get(js_string!("JSON"), context)?;
        let stringify = json
            .as_object()
            .map(|json| json.get(js_string!("stringify"), context))
            .transpose()?
            .and_then(|f| f.as_object())
            .filter(JsObject::is_callable);
        stringify.map(Self).ok_or_else(|| {
            boa_engine::JsNativeError::typ()
                .with_message("JSON.stringify is missing from a fresh realm")
                .into()
        })
    }

    /// JSON text of `value`; `undefined` (and anything else JSON cannot hold at the top
    /// level, such as a function) becomes `null`.
    pub(crate) fn to_json_text(
        &self,
        value: &JsValue,
        context: &mut Context,
    ) -> Result<String, ExprError> {
        let text = self
            .0
            .call(&JsValue::undefined(), std::slice::from_ref(value), context)
            .map_err(|e| {
                ExprError::Thrown(format!(
                    "the result cannot be converted to JSON: {}",
                    describe(&e, context)
                ))
            })?;
        match text.as_string() {
            Some(text) => text.to_std_string().map_err(|_| {
                ExprError::Thrown(
                    "the result contains a lone UTF-16 surrogate, which JSON text cannot carry"
                        .into(),
                )
            }),
            None => Ok("null".to_owned()),
        }
    }
}

/// A JSON value as a JS value. Integers within ±2^53 stay exact; larger ones become the
/// nearest double, as in any JS engine.
pub(crate) fn to_js(value: &Value, context: &mut Context) -> Result<JsValue, ExprError> {
    JsValue::from_json(value, context)
        .map_err(|e| ExprError::Internal(format!("cannot bind a value: {e}")))
}

/// Parses the JSON text produced by [`Stringify::to_json_text`].
pub(crate) fn parse_json_text(text: &str) -> Result<Value, ExprError> {
    serde_json::from_str(text).map_err(unreadable_result)
}

/// Why JSON text of a result could not be read. serde_json refuses nesting deeper than
/// 128 levels rather than risk the reader's stack.
pub(crate) fn unreadable_result(error: serde_json::Error) -> ExprError {
    if error.to_string().contains("recursion limit") {
        ExprError::Internal("the result nests more than 128 levels deep".into())
    } else {
        ExprError::Internal(format!("the result is not valid JSON: {error}"))
    }
}

/// A thrown value as one line of text: `TypeError: x is undefined`, or the thrown value itself.
pub(crate) fn describe(error: &JsError, context: &mut Context) -> String {
    if let Ok(native) = error.try_native(context) {
        return format!("{}: {}", native.kind(), native.message());
    }
    match error.as_opaque() {
        Some(value) => match value.as_string() {
            Some(s) => s.to_std_string_escaped(),
            None => value.display().to_string(),
        },
        // An engine error (a runtime limit): its first line, without the backtrace.
        None => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}
