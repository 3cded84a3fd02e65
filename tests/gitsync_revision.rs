//! Reading a revision of a real repository: the commit's tree within limits, the files turned into
//! objects (Millrace manifests and a Windmill workspace), refusals, and every bad file reported.

mod support {
    pub mod git_repos;
}

use git2::{Oid, Repository};
use millrace::expr::InProcess;
use millrace::gitsync::tree::{self, Limits, TreeError};
use millrace::gitsync::{Plan, Source, plan_revision};
use std::path::Path;
use support::git_repos::Repo;

/// The cache of `repo`'s HEAD, fetched as a sync fetches it.
fn fetched(repo: &Repo, cache: &Path) -> (Repository, Oid) {
    let request = millrace::gitsync::FetchRequest {
        url: repo.dir.display().to_string(),
        reference: millrace::gitsync::GitRef::Head,
        credentials: Default::default(),
        cache: cache.to_path_buf(),
        timeout: millrace::gitsync::fetch::DEFAULT_TIMEOUT,
    };
    let commit = millrace::gitsync::fetch(&request).unwrap().commit;
    (Repository::open_bare(cache).unwrap(), commit)
}

fn plan(repo: &Repo, path: &str, namespace: Option<&str>) -> Plan {
    let cache = tempfile::tempdir().unwrap();
    let (cache_repo, commit) = fetched(repo, cache.path());
    let source = Source {
        path: path.into(),
        namespace: namespace.map(Into::into),
        limits: Limits::default(),
    };
    plan_revision(&cache_repo, commit, &source, &InProcess::default(), None).unwrap()
}

fn objects(plan: &Plan) -> Vec<(String, String, String)> {
    plan.objects
        .iter()
        .map(|o| (o.kind.as_str().to_string(), o.name.clone(), o.file.clone()))
        .collect()
}

fn ignored(plan: &Plan) -> Vec<&str> {
    plan.ignored.iter().map(|i| i.file.as_str()).collect()
}

const FLOW: &str = "apiVersion: millrace.dev/v1alpha1
kind: Flow
metadata:
  name: NAME
spec:
  summary: s
  value:
    modules:
      - id: a
        value:
          type: rawscript
          language: bash
          content: echo hi
          input_transforms: {}
";

fn flow(name: &str) -> String {
    FLOW.replace("NAME", name)
}

#[test]
fn the_tree_is_read_within_limits_and_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("work"));
    repo.write("deploy/a.yaml", "a: 1\n")
        .write("deploy/b.yaml", "b: 2\n")
        .write("deploy/big.bin", vec![b'x'; 4096])
        .write("other/c.yaml", "c: 3\n");
    std::os::unix::fs::symlink("/etc/passwd", repo.dir.join("deploy/passwd.yaml")).unwrap();
    let sub = repo.head_or_commit();
    repo.run(&["add", "--all"]);
    repo.run(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub},deploy/vendor"),
    ]);
    repo.run(&["commit", "--quiet", "-m", "tree"]);
    let cache = dir.path().join("cache");
    let (cache_repo, commit) = fetched(&repo, &cache);
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let read = tree::read_tree(&cache_repo, commit, "./deploy/", &limits).unwrap();
    let files: Vec<_> = read.files.keys().map(String::as_str).collect();
    assert_eq!(files, ["deploy/a.yaml", "deploy/b.yaml"]);
    let ignored: Vec<_> = read
        .ignored
        .iter()
        .map(|i| (i.file.as_str(), i.reason.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        ignored,
        [
            ("deploy/passwd.yaml", "a symbolic link"),
            ("deploy/vendor", "a submodule")
        ]
    );
    assert_eq!(read.errors.len(), 1);
    assert_eq!(read.errors[0].file, "deploy/big.bin");
    assert!(
        read.errors[0]
            .message
            .contains("over the limit of 1024 bytes"),
        "{:?}",
        read.errors
    );

    let few = Limits {
        max_files: 2,
        ..Limits::default()
    };
    let error = tree::read_tree(&cache_repo, commit, "", &few).unwrap_err();
    assert!(
        matches!(error, TreeError::TooManyFiles { limit: 2, .. }),
        "{error}"
    );
    let small = Limits {
        max_total_bytes: 8,
        ..Limits::default()
    };
    let error = tree::read_tree(&cache_repo, commit, "deploy", &small).unwrap_err();
    assert!(
        matches!(error, TreeError::TooLarge { limit: 8, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("narrow the path"), "{error}");
    for (path, expected) in [
        ("missing", "is not in commit"),
        ("deploy/a.yaml", "is a file"),
        ("../x", "plain names"),
    ] {
        let error = tree::read_tree(&cache_repo, commit, path, &limits)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{path}: {error}");
    }
}

#[test]
fn a_windmill_workspace_becomes_flows_scripts_and_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("work"));
    repo.write("ws/wmill.yaml", "includes: ['f/**']\n")
        .write("ws/f/reports/folder.meta.yaml", "summary: Reports\n")
        .write("ws/f/reports/db.resource.yaml", "value: {}\nresource_type: postgresql\n")
        .write(
            "ws/f/reports/daily.flow/flow.yaml",
            "summary: Daily\nvalue:\n  modules:\n    - id: a\n      value:\n        type: rawscript\n        language: python3\n        content: !inline a.inline_script.py\n        lock: '!inline a.inline_script.lock'\n        input_transforms: {}\n",
        )
        .write("ws/f/reports/daily.flow/a.inline_script.py", "def main():\n    return 1\n")
        .write("ws/f/reports/daily.flow/a.inline_script.lock", "requests==2.32.0\n")
        .write("ws/f/reports/daily.flow/notes.txt", "unused\n")
        .write(
            "ws/f/reports/old_style__flow/flow.yaml",
            "summary: Old\nvalue:\n  modules:\n    - id: b\n      value: {type: identity}\n",
        )
        .write("ws/f/reports/greet.py", "def main(name: str):\n    return f'hi {name}'\n")
        .write(
            "ws/f/reports/greet.script.yaml",
            "summary: Greet\nlock: '!inline f/reports/greet.script.lock'\nkind: script\nschema:\n  type: object\n",
        )
        .write("ws/f/reports/greet.script.lock", "# no deps\n")
        .write("ws/f/reports/query.pg.sql", "select 1\n")
        .write("ws/f/reports/query.script.yaml", "summary: Query\n")
        .write("ws/f/reports/loose.py", "print(1)\n")
        .write(
            "ws/f/reports/daily.schedule.yaml",
            "schedule: 0 0 6 * * *\ntimezone: Europe/Paris\nscript_path: f/reports/daily\nis_flow: true\nargs: {n: 1}\nenabled: false\nno_flow_overlap: true\non_failure: flow/f/reports/old_style\non_failure_times: 2\n",
        )
        .write(
            "ws/f/reports/greet_hourly.schedule.yaml",
            "schedule: 0 0 * * * *\ntimezone: UTC\nscript_path: f/reports/greet\nis_flow: false\n",
        );
    repo.commit("workspace");
    let plan = plan(&repo, "ws", Some("reports"));
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!(
        objects(&plan),
        [
            (
                "Script".into(),
                "f-reports-greet".into(),
                "ws/f/reports/greet.script.yaml".into()
            ),
            (
                "Flow".into(),
                "f-reports-daily".into(),
                "ws/f/reports/daily.flow/flow.yaml".into()
            ),
            (
                "Flow".into(),
                "f-reports-old-style".into(),
                "ws/f/reports/old_style__flow/flow.yaml".into()
            ),
            (
                "Schedule".into(),
                "f-reports-daily".into(),
                "ws/f/reports/daily.schedule.yaml".into()
            ),
        ]
    );
    let flow = &plan.objects[1].manifest;
    assert_eq!(
        flow["metadata"]["annotations"]["millrace.dev/path"],
        "f/reports/daily"
    );
    assert_eq!(flow["metadata"]["namespace"], "reports");
    let module = &flow["spec"]["value"]["modules"][0]["value"];
    assert_eq!(module["content"], "def main():\n    return 1\n");
    assert_eq!(module["lock"], "requests==2.32.0\n");
    let script = &plan.objects[0].manifest["spec"];
    assert_eq!(script["language"], "python3");
    assert_eq!(script["lock"], "# no deps\n");
    assert_eq!(script["summary"], "Greet");
    let schedule = &plan.objects[3].manifest["spec"];
    assert_eq!(
        *schedule,
        serde_json::json!({
            "schedule": "0 0 6 * * *", "timeZone": "Europe/Paris", "flowRef": {"name": "f-reports-daily"},
            "inputs": {"n": 1}, "concurrencyPolicy": "Forbid", "suspend": true,
            "onFailure": {"flowRef": {"name": "f-reports-old-style"}, "times": 2},
        })
    );
    assert_eq!(
        ignored(&plan),
        [
            "ws/f/reports/daily.flow/notes.txt",
            "ws/f/reports/db.resource.yaml",
            "ws/f/reports/folder.meta.yaml",
            "ws/f/reports/greet_hourly.schedule.yaml",
            "ws/f/reports/loose.py",
            "ws/f/reports/query.pg.sql",
            "ws/f/reports/query.script.yaml",
            "ws/wmill.yaml",
        ]
    );
    let reason = |file: &str| &plan.ignored.iter().find(|i| i.file == file).unwrap().reason;
    assert!(
        reason("ws/f/reports/greet_hourly.schedule.yaml").contains("Millrace schedules flows only")
    );
    assert!(reason("ws/f/reports/query.pg.sql").contains("a postgresql script"));
}

#[test]
fn other_kinds_and_namespaces_are_refused_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("work"));
    repo.write("good.yaml", flow("good"))
        .write("role.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin-too}\nrules: []\n")
        .write("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {a: b}\n")
        .write(
            "deploy.yaml",
            "# a deployment\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: miner}\nspec: {}\n",
        )
        .write("elsewhere.yaml", flow("elsewhere").replace("name: elsewhere", "name: elsewhere\n  namespace: kube-system"));
    repo.commit("mixed");
    let plan = plan(&repo, "", Some("team"));
    assert_eq!(
        objects(&plan),
        [("Flow".into(), "good".into(), "good.yaml".into())]
    );
    let errors: Vec<_> = plan
        .errors
        .iter()
        .map(|e| {
            (
                e.file.as_str(),
                e.line,
                e.message.split(':').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("deploy.yaml", Some(2), "refused"),
            ("elsewhere.yaml", Some(1), "refused"),
            ("role.yaml", Some(1), "refused"),
            ("secret.yaml", Some(1), "refused"),
        ]
    );
    assert!(!plan.would_apply());
}

#[test]
fn every_bad_file_among_good_ones_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("work"));
    let bad_expression = flow("bad-expr").replace(
        "input_transforms: {}",
        "input_transforms:\n            x: {type: javascript, expr: 'flow_input.('}",
    );
    repo.write("flows/good.yaml", flow("good"))
        .write("flows/also-good.yaml", flow("also-good"))
        .write("flows/syntax.yaml", format!("{}---\napiVersion: millrace.dev/v1alpha1\nkind: Flow\nmetadata: {{name: [\n", flow("first-half")))
        .write("flows/expr.yaml", bad_expression)
        .write(
            "flows/schedule.yaml",
            "apiVersion: millrace.dev/v1alpha1\nkind: Schedule\nmetadata: {name: nightly}\nspec:\n  flowRef: {name: good}\n  concurrencyPolicy: Sometimes\n",
        )
        .write("flows/dup.yaml", flow("good"))
        .write("f/x/broken.flow/flow.yaml", "summary: [\n")
        .write("f/x/s.schedule.yaml", "schedule: 0 0 * * * *\nscript_path: f/x/y\nis_flow: true\non_success: script/f/x/z\n")
        .write("f/x/t.schedule.yaml", "schedule: 0 0 * * * *\nscript_path: f/x/y\nis_flow: true\n")
        .write("f/x/u.schedule.yaml", "schedule: 0 0 25 * * *\nscript_path: f/x/y\nis_flow: true\n");
    repo.commit("some bad files");
    let plan = plan(&repo, "", None);
    let errors: Vec<_> = plan
        .errors
        .iter()
        .map(|e| (e.file.as_str(), e.line))
        .collect();
    assert_eq!(
        errors,
        [
            ("f/x/broken.flow/flow.yaml", Some(2)),
            ("f/x/s.schedule.yaml", None),
            ("f/x/u.schedule.yaml", None),
            ("flows/expr.yaml", Some(1)),
            ("flows/good.yaml", Some(1)),
            ("flows/schedule.yaml", Some(1)),
            ("flows/schedule.yaml", Some(1)),
            ("flows/syntax.yaml", Some(19)),
        ],
        "{:#?}",
        plan.errors
    );
    let message = |file: &str| {
        plan.errors
            .iter()
            .filter(|e| e.file == file)
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(message("flows/good.yaml").contains("Flow good is also made by flows/dup.yaml:1"));
    assert!(
        message("flows/expr.yaml").contains("Flow bad-expr: a: value.input_transforms.x"),
        "{}",
        message("flows/expr.yaml")
    );
    assert!(
        message("flows/schedule.yaml").contains("spec.schedule"),
        "{}",
        message("flows/schedule.yaml")
    );
    assert!(message("flows/schedule.yaml").contains("spec.concurrencyPolicy"));
    assert!(message("f/x/s.schedule.yaml").contains("on_success: `script/f/x/z` is a script"));
    assert!(
        message("f/x/u.schedule.yaml").contains("Schedule f-x-u: spec.schedule \"0 0 25 * * *\""),
        "{}",
        message("f/x/u.schedule.yaml")
    );
    assert!(message("flows/syntax.yaml").starts_with("not valid YAML"));
    assert!(
        message("flows/syntax.yaml").contains("at line 19 column 1"),
        "{}",
        message("flows/syntax.yaml")
    );
    assert!(message("f/x/broken.flow/flow.yaml").starts_with("not valid YAML"));
    // The good objects are all there, the first document of the broken file too; the bad
    // schedule file made none.
    let names: Vec<_> = plan.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "also-good",
            "bad-expr",
            "first-half",
            "good",
            "good",
            "f-x-t",
            "f-x-u",
            "nightly"
        ]
    );
    assert!(!plan.would_apply());
    // A Schedule naming a Flow outside the revision: a note, not an error.
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(
        plan.notes[0]
            .message
            .contains("Flow `f-x-y` is not in this revision")
    );
}
