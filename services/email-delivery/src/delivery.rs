//! The `task-reminders` subscription handler: one reminder event in, at most one email out.
//!
//! Order of work for a `com.todo.reminder.due.v1` event, and what Dapr is told:
//!
//! 1. compose the email; an address lettre cannot parse → record `failed`, `DROP`;
//! 2. claim the event's record ([`Ledger::claim`]); if someone has it already:
//!    `sent` → `SUCCESS` (duplicate, re-publishing `reminder.sent` if that had not happened),
//!    `sending` → `RETRY` (another delivery is in flight; its claim's TTL covers a crash),
//!    `failed` → `DROP` again without a new attempt; a state store error → `RETRY`;
//! 3. hold the SMTP conversation: transient failure → release the claim, `RETRY`;
//!    permanent refusal → record `failed`, `DROP` (to the dead-letter topic);
//! 4. accepted → record `sent`, then publish `reminder.sent`; a failed publish answers
//!    `RETRY`, and the redelivery finds `sent` and only publishes.
//!
//! Once the server has accepted the mail nothing may lead to a second one: if even the `sent`
//! record cannot be written (after a few quick tries) the event is acknowledged anyway, since
//! a redelivery after the claim expires would send again; the record is kept in memory, a
//! redelivery to this replica settles from it, and it is written as soon as the state store
//! answers (the sidecar that died between the mail and the write is back), before the claim's
//! TTL could let anyone send again. Only this process dying in that window can still lead to a
//! second mail (with the same `Message-ID`). Every `RETRY` and `DROP` is logged
//! once with the event id and, at most, the recipient's domain. Other event types on the
//! topic are acknowledged and ignored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::State;
use chrono::{SecondsFormat, Utc};
use contracts::{ReminderDueData, ReminderSentData, SCHEMA_VERSION, event_types, topics};
use dapr::CloudEvent;
use middleware::{
    DaprClassifier, DaprStatus, Event, PublishRequest, Publisher, RetryConfig, RetryPolicy,
};
use serde_json::Value;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use uuid::Uuid;

use crate::ledger::{Claim, Ledger, Record};
use crate::mail::{Composed, Mailer, chain};
use crate::metrics::{EmailMetrics, Outcome, SmtpResult};

/// Retries of the `sent` record write: quick and few (three attempts within about 300 ms),
/// because the event waits on them and the mail has already gone out.
pub const SENT_RECORD_RETRY: RetryConfig = RetryConfig {
    max_retries: 2,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_millis(200),
    jitter: 0.5,
};

/// How a `sent` record that could not be written is written later: every few seconds at most,
/// for as long as the process lives (the mail is out; the record is what stops a second one).
const LATE_RECORD_RETRY: RetryConfig = RetryConfig {
    max_retries: u32::MAX,
    initial_backoff: Duration::from_millis(250),
    max_backoff: Duration::from_secs(3),
    jitter: 0.5,
};

/// Everything one delivery needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct Delivery {
    ledger: Ledger,
    mailer: Mailer,
    publisher: Publisher,
    metrics: EmailMetrics,
    // `sent` records the state store did not take (its sidecar died between the mail and the
    // write). A redelivery to this replica settles from here instead of mailing again, and a
    // task per entry writes it as soon as the store answers, before the claim's TTL lets
    // another replica send.
    unrecorded: Arc<Mutex<HashMap<String, Record>>>,
}

/// The `POST /events/task-reminders` handler.
///
/// The delivery runs as its own task: hyper drops a handler whose connection closed, and daprd
/// dying mid-request would otherwise cancel a delivery between the server's acceptance and the
/// `sent` record — leaving only a claim whose expiry lets a redelivery mail again.
pub async fn on_reminder(State(delivery): State<Delivery>, event: Event<Value>) -> DaprStatus {
    let Event { event, data } = event;
    let delivery = tokio::spawn(async move { delivery.handle(&event, data).await });
    match delivery.await {
        Ok(status) => status,
        Err(error) => {
            // A panic in the delivery: the claim's TTL frees the event for a later attempt.
            tracing::error!(%error, dapr_status = %DaprStatus::Retry, "reminder delivery task failed");
            DaprStatus::Retry
        }
    }
}

impl Delivery {
    /// Puts the parts together.
    pub fn new(
        ledger: Ledger,
        mailer: Mailer,
        publisher: Publisher,
        metrics: EmailMetrics,
    ) -> Self {
        Self {
            ledger,
            mailer,
            publisher,
            metrics,
            unrecorded: Arc::default(),
        }
    }

    /// Handles one delivered event and says what Dapr should do with it.
    pub async fn handle(&self, event: &CloudEvent, data: Value) -> DaprStatus {
        if event.ty != event_types::REMINDER_DUE {
            tracing::debug!(event_id = %event.id, event_type = %event.ty, "not a reminder; ignored");
            return DaprStatus::Success;
        }
        let (outcome, status) = match serde_json::from_value::<ReminderDueData>(data) {
            Ok(reminder) => self.deliver(&event.id, &reminder).await,
            Err(error) => {
                tracing::warn!(
                    event_id = %event.id,
                    %error,
                    dapr_status = %DaprStatus::Drop,
                    "reminder event data does not match the contract; dropping it"
                );
                (Outcome::Failed, DaprStatus::Drop)
            }
        };
        self.metrics.record(outcome);
        status
    }

    async fn deliver(&self, event_id: &str, reminder: &ReminderDueData) -> (Outcome, DaprStatus) {
        let key = Ledger::key(event_id);
        let task_id = reminder.task_id;
        if let Some(record) = self.unrecorded(&key) {
            tracing::info!(
                event_id,
                "duplicate delivery of a reminder this replica sent but could not record yet"
            );
            return self.settled(event_id, reminder, &key, record).await;
        }
        let composed = match self.mailer.compose(event_id, reminder) {
            Ok(composed) => composed,
            Err(error) => {
                let domain = domain_of(&reminder.recipient_email);
                tracing::error!(
                    event_id,
                    %task_id,
                    recipient_domain = domain,
                    %error,
                    dapr_status = %DaprStatus::Drop,
                    "reminder cannot be sent (invalid recipient or message); dropping it to the \
                     dead-letter topic"
                );
                self.record_failure(event_id, &key, &error.to_string())
                    .await;
                return (Outcome::Failed, DaprStatus::Drop);
            }
        };

        let claim = Uuid::new_v4();
        match self.ledger.claim(&key, claim).await {
            Ok(Claim::Won) => {}
            Ok(Claim::Taken(record)) => {
                return self.settled(event_id, reminder, &key, record).await;
            }
            Err(error) => {
                tracing::warn!(
                    event_id,
                    error = %chain(&error),
                    dapr_status = %DaprStatus::Retry,
                    "cannot claim the reminder in the state store; will retry"
                );
                return (Outcome::Retry, DaprStatus::Retry);
            }
        }
        self.send_claimed(event_id, reminder, &key, claim, composed)
            .await
    }

    /// Step 3 and 4: we hold the claim.
    async fn send_claimed(
        &self,
        event_id: &str,
        reminder: &ReminderDueData,
        key: &str,
        claim: Uuid,
        composed: Composed,
    ) -> (Outcome, DaprStatus) {
        let task_id = reminder.task_id;
        let domain = composed.recipient_domain.clone();
        let message_id = composed.message_id.clone();
        let start = Instant::now();
        let sent = self.mailer.send(composed).await;
        let elapsed = start.elapsed();
        let accepted = match sent {
            Ok(accepted) => {
                self.metrics.record_smtp(SmtpResult::Accepted, elapsed);
                accepted
            }
            Err(error) if error.is_permanent() => {
                self.metrics.record_smtp(SmtpResult::Permanent, elapsed);
                tracing::error!(
                    event_id,
                    %task_id,
                    recipient_domain = %domain,
                    smtp_code = error.code(),
                    %error,
                    dapr_status = %DaprStatus::Drop,
                    "mail server refused the reminder permanently; dropping it to the \
                     dead-letter topic"
                );
                self.record_failure(event_id, key, &error.to_string()).await;
                return (Outcome::Failed, DaprStatus::Drop);
            }
            Err(error) => {
                self.metrics.record_smtp(SmtpResult::Transient, elapsed);
                tracing::warn!(
                    event_id,
                    %task_id,
                    recipient_domain = %domain,
                    smtp_code = error.code(),
                    %error,
                    dapr_status = %DaprStatus::Retry,
                    "reminder email not sent yet; will retry"
                );
                if let Err(error) = self.ledger.release(key, claim).await {
                    // Harmless: the claim's TTL frees it; the retry just waits longer.
                    tracing::debug!(event_id, error = %chain(&error), "claim not released");
                }
                return (Outcome::Retry, DaprStatus::Retry);
            }
        };

        let sent_at = Utc::now();
        let mut record = Record::Sent {
            sent_at,
            message_id: message_id.clone(),
            smtp_reply: accepted.reply,
            published: false,
        };
        if let Err(error) = self.save_sent(key, &record).await {
            tracing::error!(
                event_id,
                %task_id,
                error = %chain(&error),
                dapr_status = %DaprStatus::Success,
                "reminder email sent but its record could not be saved; acknowledging the event \
                 and writing the record as soon as the state store answers"
            );
            self.record_later(key, record);
            if let Err(error) = self.publish_sent(event_id, reminder, sent_at).await {
                tracing::error!(event_id, error = %chain(&error), "reminder.sent not published");
            }
            return (Outcome::Sent, DaprStatus::Success);
        }
        tracing::info!(
            event_id,
            %task_id,
            recipient_domain = %domain,
            message_id,
            smtp_ms = elapsed.as_millis(),
            "reminder email sent"
        );
        match self.publish_sent(event_id, reminder, sent_at).await {
            Ok(()) => {
                self.mark_published(event_id, key, &mut record).await;
                (Outcome::Sent, DaprStatus::Success)
            }
            Err(error) => {
                tracing::warn!(
                    event_id,
                    error = %chain(&error),
                    dapr_status = %DaprStatus::Retry,
                    "reminder.sent not published; will retry the event (the email is not sent \
                     again)"
                );
                (Outcome::Sent, DaprStatus::Retry)
            }
        }
    }

    /// Step 2 when the record was already there.
    async fn settled(
        &self,
        event_id: &str,
        reminder: &ReminderDueData,
        key: &str,
        record: Record,
    ) -> (Outcome, DaprStatus) {
        match record {
            Record::Sent {
                published: true, ..
            } => {
                tracing::info!(event_id, "duplicate delivery: reminder email already sent");
                (Outcome::Duplicate, DaprStatus::Success)
            }
            Record::Sent { sent_at, .. } => {
                let mut record = record;
                match self.publish_sent(event_id, reminder, sent_at).await {
                    Ok(()) => {
                        tracing::info!(
                            event_id,
                            "duplicate delivery: reminder email already sent; reminder.sent \
                             published now"
                        );
                        self.mark_published(event_id, key, &mut record).await;
                        (Outcome::Duplicate, DaprStatus::Success)
                    }
                    Err(error) => {
                        tracing::warn!(
                            event_id,
                            error = %chain(&error),
                            dapr_status = %DaprStatus::Retry,
                            "reminder email already sent but reminder.sent still not published; \
                             will retry"
                        );
                        (Outcome::Retry, DaprStatus::Retry)
                    }
                }
            }
            Record::Sending { claimed_at, .. } => {
                tracing::info!(
                    event_id,
                    %claimed_at,
                    dapr_status = %DaprStatus::Retry,
                    "another delivery of this reminder is sending it; will retry"
                );
                (Outcome::Retry, DaprStatus::Retry)
            }
            Record::Failed { reason, .. } => {
                tracing::warn!(
                    event_id,
                    %reason,
                    dapr_status = %DaprStatus::Drop,
                    "reminder failed permanently before; dropping it again without a new attempt"
                );
                (Outcome::Duplicate, DaprStatus::Drop)
            }
            Record::Unknown => {
                tracing::error!(
                    event_id,
                    key,
                    dapr_status = %DaprStatus::Retry,
                    "reminder record has a status this build does not know; will retry"
                );
                (Outcome::Retry, DaprStatus::Retry)
            }
        }
    }

    /// Writes the `sent` record, retrying quickly: losing it could mean a second email.
    /// Only transient failures are retried ([`DaprClassifier`]), as for every Dapr call.
    async fn save_sent(&self, key: &str, record: &Record) -> Result<(), dapr::Error> {
        let ledger = &self.ledger;
        let write = tower::service_fn(move |()| ledger.mark_sent(key, record));
        ServiceBuilder::new()
            .retry(RetryPolicy::new(SENT_RECORD_RETRY, DaprClassifier))
            .service(write)
            .oneshot(())
            .await
    }

    /// Notes that `reminder.sent` went out, so duplicates need not publish it again; best
    /// effort, since a repeated publish carries the same id.
    async fn mark_published(&self, event_id: &str, key: &str, record: &mut Record) {
        if let Record::Sent { published, .. } = record {
            *published = true;
        }
        match self.ledger.mark_sent(key, record).await {
            Ok(()) => {
                self.lock_unrecorded().remove(key);
            }
            Err(error) => {
                if let Some(kept) = self.lock_unrecorded().get_mut(key) {
                    kept.clone_from(record);
                }
                tracing::debug!(event_id, error = %chain(&error), "published flag not saved");
            }
        }
    }

    /// The `sent` record of `key` this replica still has to write, if any.
    fn unrecorded(&self, key: &str) -> Option<Record> {
        self.lock_unrecorded().get(key).cloned()
    }

    /// Keeps `record` and writes it in the background until the state store takes it.
    fn record_later(&self, key: &str, record: Record) {
        self.lock_unrecorded().insert(key.to_owned(), record);
        let delivery = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let mut retry = 0;
            loop {
                tokio::time::sleep(LATE_RECORD_RETRY.backoff(retry)).await;
                retry = retry.saturating_add(1);
                // The latest version: a redelivery may have published `reminder.sent` since.
                let Some(record) = delivery.unrecorded(&key) else {
                    return;
                };
                match delivery.ledger.mark_sent(&key, &record).await {
                    Ok(()) => {
                        delivery.lock_unrecorded().remove(&key);
                        tracing::info!(key, "late sent record written; no second email can follow");
                        return;
                    }
                    Err(error) if !error.is_transient() => {
                        tracing::error!(key, error = %chain(&error), "sent record refused; giving up on it");
                        return;
                    }
                    Err(_) => {}
                }
            }
        });
    }

    fn lock_unrecorded(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        // Held for one map operation, never across an await.
        self.unrecorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a permanent failure; if that fails the event is still dropped (a redelivery
    /// would only fail the same way).
    async fn record_failure(&self, event_id: &str, key: &str, reason: &str) {
        if let Err(error) = self.ledger.mark_failed(key, reason).await {
            tracing::warn!(event_id, error = %chain(&error), "failure not recorded");
        }
    }

    /// Publishes `com.todo.reminder.sent.v1` with the id derived from the reminder's.
    async fn publish_sent(
        &self,
        event_id: &str,
        reminder: &ReminderDueData,
        sent_at: chrono::DateTime<Utc>,
    ) -> Result<(), PublishFailed> {
        let data = ReminderSentData {
            schema_version: SCHEMA_VERSION,
            user_id: reminder.user_id.clone(),
            task_id: reminder.task_id,
            remind_at: reminder.remind_at,
            sent_at,
            reminder_event_id: event_id.to_owned(),
        };
        let mut event = CloudEvent::new(
            crate::reminder_sent_id(event_id).to_string(),
            contracts::source(crate::SERVICE),
            event_types::REMINDER_SENT,
        )
        .with_subject(reminder.task_id.to_string())
        .with_json_data(&data)
        .map_err(|e| PublishFailed(e.into()))?;
        // The same time on every attempt, like the id.
        event.time = Some(sent_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        self.publisher
            .publish(PublishRequest::new(
                topics::PUBSUB,
                topics::TASK_EVENTS,
                event,
            ))
            .await
            .map_err(|e| PublishFailed(e.into()))
    }
}

/// `reminder.sent` could not be published.
#[derive(Debug, thiserror::Error)]
#[error("publishing reminder.sent failed")]
struct PublishFailed(#[source] middleware::BoxError);

/// The part after the last `@`, for logs; `-` when there is none.
fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("-", |(_, domain)| domain.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_only() {
        assert_eq!(domain_of("ada@example.org"), "example.org");
        assert_eq!(domain_of("weird@x@example.org "), "example.org");
        assert_eq!(domain_of("no-at-sign"), "-");
    }
}
