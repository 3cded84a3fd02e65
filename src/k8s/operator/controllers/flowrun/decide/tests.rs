use super::*;
use crate::engine::StepPath;
use crate::expr::InProcess;
use crate::k8s::operator::controllers::flowrun::fixtures::{bash_flow, identity, started};
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
        Vec::new(),
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
        vec![Event::Cancel],
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
