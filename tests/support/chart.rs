//! The Millrace Helm chart as `helm template` renders it, and what the tests read from it.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::helm;
use super::manifests::documents;

pub const CHART: &str = "charts/millrace";

/// `helm template` of the chart as release `release` in `namespace`, CRDs included; `None` when
/// the helm tests are skipped.
pub fn render(release: &str, namespace: &str, sets: &[&str]) -> Result<Option<Vec<Value>>> {
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    helm::run(&args)?.map(|yaml| documents(&yaml)).transpose()
}

pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn only<'a>(objects: &'a [Value], kind: &str) -> Result<&'a Value> {
    match of_kind(objects, kind).as_slice() {
        [one] => Ok(one),
        many => bail!("expected one {kind}, the chart renders {}", many.len()),
    }
}

/// The operator container's arguments.
pub fn controller_args(objects: &[Value]) -> Result<Vec<String>> {
    let container = &only(objects, "Deployment")?["spec"]["template"]["spec"]["containers"][0];
    Ok(serde_json::from_value(container["args"].clone())?)
}

/// The operator pod's ServiceAccount.
pub fn operator_account(objects: &[Value]) -> Result<String> {
    let pod = &only(objects, "Deployment")?["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"].as_str();
    Ok(account.context("serviceAccountName")?.to_string())
}

/// The step pods' ServiceAccount, as the operator is told.
#[allow(
    dead_code,
    reason = "only the chart tests run steps as the chart's account"
)]
pub fn step_account(objects: &[Value]) -> Result<String> {
    match flag_values(&controller_args(objects)?, "--step-service-account").as_slice() {
        [account] => Ok(account.clone()),
        other => bail!("one --step-service-account expected: {other:?}"),
    }
}

/// The value following `flag` in `args`, for every occurrence.
pub fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| pair[1].clone())
        .collect()
}
