//! Starting a run: resolve its flow (a Flow in the namespace, or inline) and everything it reaches
//! by path, check the flow, what its pods may use and the inputs, and start the engine; or say
//! why the run cannot start.

use super::job::run_queue;
use super::library::{self, Library};
use super::resolver::{self, ClusterResolver};
use super::saved::Persisted;
use super::{Error, allowed};
use crate::engine::{self, Env};
use crate::expr::Evaluator;
use crate::flow::OpenFlow;
use crate::flow::prepare_inputs;
use crate::k8s::api::PodSettings;
use crate::k8s::api::document;
use crate::k8s::api::flow::{Flow, FlowSpec};
use crate::k8s::api::flowrun::{FlowRun, RunPhase};
use crate::k8s::api::paths::{Catalog, Entry, PATH_ANNOTATION};
use crate::k8s::api::script::Script;
use crate::k8s::operator::Context;
use crate::k8s::operator::kube::blocking;
use kube::api::ListParams;
use kube::core::DeserializeGuard;
use kube::{Api, Resource, ResourceExt};
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
    // Where the flow came from, and the field path of its `runtime` settings.
    let (spec, origin, runtime_at) = match (&run.spec.flow_ref, &run.spec.flow) {
        (Some(reference), None) => {
            let flows: Api<Flow> = Api::namespaced(ctx.client.clone(), &ns);
            match flows.get_opt(&reference.name).await? {
                Some(flow) => (
                    flow.spec,
                    format!("Flow {}", reference.name),
                    format!("Flow {} spec.runtime", reference.name),
                ),
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
        (None, Some(inline)) => (
            inline.clone(),
            "spec.flow".to_string(),
            "spec.flow.runtime".to_string(),
        ),
        _ => {
            return Ok(Err((
                RunPhase::Failed,
                "Invalid",
                "spec: set exactly one of flowRef and flow".into(),
            )));
        }
    };
    // Checking, resolving and starting evaluate expressions in the sandbox, which blocks while
    // they run: those parts go to the blocking pool, the API calls between them stay here.
    let queue = run_queue(&ns, &run.name_any());
    let (evaluator, inputs, q) = (
        ctx.evaluator.clone(),
        run.spec.inputs.clone(),
        queue.clone(),
    );
    let checked =
        blocking(move || check(spec, &origin, &inputs, evaluator.for_queue(&q).as_ref())).await;
    let Checked {
        flow,
        runtime,
        inputs,
        origin,
    } = match checked {
        Ok(checked) => checked,
        Err(not_started) => return Ok(Err(not_started)),
    };
    if let Some(refused) = not_allowed(runtime.as_ref(), &runtime_at, ctx) {
        return Ok(Err(refused));
    }
    let (flow, library) = match reachable(flow, &ns, &queue, ctx).await? {
        (flow, Ok(library)) => (flow, library),
        (_, Err(cycle)) => {
            return Ok(Err((
                RunPhase::Failed,
                "SubflowCycle",
                format!("{origin}: {cycle}"),
            )));
        }
    };
    let secrets = resolver::fetch_secrets(&ctx.client, &ns, &library.secrets).await?;
    let evaluator = ctx.evaluator.clone();
    let seed = seed(&run.uid().unwrap_or_default());
    blocking(move || {
        let resolver = ClusterResolver { library, secrets };
        let evaluator = evaluator.for_queue(&queue);
        let env = Env {
            evaluator: evaluator.as_ref(),
            resolver: &resolver,
        };
        let (state, _) = engine::start(&flow, inputs, seed, &env, now)?;
        Ok(Ok(Persisted {
            flow,
            library: resolver.library,
            runtime,
            state,
            approvals_seen: 0,
            started_ms: now,
            finished_ms: None,
        }))
    })
    .await
}

/// A flow that passed its checks, with its inputs filled in.
struct Checked {
    flow: OpenFlow,
    runtime: Option<PodSettings>,
    inputs: Value,
    origin: String,
}

/// Checks the flow and the inputs.
fn check(
    spec: FlowSpec,
    origin: &str,
    inputs: &Value,
    evaluator: &dyn Evaluator,
) -> Result<Checked, NotStarted> {
    let problems = document::problems(&spec, evaluator);
    if !problems.is_empty() {
        return Err((
            RunPhase::Failed,
            "InvalidFlow",
            format!("{origin} is not valid: {}", problems.join("; ")),
        ));
    }
    let flow = document::open_flow(&spec).expect("checked by problems()");
    let given = match inputs {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => {
            return Err((
                RunPhase::Failed,
                "InvalidInputs",
                "spec.inputs must be an object".into(),
            ));
        }
    };
    let inputs = prepare_inputs(flow.schema.as_ref(), given).map_err(|problems| {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        (
            RunPhase::Failed,
            "InvalidInputs",
            format!("spec.inputs: {}", listed.join("; ")),
        )
    })?;
    Ok(Checked {
        flow,
        runtime: spec.runtime,
        inputs: Value::Object(inputs),
        origin: origin.to_string(),
    })
}

/// Why the run may not start when its pods would use a ServiceAccount or Secret the operator
/// does not allow.
fn not_allowed(runtime: Option<&PodSettings>, at: &str, ctx: &Context) -> Option<NotStarted> {
    let step_account = ctx.config.pods.service_account.as_deref();
    let refused = allowed::check(runtime?, at, &ctx.config.allowed, step_account);
    let listed: Vec<String> = refused.iter().map(ToString::to_string).collect();
    (!listed.is_empty()).then(|| (RunPhase::Failed, "NotAllowed", listed.join("; ")))
}

/// Resolves the subflows and scripts `flow` reaches, from the Flows and Scripts in `ns` now, and
/// the secrets they name. Checking the subflows found evaluates expressions: blocking pool.
async fn reachable(
    flow: OpenFlow,
    ns: &str,
    queue: &str,
    ctx: &Context,
) -> Result<(OpenFlow, Result<Library, library::Cycle>), Error> {
    let (flow_paths, script_paths) = library::references(&flow);
    let (flows, scripts) = if flow_paths.is_empty() && script_paths.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            listed::<Flow>(ctx, ns).await?,
            listed::<Script>(ctx, ns).await?,
        )
    };
    let (ns, queue, evaluator) = (ns.to_string(), queue.to_string(), ctx.evaluator.clone());
    Ok(blocking(move || {
        let library = library::collect(
            &flow,
            &catalog("Flow", &ns, &flows, |f| &f.spec),
            &catalog("Script", &ns, &scripts, |s| &s.spec),
            evaluator.for_queue(&queue).as_ref(),
        );
        (flow, library)
    })
    .await)
}

/// The objects of a kind in `ns`, those that do not fit their type included.
async fn listed<K>(ctx: &Context, ns: &str) -> Result<Vec<DeserializeGuard<K>>, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.list(&ListParams::default()).await?.items)
}

fn catalog<'a, K: Resource, T>(
    kind: &'static str,
    ns: &'a str,
    objects: &'a [DeserializeGuard<K>],
    spec: impl Fn(&'a K) -> &'a T,
) -> Catalog<'a, T> {
    let entry = |object: &'a DeserializeGuard<K>| {
        let (meta, spec) = match &object.0 {
            Ok(object) => (object.meta(), Ok(spec(object))),
            Err(invalid) => (&invalid.metadata, Err(invalid.error.as_str())),
        };
        Entry {
            name: meta.name.as_deref().unwrap_or_default(),
            path: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(PATH_ANNOTATION))
                .map(String::as_str),
            spec,
        }
    };
    Catalog {
        kind,
        namespace: ns,
        objects: objects.iter().map(entry).collect(),
    }
}

/// Retry jitter seed from the run's uid, so it stays the same across restarts.
fn seed(uid: &str) -> u64 {
    let digest = Sha256::digest(uid.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}
