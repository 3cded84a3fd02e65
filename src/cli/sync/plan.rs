//! `millrace sync plan`: what a sync of a revision would apply, ignore and refuse. No cluster
//! needed: it fetches and reads the revision exactly as the controller does.

use super::located;
use crate::cli::Invalid;
use crate::expr::InProcess;
use crate::gitsync::fetch::DEFAULT_TIMEOUT;
use crate::gitsync::{self, FetchRequest, GitRef, Kind, Plan, Source};
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct PlanArgs {
    /// The repository: a URL (https://, ssh://, git://, file://) or a local path. A local work
    /// tree is read at a commit: uncommitted changes are not seen.
    source: String,
    /// The branch, tag or commit to read.
    #[arg(long = "ref", value_name = "REF", default_value = "HEAD")]
    reference: String,
    /// The directory of the repository to read [default: all of it].
    #[arg(
        long,
        value_name = "DIR",
        default_value = "",
        hide_default_value = true
    )]
    path: String,
    /// The namespace the objects would go to: manifests naming another one are errors.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Print one JSON object: {revision, objects, ignored, errors}.
    #[arg(long)]
    json: bool,
}

pub fn plan(args: PlanArgs) -> Result<ExitCode, Invalid> {
    let cache = tempfile::Builder::new()
        .prefix("millrace-sync-")
        .tempdir()
        .map_err(|e| Invalid::one(format!("cannot create a temporary directory: {e}")))?;
    let request = FetchRequest {
        url: args.source.clone(),
        reference: GitRef::parse(&args.reference),
        credentials: Default::default(),
        cache: cache.path().join("repository"),
        timeout: DEFAULT_TIMEOUT,
    };
    let fetched = gitsync::fetch(&request).map_err(|e| Invalid::one(e.to_string()))?;
    let repo = git2::Repository::open_bare(&request.cache)
        .map_err(|e| Invalid::one(format!("cannot open the fetched repository: {e}")))?;
    let source = Source {
        path: args.path.clone(),
        namespace: args.namespace.clone(),
        limits: Default::default(),
    };
    // The user's own check, in this process: the controller parses expressions in its sandbox.
    let plan = gitsync::plan_revision(&repo, fetched.commit, &source, &InProcess::default(), None)
        .map_err(|e| Invalid::one(format!("{}: {e}", args.source)))?;
    if args.json {
        println!("{:#}", plan.to_json());
        for note in &plan.notes {
            eprintln!("note: {}: {}", note.file, note.message);
        }
    } else {
        print!("{}", human(&plan, &fetched.refname));
    }
    Ok(if plan.would_apply() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One line per object, ignored file, error and note, then a summary.
fn human(plan: &Plan, refname: &str) -> String {
    let mut out = String::new();
    for object in &plan.objects {
        let namespace = object
            .namespace
            .as_deref()
            .map(|ns| format!(" -n {ns}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "apply   {} {}{namespace}  ({})\n",
            object.kind.as_str(),
            object.name,
            object.file
        ));
    }
    for ignored in &plan.ignored {
        out.push_str(&format!("ignore  {}: {}\n", ignored.file, ignored.reason));
    }
    for error in &plan.errors {
        out.push_str(&format!(
            "error   {}: {}\n",
            located(&error.file, error.line),
            error.message
        ));
    }
    for note in &plan.notes {
        out.push_str(&format!(
            "note    {}: {}\n",
            located(&note.file, note.line),
            note.message
        ));
    }
    let counts: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| {
            let n = plan.objects.iter().filter(|o| o.kind == *kind).count();
            format!("{n} {}{}", kind.as_str(), if n == 1 { "" } else { "s" })
        })
        .collect();
    let verdict = if plan.would_apply() {
        "the revision would apply".to_string()
    } else {
        format!(
            "{} error(s): nothing of this revision would be applied",
            plan.errors.len()
        )
    };
    let revision = match refname {
        name if name == plan.revision => plan.revision.clone(),
        name => format!("{} ({name})", plan.revision),
    };
    out.push_str(&format!(
        "revision {revision}: {}, {} ignored; {verdict}\n",
        counts.join(", "),
        plan.ignored.len()
    ));
    out
}
