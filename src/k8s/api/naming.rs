//! Deterministic names for the objects a run creates.
//!
//! A step attempt's Job name is a pure function of (run, step path, attempt): after a controller
//! restart, creating the same attempt again finds the existing Job instead of running the step twice.

use sha2::{Digest, Sha256};

/// Longest name Kubernetes accepts where it becomes a label value (`job-name` on the pods).
pub const MAX_NAME: usize = 63;
const HASH_LEN: usize = 8;

/// Name of the Job for one attempt of one step, like `report-loop-a-3-b-a2-1f0c9e2b`.
///
/// The readable part is lossy (case, punctuation and length are folded), so a hash of the exact
/// identity always follows it: two different attempts never share a name. The identity includes
/// the run's uid, so a FlowRun deleted and created again under the same name never meets the
/// Jobs and Secrets of the one before (deleted by garbage collection later, or orphaned).
pub fn job_name(run: &str, run_uid: &str, step_path: &str, attempt: u32) -> String {
    let readable = format!("{run}-{step_path}-a{attempt}");
    let digest = short_hash(&[run, run_uid, step_path, &attempt.to_string()]);
    with_hash(&dns_label(&readable), &digest)
}

/// A name for an object derived from a run (`suffix` like `code` or `results-3`), within limits.
pub fn derived_name(run: &str, suffix: &str) -> String {
    let readable = format!("{run}-{suffix}");
    if readable.len() <= MAX_NAME && dns_label(&readable) == readable {
        return readable;
    }
    with_hash(&dns_label(&readable), &short_hash(&[run, suffix]))
}

/// A label value (at most 63 characters of `[a-z0-9A-Z._-]`, alphanumeric at both ends) standing
/// for `value`; the exact value belongs in an annotation.
pub fn label_value(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.len() > MAX_NAME {
        let digest = short_hash(&[value]);
        out.truncate(MAX_NAME - HASH_LEN - 1);
        out = format!("{out}-{digest}");
    }
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn with_hash(readable: &str, digest: &str) -> String {
    let room = MAX_NAME - HASH_LEN - 1;
    let head = readable[..readable.len().min(room)].trim_end_matches('-');
    if head.is_empty() {
        digest.to_string()
    } else {
        format!("{head}-{digest}")
    }
}

/// Lower-case alphanumerics and single dashes, no dash at either end.
pub fn dns_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[test]
    fn job_names_are_readable_and_stable() {
        let name = job_name("report", "uid-1", "loop_a[3]/b", 2);
        assert!(name.starts_with("report-loop-a-3-b-a2-"), "{name}");
        assert_eq!(name, job_name("report", "uid-1", "loop_a[3]/b", 2));
        assert!(is_dns_label(&name));
    }

    #[test]
    fn names_that_fold_to_the_same_text_still_differ() {
        assert_ne!(
            job_name("r", "uid-1", "loop_a/b", 1),
            job_name("r", "uid-1", "loop-a/b", 1)
        );
        assert_ne!(
            job_name("r", "uid-1", "a", 1),
            job_name("r", "uid-1", "a", 2)
        );
        assert_ne!(
            job_name("ab", "uid-1", "c", 1),
            job_name("a", "uid-1", "bc", 1)
        );
        // The same run name, created again: another FlowRun, other Jobs.
        assert_ne!(
            job_name("r", "uid-1", "a", 1),
            job_name("r", "uid-2", "a", 1)
        );
    }

    #[test]
    fn long_identities_fit_in_a_label() {
        let run = "a-very-long-flow-run-name-created-by-a-schedule-1764412345";
        let path = "outer_loop[9999]/inner_loop[1234]/some_step_with_a_long_name";
        let name = job_name(run, "uid-1", path, 17);
        assert!(is_dns_label(&name), "{name} ({} chars)", name.len());
        assert_ne!(name, job_name(run, "uid-1", path, 18));
    }

    #[test]
    fn derived_names_keep_short_valid_names_as_they_are() {
        assert_eq!(derived_name("report", "code"), "report-code");
        let long = derived_name(&"x".repeat(70), "code");
        assert!(is_dns_label(&long), "{long}");
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("loop_a[3]/b"), "loop_a_3__b");
        let long = label_value(&"s/".repeat(60));
        assert!(long.len() <= MAX_NAME && long.chars().last().unwrap().is_ascii_alphanumeric());
    }
}
