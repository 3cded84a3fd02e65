//! Tests against the real control plane (see `support`): CRDs with status subresources and server-side
//! apply, watches, RBAC, and Jobs run by the real Job controller through the pod runner.

mod support {
    pub mod cluster;
}

use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, Patch,
    PatchParams, PostParams, PropagationPolicy,
};
use kube::config::AuthInfo;
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use support::cluster::wait::{TIMEOUT, within};

#[tokio::test]
async fn crd_with_status_subresource_server_side_apply_and_watch() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("crd").await;

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.test.millrace.dev" },
        "spec": {
            "group": "test.millrace.dev",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "properties": { "size": { "type": "integer", "minimum": 1 } } },
                        "status": { "type": "object", "properties": { "phase": { "type": "string" } } }
                    }
                }}
            }]
        }
    });
    let apply = PatchParams::apply("millrace-test");
    crds.patch("widgets.test.millrace.dev", &apply, &Patch::Apply(&crd))
        .await?;
    within(
        "CRD established",
        TIMEOUT,
        await_condition(
            crds,
            "widgets.test.millrace.dev",
            conditions::is_crd_established(),
        ),
    )
    .await??;

    let gvk = GroupVersionKind::gvk("test.millrace.dev", "v1", "Widget");
    let widgets =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk));
    let mut events = watcher(widgets.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    let widget = |size: serde_json::Value| json!({ "apiVersion": "test.millrace.dev/v1", "kind": "Widget", "metadata": { "name": "w" }, "spec": { "size": size } });
    widgets
        .patch("w", &apply, &Patch::Apply(widget(json!(3))))
        .await?;

    // The real apiserver validates against the schema.
    let invalid = widgets
        .patch("w", &apply, &Patch::Apply(widget(json!(0))))
        .await;
    assert!(
        matches!(invalid, Err(kube::Error::Api(ref e)) if e.code == 422),
        "{invalid:?}"
    );

    // Another manager changing an owned field conflicts unless it forces.
    let other = PatchParams::apply("someone-else");
    let conflict = widgets
        .patch("w", &other, &Patch::Apply(widget(json!(5))))
        .await;
    assert!(
        matches!(conflict, Err(kube::Error::Api(ref e)) if e.code == 409),
        "{conflict:?}"
    );

    // Status goes through its subresource only.
    let status = json!({ "apiVersion": "test.millrace.dev/v1", "kind": "Widget", "status": { "phase": "Ready" } });
    widgets
        .patch_status("w", &apply, &Patch::Apply(&status))
        .await?;
    let ignored = json!({ "apiVersion": "test.millrace.dev/v1", "kind": "Widget", "status": { "phase": "Bogus" } });
    widgets
        .patch("w", &PatchParams::apply("third"), &Patch::Apply(&ignored))
        .await?;
    let stored = widgets.get("w").await?;
    assert_eq!(stored.data["status"]["phase"], "Ready");
    assert_eq!(stored.data["spec"]["size"], 3);

    let seen = within("watch event with status", TIMEOUT, async {
        while let Some(obj) = events.try_next().await? {
            if obj.name_any() == "w" && obj.data["status"]["phase"] == "Ready" {
                return Ok::<_, anyhow::Error>(obj);
            }
        }
        anyhow::bail!("watch ended")
    })
    .await??;
    assert_eq!(seen.data["spec"]["size"], 3);
    Ok(())
}

#[tokio::test]
async fn rbac_forbids_what_a_role_does_not_grant() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let admin = cp.client();
    let ns = cp.namespace("rbac").await;
    let apply = PatchParams::apply("millrace-test");
    let rbac = [
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "reader" } }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": { "name": "reader" },
                "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"] }] }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": { "name": "reader" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader" },
                "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": &ns }] }),
    ];
    for object in &rbac {
        let obj: DynamicObject = serde_json::from_value(object.clone())?;
        let (ar, _) =
            kube::discovery::pinned_kind(&admin, &obj.types.clone().unwrap().try_into()?).await?;
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &ar)
            .patch(&obj.name_any(), &apply, &Patch::Apply(object))
            .await?;
    }
    let cms = Api::<ConfigMap>::namespaced(admin.clone(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "c" }, "data": { "k": "v" } }))?;
    cms.create(&PostParams::default(), &cm).await?;

    let token = Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create_token_request("reader", &PostParams::default(), &TokenRequest::default())
        .await?
        .status
        .and_then(|s| s.token)
        .context("token")?;
    let mut config = cp.config().clone();
    config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let reader = Client::try_from(config)?;

    let allowed = Api::<ConfigMap>::namespaced(reader.clone(), &ns)
        .get("c")
        .await?;
    assert_eq!(allowed.data.unwrap()["k"], "v");
    let forbidden = [
        Api::<ConfigMap>::namespaced(reader.clone(), &ns)
            .delete("c", &DeleteParams::default())
            .await
            .err(),
        Api::<Secret>::namespaced(reader.clone(), &ns)
            .list(&ListParams::default())
            .await
            .err(),
        Api::<ConfigMap>::namespaced(reader.clone(), "default")
            .list(&ListParams::default())
            .await
            .err(),
    ];
    for err in forbidden {
        assert!(
            matches!(err, Some(kube::Error::Api(ref e)) if e.code == 403),
            "{err:?}"
        );
    }
    Ok(())
}

fn job(name: &str, script: &str) -> Result<Job> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "main", "image": "busybox", "command": ["sh", "-c", script] }]
            }}
        }
    }))?)
}

fn job_condition(job: &Job, type_: &str) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

async fn job_pods(client: &Client, ns: &str, job: &str) -> Result<Vec<Pod>> {
    let selector = format!("job-name={job}");
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// Job `name` once it is Complete or Failed.
async fn job_ended(jobs: &Api<Job>, name: &str) -> Result<Job> {
    let ended = await_condition(jobs.clone(), name, |j: Option<&Job>| {
        j.is_some_and(|j| job_condition(j, "Complete") || job_condition(j, "Failed"))
    });
    let job = within(&format!("Job {name} ends"), TIMEOUT, ended).await??;
    job.with_context(|| format!("Job {name} is gone"))
}

#[tokio::test]
async fn job_completes_and_its_log_is_served_then_gc_removes_its_pods() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("job-ok").await;
    let runner = cp.pod_runner(&ns).await;
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    jobs.create(&PostParams::default(), &job("hello", "echo hi; exit 0")?)
        .await?;

    let done = job_ended(&jobs, "hello").await?;
    assert!(job_condition(&done, "Complete"), "{:?}", done.status);

    let pods = job_pods(&client, &ns, "hello").await?;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some(runner.node_name())
    );
    let terminated = pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated;
    assert_eq!(terminated.unwrap().exit_code, 0);
    let log = Api::<Pod>::namespaced(client.clone(), &ns)
        .logs(&pod.name_any(), &LogParams::default())
        .await?;
    assert_eq!(log, "hi\n");
    assert_eq!(runner.executions().get(&pod.name_any()), Some(&1));

    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    jobs.delete("hello", &background).await?;
    within("garbage collection of the job's pods", TIMEOUT, async {
        while !job_pods(&client, &ns, "hello").await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await??;
    Ok(())
}

#[tokio::test]
async fn job_fails_on_exit_code_with_no_retries() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("job-fail").await;
    let runner = cp.pod_runner(&ns).await;
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    let script = "echo failing >&2; echo 'bad input' > /dev/termination-log; exit 3";
    jobs.create(&PostParams::default(), &job("boom", script)?)
        .await?;

    let done = job_ended(&jobs, "boom").await?;
    assert!(job_condition(&done, "Failed"), "{:?}", done.status);
    let pods = job_pods(&client, &ns, "boom").await?;
    assert_eq!(pods.len(), 1, "backoffLimit 0 means a single attempt");
    let status = pods[0].status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let terminated = status.container_statuses.as_ref().unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 3);
    assert_eq!(terminated.message.as_deref(), Some("bad input\n"));
    assert_eq!(runner.executions().values().sum::<usize>(), 1);
    let follow = LogParams {
        follow: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    let log = Api::<Pod>::namespaced(client, &ns)
        .logs(&pods[0].name_any(), &follow)
        .await?;
    assert_eq!(log, "failing\n");
    Ok(())
}

#[tokio::test]
async fn pod_runner_materialises_volumes_env_and_restarts_on_failure() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("runner").await;
    let runner = cp.pod_runner(&ns).await;
    let cm: ConfigMap = serde_json::from_value(
        json!({ "metadata": { "name": "app" }, "data": { "greeting": "hello" } }),
    )?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await?;
    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "creds" }, "stringData": { "token": "s3cret" } }),
    )?;
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await?;

    // Fails on the first run and succeeds on the second: the emptyDir survives the container restart.
    let script = r#"echo "$(cat /etc/app/greeting) $TOKEN $POD_NS $GREETING_AGAIN";
        test -s /var/run/secrets/kubernetes.io/serviceaccount/token || exit 9;
        if [ -f /scratch/ran ]; then exit 0; fi; touch /scratch/ran; exit 1"#;
    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "volumes" },
        "spec": {
            "backoffLimit": 2,
            "template": { "spec": {
                "restartPolicy": "OnFailure",
                "volumes": [
                    { "name": "config", "configMap": { "name": "app" } },
                    { "name": "scratch", "emptyDir": {} }
                ],
                "containers": [{
                    "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                    "env": [
                        { "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "token" } } },
                        { "name": "POD_NS", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                        { "name": "GREETING_AGAIN", "value": "$(TOKEN)!" }
                    ],
                    "volumeMounts": [
                        { "name": "config", "mountPath": "/etc/app" },
                        { "name": "scratch", "mountPath": "/scratch" }
                    ]
                }]
            }}
        }
    }))?;
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    jobs.create(&PostParams::default(), &job).await?;
    let done = job_ended(&jobs, "volumes").await?;
    assert!(job_condition(&done, "Complete"), "{:?}", done.status);

    let pods = job_pods(&client, &ns, "volumes").await?;
    assert_eq!(
        pods.len(),
        1,
        "OnFailure restarts the container in the same pod"
    );
    let name = pods[0].name_any();
    let status = &pods[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(status.restart_count, 1);
    assert_eq!(runner.executions().get(&name), Some(&2));
    let pods_api = Api::<Pod>::namespaced(client.clone(), &ns);
    let expected = format!("hello s3cret {ns} s3cret!\n");
    assert_eq!(pods_api.logs(&name, &LogParams::default()).await?, expected);
    let previous = LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(pods_api.logs(&name, &previous).await?, expected);
    Ok(())
}

#[tokio::test]
async fn deleting_a_running_pod_stops_its_process_and_removes_it() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("delete").await;
    let _runner = cp.pod_runner(&ns).await;
    let pods = Api::<Pod>::namespaced(client, &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "sleeper" },
        "spec": { "restartPolicy": "Never", "containers": [{ "name": "main", "image": "busybox", "command": ["sleep", "300"] }] }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    within(
        "pod Running",
        TIMEOUT,
        await_condition(pods.clone(), "sleeper", |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some("Running")
        }),
    )
    .await??;
    // The default grace period is 30s; the runner stops the process at once and completes the deletion.
    pods.delete("sleeper", &DeleteParams::default()).await?;
    tokio::time::timeout(
        Duration::from_secs(15),
        await_condition(pods, "sleeper", |p: Option<&Pod>| p.is_none()),
    )
    .await
    .context("pod still there")??;
    Ok(())
}

#[tokio::test]
async fn finished_job_is_deleted_after_its_ttl() -> Result<()> {
    let Some(cp) = support::cluster::control_plane().await else {
        return Ok(());
    };
    let client = cp.client();
    let ns = cp.namespace("ttl").await;
    let _runner = cp.pod_runner(&ns).await;
    let mut short_lived = job("short", "true")?;
    short_lived
        .spec
        .as_mut()
        .unwrap()
        .ttl_seconds_after_finished = Some(0);
    let jobs = Api::<Job>::namespaced(client, &ns);
    jobs.create(&PostParams::default(), &short_lived).await?;
    within(
        "ttl-after-finished deletion",
        TIMEOUT,
        await_condition(jobs, "short", |j: Option<&Job>| j.is_none()),
    )
    .await??;
    Ok(())
}
