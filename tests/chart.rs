//! The Helm chart: it lints, renders, ships the generated CRDs, applies cleanly to the real control
//! plane, and its ServiceAccounts and RBAC are what the operator and the step pods get: the
//! operator, running in-process with the chart's operator ServiceAccount token, completes a run
//! without a single 403 (watching all namespaces, or one with `watchNamespace`), and the step
//! ServiceAccount is refused Secrets and pods.

mod support {
    pub mod accounts;
    pub mod chart;
    pub mod cluster;
    pub mod flows;
    pub mod git_repos;
    pub mod gitsources;
    pub mod helm;
    pub mod manifests;
    pub mod operator;
}

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::{FlowRun, Schedule};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use support::accounts::{Refusals, client_as, is_forbidden, recording_client_as};
use support::chart::{
    CHART, controller_args, flag_values, of_kind, only, operator_account, render, step_account,
};
use support::cluster::wait::{TIMEOUT, wait_until};
use support::flows::example;
use support::gitsources::{self, Published};
use support::helm;
use support::manifests::{apply, documents};
use support::operator::{self as harness, Controllers, Harness};

const FIELD_MANAGER: &str = "millrace-chart-test";
/// The Lease the operator's leader election takes in the release namespace.
const LEASE: &str = "millrace-controller";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_chart_lints_and_renders_the_operator_with_its_flags() -> Result<()> {
    let Some(lint) = helm::run(&["lint", "--strict", CHART])? else {
        return Ok(());
    };
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    let lint = helm::run(&["lint", "--strict", CHART, "--set", "watchNamespace=team-a"])?;
    assert!(lint.context("helm")?.contains("0 chart(s) failed"));
    let objects = render("millrace", "millrace", &[])?.context("helm")?;

    let args = controller_args(&objects)?;
    assert_eq!(args[0], "controller");
    assert_eq!(flag_values(&args, "--metrics-addr"), ["0.0.0.0:8080"]);
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    assert_eq!(flag_values(&args, "--kube-qps"), ["50"]);
    assert_eq!(flag_values(&args, "--kube-burst"), ["100"]);
    assert_eq!(flag_values(&args, "--concurrency"), ["16"]);
    let mut languages: Vec<String> = flag_values(&args, "--image")
        .iter()
        .map(|i| i.split_once('=').expect("LANGUAGE=IMAGE").0.to_string())
        .collect();
    languages.sort();
    assert_eq!(languages, ["bash", "bun", "deno", "python3"]);
    assert_eq!(
        flag_values(&args, "--step-service-account"),
        ["millrace-step"]
    );
    assert_eq!(flag_values(&args, "--allowed-service-accounts"), [""]);
    assert_eq!(
        flag_values(&args, "--allowed-secrets"),
        ["millrace-variables,millrace-resources"]
    );
    assert_eq!(flag_values(&args, "--result-cap-bytes"), ["1048576"]);
    assert_eq!(flag_values(&args, "--job-ttl-seconds"), ["3600"]);
    assert_eq!(flag_values(&args, "--pod-pending-timeout-seconds"), ["600"]);
    assert_eq!(flag_values(&args, "--expression-timeout-ms"), ["2000"]);
    assert_eq!(flag_values(&args, "--expression-memory-mib"), ["128"]);
    assert_eq!(flag_values(&args, "--expression-workers"), ["2"]);
    assert!(flag_values(&args, "--namespace").is_empty(), "{args:?}");

    let pod = &only(&objects, "Deployment")?["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env: BTreeMap<String, Value> = container["env"]
        .as_array()
        .context("env")?
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e.clone()))
        .collect();
    assert_eq!(env["RUST_LOG"]["value"], "info");
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // Only the operator's pod gets a token: the step account never does.
    assert_eq!(pod["automountServiceAccountToken"], true);
    let accounts = of_kind(&objects, "ServiceAccount");
    let step = accounts
        .iter()
        .find(|a| a["metadata"]["name"] == "millrace-step")
        .context("the step ServiceAccount")?;
    assert_eq!(step["automountServiceAccountToken"], false);
    assert_eq!(
        only(&objects, "ClusterRole")?["metadata"]["name"],
        "millrace"
    );
    assert_eq!(of_kind(&objects, "ClusterRoleBinding").len(), 1);

    // Watching one namespace: a Role there instead of the ClusterRole, and the flag.
    let sets = [
        "watchNamespace=team-a",
        "replicas=2",
        "logLevel=debug",
        "stepImages.python3=python:3.13",
        "stepPermissions.serviceAccounts={reporter,mailer}",
        "stepPermissions.secrets={smtp}",
        "expressions.timeoutMs=5000",
        "expressions.workers=4",
    ];
    let objects = render("millrace", "millrace", &sets)?.context("helm")?;
    let args = controller_args(&objects)?;
    assert_eq!(flag_values(&args, "--namespace"), ["team-a"]);
    assert_eq!(
        flag_values(&args, "--allowed-service-accounts"),
        ["reporter,mailer"]
    );
    assert_eq!(flag_values(&args, "--allowed-secrets"), ["smtp"]);
    assert_eq!(flag_values(&args, "--expression-timeout-ms"), ["5000"]);
    assert_eq!(flag_values(&args, "--expression-workers"), ["4"]);
    assert!(
        flag_values(&args, "--image").contains(&"python3=python:3.13".to_string()),
        "{args:?}"
    );
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let roles = of_kind(&objects, "Role");
    let namespaces: Vec<&Value> = roles.iter().map(|r| &r["metadata"]["namespace"]).collect();
    assert_eq!(namespaces, [&json!("team-a"), &json!("millrace")]);
    assert_eq!(only(&objects, "Deployment")?["spec"]["replicas"], 2);
    // Step pods of team-a need the step account in team-a.
    let step_namespaces: Vec<&Value> = of_kind(&objects, "ServiceAccount")
        .into_iter()
        .filter(|a| a["metadata"]["name"] == "millrace-step")
        .map(|a| &a["metadata"]["namespace"])
        .collect();
    assert_eq!(step_namespaces, [&json!("millrace"), &json!("team-a")]);
    Ok(())
}

fn yaml_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().context("name")?.to_string_lossy().into();
            files.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}

#[test]
fn the_chart_ships_the_generated_crds() -> Result<()> {
    // Byte for byte: both are written by `millrace crds --out crds --out charts/millrace/crds`.
    let generated = yaml_files(&repo().join("crds"))?;
    let shipped = yaml_files(&repo().join(CHART).join("crds"))?;
    assert!(!generated.is_empty());
    assert_eq!(
        shipped, generated,
        "the chart's CRDs differ from crds/: run `millrace crds --out crds --out charts/millrace/crds`"
    );

    let Some(objects) = render("millrace", "millrace", &[])? else {
        return Ok(());
    };
    let mut rendered: Vec<&Value> = of_kind(&objects, "CustomResourceDefinition");
    rendered.sort_by_key(|crd| crd["metadata"]["name"].to_string());
    let mut expected = Vec::new();
    for yaml in generated.values() {
        expected.extend(documents(yaml)?);
    }
    expected.sort_by_key(|crd| crd["metadata"]["name"].to_string());
    assert_eq!(rendered, expected.iter().collect::<Vec<_>>());
    Ok(())
}

/// Renders the chart as release `release` into `namespace` with `sets`, and applies all of it.
/// Returns the rendered objects and `Kind/name` of the cluster-scoped ones.
async fn install(
    client: &Client,
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> Result<Option<(Vec<Value>, Vec<String>)>> {
    let Some(objects) = render(release, namespace, sets)? else {
        return Ok(None);
    };
    let mut cluster_scoped = apply(client, &objects, FIELD_MANAGER).await?;
    cluster_scoped.sort();
    // The apiserver kept what was applied.
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(&format!("{release}-millrace"))
        .await?;
    assert_eq!(deployment.spec.context("spec")?.replicas, Some(1));
    Ok(Some((objects, cluster_scoped)))
}

/// The in-process operators take turns: one watching all namespaces would also act on the runs
/// of the test whose operator watches one namespace, and hide what that one's Role lacks.
static ONE_OPERATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CRDS: [&str; 5] = [
    "CustomResourceDefinition/flowruns.millrace.dev",
    "CustomResourceDefinition/flows.millrace.dev",
    "CustomResourceDefinition/gitsources.millrace.dev",
    "CustomResourceDefinition/schedules.millrace.dev",
    "CustomResourceDefinition/scripts.millrace.dev",
];

/// Runs the controllers in-process with `client`, as the chart's Deployment configures them
/// (step pods' ServiceAccount, watched namespace).
fn start_operator(client: Client, step_account: &str, namespace: Option<&str>) -> Controllers {
    let mut config = harness::config(namespace);
    config.pods.service_account = Some(step_account.into());
    Controllers::start(client, config)
}

/// What the leader election and Secrets rules allow the operator, and what they do not.
async fn check_operator_limits(operator: &Client, admin: &Client, namespace: &str) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(operator.clone(), namespace);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    leases.create(&PostParams::default(), &lease).await?;
    leases.get(LEASE).await?;
    let holder = json!({"spec": {"holderIdentity": "chart-test"}});
    leases
        .patch(LEASE, &PatchParams::default(), &Patch::Merge(&holder))
        .await?;
    let mut other = lease.clone();
    other.metadata.name = Some("someone-else".into());
    leases.create(&PostParams::default(), &other).await?;
    assert!(is_forbidden(&leases.get("someone-else").await));
    let elsewhere: Api<Lease> = Api::namespaced(operator.clone(), "default");
    assert!(is_forbidden(
        &elsewhere.create(&PostParams::default(), &lease).await
    ));

    let secrets: Api<Secret> = Api::namespaced(operator.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("step-arguments".into()),
            ..Default::default()
        },
        string_data: Some([("token".to_string(), "s3cr3t".to_string())].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    // Only the Secrets that variable() and resource() map to can be read back.
    assert!(is_forbidden(&secrets.get("step-arguments").await));
    secrets.get_opt("millrace-variables").await?;
    secrets.get_opt("millrace-resources").await?;
    assert!(is_forbidden(&secrets.list(&ListParams::default()).await));
    Api::<Secret>::namespaced(admin.clone(), namespace)
        .delete("step-arguments", &Default::default())
        .await?;
    // Nothing in the chart lets the operator touch RBAC or its own Deployment.
    let deployments: Api<Deployment> = Api::namespaced(operator.clone(), namespace);
    assert!(is_forbidden(
        &deployments.list(&ListParams::default()).await
    ));
    let roles: Api<Role> = Api::namespaced(operator.clone(), namespace);
    assert!(is_forbidden(&roles.list(&ListParams::default()).await));
    Api::<Lease>::namespaced(admin.clone(), namespace)
        .delete("someone-else", &Default::default())
        .await?;
    Ok(())
}

fn not_refused(refusals: &Refusals) -> Result<()> {
    let refused = refusals.lock().unwrap().clone();
    ensure!(
        refused.is_empty(),
        "the chart's RBAC refused the operator: {refused:#?}"
    );
    Ok(())
}

/// Waits until the run reaches a final phase; fails as soon as the operator is refused anything.
async fn finished(t: &Harness, name: &str, refusals: &Refusals) -> Result<FlowRun> {
    wait_until(&format!("FlowRun {name} ends"), TIMEOUT, || async {
        not_refused(refusals)?;
        t.ended(name).await
    })
    .await
}

/// A per-second Schedule of the example Flow under the operator's Role: it creates runs, writes
/// its status and Events, and deletes history beyond its limit, without a refusal.
async fn schedule_runs(t: &Harness, refusals: &Refusals) -> Result<()> {
    let schedule: Schedule = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Schedule", "metadata": {"name": "often"},
        "spec": {"schedule": "*/2 * * * * *", "flowRef": {"name": "count-and-double"},
                 "inputs": {"n": 1}, "successfulRunsHistoryLimit": 1},
    }))?;
    let schedules = t.api::<Schedule>();
    schedules.create(&PostParams::default(), &schedule).await?;
    let runs = t.api::<FlowRun>();
    wait_until(
        "the Schedule runs under the chart's RBAC",
        TIMEOUT,
        || async {
            not_refused(refusals)?;
            let status = schedules.get("often").await?.status.unwrap_or_default();
            let listed = runs
                .list(&ListParams::default().labels("millrace.dev/schedule=often"))
                .await?
                .items
                .len() as u64;
            // Runs created and succeeded, and fewer left than were created: history was deleted.
            Ok((status.created >= 3
                && status.last_successful_time.is_some()
                && listed < status.created)
                .then_some(()))
        },
    )
    .await?;
    schedules.delete("often", &Default::default()).await?;
    Ok(())
}

/// A GitSource with credentials from a Secret the chart lets it read, under the operator's Role:
/// it applies a Flow and a Schedule, then prunes them, without a refusal.
async fn gitsource_syncs(t: &Harness, refusals: &Refusals) -> Result<()> {
    let git = Published::new();
    git.write(
        "hello.yaml",
        gitsources::flow("synced", "v1", "echo synced"),
    )
    .write(
        "tick.yaml",
        gitsources::schedule("synced-hourly", "synced", "0 * * * *"),
    );
    let first = git.publish("a flow and a schedule");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-creds"},
        "stringData": {"token": "unused by file://"},
    }))?;
    t.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let spec = json!({"url": git.url(), "interval": "1s", "secretRef": {"name": "git-creds"}});
    gitsources::create(&t.client, &t.ns, "flows", spec).await?;
    let status = gitsources::applied(&t.client, &t.ns, "flows", &first).await?;
    not_refused(refusals)?;
    assert_eq!(status.inventory.len(), 2, "{status:#?}");
    git.remove("hello.yaml").remove("tick.yaml");
    let second = git.publish("nothing");
    let status = gitsources::applied(&t.client, &t.ns, "flows", &second).await?;
    not_refused(refusals)?;
    assert!(status.inventory.is_empty(), "{status:#?}");
    assert!(
        t.api::<Schedule>()
            .get_opt("synced-hourly")
            .await?
            .is_none()
    );
    Ok(())
}

/// Waits until an Event about `run` has `reason`.
async fn events_until(t: &Harness, run: &str, reason: &str) -> Result<()> {
    wait_until(
        &format!("an Event {reason} about {run}"),
        TIMEOUT,
        || async {
            let reasons = t.event_reasons(run).await?;
            Ok(reasons.iter().any(|(r, _)| r == reason).then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn the_whole_chart_applies_and_the_operator_runs_a_flow_with_its_own_service_account()
-> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let admin = cp.client();
    let ns = cp.namespace("chart").await;
    let Some((objects, cluster_scoped)) = install(&admin, &ns, &ns, &[]).await? else {
        return Ok(());
    };
    let fullname = format!("{ns}-millrace");
    let mut expected = vec![
        format!("ClusterRole/{fullname}"),
        format!("ClusterRoleBinding/{fullname}"),
    ];
    expected.extend(CRDS.map(String::from));
    assert_eq!(cluster_scoped, expected);
    let step_account = step_account(&objects)?;
    let operator_account = operator_account(&objects)?;

    let limits = client_as(cp, &ns, &operator_account).await?;
    check_operator_limits(&limits, &admin, &ns).await?;

    let _turn = ONE_OPERATOR.lock().await;
    let (operator, forbidden) = recording_client_as(cp, &ns, &operator_account).await?;
    // The recorder notices a refusal (the operator may not list Secrets).
    let refused = Api::<Secret>::all(operator.clone())
        .list(&ListParams::default())
        .await;
    assert!(is_forbidden(&refused));
    assert_eq!(forbidden.lock().unwrap().len(), 1);
    forbidden.lock().unwrap().clear();

    let _runner = cp.pod_runner(&ns).await;
    // All namespaces, as the chart's default (a ClusterRole) has it.
    let stop = start_operator(operator, &step_account, None);

    // A bash step, a parallel loop of python steps (one fails once and is retried), a python total.
    let t = Harness::attach(cp, &ns);
    let flow = example(
        &repo()
            .join("examples/parallel-retries/flow.yaml")
            .to_string_lossy(),
    )?;
    t.flow("parallel-retries", None, flow).await?;
    t.run("loop-1", "parallel-retries", json!({"count": 4}))
        .await?;

    let run = finished(&t, "loop-1", &forbidden).await?;
    let status = run.status.context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(
        status.result,
        Some(json!({"squares": [1, 4, 9, 16], "sum": 30}))
    );
    events_until(&t, "loop-1", "RunSucceeded").await?;
    events_until(&t, "loop-1", "StepRetried").await?;
    let jobs = t.jobs("loop-1").await?;
    assert_eq!(
        jobs.len(),
        1 + 4 + 1 + 1,
        "scratch, 4 squares, 1 retry, total"
    );
    for job in &jobs {
        let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        assert_eq!(
            pod.and_then(|p| p.service_account_name.as_deref()),
            Some(step_account.as_str()),
            "Job {}",
            job.name_any()
        );
    }
    assert_eq!(t.flow_ready("parallel-retries").await?.status, "True");

    drop(stop);
    let forbidden = forbidden.lock().unwrap().clone();
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the operator: {forbidden:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_step_service_account_may_not_read_secrets_or_create_pods() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let admin = cp.client();
    let ns = cp.namespace("chart-step").await;
    let Some((objects, _)) = install(&admin, &ns, &ns, &[]).await? else {
        return Ok(());
    };
    let step_account = step_account(&objects)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("millrace-variables".into()),
            ..Default::default()
        },
        string_data: Some([("u.admin.password".to_string(), "hunter2".to_string())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await?;

    // 403, not 401: the token is accepted, and the account is refused.
    let step = client_as(cp, &ns, &step_account).await?;
    let secrets: Api<Secret> = Api::namespaced(step.clone(), &ns);
    assert!(is_forbidden(&secrets.get("millrace-variables").await));
    assert!(is_forbidden(&secrets.list(&ListParams::default()).await));
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "escape"},
        "spec": {"containers": [{"name": "c", "image": "bash:5", "command": ["true"]}]},
    }))?;
    let pods: Api<Pod> = Api::namespaced(step.clone(), &ns);
    assert!(is_forbidden(
        &pods.create(&PostParams::default(), &pod).await
    ));
    let runs: Api<FlowRun> = Api::namespaced(step, &ns);
    assert!(is_forbidden(&runs.list(&ListParams::default()).await));

    // The same calls as the operator's account work where its role allows them: the refusals
    // above come from the step account's lack of rights, not from a broken request.
    let operator_account = operator_account(&objects)?;
    let operator = client_as(cp, &ns, &operator_account).await?;
    Api::<Secret>::namespaced(operator.clone(), &ns)
        .get("millrace-variables")
        .await?;
    Api::<FlowRun>::namespaced(operator, &ns)
        .list(&ListParams::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn watching_one_namespace_the_operator_needs_no_cluster_role() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let admin = cp.client();
    let home = cp.namespace("chart-home").await;
    let watched = cp.namespace("chart-watched").await;
    let watch = format!("watchNamespace={watched}");
    let sets = [watch.as_str(), "gitSources.secretNames[0]=git-creds"];
    let Some((objects, cluster_scoped)) = install(&admin, &home, &home, &sets).await? else {
        return Ok(());
    };
    assert_eq!(cluster_scoped, CRDS);
    let step_account = step_account(&objects)?;
    let operator_account = operator_account(&objects)?;
    assert!(
        flag_values(&controller_args(&objects)?, "--namespace") == [watched.clone()],
        "the operator is told which namespace to watch"
    );

    // Its rights end at the watched namespace.
    let limits = client_as(cp, &home, &operator_account).await?;
    let elsewhere: Api<FlowRun> = Api::namespaced(limits.clone(), &home);
    assert!(is_forbidden(&elsewhere.list(&ListParams::default()).await));
    assert!(is_forbidden(
        &Api::<FlowRun>::all(limits)
            .list(&ListParams::default())
            .await
    ));

    let _turn = ONE_OPERATOR.lock().await;
    let (operator, forbidden) = recording_client_as(cp, &home, &operator_account).await?;
    let _runner = cp.pod_runner(&watched).await;
    let stop = start_operator(operator, &step_account, Some(&watched));

    // The example manifests, as written: a bash step feeds a python step.
    let t = Harness::attach(cp, &watched);
    t.create_manifests(repo().join("examples/kubernetes/flow.yaml"))
        .await?;
    t.create_manifests(repo().join("examples/kubernetes/flowrun.yaml"))
        .await?;
    let name = "count-and-double-1";
    let status = finished(&t, name, &forbidden)
        .await?
        .status
        .context("status")?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"doubled": 42})));
    events_until(&t, name, "RunSucceeded").await?;
    schedule_runs(&t, &forbidden).await?;
    gitsource_syncs(&t, &forbidden).await?;

    drop(stop);
    let forbidden = forbidden.lock().unwrap().clone();
    assert!(
        forbidden.is_empty(),
        "the chart's Role refused the operator: {forbidden:#?}"
    );
    // Out of sight of the next operator, which watches all namespaces.
    t.api::<FlowRun>().delete(name, &Default::default()).await?;
    Ok(())
}
