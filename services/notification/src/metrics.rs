//! The notification-specific metrics, registered next to the shared ones.
//!
//! The shared [`middleware::Metrics`] already covers HTTP requests, consumed events and
//! publishes; these add what only this service knows: how late reminders fire and what
//! happens to reminder jobs. The names are `pub const`s so dashboards and alert rules use
//! exactly these strings.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// Histogram of reminder lateness in seconds (trigger time − `remind_at`), observed for every
/// reminder that is published.
pub const REMINDER_LATENESS_SECONDS: &str = "todo_reminder_lateness_seconds";
/// Counter of reminder jobs scheduled (created or overwritten) through the sidecar.
pub const REMINDER_JOBS_SCHEDULED_TOTAL: &str = "todo_reminder_jobs_scheduled_total";
/// Counter of reminder jobs deleted through the sidecar (deleting a missing job counts too).
pub const REMINDER_JOBS_DELETED_TOTAL: &str = "todo_reminder_jobs_deleted_total";
/// Counter of reminders whose time had already passed when their task event was applied
/// (delivered late, e.g. after an outage), by `outcome`: `scheduled` (set to fire at once) or
/// `already_sent` (an earlier trigger mailed it; nothing scheduled).
pub const REMINDER_OVERDUE_TOTAL: &str = "todo_reminder_overdue_total";
/// Counter of completed reminder sweeps (see `sweep`).
pub const REMINDER_SWEEPS_TOTAL: &str = "todo_reminder_sweeps_total";
/// Counter of tasks a sweep applied because their newest event had not been (lost or late).
pub const REMINDER_SWEEP_REPAIRS_TOTAL: &str = "todo_reminder_sweep_repairs_total";
/// Counter of task events ignored because a newer snapshot of the task was already applied.
pub const REMINDER_STALE_EVENTS_TOTAL: &str = "todo_reminder_stale_events_total";
/// Counter of reminder job triggers by `outcome` (see [`TriggerOutcome`]).
pub const REMINDER_TRIGGERS_TOTAL: &str = "todo_reminder_triggers_total";

/// Buckets (seconds) for reminder lateness: 10 ms to 10 min. The target is ≤ 1 s.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 600.0,
];

/// How one trigger of a reminder job ended; the `outcome` label of [`REMINDER_TRIGGERS_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// `reminder.due` was published.
    Published,
    /// An earlier trigger already published this reminder.
    AlreadySent,
    /// The task no longer exists.
    TaskGone,
    /// The task was completed.
    Completed,
    /// The task's `remind_at` is no longer the job's.
    Rescheduled,
    /// The owner has no email address.
    NoRecipient,
    /// The job data was unusable.
    Invalid,
    /// A dependency failed; the Scheduler retries.
    Failed,
}

impl TriggerOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::AlreadySent => "already_sent",
            Self::TaskGone => "task_gone",
            Self::Completed => "completed",
            Self::Rescheduled => "rescheduled",
            Self::NoRecipient => "no_recipient",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }
}

/// Handles on the notification collectors; cheap to clone.
#[derive(Clone, Debug)]
pub struct ReminderMetrics {
    lateness: Histogram,
    scheduled: IntCounter,
    deleted: IntCounter,
    overdue: IntCounterVec,
    sweeps: IntCounter,
    repairs: IntCounter,
    stale: IntCounter,
    triggers: IntCounterVec,
}

impl ReminderMetrics {
    /// Creates the collectors and registers them in `registry` (the shared one of
    /// [`middleware::Metrics`], so `/metrics` serves them).
    pub fn register(registry: &Registry, service: &str) -> Result<Self, prometheus::Error> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("service", service);
        let lateness = Histogram::with_opts(
            HistogramOpts::new(
                REMINDER_LATENESS_SECONDS,
                "How long after remind_at the reminder job fired, in seconds.",
            )
            .const_label("service", service)
            .buckets(LATENESS_BUCKETS.to_vec()),
        )?;
        let scheduled = IntCounter::with_opts(opts(
            REMINDER_JOBS_SCHEDULED_TOTAL,
            "Reminder jobs scheduled or overwritten.",
        ))?;
        let deleted =
            IntCounter::with_opts(opts(REMINDER_JOBS_DELETED_TOTAL, "Reminder jobs deleted."))?;
        let overdue = IntCounterVec::new(
            opts(
                REMINDER_OVERDUE_TOTAL,
                "Reminders already due when their task event was applied, by outcome.",
            ),
            &["outcome"],
        )?;
        let sweeps =
            IntCounter::with_opts(opts(REMINDER_SWEEPS_TOTAL, "Reminder sweeps completed."))?;
        let repairs = IntCounter::with_opts(opts(
            REMINDER_SWEEP_REPAIRS_TOTAL,
            "Tasks a reminder sweep applied because their newest event had not been.",
        ))?;
        let stale = IntCounter::with_opts(opts(
            REMINDER_STALE_EVENTS_TOTAL,
            "Task events ignored as older than the snapshot already applied.",
        ))?;
        let triggers = IntCounterVec::new(
            opts(
                REMINDER_TRIGGERS_TOTAL,
                "Reminder job triggers, by outcome.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(lateness.clone()))?;
        registry.register(Box::new(scheduled.clone()))?;
        registry.register(Box::new(deleted.clone()))?;
        // Both outcomes exist from the start, so dashboards and alerts see 0, not no data.
        for outcome in ["scheduled", "already_sent"] {
            overdue.with_label_values(&[outcome]);
        }
        registry.register(Box::new(overdue.clone()))?;
        registry.register(Box::new(sweeps.clone()))?;
        registry.register(Box::new(repairs.clone()))?;
        registry.register(Box::new(stale.clone()))?;
        registry.register(Box::new(triggers.clone()))?;
        Ok(Self {
            lateness,
            scheduled,
            deleted,
            overdue,
            sweeps,
            repairs,
            stale,
            triggers,
        })
    }

    /// Records how late a published reminder fired (callers clamp clock skew below zero to 0).
    pub fn observe_lateness(&self, lateness: Duration) {
        self.lateness.observe(lateness.as_secs_f64());
    }

    /// Counts one scheduled job.
    pub fn job_scheduled(&self) {
        self.scheduled.inc();
    }

    /// Counts one deleted job.
    pub fn job_deleted(&self) {
        self.deleted.inc();
    }

    /// Counts one overdue reminder: scheduled to fire at once (`true`) or found already sent.
    pub fn overdue(&self, scheduled: bool) {
        let outcome = if scheduled {
            "scheduled"
        } else {
            "already_sent"
        };
        self.overdue.with_label_values(&[outcome]).inc();
    }

    /// Counts one completed sweep and the tasks it repaired.
    pub fn sweep(&self, repaired: usize) {
        self.sweeps.inc();
        self.repairs
            .inc_by(u64::try_from(repaired).unwrap_or(u64::MAX));
    }

    /// Counts one stale task event.
    pub fn stale_event(&self) {
        self.stale.inc();
    }

    /// Counts one trigger with its outcome.
    pub fn trigger(&self, outcome: TriggerOutcome) {
        self.triggers.with_label_values(&[outcome.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_exported() {
        let metrics = middleware::Metrics::new("notification").unwrap();
        let reminders = ReminderMetrics::register(metrics.registry(), "notification").unwrap();
        reminders.observe_lateness(Duration::from_millis(300));
        reminders.job_scheduled();
        reminders.job_deleted();
        reminders.overdue(true);
        reminders.sweep(2);
        reminders.stale_event();
        reminders.trigger(TriggerOutcome::Published);
        let text = metrics.render().unwrap();
        for name in [
            REMINDER_LATENESS_SECONDS,
            REMINDER_JOBS_SCHEDULED_TOTAL,
            REMINDER_JOBS_DELETED_TOTAL,
            REMINDER_OVERDUE_TOTAL,
            REMINDER_SWEEPS_TOTAL,
            REMINDER_SWEEP_REPAIRS_TOTAL,
            REMINDER_STALE_EVENTS_TOTAL,
            REMINDER_TRIGGERS_TOTAL,
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains(r#"outcome="published""#), "{text}");
        assert!(
            text.contains(&format!(
                r#"{REMINDER_LATENESS_SECONDS}_bucket{{service="notification",le="0.5"}} 1"#
            )),
            "{text}"
        );
    }
}
