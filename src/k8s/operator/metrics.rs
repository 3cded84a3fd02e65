//! The operator's Prometheus metrics: reconciles, runs by phase, finished step attempts, and
//! whether this replica holds the leader lease. Rendered in the text exposition format.

use crate::k8s::api::flowrun::RunPhase;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Which controller a reconcile belongs to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are lower case")]
pub enum ControllerKind {
    flow,
    flowrun,
    schedule,
    gitsource,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: ControllerKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: ControllerKind,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// `millrace_leader` has no labels; a family of it is absent until leader election is in use.
type NoLabels = [(&'static str, &'static str); 0];

/// Every phase a run can be in, so that a phase with no runs shows 0 rather than vanishing.
const PHASES: [RunPhase; 6] = [
    RunPhase::Pending,
    RunPhase::Running,
    RunPhase::Suspended,
    RunPhase::Succeeded,
    RunPhase::Failed,
    RunPhase::Canceled,
];

/// Label of a run that has no phase yet (not reconciled).
const NO_PHASE: &str = "Unknown";

/// The phase of every run the controller sees (`None`: not reconciled yet, or unreadable).
pub type RunSource = Box<dyn Fn() -> Vec<Option<RunPhase>> + Send + Sync>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_seconds: Family<ControllerLabels, Histogram>,
    runs: Family<PhaseLabels, Gauge>,
    steps: Family<OutcomeLabels, Counter>,
    step_seconds: Family<OutcomeLabels, Histogram>,
    /// Present only with leader election: without it there is nothing to lead.
    leader: Family<NoLabels, Gauge>,
    leader_election: Gauge,
    /// The FlowRuns the controller sees (its cache), counted by phase at each scrape: exact
    /// after a restart, unlike a counter of transitions.
    run_source: Mutex<Option<RunSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("millrace");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        // 1 ms .. ~16 s: a reconcile is a handful of API calls.
        let reconcile_seconds = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        let runs = Family::<PhaseLabels, Gauge>::default();
        let steps = Family::<OutcomeLabels, Counter>::default();
        // 0.1 s .. ~2 h: a step is a pod, from a quick script to a long batch job.
        let step_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.1, 3.0, 12))
        });
        let leader = Family::<NoLabels, Gauge>::default();
        let leader_election = Gauge::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind of error",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_seconds.clone(),
        );
        registry.register("flowruns", "FlowRuns by phase", runs.clone());
        registry.register(
            "step_attempts",
            "Step attempts finished, by outcome (succeeded or the error's name)",
            steps.clone(),
        );
        registry.register(
            "step_attempt_duration_seconds",
            "Run time of a finished step attempt's container",
            step_seconds.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease and runs the controllers, 0 while it stands by \
             (only with leader election)",
            leader.clone(),
        );
        registry.register(
            "leader_election_enabled",
            "1 if replicas elect a leader over a Lease, 0 if this one runs the controllers alone",
            leader_election.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            runs,
            steps,
            step_seconds,
            leader,
            leader_election,
            run_source: Mutex::new(None),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, controller: ControllerKind, took: Duration, error: Option<&str>) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            let labels = ErrorLabels {
                controller,
                kind: kind.to_owned(),
            };
            self.reconcile_errors.get_or_create(&labels).inc();
        }
    }

    /// A step attempt finished; its container ran for `ran` when known. Only succeeded or
    /// failed: error names come from user code and would make the label set unbounded.
    pub fn attempt_finished(&self, succeeded: bool, ran: Option<Duration>) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        let labels = OutcomeLabels {
            outcome: outcome.to_owned(),
        };
        self.steps.get_or_create(&labels).inc();
        if let Some(ran) = ran {
            self.step_seconds
                .get_or_create(&labels)
                .observe(ran.as_secs_f64());
        }
    }

    /// From now on `millrace_leader` says whether this replica leads (0 until it does).
    pub fn use_leader_election(&self) {
        self.leader_election.set(1);
        self.leader.get_or_create(&[]).set(0);
    }

    /// Whether the controllers run; shown only with leader election.
    pub fn set_leader(&self, leader: bool) {
        if self.leader_election.get() == 1 {
            self.leader.get_or_create(&[]).set(i64::from(leader));
        }
    }

    /// Runs are counted from `source` at each scrape; `None` stops counting them.
    pub fn count_runs_from(&self, source: Option<RunSource>) {
        *self.run_source.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let counted = self
            .run_source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|source| runs_by_phase(&source()));
        self.runs.clear();
        for (phase, n) in counted.into_iter().flatten() {
            self.runs.get_or_create(&PhaseLabels { phase }).set(n);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// How many runs are in each phase; every known phase is listed, runs without one as `Unknown`.
fn runs_by_phase(phases: &[Option<RunPhase>]) -> BTreeMap<String, i64> {
    let mut counts: BTreeMap<String, i64> = PHASES.iter().map(|p| (format!("{p:?}"), 0)).collect();
    for phase in phases {
        let label = phase.map_or_else(|| NO_PHASE.to_owned(), |p| format!("{p:?}"));
        *counts.entry(label).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_by_phase_with_every_phase_listed() {
        let counts = runs_by_phase(&[Some(RunPhase::Succeeded), Some(RunPhase::Succeeded), None]);
        assert_eq!(counts["Succeeded"], 2);
        assert_eq!(counts["Unknown"], 1);
        assert_eq!(counts["Running"], 0);
        assert_eq!(counts.len(), PHASES.len() + 1);
    }

    #[test]
    fn the_text_shows_reconciles_errors_runs_and_attempts() {
        let metrics = Metrics::default();
        metrics.reconciled(ControllerKind::flowrun, Duration::from_millis(3), None);
        metrics.reconciled(ControllerKind::flow, Duration::from_millis(3), Some("kube"));
        metrics.attempt_finished(true, Some(Duration::from_secs(2)));
        metrics.attempt_finished(false, None);
        metrics.use_leader_election();
        metrics.set_leader(true);
        metrics.count_runs_from(Some(Box::new(|| vec![Some(RunPhase::Failed)])));
        let text = metrics.render();
        for line in [
            "millrace_reconciles_total{controller=\"flowrun\"} 1",
            "millrace_reconciles_total{controller=\"flow\"} 1",
            "millrace_reconcile_errors_total{controller=\"flow\",kind=\"kube\"} 1",
            "millrace_flowruns{phase=\"Failed\"} 1",
            "millrace_flowruns{phase=\"Succeeded\"} 0",
            "millrace_step_attempts_total{outcome=\"succeeded\"} 1",
            "millrace_step_attempts_total{outcome=\"failed\"} 1",
            "millrace_step_attempt_duration_seconds_count{outcome=\"succeeded\"} 1",
            "millrace_leader 1",
            "millrace_leader_election_enabled 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        metrics.count_runs_from(None);
        assert!(!metrics.render().contains("millrace_flowruns{"));
    }

    #[test]
    fn without_leader_election_there_is_no_leader_gauge_and_election_is_reported_off() {
        let metrics = Metrics::default();
        metrics.set_leader(true);
        let text = metrics.render();
        assert!(!text.contains("millrace_leader "), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "millrace_leader_election_enabled 0"),
            "{text}"
        );
        metrics.use_leader_election();
        let text = metrics.render();
        assert!(text.lines().any(|l| l == "millrace_leader 0"), "{text}");
    }
}
