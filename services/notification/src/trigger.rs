//! `POST /job/reminder-<task_id>`: a reminder job fired; publish `reminder.due` once.
//!
//! The Scheduler delivers each trigger to one replica, but at least once: failure-policy
//! retries, a Scheduler failover or a dropped stream can deliver it again, to any replica.
//! "Exactly one email" is built from three pieces, none of them in-process:
//!
//! * the event id is a UUID v5 of `(task_id, remind_at)` ([`reminder_event_id`]), so every
//!   publish of one reminder carries the same id and email-delivery's first-write dedup on the
//!   id absorbs a repeat;
//! * after publishing, `reminder-sent-<task_id>-<remind_at>` is inserted first-write; a trigger
//!   that finds it returns at once (the common repeat costs one state read, no backend call);
//! * the task is re-read from the backend (service invocation) so a completed, deleted or
//!   rescheduled task sends nothing, whatever job survived.
//!
//! Failures that may pass (sidecar, backend, broker) answer 500 so the Scheduler retries per
//! [`crate::reminders::DEFAULT_JOB_FAILURE_POLICY`]; a reminder is never dropped silently. Publishing
//! before recording means a crash in between re-publishes the same id rather than losing it.

use chrono::{DateTime, Utc};
use contracts::{ReminderDueData, SCHEMA_VERSION, TaskSnapshot, event_types, topics};
use dapr::{CloudEvent, JobError, JobTrigger, SaveItem};
use http::{Method, StatusCode};
use middleware::PublishRequest;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::SERVICE;
use crate::app::AppState;
use crate::metrics::TriggerOutcome;
use crate::reminders::{ReminderJobData, job_name, rfc3339};

/// Namespace of [`reminder_event_id`] (a fixed random UUID; changing it changes every id).
pub const REMINDER_EVENT_NAMESPACE: Uuid =
    Uuid::from_u128(0x6f0b_3c1e_9a52_4d7e_8c41_2b9d_5e73_a0f4);
/// Prefix of the "settled" state keys, `reminder-sent-<task_id>-<remind_at>`: the reminder was
/// published, or found to have nobody to go to.
pub const SENT_PREFIX: &str = "reminder-sent-";
/// How long a sent record is kept: it must outlive the Scheduler's redeliveries of one trigger
/// (up to an hour) and the window in which a late task event still sends an overdue reminder
/// ([`crate::reminders::CATCH_UP_WINDOW`], a week), without keeping a row per reminder forever.
pub const SENT_RECORD_TTL_SECS: u64 = 8 * 24 * 3600;

/// The CloudEvent id of the `reminder.due` of `task_id` at `remind_at`: the same on every
/// trigger and every replica, so consumers can de-duplicate it.
pub fn reminder_event_id(task_id: Uuid, remind_at: DateTime<Utc>) -> Uuid {
    let name = format!("{task_id}/{}", rfc3339(remind_at));
    Uuid::new_v5(&REMINDER_EVENT_NAMESPACE, name.as_bytes())
}

/// The state key recording that the reminder of `task_id` at `remind_at` was published.
pub fn sent_key(task_id: Uuid, remind_at: DateTime<Utc>) -> String {
    format!("{SENT_PREFIX}{task_id}-{}", rfc3339(remind_at))
}

/// The backend's answer to `GET /internal/tasks/{id}`.
#[derive(Debug, Deserialize)]
pub struct TaskLookup {
    /// The task as events carry it.
    pub task: TaskSnapshot,
    /// Where reminders go (the owner's email claim), if known.
    pub owner_email: Option<String>,
    /// The owner's display name, if known.
    pub owner_name: Option<String>,
}

/// Handles one trigger of a `reminder-` job (registered with [`dapr::JobRouter`]).
pub async fn on_reminder_job(state: AppState, trigger: JobTrigger) -> Result<(), JobError> {
    let fired_at = Utc::now();
    let result = fire(&state, &trigger, fired_at).await;
    let outcome = match &result {
        Ok(outcome) => *outcome,
        Err(JobError::Transient(_)) => TriggerOutcome::Failed,
        Err(JobError::Permanent(_)) => TriggerOutcome::Invalid,
    };
    state.reminders.trigger(outcome);
    if let Ok(outcome) = result
        && outcome != TriggerOutcome::Published
    {
        tracing::info!(job = %trigger.name, outcome = outcome.as_str(), "reminder not sent");
    }
    result.map(drop)
}

async fn fire(
    state: &AppState,
    trigger: &JobTrigger,
    fired_at: DateTime<Utc>,
) -> Result<TriggerOutcome, JobError> {
    let job: ReminderJobData = serde_json::from_value(trigger.data.clone())
        .map_err(|e| JobError::permanent(format!("job data is not a reminder: {e}")))?;
    if trigger.name != job_name(job.task_id) {
        return Err(JobError::permanent(format!(
            "job data names task {} but the job is `{}`",
            job.task_id, trigger.name
        )));
    }
    let task_id = job.task_id;
    let store = &*state.state_store;
    let sent = sent_key(task_id, job.remind_at);
    let already = state
        .dapr
        .get_state(store, &sent)
        .await
        .map_err(|e| transient("reading the sent record", &e))?;
    if already.is_some() {
        return Ok(TriggerOutcome::AlreadySent);
    }

    let path = format!("internal/tasks/{task_id}");
    let lookup: TaskLookup = match state
        .dapr
        .invoke_json(&state.backend_app_id, Method::GET, &path, None, &[])
        .await
    {
        Ok(lookup) => lookup,
        Err(dapr::Error::Api(e)) if e.status == StatusCode::NOT_FOUND => {
            return Ok(TriggerOutcome::TaskGone);
        }
        Err(e @ dapr::Error::Decode { .. }) => {
            return Err(JobError::permanent(format!(
                "backend task answer is not understood: {}",
                chain(&e)
            )));
        }
        Err(e) => return Err(transient("asking the backend for the task", &e)),
    };
    let task = &lookup.task;
    if task.id != task_id {
        return Err(JobError::permanent(format!(
            "backend answered task {} for {task_id}",
            task.id
        )));
    }
    if task.completed {
        return Ok(TriggerOutcome::Completed);
    }
    if task.remind_at != Some(job.remind_at) {
        // Moved or cleared: the job of the new time (if any) sends it.
        return Ok(TriggerOutcome::Rescheduled);
    }
    let Some(recipient) = lookup.owner_email.clone().filter(|e| !e.trim().is_empty()) else {
        tracing::warn!(%task_id, user_id = %task.user_id, "task owner has no email address; reminder not sent");
        // Settled all the same: the sweep takes a due reminder without this record and
        // without a job for a lost one, and would fire it again every pass.
        settle(state, sent, json!({"outcome": "no_recipient"}))
            .await
            .map_err(|e| transient("recording the unsent reminder", &e))?;
        return Ok(TriggerOutcome::NoRecipient);
    };

    let event_id = reminder_event_id(task_id, job.remind_at);
    let data = ReminderDueData {
        schema_version: SCHEMA_VERSION,
        user_id: task.user_id.clone(),
        task_id,
        recipient_email: recipient,
        recipient_name: lookup.owner_name.clone(),
        title: task.title.clone(),
        description: task.description.clone(),
        priority: task.priority,
        due_at: task.due_at,
        remind_at: job.remind_at,
    };
    let event = CloudEvent::new(
        event_id.to_string(),
        contracts::source(SERVICE),
        event_types::REMINDER_DUE,
    )
    .with_subject(task_id.to_string())
    .with_json_data(&data)
    .map_err(|e| JobError::permanent(format!("encoding reminder.due: {e}")))?;
    state
        .publisher
        .publish(PublishRequest::new(
            topics::PUBSUB,
            topics::TASK_REMINDERS,
            event,
        ))
        .await
        .map_err(|e| transient("publishing reminder.due", &e))?;
    let lateness = (fired_at - job.remind_at).to_std().unwrap_or_default();
    state.reminders.observe_lateness(lateness);
    tracing::info!(
        %task_id, %event_id, remind_at = %rfc3339(job.remind_at),
        lateness_ms = lateness.as_millis(), "reminder.due published"
    );

    // A failure here retries the trigger, which re-publishes the same id: a duplicate that
    // email-delivery absorbs, never a lost reminder.
    let record = json!({"event_id": event_id, "published_at": rfc3339(Utc::now())});
    settle(state, sent, record)
        .await
        .map_err(|e| transient("recording the sent reminder", &e))?;
    Ok(TriggerOutcome::Published)
}

/// Writes the settled record `key` (first write wins; it expires after
/// [`SENT_RECORD_TTL_SECS`]).
async fn settle(
    state: &AppState,
    key: String,
    value: serde_json::Value,
) -> Result<(), dapr::Error> {
    let record = SaveItem::new(key, value).with_ttl_seconds(SENT_RECORD_TTL_SECS);
    state
        .dapr
        .insert_state_if_absent(&state.state_store, record)
        .await
        .map(drop)
}

fn transient(what: &str, error: &(dyn std::error::Error + 'static)) -> JobError {
    JobError::transient(format!("{what}: {}", chain(error)))
}

/// `error` and its sources on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_per_task_and_time() {
        let task = Uuid::from_u128(42);
        let at: DateTime<Utc> = "2030-01-02T03:04:05Z".parse().unwrap();
        let id = reminder_event_id(task, at);
        assert_eq!(id, reminder_event_id(task, at));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(
            id,
            reminder_event_id(task, at + chrono::TimeDelta::seconds(1))
        );
        assert_ne!(id, reminder_event_id(Uuid::from_u128(43), at));
        // The same instant written with another offset is the same reminder.
        let same: DateTime<Utc> = "2030-01-02T05:04:05+02:00".parse().unwrap();
        assert_eq!(id, reminder_event_id(task, same));
        assert_eq!(
            sent_key(task, at),
            "reminder-sent-00000000-0000-0000-0000-00000000002a-2030-01-02T03:04:05Z"
        );
    }

    #[test]
    fn sent_records_outlive_the_catch_up_window_and_the_retries() {
        let ttl = i64::try_from(SENT_RECORD_TTL_SECS).unwrap();
        assert!(ttl > crate::reminders::CATCH_UP_WINDOW.num_seconds());
        let dapr::FailurePolicy::Constant {
            interval,
            max_retries: Some(n),
        } = crate::reminders::DEFAULT_JOB_FAILURE_POLICY
        else {
            panic!("the default policy retries a bounded number of times");
        };
        assert!(u64::from(n) * interval.as_secs() < SENT_RECORD_TTL_SECS);
    }
}
