//! Flows that reach other objects on the real control plane: subflows and scripts found by
//! path, variables and resources read from Secrets (and kept out of everything the operator
//! writes), the Windmill export example and the paths-and-secrets manifest.

mod support {
    pub mod cluster;
    pub mod flows;
    pub mod local;
    pub mod operator;
}

use anyhow::{Context, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use millrace::k8s::api::flowrun::RunPhase;
use millrace::k8s::api::{Flow, FlowRun, Script};
use serde_json::{Value, json};
use support::flows::{call, example, expr, step, step_result};
use support::operator::{controller_logs, setup};

#[tokio::test]
async fn secret_variables_and_resources_reach_their_steps_and_appear_nowhere_else() -> Result<()> {
    // Captured from before the controllers start.
    controller_logs();
    let Some(t) = setup("flows-secret").await? else {
        return Ok(());
    };
    let token = format!("tok-{:016x}", rand_value());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "millrace-variables"},
        "data": {"u.admin.token": ByteString(token.clone().into_bytes())},
    }))?;
    let database = json!({"host": "db.internal", "password": token});
    let resources: Secret = serde_json::from_value(json!({
        "metadata": {"name": "millrace-resources"},
        "data": {"f.db.main": ByteString(database.to_string().into_bytes())},
    }))?;
    t.create(&secret).await?;
    t.create(&resources).await?;
    let length = "def main(token):\n    return {'length': len(token)}";
    let host = "def main(db):\n    return {'host': db['host'], 'length': len(db['password'])}";
    t.modules(
        "uses-token",
        json!([
            step(
                "measure",
                "python3",
                length,
                json!({"token": expr("variable('u/admin/token')")})
            ),
            step(
                "connect",
                "python3",
                host,
                json!({"db": expr("resource('f/db/main')")})
            ),
            step(
                "both",
                "python3",
                "def main(a, b):\n    return [a, b]",
                json!({"a": expr("results.measure"), "b": expr("results.connect")})
            ),
        ]),
    )
    .await?;
    t.run("uses-token-1", "uses-token", json!({})).await?;
    t.modules(
        "misses-token",
        json!([step(
            "measure",
            "python3",
            length,
            json!({"token": expr("variable('u/admin/nope')")})
        )]),
    )
    .await?;
    t.run("misses-token-1", "misses-token", json!({})).await?;

    let status = t.finished("uses-token-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(
        status.result,
        Some(json!([{"length": token.len()}, {"host": "db.internal", "length": token.len()}]))
    );

    let missing = t.finished("misses-token-1").await?;
    assert_eq!(missing.phase, Some(RunPhase::Failed), "{missing:#?}");
    let message = missing.error.context("error")?["message"].to_string();
    assert!(message.contains("`u/admin/nope`"), "{message}");
    assert!(
        message.contains(&format!(
            "Secret millrace-variables in namespace {} has no key u.admin.nope",
            t.ns
        )),
        "{message}"
    );

    // Everything the operator wrote that people or other tools read.
    let everything = ListParams::default();
    let runs = t.api::<FlowRun>().list(&everything).await?;
    let events = t.api::<Event>().list(&everything).await?;
    let config_maps = t.api::<ConfigMap>().list(&everything).await?;
    let logs = String::from_utf8_lossy(&controller_logs().lock().unwrap()).into_owned();
    // The scans below look at something: the run's Events, its state, the reconciles logged.
    assert!(!events.items.is_empty() && !config_maps.items.is_empty());
    assert!(
        logs.contains("uses-token-1"),
        "the controller logs were not captured"
    );
    let written = [
        ("FlowRuns", serde_json::to_string(&runs)?),
        ("Events", serde_json::to_string(&events)?),
        ("ConfigMaps", serde_json::to_string(&config_maps)?),
        ("controller logs", logs),
    ];
    for (what, text) in written {
        assert!(!text.contains(&token), "the secret value is in the {what}");
    }
    Ok(())
}

fn rand_value() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[tokio::test]
async fn subflows_and_scripts_resolve_by_path_and_a_started_run_keeps_them() -> Result<()> {
    let Some(t) = setup("flows-paths").await? else {
        return Ok(());
    };
    // Found by name (the path's last segment).
    let script: Script = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Script",
        "metadata": {"name": "greet"},
        "spec": {"language": "python3", "content": "def main(name):\n    return 'hello ' + name"},
    }))?;
    t.create(&script).await?;
    // Found by its path annotation, whatever its name.
    let times = |k: u32| {
        json!({"summary": "multiply", "value": {"modules": [step("mul", "python3",
            &format!("def main(n):\n    return n * {k}"), json!({"n": expr("flow_input.n")}))]}})
    };
    t.flow("multiplier", Some("f/team/double_it"), times(2))
        .await?;
    let mut ask = step("ask", "bash", "echo asked", json!({}));
    ask["suspend"] = json!({"required_events": 1});
    t.modules(
        "outer",
        json!([
            ask,
            call(
                "hello",
                "script",
                "f/team/greet",
                json!({"name": expr("'ada'")})
            ),
            call(
                "double",
                "flow",
                "f/team/double_it",
                json!({"n": expr("21")})
            ),
            step(
                "both",
                "python3",
                "def main(a, b):\n    return [a, b]",
                json!({"a": expr("results.hello"), "b": expr("results.double")})
            ),
        ]),
    )
    .await?;
    t.run("outer-1", "outer", json!({})).await?;
    t.phase_is("outer-1", RunPhase::Suspended).await?;

    // Edits after the run began do not reach it.
    t.api::<Flow>()
        .patch(
            "multiplier",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": times(3)})),
        )
        .await?;
    let shout = json!({"spec": {"content": "def main(name):\n    return 'HELLO ' + name"}});
    t.api::<Script>()
        .patch("greet", &PatchParams::default(), &Patch::Merge(&shout))
        .await?;
    let approve = json!({"spec": {"approvals": [{"step": "ask"}]}});
    t.api::<FlowRun>()
        .patch("outer-1", &PatchParams::default(), &Patch::Merge(&approve))
        .await?;
    let status = t.finished("outer-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!(["hello ada", 42])));

    // A new run sees the edits.
    t.run("outer-2", "outer", json!({})).await?;
    t.phase_is("outer-2", RunPhase::Suspended).await?;
    t.api::<FlowRun>()
        .patch("outer-2", &PatchParams::default(), &Patch::Merge(&approve))
        .await?;
    let status = t.finished("outer-2").await?;
    assert_eq!(status.result, Some(json!(["HELLO ada", 63])), "{status:#?}");

    // A subflow that is not there fails the step that calls it, naming what was looked for.
    t.modules(
        "lost",
        json!([call("sub", "flow", "f/team/Not_There", json!({}))]),
    )
    .await?;
    t.run("lost-1", "lost", json!({})).await?;
    let status = t.finished("lost-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let message = status.error.context("error")?["message"].to_string();
    assert!(message.contains("f/team/Not_There"), "{message}");
    assert!(message.contains("a Flow named `not-there`"), "{message}");

    // A flow that calls itself cannot start.
    t.flow(
        "again",
        None,
        json!({"summary": "again", "value": {"modules": [call("me", "flow", "f/team/again", json!({}))]}}),
    )
    .await?;
    t.run("again-1", "again", json!({})).await?;
    let status = t.finished("again-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.context("error")?;
    assert_eq!(error["name"], "SubflowCycle", "{error}");
    Ok(())
}

/// A Windmill export as a platform team would apply it: each flow a Flow, each script a Script,
/// named by the last segment of their paths; the flow's `script` and `flow` steps find them.
#[tokio::test]
async fn the_windmill_export_example_runs_from_flow_and_script_objects() -> Result<()> {
    if !support::local::typescript_available() {
        return Ok(());
    }
    let Some(t) = setup("flows-export").await? else {
        return Ok(());
    };
    let dir = "examples/windmill-export/f/reports";
    t.flow(
        "team-summary",
        None,
        example(&format!("{dir}/team_summary.flow"))?,
    )
    .await?;
    t.flow("shout", None, example(&format!("{dir}/shout.flow"))?)
        .await?;
    let meta: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(format!(
        "{dir}/greet.script.yaml"
    ))?)?;
    let script: Script = serde_json::from_value(json!({
        "apiVersion": "millrace.dev/v1alpha1", "kind": "Script",
        "metadata": {"name": "greet"},
        "spec": {
            "language": "bash",
            "content": std::fs::read_to_string(format!("{dir}/greet.sh"))?,
            "summary": meta["summary"],
            "schema": meta["schema"],
        },
    }))?;
    t.create(&script).await?;
    t.run("summary-1", "team-summary", json!({})).await?;
    let status = t.finished("summary-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(
        status.result,
        Some(json!("PLATFORM: 2 ENGINEERS, 1 REVIEWER"))
    );
    assert_eq!(
        step_result(&status, "c"),
        Some(json!("Hello, team platform"))
    );
    Ok(())
}

/// The example manifest, applied as written.
#[tokio::test]
async fn the_paths_and_secrets_example_manifest_runs_as_written() -> Result<()> {
    let Some(t) = setup("flows-manifest").await? else {
        return Ok(());
    };
    t.create_manifests("examples/kubernetes/paths-and-secrets.yaml")
        .await?;
    let status = t.finished("welcome-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let token = "change-me-to-a-real-token";
    assert_eq!(
        status.result,
        Some(json!({"greeting": "HELLO, TEAM PLATFORM", "token_length": token.len()}))
    );
    Ok(())
}
