//! `millrace sync plan` on repositories the tests build: the JSON shape, exit codes, human
//! output, `--ref`, `--path`, `--namespace`, and the example flows repository.

mod support {
    pub mod git_repos;
}

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use support::git_repos::Repo;

fn millrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .output()
        .expect("millrace runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

const FLOW: &str = "apiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {name: NAME}\nspec:\n  summary: s\n  value: {modules: [{id: a, value: {type: identity}}]}\n";

fn flow(name: &str) -> String {
    FLOW.replace("NAME", name)
}

/// The example flows repository, committed in a fresh git repository.
fn example(dir: &Path) -> Repo {
    let repo = Repo::init(dir);
    repo.copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gitops"),
        "",
    );
    repo.commit("the example");
    repo
}

#[test]
fn the_example_repository_plans_in_json_and_would_apply() {
    let dir = tempfile::tempdir().unwrap();
    let repo = example(dir.path());
    let output = millrace(&[
        "sync",
        "plan",
        repo.dir.to_str().unwrap(),
        "--json",
        "-n",
        "reports",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let object = |kind: &str, name: &str, file: &str| json!({"apiVersion": "millrace.dev/v1alpha1", "kind": kind, "name": name, "namespace": "reports", "file": file});
    assert_eq!(
        json_of(&output),
        json!({
            "revision": repo.head(),
            "objects": [
                object("Script", "f-reports-greet", "f/reports/greet.script.yaml"),
                object("Script", "shout", "manifests/shout.yaml"),
                object("Flow", "f-reports-daily", "f/reports/daily.flow/flow.yaml"),
                object("Flow", "hello", "manifests/hello.yaml"),
                object("Schedule", "f-reports-daily", "f/reports/daily.schedule.yaml"),
                object("Schedule", "hello-nightly", "manifests/hello-nightly.yaml"),
            ],
            "ignored": ["README.md", "f/reports/folder.meta.yaml", "f/reports/greeting.variable.yaml", "gitsource.yaml", "wmill.yaml"],
            "errors": [],
        })
    );
}

#[test]
fn errors_exit_2_and_are_listed_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path());
    repo.write("good.yaml", flow("good"))
        // The parser stops at the end of the unclosed list: line 9.
        .write("bad.yaml", format!("{}---\nkind: [\n", flow("half")))
        .write(
            "secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
        );
    repo.commit("bad");
    let output = millrace(&["sync", "plan", repo.dir.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let plan = json_of(&output);
    let errors = plan["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0]["file"].as_str(), errors[0]["line"].as_u64()),
        (Some("bad.yaml"), Some(9))
    );
    assert_eq!(
        (errors[1]["file"].as_str(), errors[1]["line"].as_u64()),
        (Some("secret.yaml"), Some(1))
    );
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("refused: Secret (v1)")
    );
    // No namespace given: objects have none.
    assert!(plan["objects"][0].get("namespace").is_none(), "{plan}");

    let human = millrace(&["sync", "plan", repo.dir.to_str().unwrap()]);
    assert_eq!(human.status.code(), Some(2));
    let text = String::from_utf8(human.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"apply   Flow good  (good.yaml)"), "{text}");
    assert!(lines.contains(&"apply   Flow half  (bad.yaml)"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error   bad.yaml:9: not valid YAML")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error   secret.yaml:1: refused")),
        "{text}"
    );
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "revision {} (refs/heads/main): 0 Scripts, 2 Flows, 0 Schedules, 0 ignored;",
            repo.head()
        )),
        "{summary}"
    );
    assert!(
        summary.ends_with("2 error(s): nothing of this revision would be applied"),
        "{summary}"
    );
}

#[test]
fn ref_and_path_choose_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("work"));
    repo.write("deploy/a.yaml", flow("a"))
        .write("other/broken.yaml", "kind: [\n");
    let first = repo.commit("first");
    repo.run(&["tag", "v1"]);
    repo.run(&["checkout", "--quiet", "-b", "next"]);
    repo.write("deploy/b.yaml", flow("b"));
    let next = repo.commit("next");
    repo.run(&["checkout", "--quiet", "main"]);
    let url = format!("file://{}", repo.dir.display());
    let names = |output: &Output| -> Vec<String> {
        json_of(output)["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The whole repository has a broken file; deploy/ alone is fine.
    assert_eq!(
        millrace(&["sync", "plan", &url, "--json"]).status.code(),
        Some(2)
    );
    let main = millrace(&["sync", "plan", &url, "--path", "deploy", "--json"]);
    assert_eq!(main.status.code(), Some(0));
    assert_eq!(
        (json_of(&main)["revision"].as_str().unwrap(), names(&main)),
        (first.as_str(), vec!["a".to_string()])
    );
    for reference in ["next", "refs/heads/next", next.as_str()] {
        let output = millrace(&[
            "sync", "plan", &url, "--ref", reference, "--path", "deploy", "--json",
        ]);
        assert_eq!(output.status.code(), Some(0), "{reference}");
        assert_eq!(json_of(&output)["revision"], next.as_str(), "{reference}");
        assert_eq!(names(&output), ["a", "b"], "{reference}");
    }
    let tag = millrace(&[
        "sync", "plan", &url, "--ref", "v1", "--path", "deploy", "--json",
    ]);
    assert_eq!(json_of(&tag)["revision"], first.as_str());
    let missing = millrace(&["sync", "plan", &url, "--ref", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("branch or tag `nope` is not on the remote; it has main, next, v1"),
        "{stderr}"
    );
    let bad_path = millrace(&["sync", "plan", &url, "--path", "nowhere"]);
    assert_eq!(bad_path.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_path.stderr).contains("path `nowhere` is not in commit"));
}

#[test]
fn a_namespace_refuses_manifests_naming_another() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path());
    repo.write(
        "a.yaml",
        flow("a").replace("name: a", "name: a, namespace: prod"),
    );
    repo.commit("a");
    let path = repo.dir.to_str().unwrap();
    let free = millrace(&["sync", "plan", path, "--json"]);
    assert_eq!(free.status.code(), Some(0));
    assert_eq!(json_of(&free)["objects"][0]["namespace"], "prod");
    let same = millrace(&["sync", "plan", path, "--json", "--namespace", "prod"]);
    assert_eq!(same.status.code(), Some(0));
    let other = millrace(&["sync", "plan", path, "--json", "--namespace", "staging"]);
    assert_eq!(other.status.code(), Some(2));
    let message = json_of(&other)["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("syncs into namespace `staging`"),
        "{message}"
    );
}
