//! Task events → reminder jobs: schedule, overwrite or delete `reminder-<task_id>`.
//!
//! The obvious handler — "schedule on created/updated, delete on completed/deleted" — is wrong
//! under Dapr pub/sub: deliveries arrive concurrently and out of order (Redis Streams hands
//! them to several workers and replicas), so a late `updated` carrying an old `remind_at`
//! would overwrite the job of the newer time, or bring back the job of a deleted task. Each
//! event therefore goes through an *ordering guard* kept in the Dapr state store:
//!
//! 1. read `reminder-task-<task_id>` (the [`TaskRecord`] of the newest snapshot applied) and
//!    its ETag; an event whose snapshot is older ([`TaskRecord::supersedes`]) is acknowledged
//!    and ignored;
//! 2. write the event's record guarded by that ETag (first-write when the key is absent); on
//!    a conflict another event got there first, so re-read and decide again;
//! 3. bring the job in line with the record (schedule with `overwrite`, or delete);
//! 4. re-read the record: if a newer one was written meanwhile, its job operation may have
//!    reached the Scheduler *before* ours, so apply that record too, until the record read is
//!    the one last applied. Every job operation thus either precedes the newest record's write
//!    or is followed by a re-application of it: the last operation always matches the newest
//!    snapshot, with no lock and no in-process state (three replicas may run this at once).
//!
//! A task's `created` snapshot without a reminder skips the guard altogether: no job can exist
//! before a task's first event, and every later event supersedes that snapshot.
//!
//! A record equal to the stored one is applied again (not ignored): a redelivery after a crash
//! between steps 2 and 3 must still reach the Scheduler. A deleted task leaves a tombstone with
//! a TTL, so a late event cannot revive its job. The trigger handler re-checks the task with
//! the backend anyway; the guard is what keeps the newest reminder from being *lost*.
//!
//! An event can also arrive after its reminder time: it sat in the broker while every replica
//! was down, or on a sidecar whose app had died until the broker handed it to another one. The
//! API accepts only reminder times in the future, so such a reminder was wanted and is still
//! owed unless a trigger already mailed it: it is scheduled to fire at once ([`WantedJob::Overdue`])
//! unless its sent record exists, for up to [`CATCH_UP_WINDOW`] after its time. The one kind of
//! reminder that was never in the future is that of a generated occurrence whose time had
//! passed when it was created (a daily task completed days late): [`TaskRecord::of`] drops a
//! reminder earlier than its task's creation, so nothing fires for it.

use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use contracts::{TaskEventData, TaskSnapshot, event_types};
use dapr::{FailurePolicy, Job, SaveItem};
use middleware::{ConsumeError, Event};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;

/// Prefix of every reminder job name; the rest is the task id.
pub const JOB_PREFIX: &str = "reminder-";
/// Prefix of the ordering-guard state keys; the rest is the task id.
pub const RECORD_PREFIX: &str = "reminder-task-";
/// How long a deleted task's tombstone is kept (`ttlInSeconds`): 7 days.
pub const TOMBSTONE_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// What the Scheduler does, by default, when a trigger fails (the backend, broker or state
/// store is down, or the app died and its sidecar has not noticed yet): retry every 2 s for up
/// to an hour. A trigger the app cannot take at all (every replica unhealthy or gone) is not a
/// failure: the Scheduler keeps it until a replica is back, without counting retries.
/// `REMINDER_RETRY_INTERVAL_SECS` and `REMINDER_MAX_RETRIES` change it.
pub const DEFAULT_JOB_FAILURE_POLICY: FailurePolicy = FailurePolicy::Constant {
    interval: Duration::from_secs(DEFAULT_RETRY_INTERVAL_SECS as u64),
    max_retries: Some(DEFAULT_MAX_RETRIES),
};
/// Seconds between retries of a failed trigger, by default.
pub const DEFAULT_RETRY_INTERVAL_SECS: u32 = 2;
/// Retries of a failed trigger before the Scheduler gives it up, by default (one hour).
pub const DEFAULT_MAX_RETRIES: u32 = 1800;
/// How long after its time a reminder whose task event arrives late is still sent. Shorter
/// than the sent record's TTL ([`crate::trigger::SENT_RECORD_TTL_SECS`]), so a reminder
/// already mailed is always recognised rather than mailed again.
pub const CATCH_UP_WINDOW: TimeDelta = TimeDelta::days(7);
/// Read-decide-write rounds (and convergence rounds) before answering `RETRY`.
const MAX_ROUNDS: usize = 8;

/// The job name of `task_id`'s reminder: `reminder-<task_id>`.
pub fn job_name(task_id: Uuid) -> String {
    format!("{JOB_PREFIX}{task_id}")
}

/// The state key of `task_id`'s ordering guard: `reminder-task-<task_id>`.
pub fn record_key(task_id: Uuid) -> String {
    format!("{RECORD_PREFIX}{task_id}")
}

/// `at` in the one RFC 3339 form we write (UTC, `Z`, fraction only when there is one).
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `data` of a reminder job, handed back verbatim when it fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderJobData {
    /// The task the reminder is for.
    pub task_id: Uuid,
    /// The reminder time the job was scheduled for.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub remind_at: DateTime<Utc>,
}

fn serialize_rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

/// What the ordering guard remembers of the newest snapshot applied for a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// `updated_at` of the snapshot.
    pub updated_at: DateTime<Utc>,
    /// The task was deleted: a tombstone, superseded by nothing but another delete.
    pub deleted: bool,
    /// The reminder this snapshot asks for; `None` when completed, deleted or cleared.
    pub remind_at: Option<DateTime<Utc>>,
}

impl TaskRecord {
    /// The record of an event of type `event_type` about `task`; `None` for types that do not
    /// concern reminders.
    pub fn of(event_type: &str, task: &TaskSnapshot) -> Option<Self> {
        let deleted = match event_type {
            event_types::TASK_CREATED | event_types::TASK_UPDATED | event_types::TASK_COMPLETED => {
                false
            }
            event_types::TASK_DELETED => true,
            _ => return None,
        };
        // A `completed` snapshot has `completed` set, so the reminder goes with it.
        let wants_reminder =
            !deleted && !task.completed && event_type != event_types::TASK_COMPLETED;
        Some(Self {
            updated_at: task.updated_at,
            deleted,
            // Earlier than the task itself: a generated occurrence's reminder that was past
            // already, never one anybody waited for (see the module docs).
            remind_at: task
                .remind_at
                .filter(|at| wants_reminder && *at >= task.created_at),
        })
    }

    /// Whether this record may replace `stored`.
    ///
    /// A delete wins over everything: its snapshot is the task's last state, so its
    /// `updated_at` ties with the last update's and must not lose the tie. Nothing but another
    /// delete replaces a tombstone (task ids are never reused). Otherwise the newer or equal
    /// `updated_at` wins; equal is re-applied so redeliveries are idempotent, not ignored.
    pub fn supersedes(&self, stored: &Self) -> bool {
        if self.deleted {
            return true;
        }
        !stored.deleted && self.updated_at >= stored.updated_at
    }

    /// The job this record wants at `now`.
    pub fn wanted_job(&self, now: DateTime<Utc>) -> WantedJob {
        match self.remind_at {
            Some(at) if at > now => WantedJob::At(at),
            Some(at) if now - at <= CATCH_UP_WINDOW => WantedJob::Overdue(at),
            _ => WantedJob::None,
        }
    }
}

/// What a [`TaskRecord`] asks of the Scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WantedJob {
    /// No reminder (cleared, completed, deleted, or older than [`CATCH_UP_WINDOW`]).
    None,
    /// A reminder still ahead, at this time.
    At(DateTime<Utc>),
    /// A reminder whose time (given) has passed: fire at once unless it was already sent.
    Overdue(DateTime<Utc>),
}

/// `POST /events/task-events`: keeps `reminder-<task_id>` in line with the task.
///
/// Types other than task created/updated/completed/deleted (e.g. `reminder.sent`, which also
/// travels on `task-events`) are acknowledged and ignored.
pub async fn on_task_event(
    State(state): State<AppState>,
    event: Event<Value>,
) -> Result<(), ConsumeError> {
    let event = event.event;
    let ty = event.ty.as_str();
    if !matches!(
        ty,
        event_types::TASK_CREATED
            | event_types::TASK_UPDATED
            | event_types::TASK_COMPLETED
            | event_types::TASK_DELETED
    ) {
        tracing::debug!(event_id = %event.id, event_type = ty, "not a task change; ignored");
        return Ok(());
    }
    let data: TaskEventData = event
        .data_object_as()
        .map_err(|e| ConsumeError::drop_with("task event data is not a task snapshot", e))?;
    let Some(incoming) = TaskRecord::of(ty, &data.task) else {
        return Ok(());
    };
    if ty == event_types::TASK_CREATED && incoming.remind_at.is_none() {
        // A task's first snapshot without a reminder: no job can exist before it, and every
        // later event supersedes it, so the guard would only read, write and delete for
        // nothing (three state calls and a Scheduler call per task, most tasks being like
        // this).
        tracing::debug!(task_id = %data.task.id, event_id = %event.id, "created without a reminder; nothing to do");
        return Ok(());
    }
    apply(&state, data.task.id, incoming, &event.id).await
}

/// Runs the ordering guard for one event (see the module docs); `event_id` is for the logs
/// (the sweep passes `sweep`).
pub(crate) async fn apply(
    state: &AppState,
    task_id: Uuid,
    incoming: TaskRecord,
    event_id: &str,
) -> Result<(), ConsumeError> {
    let key = record_key(task_id);
    for _ in 0..MAX_ROUNDS {
        let stored = read_record(state, &key).await?;
        if let Some(current) = &stored.record
            && !incoming.supersedes(current)
        {
            state.reminders.stale_event();
            tracing::info!(
                %task_id, event_id, event_updated_at = %incoming.updated_at,
                applied_updated_at = %current.updated_at, tombstone = current.deleted,
                "older task snapshot than the one applied; ignored"
            );
            return Ok(());
        }
        if write_record(state, &key, &incoming, &stored).await? {
            return converge(state, task_id, &key, incoming).await;
        }
        tracing::debug!(%task_id, event_id, "reminder record changed concurrently; deciding again");
    }
    Err(ConsumeError::retry(
        "reminder record kept changing concurrently",
    ))
}

/// Applies `target`'s job, then re-applies whatever newer record appeared meanwhile.
async fn converge(
    state: &AppState,
    task_id: Uuid,
    key: &str,
    mut target: TaskRecord,
) -> Result<(), ConsumeError> {
    for _ in 0..MAX_ROUNDS {
        apply_job(state, task_id, &target).await?;
        match read_record(state, key).await?.record {
            Some(newer) if newer != target => target = newer,
            _ => return Ok(()),
        }
    }
    Err(ConsumeError::retry(
        "reminder record kept changing concurrently",
    ))
}

/// Schedules or deletes the job so that it matches `record`.
async fn apply_job(
    state: &AppState,
    task_id: Uuid,
    record: &TaskRecord,
) -> Result<(), ConsumeError> {
    match record.wanted_job(Utc::now()) {
        WantedJob::At(remind_at) => schedule_job(state, task_id, remind_at, false).await,
        WantedJob::Overdue(remind_at) => {
            let sent = state
                .dapr
                .get_state(
                    &state.state_store,
                    &crate::trigger::sent_key(task_id, remind_at),
                )
                .await
                .map_err(|e| ConsumeError::from_dapr("reading the sent record", e))?;
            state.reminders.overdue(sent.is_none());
            if sent.is_some() {
                delete_job(state, task_id).await
            } else {
                schedule_job(state, task_id, remind_at, true).await
            }
        }
        WantedJob::None => delete_job(state, task_id).await,
    }
}

/// Creates or overwrites `task_id`'s job for the reminder at `remind_at`: due then, or at once
/// when `overdue`. The job data keeps `remind_at` either way, so the trigger checks the task
/// and de-duplicates against the reminder that was asked for.
async fn schedule_job(
    state: &AppState,
    task_id: Uuid,
    remind_at: DateTime<Utc>,
    overdue: bool,
) -> Result<(), ConsumeError> {
    let name = job_name(task_id);
    let data = ReminderJobData { task_id, remind_at };
    let data = serde_json::to_value(&data)
        .map_err(|e| ConsumeError::drop_with("encoding reminder job data", e))?;
    let job = if overdue {
        Job::once_after(Duration::ZERO, data)
    } else {
        Job::once_at(remind_at, data)
    };
    let job = job
        .with_overwrite(true)
        .with_failure_policy(state.job_failure_policy);
    state
        .dapr
        .schedule_job(&name, &job)
        .await
        .map_err(|e| ConsumeError::from_dapr("scheduling the reminder job", e))?;
    state.reminders.job_scheduled();
    tracing::info!(
        %task_id, job = %name, remind_at = %rfc3339(remind_at), overdue,
        "reminder job scheduled{}", if overdue { " to fire at once" } else { "" }
    );
    Ok(())
}

/// Deletes `task_id`'s job; a job that is not there counts as deleted.
async fn delete_job(state: &AppState, task_id: Uuid) -> Result<(), ConsumeError> {
    let name = job_name(task_id);
    match state.dapr.delete_job(&name).await {
        Ok(()) => {}
        // Deleting a job that is not there is the goal reached, however daprd says it.
        Err(e) if e.api_error().is_some_and(dapr::DaprApiError::is_not_found) => {}
        Err(e) => return Err(ConsumeError::from_dapr("deleting the reminder job", e)),
    }
    state.reminders.job_deleted();
    tracing::info!(%task_id, job = %name, "reminder job deleted");
    Ok(())
}

/// The guard's record as read, with what is needed to write it back conditionally.
struct Stored {
    /// The decoded record; `None` when absent or unreadable.
    record: Option<TaskRecord>,
    /// Whether the key exists (an unreadable record is overwritten, not inserted).
    exists: bool,
    /// Its ETag, for the conditional write.
    etag: Option<String>,
}

async fn read_record(state: &AppState, key: &str) -> Result<Stored, ConsumeError> {
    let item = state
        .dapr
        .get_state(&state.state_store, key)
        .await
        .map_err(|e| ConsumeError::from_dapr("reading the reminder record", e))?;
    let Some(item) = item else {
        return Ok(Stored {
            record: None,
            exists: false,
            etag: None,
        });
    };
    let record = match item.json::<TaskRecord>() {
        Ok(record) => Some(record),
        Err(e) => {
            // Treated as absent, so the next write repairs it instead of every event failing.
            tracing::warn!(key, error = %e, "unreadable reminder record; it will be overwritten");
            None
        }
    };
    Ok(Stored {
        record,
        exists: true,
        etag: item.etag,
    })
}

/// Writes `record` unless the key changed since `stored` was read; `Ok(false)` on a conflict.
async fn write_record(
    state: &AppState,
    key: &str,
    record: &TaskRecord,
    stored: &Stored,
) -> Result<bool, ConsumeError> {
    let store = &*state.state_store;
    let mut item = SaveItem::json(key, record)
        .map_err(|e| ConsumeError::drop_with("encoding the reminder record", e))?;
    if record.deleted {
        item = item.with_ttl_seconds(TOMBSTONE_TTL_SECS);
    }
    item = match (&stored.etag, stored.exists) {
        // Written only if nobody wrote since our read.
        (Some(etag), _) => item.with_etag(etag.clone()).first_write(),
        // A store without ETags: the best we can do is last-write-wins.
        (None, true) => item,
        // Created only if still absent.
        (None, false) => item.first_write(),
    };
    match state
        .dapr
        .save_state(store, std::slice::from_ref(&item))
        .await
    {
        Ok(()) => Ok(true),
        Err(dapr::Error::EtagMismatch(_)) => Ok(false),
        Err(error) if !stored.exists => {
            // A refused first-write is store-specific (PostgreSQL v2 answers 500, not 409):
            // if the key is there now, someone else created it; otherwise the error stands.
            match state.dapr.get_state(store, key).await {
                Ok(Some(_)) => Ok(false),
                Ok(None) | Err(_) => Err(ConsumeError::from_dapr(
                    "writing the reminder record",
                    error,
                )),
            }
        }
        Err(error) => Err(ConsumeError::from_dapr(
            "writing the reminder record",
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn record(updated_at: &str, deleted: bool, remind_at: Option<&str>) -> TaskRecord {
        TaskRecord {
            updated_at: at(updated_at),
            deleted,
            remind_at: remind_at.map(at),
        }
    }

    #[test]
    fn newer_or_equal_snapshots_supersede_and_deletes_always_win() {
        let old = record("2030-01-01T00:00:00Z", false, Some("2030-02-01T00:00:00Z"));
        let new = record("2030-01-01T00:00:01Z", false, None);
        let tombstone = record("2030-01-01T00:00:01Z", true, None);
        assert!(new.supersedes(&old));
        assert!(!old.supersedes(&new));
        assert!(old.supersedes(&old), "redelivery is applied again");
        // The delete carries the last state, so it ties with the last update and must win.
        assert!(tombstone.supersedes(&new));
        assert!(tombstone.supersedes(&tombstone));
        assert!(!new.supersedes(&tombstone));
        let later_update = record("2030-06-01T00:00:00Z", false, Some("2030-07-01T00:00:00Z"));
        assert!(
            !later_update.supersedes(&tombstone),
            "a deleted task never comes back"
        );
    }

    #[test]
    fn records_follow_event_type_and_completion() {
        let remind = Utc::now() + TimeDelta::hours(1);
        let task: TaskSnapshot = serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(7), "user_id": "u", "title": "t", "description": "",
            "completed": false, "completed_at": null, "priority": "high", "category": null,
            "tags": [], "due_at": null, "remind_at": rfc3339(remind), "recurrence_rule": null,
            "parent_task_id": null, "occurrence_index": 0,
            "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"
        }))
        .unwrap();
        let created = TaskRecord::of(event_types::TASK_CREATED, &task).unwrap();
        assert_eq!(created.remind_at, Some(remind));
        assert_eq!(created.wanted_job(Utc::now()), WantedJob::At(remind));
        assert_eq!(
            created.wanted_job(remind),
            WantedJob::Overdue(remind),
            "due now is not ahead but still owed"
        );
        assert_eq!(
            created.wanted_job(remind + CATCH_UP_WINDOW),
            WantedJob::Overdue(remind)
        );
        assert_eq!(
            created.wanted_job(remind + CATCH_UP_WINDOW + TimeDelta::seconds(1)),
            WantedJob::None,
            "too old to send"
        );
        let completed = TaskRecord::of(event_types::TASK_COMPLETED, &task).unwrap();
        assert_eq!(completed.remind_at, None);
        let deleted = TaskRecord::of(event_types::TASK_DELETED, &task).unwrap();
        assert!(deleted.deleted && deleted.remind_at.is_none());
        let done = TaskSnapshot {
            completed: true,
            ..task.clone()
        };
        assert_eq!(
            TaskRecord::of(event_types::TASK_UPDATED, &done)
                .unwrap()
                .remind_at,
            None
        );
        assert_eq!(TaskRecord::of(event_types::REMINDER_SENT, &task), None);
        // A generated occurrence created after its reminder time gets no reminder at all.
        let late_occurrence = TaskSnapshot {
            created_at: remind + TimeDelta::minutes(1),
            updated_at: remind + TimeDelta::minutes(1),
            ..task
        };
        let record = TaskRecord::of(event_types::TASK_CREATED, &late_occurrence).unwrap();
        assert_eq!(record.remind_at, None);
        assert_eq!(
            record.wanted_job(remind + TimeDelta::hours(1)),
            WantedJob::None
        );
    }

    #[test]
    fn job_data_uses_one_rfc3339_form() {
        let data = ReminderJobData {
            task_id: Uuid::from_u128(1),
            remind_at: at("2030-01-02T03:04:05.250+02:00"),
        };
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "task_id": "00000000-0000-0000-0000-000000000001",
                "remind_at": "2030-01-02T01:04:05.250Z"
            })
        );
        assert_eq!(
            serde_json::from_value::<ReminderJobData>(json).unwrap(),
            data
        );
        assert_eq!(
            job_name(Uuid::from_u128(1)),
            "reminder-00000000-0000-0000-0000-000000000001"
        );
    }
}
