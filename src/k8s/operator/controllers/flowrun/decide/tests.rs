use super::*;
use crate::engine::StepPath;
use crate::expr::InProcess;
use crate::flow::OpenFlow;
use crate::k8s::operator::controllers::flowrun::fixtures::{self, bash_flow, identity, started};
use crate::k8s::operator::controllers::flowrun::variables::Read;
use k8s_openapi::ByteString;
use serde_json::json;

fn flow_run(spec: Value) -> FlowRun {
    serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": "r", "namespace": "ns", "uid": "u"},
        "spec": spec,
    }))
    .unwrap()
}

fn job(name: &str, status: Value, ttl: Option<i32>) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"template": {}, "ttlSecondsAfterFinished": ttl},
        "status": status,
    }))
    .unwrap()
}

/// `persisted` driven once: its first attempt built, as the reconcile would.
fn drive_once(persisted: &mut Persisted) -> Vec<(Job, Secret)> {
    let resolver = ClusterResolver::default();
    let pods = PodDefaults::default();
    let evaluator = InProcess::default();
    let run = identity();
    drive(
        persisted,
        (Vec::new(), HashSet::new()),
        &run,
        &pods,
        &evaluator,
        &resolver,
        2_000,
    )
    .unwrap()
}

#[test]
fn the_engine_hears_of_a_cancel_and_of_each_approval_once() {
    let mut persisted = started(bash_flow(&["a"]), json!({}));
    let run = flow_run(
        json!({"flowRef": {"name": "f"}, "cancel": true, "approvals": [
        {"step": "a", "approved": true}, {"step": "", "approved": false, "payload": {"why": "no"}}]}),
    );
    let told = events(&run, &mut persisted, Vec::new());
    assert_eq!(told.len(), 3);
    assert!(matches!(told[0], Event::Cancel));
    assert!(matches!(&told[1],
        Event::Approval { step: Some(step), approved: true, payload: Value::Null }
            if *step == StepPath::parse("a")));
    assert!(matches!(&told[2],
        Event::Approval { step: None, approved: false, payload } if payload["why"] == "no"));
    assert_eq!(persisted.approvals_seen, 2);
    let again = flow_run(json!({"flowRef": {"name": "f"}, "approvals": [
        {"step": "a", "approved": true}]}));
    assert!(events(&again, &mut persisted, Vec::new()).is_empty());
    assert_eq!(persisted.approvals_seen, 2, "a stale cache lowers nothing");
}

#[test]
fn the_first_attempt_becomes_its_job_and_starts_when_it_has_none() {
    let mut persisted = started(bash_flow(&["a", "b"]), json!({}));
    let built = drive_once(&mut persisted);
    let run = identity();
    let name = naming::job_name(&run.name, &run.uid, "a", 1);
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].0.name_any(), name);
    let plan = jobs(&persisted, &run, built.clone(), &BTreeMap::new(), &[], 60);
    assert_eq!(plan.start.len(), 1);
    assert!(plan.stop.is_empty() && plan.release.is_empty());
    let existing = BTreeMap::from([(name.clone(), job(&name, json!({}), None))]);
    let plan = jobs(&persisted, &run, built, &existing, &[], 60);
    assert!(
        plan.start.is_empty(),
        "a Job that exists is not created again"
    );
    assert!(
        plan.stop.is_empty(),
        "the running attempt's Job is left alone"
    );
}

#[test]
fn jobs_the_state_does_not_run_are_stopped_or_released() {
    let persisted = started(bash_flow(&["a"]), json!({}));
    let complete = json!({"conditions": [{"type": "Complete", "status": "True"}]});
    let existing = BTreeMap::from([
        ("going".to_string(), job("going", json!({}), None)),
        ("done".to_string(), job("done", complete.clone(), None)),
        ("released".to_string(), job("released", complete, Some(60))),
    ]);
    let plan = jobs(&persisted, &identity(), Vec::new(), &existing, &[], 60);
    assert_eq!(plan.stop, vec!["going".to_string()]);
    assert_eq!(plan.release, vec!["done".to_string()]);
}

#[test]
fn an_ended_run_starts_nothing_and_is_not_looked_at_again() {
    let mut persisted = started(bash_flow(&["a"]), json!({}));
    let built = drive_once(&mut persisted);
    let resync = Duration::from_secs(60);
    assert_eq!(requeue(&persisted, 2_000, resync), Requeue::requeue(resync));
    let resolver = ClusterResolver::default();
    let (pods, evaluator) = (PodDefaults::default(), InProcess::default());
    drive(
        &mut persisted,
        (vec![Event::Cancel], HashSet::new()),
        &identity(),
        &pods,
        &evaluator,
        &resolver,
        3_000,
    )
    .unwrap();
    assert!(persisted.state.outcome().is_some());
    let plan = jobs(&persisted, &identity(), built, &BTreeMap::new(), &[], 60);
    assert!(plan.start.is_empty());
    assert_eq!(requeue(&persisted, 3_000, resync), Requeue::await_change());
}

/// A resolver whose `millrace-variables` Secret holds `variables` (path, value).
fn with_variables(variables: &[(&str, &str)]) -> ClusterResolver {
    let keys = variables.iter().map(|(path, value)| {
        (
            path.replace('/', "."),
            ByteString(value.as_bytes().to_vec()),
        )
    });
    ClusterResolver {
        secrets: Fetched {
            namespace: "ns".into(),
            variables: Read::Present(keys.collect()),
            ..Fetched::default()
        },
        ..ClusterResolver::default()
    }
}

#[test]
fn a_running_attempt_with_its_job_keeps_its_arguments_and_is_not_evaluated_again() {
    let flow: OpenFlow = serde_json::from_value(json!({"summary": "v", "value": {"modules": [
        {"id": "a", "value": {"type": "rawscript", "language": "bash", "content": "echo $1",
            "input_transforms": {"token": {"type": "javascript", "expr": "variable('u/x')"}}}}]}}))
    .unwrap();
    let evaluator = InProcess::default();
    let pods = PodDefaults::default();
    let run = identity();
    let there = with_variables(&[("u/x", "s3cret")]);
    let env = crate::engine::Env {
        evaluator: &evaluator,
        resolver: &there,
    };
    let (state, _) = crate::engine::start(&flow, json!({}), 7, &env, 1_000).unwrap();
    let mut persisted = fixtures::persisted(flow, state);
    let a = persisted.state.running_attempts();
    assert_eq!(a.len(), 1);
    let name = naming::job_name(&run.name, &run.uid, "a", 1);
    let existing = BTreeMap::from([(name.clone(), job(&name, json!({}), None))]);

    // The Secret key is deleted while the attempt runs: evaluating its arguments now would fail.
    let gone = with_variables(&[]);
    let started = super::started(&persisted, &run, &existing);
    assert_eq!(started, a.iter().cloned().collect());
    let built = drive(
        &mut persisted,
        (Vec::new(), started),
        &run,
        &pods,
        &evaluator,
        &gone,
        2_000,
    )
    .unwrap();
    assert!(built.is_empty(), "nothing to build: its Job runs");
    assert_eq!(persisted.state.running_attempts(), a, "the attempt runs on");
    assert!(persisted.state.outcome().is_none());

    // Without its Job (the reconcile that saved it stopped short), it is built again.
    let built = drive(
        &mut persisted,
        (Vec::new(), HashSet::new()),
        &run,
        &pods,
        &evaluator,
        &there,
        3_000,
    )
    .unwrap();
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].0.name_any(), name);
}
