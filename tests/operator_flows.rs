//! Acceptance flows as FlowRuns on the real control plane: branches, an error handler, retries
//! with their delays, subflows and scripts found by path, secrets that stay secret, and the
//! example flows loaded from their files. Steps run in the pod runner (images ignored).

mod support;

use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client};
use millrace::expr::{Evaluator, Sandbox, SandboxConfig, WORKER_SUBCOMMAND};
use millrace::k8s::controller::{self, Config};
use millrace::k8s::flowrun::{FlowRunStatus, RunPhase};
use millrace::k8s::{Flow, FlowRun, Script, crdgen};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Everything the controllers of this test binary log, at debug level and above.
fn controller_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "millrace=trace,kube=debug,info",
            ))
            .with_writer(move || Captured(logs))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

struct Captured(&'static Mutex<Vec<u8>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crdgen::all() {
        let name = crd.metadata.name.clone().context("CRD name")?;
        crds.patch(
            &name,
            &PatchParams::apply("millrace-test").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        tokio::time::timeout(
            TIMEOUT,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await??;
    }
    Ok(())
}

/// A namespace with the CRDs installed, a pod runner and the controllers, for one test.
struct Setup {
    client: Client,
    ns: String,
    _runner: support::pod_runner::PodRunner,
    _stop: oneshot::Sender<()>,
}

async fn setup(prefix: &str) -> Result<Option<Setup>> {
    let Some(cp) = support::control_plane().await else {
        return Ok(None);
    };
    controller_logs();
    let client = cp.client();
    install_crds(&client).await?;
    let ns = cp.namespace(prefix).await;
    let runner = cp.pod_runner(&ns).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let config = Config {
        namespace: Some(ns.clone()),
        resync: Duration::from_secs(5),
        ..Config::default()
    };
    let sandbox: Arc<dyn Evaluator> = Arc::new(Sandbox::new(SandboxConfig::new(
        env!("CARGO_BIN_EXE_millrace"),
        vec![WORKER_SUBCOMMAND.to_owned()],
    ))?);
    tokio::spawn(controller::run(
        client.clone(),
        config,
        sandbox,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Some(Setup {
        client,
        ns,
        _runner: runner,
        _stop: stop,
    }))
}

impl Setup {
    async fn flow(&self, name: &str, path: Option<&str>, spec: Value) -> Result<()> {
        let annotations = match path {
            Some(path) => json!({"millrace.dev/path": path}),
            None => json!({}),
        };
        let flow: Flow = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": name, "annotations": annotations},
            "spec": spec,
        }))?;
        Api::<Flow>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &flow)
            .await?;
        Ok(())
    }

    async fn modules(&self, name: &str, modules: Value) -> Result<()> {
        self.flow(
            name,
            None,
            json!({"summary": name, "value": {"modules": modules}}),
        )
        .await
    }

    async fn run(&self, name: &str, flow: &str, inputs: Value) -> Result<()> {
        let run: FlowRun = serde_json::from_value(json!({
            "apiVersion": "millrace.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name},
            "spec": {"flowRef": {"name": flow}, "inputs": inputs},
        }))?;
        Api::<FlowRun>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &run)
            .await?;
        Ok(())
    }

    /// The status once the run reaches a final phase.
    async fn finished(&self, name: &str) -> Result<FlowRunStatus> {
        let runs: Api<FlowRun> = Api::namespaced(self.client.clone(), &self.ns);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let status = runs.get(name).await?.status.unwrap_or_default();
            if matches!(
                status.phase,
                Some(RunPhase::Succeeded | RunPhase::Failed | RunPhase::Canceled)
            ) {
                return Ok(status);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("FlowRun {name} did not finish: {status:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The step paths the run started Jobs for.
    async fn ran(&self, run: &str) -> Result<Vec<String>> {
        let jobs = Api::<Job>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("millrace.dev/run={run}")))
            .await?;
        let mut paths: Vec<String> = jobs
            .items
            .iter()
            .filter_map(|job| {
                job.metadata
                    .annotations
                    .as_ref()?
                    .get("millrace.dev/step-path")
                    .cloned()
            })
            .collect();
        paths.sort();
        Ok(paths)
    }

    async fn phase_is(&self, name: &str, phase: RunPhase) -> Result<()> {
        let runs: Api<FlowRun> = Api::namespaced(self.client.clone(), &self.ns);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while runs.get(name).await?.status.and_then(|s| s.phase) != Some(phase) {
            if tokio::time::Instant::now() > deadline {
                bail!("FlowRun {name} never reached {phase:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

fn step(id: &str, language: &str, content: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {
        "type": "rawscript", "language": language, "content": content, "input_transforms": inputs}})
}

fn expr(source: &str) -> Value {
    json!({"type": "javascript", "expr": source})
}

fn call(id: &str, kind: &str, path: &str, inputs: Value) -> Value {
    json!({"id": id, "value": {"type": kind, "path": path, "input_transforms": inputs}})
}

fn step_result(status: &FlowRunStatus, path: &str) -> Option<Value> {
    status
        .steps
        .iter()
        .find(|s| s.path == path)
        .and_then(|s| s.result.clone())
}

/// An example flow file as the spec of a Flow, unchanged.
fn example(file: &str) -> Result<Value> {
    let loaded = millrace::flow::load_path(file.as_ref())?;
    Ok(serde_json::to_value(loaded.flow)?)
}

#[tokio::test]
async fn secret_variables_and_resources_reach_their_steps_and_appear_nowhere_else() -> Result<()> {
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
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &t.ns);
    secrets.create(&PostParams::default(), &secret).await?;
    secrets.create(&PostParams::default(), &resources).await?;
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
    let runs = Api::<FlowRun>::namespaced(t.client.clone(), &t.ns)
        .list(&ListParams::default())
        .await?;
    let events = Api::<Event>::namespaced(t.client.clone(), &t.ns)
        .list(&ListParams::default())
        .await?;
    let config_maps = Api::<ConfigMap>::namespaced(t.client.clone(), &t.ns)
        .list(&ListParams::default())
        .await?;
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
    let scripts: Api<Script> = Api::namespaced(t.client.clone(), &t.ns);
    scripts.create(&PostParams::default(), &script).await?;
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
    let flows: Api<Flow> = Api::namespaced(t.client.clone(), &t.ns);
    flows
        .patch(
            "multiplier",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": times(3)})),
        )
        .await?;
    let shout = json!({"spec": {"content": "def main(name):\n    return 'HELLO ' + name"}});
    scripts
        .patch("greet", &PatchParams::default(), &Patch::Merge(&shout))
        .await?;
    let approve = json!({"spec": {"approvals": [{"step": "ask"}]}});
    Api::<FlowRun>::namespaced(t.client.clone(), &t.ns)
        .patch("outer-1", &PatchParams::default(), &Patch::Merge(&approve))
        .await?;
    let status = t.finished("outer-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!(["hello ada", 42])));

    // A new run sees the edits.
    t.run("outer-2", "outer", json!({})).await?;
    t.phase_is("outer-2", RunPhase::Suspended).await?;
    Api::<FlowRun>::namespaced(t.client.clone(), &t.ns)
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

#[tokio::test]
async fn branchone_picks_its_branch_or_the_default_and_branchall_runs_every_branch() -> Result<()> {
    let Some(t) = setup("flows-branches").await? else {
        return Ok(());
    };
    let say = |id: &str, word: &str| step(id, "bash", &format!("echo {word}"), json!({}));
    t.modules(
        "pick",
        json!([{"id": "route", "value": {"type": "branchone",
            "branches": [
                {"expr": "flow_input.n < 10", "modules": [say("small", "small")]},
                {"expr": "flow_input.n < 100", "modules": [say("medium", "medium")]},
            ],
            "default": [say("large", "large")]}}]),
    )
    .await?;
    t.run("pick-5", "pick", json!({"n": 5})).await?;
    t.run("pick-50", "pick", json!({"n": 50})).await?;
    t.run("pick-500", "pick", json!({"n": 500})).await?;
    t.modules(
        "all",
        json!([{"id": "fan", "value": {"type": "branchall", "parallel": true, "branches": [
            {"modules": [say("one", "1")]},
            {"modules": [say("two", "2")]},
            {"skip_failure": true, "modules": [step("broken", "bash", "exit 4", json!({}))]},
        ]}}]),
    )
    .await?;
    t.run("all-1", "all", json!({})).await?;

    for (run, word) in [
        ("pick-5", "small"),
        ("pick-50", "medium"),
        ("pick-500", "large"),
    ] {
        let status = t.finished(run).await?;
        assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
        assert_eq!(status.result, Some(json!(word)), "{run}");
        let branch = ["small", "medium", "large"]
            .iter()
            .position(|w| *w == word)
            .unwrap();
        assert_eq!(
            t.ran(run).await?,
            [format!("route[{branch}]/{word}")],
            "{run}"
        );
    }
    let status = t.finished("all-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let result = status.result.context("result")?;
    assert_eq!(result[0], json!(1), "{result}");
    assert_eq!(result[1], json!(2), "{result}");
    assert_eq!(result[2]["error"]["step_id"], "broken", "{result}");
    assert_eq!(
        t.ran("all-1").await?,
        ["fan[0]/one", "fan[1]/two", "fan[2]/broken"]
    );
    Ok(())
}

#[tokio::test]
async fn the_failure_module_sees_the_error_and_the_run_fails_with_it() -> Result<()> {
    let Some(t) = setup("flows-failure").await? else {
        return Ok(());
    };
    let value = json!({
        "modules": [
            step("ok", "bash", "echo fine", json!({})),
            step("boom", "python3", "def main():\n    raise ValueError('no fuel')", json!({})),
            step("never", "bash", "echo never", json!({})),
        ],
        "failure_module": step("failure", "python3",
            "def main(err):\n    return {'handled': err['message'], 'step': err['step_id']}",
            json!({"err": expr("previous_result.error")})),
    });
    t.flow("fails", None, json!({"summary": "fails", "value": value}))
        .await?;
    t.run("fails-1", "fails", json!({})).await?;
    let status = t.finished("fails-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.clone().context("error")?;
    assert_eq!(error["step_id"], "boom", "{error}");
    assert!(error["message"].to_string().contains("no fuel"), "{error}");
    let handled = step_result(&status, "failure").context("the handler's result")?;
    assert_eq!(handled["step"], "boom");
    assert!(
        handled["handled"].to_string().contains("no fuel"),
        "{handled}"
    );
    assert!(
        !status
            .steps
            .iter()
            .any(|s| s.path == "never" && s.phase == "succeeded"),
        "{status:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_step_that_fails_twice_succeeds_on_its_third_attempt_after_the_delays() -> Result<()> {
    let Some(t) = setup("flows-retry").await? else {
        return Ok(());
    };
    let counter = tempfile::tempdir()?.keep().join("count");
    let flaky = format!(
        "def main():\n    path = {path:?}\n    try:\n        n = int(open(path).read())\n    except FileNotFoundError:\n        n = 0\n    open(path, 'w').write(str(n + 1))\n    if n < 2:\n        raise RuntimeError('attempt %d fails' % (n + 1))\n    return 'third time'",
        path = counter.to_string_lossy()
    );
    let mut module = step("flaky", "python3", &flaky, json!({}));
    module["retry"] = json!({"constant": {"attempts": 3, "seconds": 2}});
    t.modules("retry", json!([module])).await?;
    t.run("retry-1", "retry", json!({})).await?;
    let status = t.finished("retry-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!("third time")));
    assert_eq!(status.steps[0].attempts, 3, "{status:#?}");

    let jobs = Api::<Job>::namespaced(t.client.clone(), &t.ns)
        .list(&ListParams::default().labels("millrace.dev/run=retry-1"))
        .await?;
    let mut created: Vec<(u32, i64)> = jobs
        .items
        .iter()
        .map(|job| {
            let attempt = job.metadata.labels.as_ref().unwrap()["millrace.dev/attempt"]
                .parse()
                .unwrap();
            let at = job.metadata.creation_timestamp.as_ref().unwrap().0;
            (attempt, at.as_second())
        })
        .collect();
    created.sort();
    assert_eq!(
        created.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Creation times have whole seconds; a real gap of 2 s or more shows as 2 or more.
    for pair in created.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= 2,
            "attempt {} began {gap} s after the one before",
            pair[1].0
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_branches_example_runs_unchanged_and_its_handler_reports_a_declined_card() -> Result<()>
{
    let Some(t) = setup("flows-example").await? else {
        return Ok(());
    };
    t.flow(
        "branches-error-handler",
        None,
        example("examples/branches-error-handler/flow.yaml")?,
    )
    .await?;
    t.run("order-1", "branches-error-handler", json!({}))
        .await?;
    t.run(
        "order-2",
        "branches-error-handler",
        json!({"card": "declined", "amount": 5000}),
    )
    .await?;

    let status = t.finished("order-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    assert_eq!(status.result, Some(json!({"charged": 250})));
    assert_eq!(
        step_result(&status, "route"),
        Some(json!({"approved": true, "amount": 250}))
    );
    let ran = t.ran("order-1").await?;
    assert!(
        ran.contains(&"route[1]/auto_approve".to_string()),
        "{ran:?}"
    );

    let status = t.finished("order-2").await?;
    assert_eq!(status.phase, Some(RunPhase::Failed), "{status:#?}");
    let error = status.error.clone().context("error")?;
    assert_eq!(error["step_id"], "charge", "{error}");
    assert_eq!(error["message"], "card declined for 5000", "{error}");
    let ran = t.ran("order-2").await?;
    assert!(ran.contains(&"route[0]/review".to_string()), "{ran:?}");
    assert!(
        !ran.contains(&"route[1]/auto_approve".to_string()),
        "{ran:?}"
    );
    assert_eq!(
        step_result(&status, "failure"),
        Some(json!({"failed_step": "charge", "reason": "card declined for 5000"}))
    );
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
    Api::<Script>::namespaced(t.client.clone(), &t.ns)
        .create(&PostParams::default(), &script)
        .await?;
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
    let text = std::fs::read_to_string("examples/kubernetes/paths-and-secrets.yaml")?;
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let object = Value::deserialize(document)?;
        let params = PostParams::default();
        let client = t.client.clone();
        match object["kind"].as_str() {
            Some("Secret") => {
                let secret: Secret = serde_json::from_value(object)?;
                Api::namespaced(client, &t.ns)
                    .create(&params, &secret)
                    .await?;
            }
            Some("Script") => {
                let script: Script = serde_json::from_value(object)?;
                Api::namespaced(client, &t.ns)
                    .create(&params, &script)
                    .await?;
            }
            Some("Flow") => {
                let flow: Flow = serde_json::from_value(object)?;
                Api::namespaced(client, &t.ns)
                    .create(&params, &flow)
                    .await?;
            }
            Some("FlowRun") => {
                let run: FlowRun = serde_json::from_value(object)?;
                Api::namespaced(client, &t.ns).create(&params, &run).await?;
            }
            other => bail!("unexpected kind {other:?} in the example"),
        }
    }
    let status = t.finished("welcome-1").await?;
    assert_eq!(status.phase, Some(RunPhase::Succeeded), "{status:#?}");
    let token = "change-me-to-a-real-token";
    assert_eq!(
        status.result,
        Some(json!({"greeting": "HELLO, TEAM PLATFORM", "token_length": token.len()}))
    );
    Ok(())
}
