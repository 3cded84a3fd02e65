//! `millrace logs`: what the step pods of a run printed, one section per step attempt, without
//! the result frame the pod's entry script adds for large results.

use super::{Cluster, LogsArgs, block_on};
use crate::cli::Invalid;
use crate::engine::StepError;
use crate::k8s::api::naming;
use crate::k8s::api::pod::{ATTEMPT_LABEL, RUN_LABEL, STEP_PATH_ANNOTATION};
use crate::k8s::api::pod::{Observation, RESULT_NONCE_ANNOTATION, STEP_CONTAINER, observe, report};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// One attempt of one step, as its Job records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub step: String,
    pub attempt: u32,
    pub job: String,
    /// Frames a large result in the log.
    pub nonce: Option<String>,
}

pub fn logs(args: LogsArgs) -> Result<ExitCode, Invalid> {
    block_on(async {
        let cluster = Cluster::connect(&args.target).await?;
        let run = cluster.run(&args.run).await?;
        let run_name = run.name_any();
        let selector = ListParams::default()
            .labels(&format!("{RUN_LABEL}={}", naming::label_value(&run_name)));
        let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let jobs = jobs
            .list(&selector)
            .await
            .map_err(|e| cluster.api_error("list Jobs of", "FlowRun", &run_name, e))?
            .items;
        // The label is folded to fit: the owner reference names the run exactly.
        let mut jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|j| j.owner_references().iter().any(|o| o.name == run_name))
            .collect();
        jobs.sort_by_key(|j| j.metadata.creation_timestamp.clone().map(|t| t.0));
        let attempts: Vec<Attempt> = jobs.iter().filter_map(attempt_of).collect();
        let chosen = select(&attempts, args.step.as_deref(), args.attempt);
        if chosen.is_empty() {
            return Err(anyhow::anyhow!(
                "{}",
                nothing_selected(&run_name, &attempts, args.step.as_deref(), args.attempt)
            )
            .into());
        }
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let pod_list = pods
            .list(&selector)
            .await
            .map_err(|e| cluster.api_error("list pods of", "FlowRun", &run_name, e))?
            .items;
        for attempt in chosen {
            let job = jobs.iter().find(|j| j.name_any() == attempt.job);
            let pod = pod_list.iter().find(|p| {
                p.owner_references()
                    .iter()
                    .any(|o| o.kind == "Job" && o.name == attempt.job)
            });
            let Some(pod) = pod else {
                println!("{}", header(attempt, None));
                println!(
                    "(no pod: it was deleted, or its Job is past its time to live after finishing)"
                );
                continue;
            };
            let pod_name = pod.name_any();
            println!("{}", header(attempt, Some(&pod_name)));
            let params = LogParams {
                container: Some(STEP_CONTAINER.into()),
                ..Default::default()
            };
            let log = match pods.logs(&pod_name, &params).await {
                Ok(log) => {
                    print!("{}", printed(&log, attempt.nonce.as_deref()));
                    Some(log)
                }
                Err(e) => {
                    println!("(no log from pod {pod_name}: {e})");
                    None
                }
            };
            let observed = job.map(|job| observe(job, Some(pod)));
            if let Some(error) = observed.and_then(|o| failure(o, log.as_deref())) {
                print!("{}", failure_note(&error));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Why the attempt failed, if it did: the script's error is in the pod's report, not its log.
fn failure(observed: Observation, log: Option<&str>) -> Option<StepError> {
    match observed {
        Observation::Finished(Err(error)) => Some(error),
        Observation::InLog {
            nonce, exit_code, ..
        } => report::from_log(log?, &nonce, exit_code).err(),
        Observation::Finished(Ok(_)) | Observation::Running => None,
    }
}

/// `--- attempt failed: Name: message`, then the stack when there is one.
pub fn failure_note(error: &StepError) -> String {
    let mut note = format!("--- attempt failed: {}: {}\n", error.name, error.message);
    if let Some(stack) = error.stack.as_deref().filter(|s| !s.trim().is_empty()) {
        note += stack.trim_end();
        note += "\n";
    }
    note
}

/// The attempt a Job runs, from its annotations and labels.
fn attempt_of(job: &Job) -> Option<Attempt> {
    let step = job.annotations().get(STEP_PATH_ANNOTATION)?.clone();
    let attempt = job.labels().get(ATTEMPT_LABEL)?.parse().ok()?;
    Some(Attempt {
        step,
        attempt,
        job: job.name_any(),
        nonce: job.annotations().get(RESULT_NONCE_ANNOTATION).cloned(),
    })
}

/// The attempts asked for: `step` matches a path exactly, or else the id of its last module (so
/// `b` selects every `loop_a[i]/b`); `attempt` keeps that attempt only.
pub fn select<'a>(
    attempts: &'a [Attempt],
    step: Option<&str>,
    attempt: Option<u32>,
) -> Vec<&'a Attempt> {
    let exact = step.is_some_and(|s| attempts.iter().any(|a| a.step == s));
    attempts
        .iter()
        .filter(|a| match step {
            None => true,
            Some(s) if exact => a.step == s,
            Some(s) => module_id(&a.step) == s,
        })
        .filter(|a| attempt.is_none_or(|n| a.attempt == n))
        .collect()
}

/// `loop_a[3]/b` → `b`; `loop_a[3]` → `loop_a`.
fn module_id(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// Why nothing is shown, and what there is.
pub fn nothing_selected(
    run: &str,
    attempts: &[Attempt],
    step: Option<&str>,
    attempt: Option<u32>,
) -> String {
    if attempts.is_empty() {
        return format!(
            "FlowRun \"{run}\" has started no step pods yet (see `millrace status {run}`)"
        );
    }
    let mut steps: BTreeMap<&str, u32> = BTreeMap::new();
    for a in attempts {
        let most = steps.entry(a.step.as_str()).or_default();
        *most = (*most).max(a.attempt);
    }
    let known: Vec<String> = steps
        .iter()
        .map(|(s, n)| format!("{s} (attempts 1-{n})"))
        .collect();
    let asked = match (step, attempt) {
        (Some(s), Some(n)) => format!("step {s} attempt {n}"),
        (Some(s), None) => format!("step {s}"),
        (None, Some(n)) => format!("attempt {n}"),
        (None, None) => "any step".into(),
    };
    format!(
        "FlowRun \"{run}\" has no pod for {asked}; it has: {}",
        known.join(", ")
    )
}

pub fn header(attempt: &Attempt, pod: Option<&str>) -> String {
    let pod = pod.map(|p| format!(" (pod {p})")).unwrap_or_default();
    format!(
        "==> step {}, attempt {}{pod} <==",
        attempt.step, attempt.attempt
    )
}

/// The log as the script printed it: the result frame (same markers as the pod's entry script
/// writes, with the attempt's nonce) is cut out, the blank line before it included.
pub fn printed(log: &str, nonce: Option<&str>) -> String {
    let Some(nonce) = nonce else {
        return log.into();
    };
    let begin = format!("\nMILLRACE_RESULT_{nonce}_BEGIN\n");
    let end = format!("\nMILLRACE_RESULT_{nonce}_END\n");
    let Some(start) = log.rfind(&begin) else {
        return log.into();
    };
    match log[start..].rfind(&end) {
        Some(stop) => format!("{}{}", &log[..start], &log[start + stop + end.len()..]),
        None => log[..start].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(step: &str, n: u32) -> Attempt {
        Attempt {
            step: step.into(),
            attempt: n,
            job: format!("job-{step}-{n}"),
            nonce: None,
        }
    }

    #[test]
    fn the_result_frame_is_cut_and_the_script_output_stays() {
        let log = "hello\nworking\n\nMILLRACE_RESULT_n1_BEGIN\nenvelope\n{\"ok\":true}\n\
                   \nMILLRACE_RESULT_n1_END\n";
        assert_eq!(printed(log, Some("n1")), "hello\nworking\n");
        // A frame with another nonce is the script's own output.
        let forged = "a\n\nMILLRACE_RESULT_x_BEGIN\nenvelope\n\nMILLRACE_RESULT_x_END\nb\n";
        assert_eq!(printed(forged, Some("n1")), forged);
        assert_eq!(printed(log, None), log);
        // A log cut short inside the frame loses the frame's start too.
        assert_eq!(
            printed("out\n\nMILLRACE_RESULT_n1_BEGIN\nenv", Some("n1")),
            "out\n"
        );
    }

    #[test]
    fn steps_are_chosen_by_path_or_by_id_and_attempts_by_number() {
        let all = [
            attempt("a", 1),
            attempt("loop[0]/b", 1),
            attempt("loop[1]/b", 1),
            attempt("loop[1]/b", 2),
            attempt("loop", 1),
        ];
        let steps = |step, n| -> Vec<String> {
            select(&all, step, n)
                .iter()
                .map(|a| format!("{}#{}", a.step, a.attempt))
                .collect()
        };
        assert_eq!(steps(None, None).len(), 5);
        assert_eq!(
            steps(Some("loop[1]/b"), None),
            ["loop[1]/b#1", "loop[1]/b#2"]
        );
        assert_eq!(
            steps(Some("b"), None),
            ["loop[0]/b#1", "loop[1]/b#1", "loop[1]/b#2"]
        );
        assert_eq!(steps(Some("b"), Some(2)), ["loop[1]/b#2"]);
        assert_eq!(steps(Some("loop"), None), ["loop#1"]);
        assert!(steps(Some("c"), None).is_empty());
    }

    #[test]
    fn failures_show_the_error_and_its_stack() {
        let mut error = StepError::new("ValueError", "bad");
        assert_eq!(
            failure_note(&error),
            "--- attempt failed: ValueError: bad\n"
        );
        error.stack = Some("Traceback\n  line 1\n".into());
        assert_eq!(
            failure_note(&error),
            "--- attempt failed: ValueError: bad\nTraceback\n  line 1\n"
        );
        let framed = "\nMILLRACE_RESULT_n_BEGIN\nenvelope\n\
                      {\"ok\":false,\"error\":{\"name\":\"E\",\"message\":\"m\"}}\
                      \nMILLRACE_RESULT_n_END\n";
        let in_log = || Observation::InLog {
            pod: "p".into(),
            nonce: "n".into(),
            exit_code: 1,
        };
        assert_eq!(failure(in_log(), Some(framed)).unwrap().name, "E");
        assert_eq!(failure(in_log(), None), None);
        assert_eq!(failure(Observation::Finished(Ok(1.into())), None), None);
    }

    #[test]
    fn an_empty_selection_lists_what_there_is() {
        let all = [attempt("a", 1), attempt("a", 2), attempt("b", 1)];
        assert_eq!(
            nothing_selected("r", &all, Some("c"), None),
            "FlowRun \"r\" has no pod for step c; it has: a (attempts 1-2), b (attempts 1-1)"
        );
        assert_eq!(
            nothing_selected("r", &[], None, None),
            "FlowRun \"r\" has started no step pods yet (see `millrace status r`)"
        );
        assert_eq!(
            header(&attempt("a", 2), Some("p")),
            "==> step a, attempt 2 (pod p) <=="
        );
    }
}
