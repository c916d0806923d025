//! What this service counts beyond the shared metrics: the fate of each recurring completion.
//!
//! `todo_events_consumed_total` (from the middleware) already says which status Dapr received;
//! [`OCCURRENCES_CREATED_TOTAL`] says what became of the series, which is what a dashboard of
//! recurring tasks wants to show. Retries are not counted here: a retried event is counted once
//! it finally succeeds or is dropped.

use prometheus::{IntCounterVec, Opts, Registry};

/// Counter of recurring completions handled, by `outcome` (see [`Outcome::as_str`]).
pub const OCCURRENCES_CREATED_TOTAL: &str = "todo_occurrences_created_total";

/// What became of one completion of a recurring task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The backend created the next occurrence.
    Created,
    /// The backend had already created it for this event (a redelivery).
    Duplicate,
    /// The rule has no further occurrence (COUNT reached, past UNTIL).
    SeriesEnded,
    /// The event was dropped (task gone, invalid rule, backend refused the occurrence).
    Dropped,
}

impl Outcome {
    /// The `outcome` label value: `created`, `duplicate`, `series_ended` or `dropped`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Duplicate => "duplicate",
            Self::SeriesEnded => "series_ended",
            Self::Dropped => "dropped",
        }
    }
}

/// The service's own collectors; cheap to clone.
#[derive(Clone, Debug)]
pub struct OccurrenceMetrics {
    outcomes: IntCounterVec,
}

impl OccurrenceMetrics {
    /// Creates the collectors, labelled with `service`, and registers them in `registry`.
    pub fn register(registry: &Registry, service: &str) -> Result<Self, prometheus::Error> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                OCCURRENCES_CREATED_TOTAL,
                "Completions of recurring tasks, by what became of the next occurrence.",
            )
            .const_label("service", service),
            &["outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        // Every series exists from the start, so rates work before the first event.
        for outcome in [
            Outcome::Created,
            Outcome::Duplicate,
            Outcome::SeriesEnded,
            Outcome::Dropped,
        ] {
            outcomes.with_label_values(&[outcome.as_str()]);
        }
        Ok(Self { outcomes })
    }

    /// Counts one completion.
    pub fn record(&self, outcome: Outcome) {
        self.outcomes.with_label_values(&[outcome.as_str()]).inc();
    }

    /// The current count of `outcome` (for tests and diagnostics).
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.with_label_values(&[outcome.as_str()]).get()
    }
}
