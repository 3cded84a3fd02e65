//! The GitSource controller on the real control plane, syncing real git repositories that the
//! tests commit in: commits applied, updated and pruned, hand edits reverted, a bad commit
//! refused whole with every bad file named, objects a source may not create refused, a Windmill
//! workspace that runs, every transport, and two sources that never take each other's objects.

mod support {
    pub mod cluster;
    pub use cluster::{certs, process};
    pub mod git_repos;
    pub mod git_servers;
    pub mod gitsources;
    pub mod operator;
}

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::gitsource::{FILE_ANNOTATION, InventoryEntry, SOURCE_LABEL};
use millrace::k8s::api::schedule::runs::SCHEDULE_LABEL;
use millrace::k8s::api::{Flow, FlowRun, GitSource, Schedule, Script};
use serde_json::json;
use std::path::Path;
use support::cluster::wait::{TIMEOUT, wait_until};
use support::git_servers::{GitDaemon, HttpsGit, Sshd, ssh_key, sshd_binary};
use support::gitsources::{
    Published, applied, condition, create, flow, ready_reason, refused, schedule, status,
};
use support::operator::setup;

fn entry(kind: &str, name: &str) -> InventoryEntry {
    InventoryEntry {
        kind: kind.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn commits_are_applied_updated_and_pruned_and_hand_edits_reverted() -> Result<()> {
    let Some(t) = setup("gs-commits").await? else {
        return Ok(());
    };
    let git = Published::new();
    git.write("flows/hello.yaml", flow("hello", "v1", "echo hello"))
        .write(
            "schedules/tick.yaml",
            schedule("tick", "hello", "* * * * * *"),
        )
        .write("README.md", "# flows\n");
    let first = git.publish("a flow and its schedule");
    create(
        &t.client,
        &t.ns,
        "flows",
        json!({"url": git.url(), "interval": "1s"}),
    )
    .await?;

    let synced = applied(&t.client, &t.ns, "flows", &first).await?;
    assert_eq!(
        synced.inventory,
        [entry("Flow", "hello"), entry("Schedule", "tick")]
    );
    let ready = condition(&synced, "Ready").context("Ready")?;
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Succeeded")
    );
    let hello = t.api::<Flow>().get("hello").await?;
    assert_eq!(
        hello.labels().get(SOURCE_LABEL).map(String::as_str),
        Some("flows")
    );
    assert_eq!(
        hello.annotations().get(FILE_ANNOTATION).map(String::as_str),
        Some("flows/hello.yaml")
    );
    let managers: Vec<_> = hello
        .managed_fields()
        .iter()
        .filter_map(|f| f.manager.clone())
        .collect();
    assert!(
        managers.contains(&"millrace-gitsource-flows".to_string()),
        "{managers:?}"
    );
    // The synced Schedule starts runs of the synced Flow.
    let runs: Api<FlowRun> = t.api();
    let scheduled = ListParams::default().labels(&format!("{SCHEDULE_LABEL}=tick"));
    wait_until("the synced Schedule's run succeeds", TIMEOUT, || async {
        let runs = runs.list(&scheduled).await?;
        Ok(runs
            .items
            .iter()
            .any(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Succeeded))
            .then_some(()))
    })
    .await?;

    // A commit changing the Flow updates it.
    git.write(
        "flows/hello.yaml",
        flow("hello", "v2", "sleep 2; echo changed"),
    );
    let second = git.publish("change the flow");
    applied(&t.client, &t.ns, "flows", &second).await?;
    assert_eq!(t.api::<Flow>().get("hello").await?.spec.summary, "v2");

    // A hand edit of a synced field is reverted at the next sync.
    let edit = json!({"spec": {"summary": "edited by hand"}});
    t.api::<Flow>()
        .patch("hello", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    wait_until("the hand edit is reverted", TIMEOUT, || async {
        let flow = t.api::<Flow>().get("hello").await?;
        Ok((flow.spec.summary == "v2").then_some(()))
    })
    .await?;

    // Deleting the Schedule from git prunes it; a new Flow is created.
    git.remove("schedules/tick.yaml")
        .write("flows/second.yaml", flow("second", "two", "echo two"));
    let third = git.publish("drop the schedule");
    let synced = applied(&t.client, &t.ns, "flows", &third).await?;
    assert_eq!(
        synced.inventory,
        [entry("Flow", "hello"), entry("Flow", "second")]
    );
    assert!(t.api::<Schedule>().get_opt("tick").await?.is_none());
    assert!(t.api::<Flow>().get_opt("second").await?.is_some());

    // A Flow deleted from git while a run of it is in progress: the run finishes.
    t.run("slow-1", "hello", json!({})).await?;
    t.phase_is("slow-1", RunPhase::Running).await?;
    git.remove("flows/hello.yaml");
    let fourth = git.publish("drop hello");
    let synced = applied(&t.client, &t.ns, "flows", &fourth).await?;
    assert_eq!(synced.inventory, [entry("Flow", "second")]);
    assert!(t.api::<Flow>().get_opt("hello").await?.is_none());
    let run = t.finished("slow-1").await?;
    assert_eq!(run.phase, Some(RunPhase::Succeeded), "{run:#?}");
    assert_eq!(run.result, Some(json!("changed")));
    Ok(())
}

#[tokio::test]
async fn a_commit_with_bad_files_applies_nothing_and_names_each_of_them() -> Result<()> {
    let Some(t) = setup("gs-bad").await? else {
        return Ok(());
    };
    let git = Published::new();
    git.write("flows/a.yaml", flow("a", "v1", "echo a"))
        .write("flows/doomed.yaml", flow("doomed", "v1", "echo doomed"))
        .write(
            "schedules/hourly.yaml",
            schedule("hourly", "a", "0 * * * *"),
        );
    let good = git.publish("good");
    create(
        &t.client,
        &t.ns,
        "flows",
        json!({"url": git.url(), "interval": "1s"}),
    )
    .await?;
    applied(&t.client, &t.ns, "flows", &good).await?;

    // One commit: a good change, a removal, and three broken files.
    let bad_expression = flow("bad-expr", "x", "echo x").replace(
        "input_transforms: {}",
        "input_transforms:\n          text:\n            type: javascript\n            expr: 'results.('",
    );
    git.write("flows/a.yaml", flow("a", "v2", "echo a"))
        .remove("flows/doomed.yaml")
        .write("flows/broken.yaml", "kind: Flow\nmetadata: [unclosed\n")
        .write("flows/bad-expr.yaml", bad_expression)
        .write(
            "schedules/bad-cron.yaml",
            schedule("bad-cron", "a", "61 * * * *"),
        );
    let bad = git.publish("three broken files");
    let status = refused(&t.client, &t.ns, "flows", &bad).await?;
    let mut files: Vec<_> = status.files.iter().map(|f| f.path.as_str()).collect();
    files.sort();
    files.dedup();
    assert_eq!(
        files,
        [
            "flows/bad-expr.yaml",
            "flows/broken.yaml",
            "schedules/bad-cron.yaml"
        ],
        "{:#?}",
        status.files
    );
    let by_file = |path: &str| {
        status
            .files
            .iter()
            .filter(|f| f.path == path)
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(
        by_file("schedules/bad-cron.yaml").contains("61"),
        "{}",
        by_file("schedules/bad-cron.yaml")
    );
    assert!(
        by_file("flows/bad-expr.yaml").contains("does not parse"),
        "{}",
        by_file("flows/bad-expr.yaml")
    );
    assert!(
        status
            .last_applied_revision
            .as_deref()
            .is_some_and(|r| r.ends_with(&good)),
        "{status:#?}"
    );
    let ready = condition(&status, "Ready").context("Ready")?;
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ValidationFailed")
    );
    assert_eq!(
        condition(&status, "Stalled").map(|c| c.status),
        Some("True".into())
    );
    // Nothing of the commit was applied, nothing pruned.
    assert_eq!(t.api::<Flow>().get("a").await?.spec.summary, "v1");
    assert!(t.api::<Flow>().get_opt("doomed").await?.is_some());
    assert!(t.api::<Flow>().get_opt("bad-expr").await?.is_none());
    assert!(t.api::<Schedule>().get_opt("bad-cron").await?.is_none());
    // The previous revision's objects still run.
    t.run("a-1", "a", json!({})).await?;
    assert_eq!(t.finished("a-1").await?.result, Some(json!("a")));

    // The next good commit applies.
    git.remove("flows/broken.yaml")
        .remove("flows/bad-expr.yaml")
        .remove("schedules/bad-cron.yaml");
    let fixed = git.publish("fix");
    let status = applied(&t.client, &t.ns, "flows", &fixed).await?;
    assert!(status.files.is_empty(), "{:#?}", status.files);
    assert_eq!(t.api::<Flow>().get("a").await?.spec.summary, "v2");
    assert!(t.api::<Flow>().get_opt("doomed").await?.is_none());
    assert!(condition(&status, "Stalled").is_none());
    Ok(())
}

#[tokio::test]
async fn objects_a_source_may_not_create_are_refused_and_never_taken_from_another() -> Result<()> {
    let Some(t) = setup("gs-refuse").await? else {
        return Ok(());
    };
    let git = Published::new();
    git.write("ok/good.yaml", flow("good", "fine", "echo ok"))
        .write(
            "ok/role.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: gs-refuse-escalate\nrules: []\n",
        )
        .write(
            "ok/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\nstringData:\n  a: b\n",
        )
        .write(
            "ok/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: miner\nspec: {}\n",
        )
        .write(
            "ok/elsewhere.yaml",
            flow("elsewhere", "x", "echo x").replace("name: elsewhere", "name: elsewhere\n  namespace: kube-system"),
        );
    let commit = git.publish("objects of other kinds");
    create(
        &t.client,
        &t.ns,
        "flows",
        json!({"url": git.url(), "path": "ok"}),
    )
    .await?;
    let status = refused(&t.client, &t.ns, "flows", &commit).await?;
    let mut files: Vec<_> = status.files.iter().map(|f| f.path.as_str()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ok/deployment.yaml",
            "ok/elsewhere.yaml",
            "ok/role.yaml",
            "ok/secret.yaml"
        ],
        "{:#?}",
        status.files
    );
    assert!(t.api::<Flow>().get_opt("good").await?.is_none());
    assert!(t.api::<Secret>().get_opt("stolen").await?.is_none());
    assert!(t.api::<Deployment>().get_opt("miner").await?.is_none());
    let roles: Api<ClusterRole> = Api::all(t.client.clone());
    assert!(roles.get_opt("gs-refuse-escalate").await?.is_none());

    // Another GitSource's objects are never taken over.
    let theirs = Published::new();
    theirs.write("good.yaml", flow("good", "theirs", "echo theirs"));
    let their_commit = theirs.publish("theirs");
    create(&t.client, &t.ns, "theirs", json!({"url": theirs.url()})).await?;
    applied(&t.client, &t.ns, "theirs", &their_commit).await?;
    git.remove("ok/role.yaml")
        .remove("ok/secret.yaml")
        .remove("ok/deployment.yaml")
        .remove("ok/elsewhere.yaml");
    let ours = git.publish("only the flow");
    let annotate =
        json!({"metadata": {"annotations": {"millrace.dev/reconcile-requested-at": "now"}}});
    Api::<GitSource>::namespaced(t.client.clone(), &t.ns)
        .patch("flows", &PatchParams::default(), &Patch::Merge(&annotate))
        .await?;
    let status = refused(&t.client, &t.ns, "flows", &ours).await?;
    assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("now"));
    assert!(
        status.files[0]
            .message
            .contains("already synced by GitSource theirs"),
        "{:#?}",
        status.files
    );
    let good = t.api::<Flow>().get("good").await?;
    assert_eq!(good.spec.summary, "theirs");
    Ok(())
}

#[tokio::test]
async fn a_windmill_workspace_syncs_into_objects_that_run() -> Result<()> {
    let Some(t) = setup("gs-windmill").await? else {
        return Ok(());
    };
    let git = Published::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gitops");
    git.repo.copy_dir(&example, "");
    // A schedule of the workspace that fires every second, to see one run.
    git.write(
        "f/reports/often.schedule.yaml",
        "schedule: '* * * * * *'\ntimezone: UTC\nscript_path: f/reports/daily\nis_flow: true\n\
         args:\n  team: tests\n  items: [{open: true}, {open: false}]\nenabled: true\nno_flow_overlap: true\n",
    );
    let commit = git.publish("the example workspace");
    // The example's own GitSource, pointed at the test's copy of the repository.
    let text = std::fs::read_to_string(example.join("gitsource.yaml"))?;
    let mut source: GitSource = serde_yaml_ng::from_str(&text)?;
    source.spec.url = git.url();
    source.spec.reference = Default::default();
    t.create(&source).await?;
    let status = applied(&t.client, &t.ns, "flows", &commit).await?;
    let inventory: Vec<String> = status
        .inventory
        .iter()
        .map(|e| format!("{} {}", e.kind, e.name))
        .collect();
    assert_eq!(
        inventory,
        [
            "Flow f-reports-daily",
            "Flow hello",
            "Schedule f-reports-daily",
            "Schedule f-reports-often",
            "Schedule hello-nightly",
            "Script f-reports-greet",
            "Script shout",
        ]
    );
    let script = t.api::<Script>().get("f-reports-greet").await?;
    assert_eq!(
        script
            .annotations()
            .get("millrace.dev/path")
            .map(String::as_str),
        Some("f/reports/greet")
    );
    let daily = t.api::<Schedule>().get("f-reports-daily").await?;
    assert_eq!(daily.spec.schedule, "0 0 7 * * 1-5");
    assert_eq!(daily.spec.time_zone, "Europe/Paris");
    // The often schedule's run of the Windmill flow, with its inline scripts and the script it
    // calls by path, succeeds.
    let runs: Api<FlowRun> = t.api();
    let scheduled = ListParams::default().labels(&format!("{SCHEDULE_LABEL}=f-reports-often"));
    let run = wait_until(
        "a run of the Windmill schedule succeeds",
        TIMEOUT,
        || async {
            let runs = runs.list(&scheduled).await?;
            Ok(runs
                .items
                .into_iter()
                .find(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Succeeded)))
        },
    )
    .await;
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            let schedule = t.api::<Schedule>().get("f-reports-often").await?;
            let runs = runs.list(&scheduled).await?;
            let phases: Vec<_> = runs.items.iter().map(|r| r.status.clone()).collect();
            return Err(error.context(format!("{:#?}\n{phases:#?}", schedule.status)));
        }
    };
    assert!(run.status.and_then(|s| s.result).is_some());
    Ok(())
}

/// The https server runs a runtime of its own: it is started and dropped outside the test's.
#[test]
fn every_transport_syncs_and_a_wrong_host_key_is_refused() -> Result<()> {
    let git = Published::new();
    for (dir, name) in [
        ("daemon", "by-git"),
        ("https", "by-https"),
        ("ssh", "by-ssh"),
    ] {
        git.write(
            &format!("{dir}/flow.yaml"),
            flow(name, name, &format!("echo {name}")),
        );
    }
    let commit = git.publish("one directory per transport");
    let base = git.dir.path();
    let daemon = GitDaemon::start(base)?;
    let https = HttpsGit::start(base, "s3cret-token")?;
    let sshd = sshd_binary()
        .map(|bin| Sshd::start(&bin, base))
        .transpose()?;
    tokio::runtime::Runtime::new()?.block_on(transports(
        &git,
        &commit,
        &daemon,
        &https,
        sshd.as_ref(),
    ))
}

async fn transports(
    git: &Published,
    commit: &str,
    daemon: &GitDaemon,
    https: &HttpsGit,
    sshd: Option<&Sshd>,
) -> Result<()> {
    let Some(t) = setup("gs-transports").await? else {
        return Ok(());
    };
    let base = git.dir.path();
    let secrets: Api<Secret> = t.api();
    let secret = |name: &str, data: serde_json::Value| -> Result<Secret> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data,
        }))?)
    };

    create(
        &t.client,
        &t.ns,
        "daemon",
        json!({"url": format!("{}/flows.git", daemon.url), "path": "daemon"}),
    )
    .await?;

    secrets
        .create(
            &PostParams::default(),
            &secret(
                "https-token",
                json!({"token": "s3cret-token", "ca.crt": https.ca}),
            )?,
        )
        .await?;
    create(
        &t.client,
        &t.ns,
        "https",
        json!({"url": format!("{}/flows.git", https.url), "path": "https", "secretRef": {"name": "https-token"}}),
    )
    .await?;
    applied(&t.client, &t.ns, "daemon", commit).await?;
    applied(&t.client, &t.ns, "https", commit).await?;
    assert!(t.api::<Flow>().get_opt("by-git").await?.is_some());
    assert!(t.api::<Flow>().get_opt("by-https").await?.is_some());

    let Some(server) = sshd else {
        return Ok(());
    };
    let url = format!("{}{}", server.url, git.bare.display());
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "ssh-key",
                json!({"identity": server.identity, "known_hosts": server.known_hosts}),
            )?,
        )
        .await?;
    create(
        &t.client,
        &t.ns,
        "ssh",
        json!({"url": url, "path": "ssh", "secretRef": {"name": "ssh-key"}}),
    )
    .await?;
    applied(&t.client, &t.ns, "ssh", commit).await?;
    assert!(t.api::<Flow>().get_opt("by-ssh").await?.is_some());

    // Another server's key for the same host and port: refused, nothing applied.
    let (_, impostor) = ssh_key(base, "impostor")?;
    let host = server
        .known_hosts
        .split_whitespace()
        .next()
        .context("host")?;
    let wrong = format!(
        "{host} {}\n",
        impostor
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "wrong-host",
                json!({"identity": server.identity, "known_hosts": wrong}),
            )?,
        )
        .await?;
    create(
        &t.client,
        &t.ns,
        "impostor",
        json!({"url": url, "path": "ssh", "secretRef": {"name": "wrong-host"}}),
    )
    .await?;
    let ready = ready_reason(&t.client, &t.ns, "impostor", "FetchFailed").await?;
    assert!(
        ready.message.contains("not the one in known_hosts"),
        "{}",
        ready.message
    );
    let status = status(&t.client, &t.ns, "impostor").await?;
    assert!(status.last_fetched_revision.is_none() && status.inventory.is_empty());
    assert_eq!(
        condition(&status, "Reconciling").map(|c| c.status),
        Some("True".into())
    );
    Ok(())
}
