//! Starting a run: resolve its flow (a Flow in the namespace, or inline), check the flow and the
//! inputs, and start the engine; or say why the run cannot start.

use super::document;
use super::resolver::ClusterResolver;
use super::store::Persisted;
use super::{Context, Error, blocking};
use crate::engine::{self, Env};
use crate::expr::Evaluator;
use crate::flow::prepare_inputs;
use crate::k8s::flow::{Flow, FlowSpec};
use crate::k8s::flowrun::{FlowRun, RunPhase};
use kube::{Api, ResourceExt};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a run cannot start: its phase (Pending while the Flow may still appear, else Failed),
/// the condition reason, and a message naming the field to fix.
pub type NotStarted = (RunPhase, &'static str, String);

/// Resolves the flow, checks the inputs and starts the engine; or says why the run cannot start.
pub async fn begin(
    run: &FlowRun,
    ctx: &Context,
    now: u64,
) -> Result<Result<Persisted, NotStarted>, Error> {
    let ns = run.namespace().unwrap_or_default();
    let (spec, origin) = match (&run.spec.flow_ref, &run.spec.flow) {
        (Some(reference), None) => {
            let flows: Api<Flow> = Api::namespaced(ctx.client.clone(), &ns);
            match flows.get_opt(&reference.name).await? {
                Some(flow) => (flow.spec, format!("Flow {}", reference.name)),
                None => {
                    return Ok(Err((
                        RunPhase::Pending,
                        "FlowNotFound",
                        format!(
                            "spec.flowRef: no Flow {} in namespace {ns}; create it, the run starts then",
                            reference.name
                        ),
                    )));
                }
            }
        }
        (None, Some(inline)) => (inline.clone(), "spec.flow".to_string()),
        _ => {
            return Ok(Err((
                RunPhase::Failed,
                "Invalid",
                "spec: set exactly one of flowRef and flow".into(),
            )));
        }
    };
    // Checking and starting evaluate expressions in the sandbox, which blocks while they run.
    let evaluator = ctx.evaluator.clone();
    let (inputs, seed) = (
        run.spec.inputs.clone(),
        seed(&run.uid().unwrap_or_default()),
    );
    blocking(move || start(spec, &origin, &inputs, seed, evaluator.as_ref(), now)).await
}

/// Checks the flow and the inputs, then starts the engine.
fn start(
    spec: FlowSpec,
    origin: &str,
    inputs: &Value,
    seed: u64,
    evaluator: &dyn Evaluator,
    now: u64,
) -> Result<Result<Persisted, NotStarted>, Error> {
    let problems = document::problems(&spec, evaluator);
    if !problems.is_empty() {
        return Ok(Err((
            RunPhase::Failed,
            "InvalidFlow",
            format!("{origin} is not valid: {}", problems.join("; ")),
        )));
    }
    let flow = document::open_flow(&spec).expect("checked by problems()");
    let given = match inputs {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => {
            return Ok(Err((
                RunPhase::Failed,
                "InvalidInputs",
                "spec.inputs must be an object".into(),
            )));
        }
    };
    let inputs = match prepare_inputs(flow.schema.as_ref(), given) {
        Ok(inputs) => inputs,
        Err(problems) => {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Ok(Err((
                RunPhase::Failed,
                "InvalidInputs",
                format!("spec.inputs: {}", listed.join("; ")),
            )));
        }
    };
    let env = Env {
        evaluator,
        resolver: &ClusterResolver,
    };
    let (state, _) = engine::start(&flow, Value::Object(inputs), seed, &env, now)?;
    Ok(Ok(Persisted {
        flow,
        runtime: spec.runtime,
        state,
        approvals_seen: 0,
        started_ms: now,
        finished_ms: None,
    }))
}

/// Retry jitter seed from the run's uid, so it stays the same across restarts.
fn seed(uid: &str) -> u64 {
    let digest = Sha256::digest(uid.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}
