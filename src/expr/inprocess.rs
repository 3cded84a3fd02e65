//! Evaluation in the calling thread, in a fresh boa context per call.
//!
//! boa's runtime limits stop plain runaway loops and recursion, and deeply nested brackets
//! are refused before parsing, but nothing here bounds wall-clock time or memory, and
//! other deep shapes still overflow the parser's stack: a hostile expression can still
//! stall, bloat or abort the caller. Use
//! [`super::Sandbox`] for expressions nobody vetted.

use boa_engine::builtins::promise::PromiseState;
use boa_engine::object::builtins::JsPromise;
use boa_engine::object::{FunctionObjectBuilder, JsObject};
use boa_engine::vm::RuntimeLimits;
use boa_engine::{
    Context, JsNativeError, JsResult, JsValue, NativeFunction, Script, Source, js_string,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::convert::{Stringify, describe, parse_json_text, to_js};
use super::path::plain_path;
use super::source::{
    Form, body_syntax_error, check_nesting, expression_body, form_of, strip_windmill_imports,
};
use super::{Evaluator, ExprError, Scope};

/// boa's own limits, the first line of defense. Loop iterations are counted per function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub loop_iterations: u64,
    pub recursion: usize,
    /// In values on boa's stack, not bytes.
    pub stack_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            loop_iterations: 10_000_000,
            recursion: 512,
            stack_size: 10 * 1024,
        }
    }
}

/// A boa context with the limits set and the original `JSON.stringify` captured.
pub(crate) struct FreshContext {
    context: Context,
    stringify: Stringify,
}

/// Evaluates in the calling thread. Holds no engine state between calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess {
    limits: Limits,
}

impl InProcess {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// A context no code has run in yet, with the limits set.
    pub(crate) fn fresh_context(&self) -> Result<FreshContext, ExprError> {
        let mut context = Context::default();
        let mut limits = RuntimeLimits::default();
        limits.set_loop_iteration_limit(self.limits.loop_iterations);
        limits.set_recursion_limit(self.limits.recursion);
        limits.set_stack_size_limit(self.limits.stack_size);
        context.set_runtime_limits(limits);
        let stringify =
            Stringify::capture(&mut context).map_err(|e| ExprError::Internal(e.to_string()))?;
        Ok(FreshContext { context, stringify })
    }

    /// The result as JSON text, as the sandbox worker sends it.
    pub(crate) fn eval_to_json_text(
        &self,
        source: &str,
        scope: &Scope,
    ) -> Result<String, ExprError> {
        Self::eval_in(self.fresh_context()?, source, scope)
    }

    /// Evaluates in `fresh`, which is used up: no context serves two evaluations.
    pub(crate) fn eval_in(
        fresh: FreshContext,
        source: &str,
        scope: &Scope,
    ) -> Result<String, ExprError> {
        let FreshContext {
            mut context,
            stringify,
        } = fresh;
        let source = strip_windmill_imports(source);
        check_nesting(source)?;
        let bindings = bindings(scope, &mut context)?;
        let names: Vec<&str> = bindings.iter().map(|(name, _)| *name).collect();
        let function = compile(source, &names, &mut context)?;
        let args: Vec<JsValue> = bindings.into_iter().map(|(_, value)| value).collect();
        let thrown = |e: boa_engine::JsError, context: &mut Context| {
            ExprError::Thrown(describe(&e, context))
        };

        let returned = function
            .call(&JsValue::undefined(), &args, &mut context)
            .map_err(|e| thrown(e, &mut context))?;
        context.run_jobs().map_err(|e| thrown(e, &mut context))?;
        let promise = returned
            .as_object()
            .and_then(|o| JsPromise::from_object(o).ok())
            .ok_or_else(|| {
                ExprError::Internal("the expression wrapper did not return a promise".into())
            })?;
        let value = match promise.state() {
            PromiseState::Fulfilled(value) => value,
            PromiseState::Rejected(reason) => {
                return Err(thrown(
                    boa_engine::JsError::from_opaque(reason),
                    &mut context,
                ));
            }
            PromiseState::Pending => {
                return Err(ExprError::Thrown(
                    "the expression awaits a promise that never settles".into(),
                ));
            }
        };
        stringify.to_json_text(&value, &mut context)
    }
}

impl Evaluator for InProcess {
    fn eval(&self, source: &str, scope: &Scope) -> Result<Value, ExprError> {
        if let Some(value) = plain_path(strip_windmill_imports(source), scope) {
            return Ok(value);
        }
        parse_json_text(&self.eval_to_json_text(source, scope)?)
    }
}

/// The names in scope and their values, in parameter order. Optional names are left out
/// when absent, so using them is a ReferenceError rather than a silent `undefined`.
fn bindings(
    scope: &Scope,
    context: &mut Context,
) -> Result<Vec<(&'static str, JsValue)>, ExprError> {
    let mut bound = vec![
        ("flow_input", to_js(&scope.flow_input, context)?),
        ("flow_env", to_js_object(&scope.flow_env, context)?),
        ("previous_result", to_js(&scope.previous_result, context)?),
        ("results", to_js_object(&scope.results, context)?),
        (
            "variable",
            secret_lookup("variable", &scope.variables, context)?,
        ),
        (
            "resource",
            secret_lookup("resource", &scope.resources, context)?,
        ),
    ];
    for (name, value) in [
        ("result", &scope.result),
        ("error", &scope.error),
        ("resume", &scope.resume),
    ] {
        if let Some(value) = value {
            bound.push((name, to_js(value, context)?));
        }
    }
    Ok(bound)
}

fn to_js_object(map: &Map<String, Value>, context: &mut Context) -> Result<JsValue, ExprError> {
    let object = JsObject::with_object_proto(context.intrinsics());
    for (key, value) in map {
        let value = to_js(value, context)?;
        object
            .create_data_property_or_throw(js_string!(key.as_str()), value, context)
            .map_err(|e| ExprError::Internal(format!("cannot bind '{key}': {e}")))?;
    }
    Ok(object.into())
}

/// `variable(path)` / `resource(path)`: the value the caller resolved for `path`, or an
/// error naming the path.
fn secret_lookup(
    kind: &'static str,
    values: &Map<String, Value>,
    context: &mut Context,
) -> Result<JsValue, ExprError> {
    let store = to_js_object(values, context)?
        .as_object()
        .expect("to_js_object builds an object");
    let function = NativeFunction::from_copy_closure_with_captures(
        move |_this, args, store: &JsObject, context| -> JsResult<JsValue> {
            let path = args.first().and_then(JsValue::as_string).ok_or_else(|| {
                JsNativeError::typ()
                    .with_message(format!("{kind}(path) needs the path as a string"))
            })?;
            if !store.has_own_property(path.clone(), context)? {
                let path = path.to_std_string_escaped();
                return Err(JsNativeError::error()
                    .with_message(format!("{kind} '{path}' is not set"))
                    .into());
            }
            store.get(path, context)
        },
        store,
    );
    Ok(FunctionObjectBuilder::new(context.realm(), function)
        .name(js_string!(kind))
        .length(1)
        .build()
        .into())
}

/// Compiles `source` into a function of the bound names that returns a promise of the result.
fn compile(source: &str, names: &[&str], context: &mut Context) -> Result<JsObject, ExprError> {
    let body = match form_of(source) {
        Form::Expression => expression_body(source),
        Form::Body => source.to_owned(),
    };
    // The async inner function makes `await` legal, as in Windmill, and has its own
    // `arguments`, so the bound values are reachable only by name.
    let code = format!(
        "(function ({}) {{ return (async function () {{\n{body}\n}})(); }})",
        names.join(", ")
    );
    let script = Script::parse(Source::from_bytes(&code), None, context).map_err(|e| {
        body_syntax_error(source).unwrap_or_else(|| ExprError::Syntax(e.to_string()))
    })?;
    let function = script
        .evaluate(context)
        .map_err(|e| ExprError::Internal(format!("cannot set up the expression: {e}")))?;
    function
        .as_object()
        .filter(JsObject::is_callable)
        .ok_or_else(|| ExprError::Internal("the expression wrapper is not a function".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: &str, scope: &Scope) -> Result<Value, ExprError> {
        InProcess::default().eval(source, scope)
    }

    #[test]
    fn evaluates_expressions_and_bodies() {
        let scope = Scope {
            flow_input: json!({"a": {"b": 3}}),
            ..Scope::default()
        };
        assert_eq!(eval("flow_input.a.b * 2", &scope), Ok(json!(6)));
        assert_eq!(
            eval("const x = flow_input.a.b; return x + 1;", &scope),
            Ok(json!(4))
        );
        assert_eq!(eval("flow_input.a.b;", &scope), Ok(Value::Null));
    }

    #[test]
    fn optional_names_are_unbound_when_absent() {
        let err = eval("result", &Scope::default()).unwrap_err();
        assert!(
            matches!(&err, ExprError::Thrown(m) if m.contains("ReferenceError")),
            "{err:?}"
        );
        let scope = Scope {
            result: Some(json!([1])),
            ..Scope::default()
        };
        assert_eq!(eval("result.length", &scope), Ok(json!(1)));
    }

    #[test]
    fn runtime_limits_stop_runaway_loops_and_recursion() {
        let limits = Limits {
            loop_iterations: 1000,
            ..Limits::default()
        };
        let err = InProcess::new(limits)
            .eval("while (true) {}", &Scope::default())
            .unwrap_err();
        assert!(
            matches!(&err, ExprError::Thrown(m) if m.contains("loop")),
            "{err:?}"
        );
        let err = eval(
            "function f() { return f() + 1 } return f()",
            &Scope::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ExprError::Thrown(m) if m.contains("recursi")),
            "{err:?}"
        );
    }

    #[test]
    fn never_settling_promises_fail() {
        let err = eval("await new Promise(() => {})", &Scope::default()).unwrap_err();
        assert!(
            matches!(&err, ExprError::Thrown(m) if m.contains("never settles")),
            "{err:?}"
        );
    }
}
