//! The service's own metrics, registered next to the shared ones in the same registry.
//!
//! The shared [`middleware::Metrics`] already counts HTTP requests, deliveries by Dapr status
//! and publish latency. What only this service knows is what happened to each *email*: sent,
//! recognised as a duplicate, postponed, or given up on; and how long the mail server took.
//! The names are `pub const`s so dashboards and alert rules use exactly these.

use std::time::Duration;

use middleware::{Metrics, MetricsError};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

/// Counter of reminder deliveries by what became of the email: label `outcome`
/// (see [`Outcome`]).
pub const EMAILS_SENT_TOTAL: &str = "todo_emails_sent_total";
/// Histogram of one SMTP conversation in seconds: label `result` (`accepted`, `transient`,
/// `permanent`).
pub const SMTP_SEND_DURATION_SECONDS: &str = "todo_smtp_send_duration_seconds";

/// Buckets (seconds) for SMTP latency: 1 ms (local sink) to 30 s (a slow remote relay).
pub const SMTP_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What became of one reminder delivery, as counted in [`EMAILS_SENT_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The mail server accepted the email.
    Sent,
    /// An earlier delivery of the same event already settled it; nothing was sent.
    Duplicate,
    /// Not settled yet; Dapr will deliver the event again.
    Retry,
    /// Given up for good; the event goes to the dead-letter topic.
    Failed,
}

impl Outcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Duplicate => "duplicate",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// How one SMTP conversation ended, as labelled in [`SMTP_SEND_DURATION_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpResult {
    /// The server took the message (2xx after `DATA`).
    Accepted,
    /// Worth trying again: no connection, timeout, 4xx, TLS or credentials trouble.
    Transient,
    /// The server refused this message for good (5xx).
    Permanent,
}

impl SmtpResult {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// The email counters; cheap to clone.
#[derive(Clone, Debug)]
pub struct EmailMetrics {
    emails: IntCounterVec,
    smtp_duration: HistogramVec,
}

impl EmailMetrics {
    /// Creates the collectors, labelled `service="email-delivery"`, in `shared`'s registry.
    pub fn register(shared: &Metrics) -> Result<Self, MetricsError> {
        let emails = IntCounterVec::new(
            Opts::new(
                EMAILS_SENT_TOTAL,
                "Reminder deliveries by what became of the email.",
            )
            .const_label("service", crate::SERVICE),
            &["outcome"],
        )
        .map_err(MetricsError::Register)?;
        let smtp_duration = HistogramVec::new(
            HistogramOpts::new(
                SMTP_SEND_DURATION_SECONDS,
                "Duration of one SMTP conversation (connect to the reply to DATA).",
            )
            .const_label("service", crate::SERVICE)
            .buckets(SMTP_DURATION_BUCKETS.to_vec()),
            &["result"],
        )
        .map_err(MetricsError::Register)?;
        let registry = shared.registry();
        registry
            .register(Box::new(emails.clone()))
            .and_then(|()| registry.register(Box::new(smtp_duration.clone())))
            .map_err(MetricsError::Register)?;
        // Zero series up front, so rates and alerts work before the first email.
        for outcome in [
            Outcome::Sent,
            Outcome::Duplicate,
            Outcome::Retry,
            Outcome::Failed,
        ] {
            emails.with_label_values(&[outcome.as_str()]);
        }
        for result in [
            SmtpResult::Accepted,
            SmtpResult::Transient,
            SmtpResult::Permanent,
        ] {
            smtp_duration.with_label_values(&[result.as_str()]);
        }
        Ok(Self {
            emails,
            smtp_duration,
        })
    }

    /// Counts one delivery.
    pub fn record(&self, outcome: Outcome) {
        self.emails.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Records one SMTP conversation.
    pub fn record_smtp(&self, result: SmtpResult, elapsed: Duration) {
        self.smtp_duration
            .with_label_values(&[result.as_str()])
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_exist_from_the_start_and_count() {
        let shared = Metrics::new(crate::SERVICE).unwrap();
        let metrics = EmailMetrics::register(&shared).unwrap();
        let text = shared.render().unwrap();
        assert!(
            text.contains(r#"todo_emails_sent_total{outcome="failed",service="email-delivery"} 0"#),
            "{text}"
        );
        metrics.record(Outcome::Sent);
        metrics.record_smtp(SmtpResult::Accepted, Duration::from_millis(3));
        let text = shared.render().unwrap();
        assert!(
            text.contains(r#"todo_emails_sent_total{outcome="sent",service="email-delivery"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"todo_smtp_send_duration_seconds_count{result="accepted",service="email-delivery"} 1"#
            ),
            "{text}"
        );
    }
}
