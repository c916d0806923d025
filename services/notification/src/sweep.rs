//! The reminder sweep: the backend's record of what is due, held against the reminders applied.
//!
//! Task events are how a reminder normally reaches the Scheduler. The sweep covers the events
//! that do not arrive, or arrive too late: one taken by a sidecar whose app had just died and
//! held by the broker (a RabbitMQ delivery can stay with that sidecar until it restarts), one
//! parked on `task-events-dlq` after the state store was down longer than the retry budget, or
//! one lost by a broker without durable storage.
//!
//! Every [`SWEEP_EVERY`] the Scheduler triggers the recurring job [`SWEEP_JOB`] on **one**
//! replica. It pages through the backend's pending tasks whose reminder is in
//! `[now − LOOKBACK, now + AHEAD]` (`GET /internal/reminders`) and feeds each snapshot that is
//! newer than the record of the ordering guard (or has none) through that guard, exactly as if
//! its event had been delivered: the job is scheduled, or — the time having passed — set to
//! fire at once unless it was sent. So a reminder whose event never comes is still scheduled at
//! least [`AHEAD`] before its time, and one that falls due meanwhile is sent within about one
//! sweep interval.
//!
//! A record can also be current while its job is missing: the process died between writing
//! the record and scheduling the job, and the redelivery that would finish the work is held by
//! a broker (a RabbitMQ delivery stays with the dead app's sidecar). So for each reminder whose
//! time has passed and that is not settled (no sent record), the sweep asks whether its job
//! still exists — a job being retried does — and applies the task again when it does not.
//! Snapshots applied and settled cost two bulk state reads per page and nothing else.
//!
//! Every replica registers the job when it starts (with overwrite, so it exists once); a failed
//! sweep is dropped, as the next one follows [`SWEEP_EVERY`] later.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use contracts::{TaskSnapshot, event_types};
use dapr::{DaprClient, FailurePolicy, Job, JobError, JobTrigger};
use http::Method;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
use crate::reminders::{self, TaskRecord, record_key, rfc3339};

/// Name of the recurring sweep job (not under [`reminders::JOB_PREFIX`], so the two handlers
/// never compete for a name).
pub const SWEEP_JOB: &str = "sweep-reminders";
/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How far back the sweep looks: reminders that fell due while no sweep ran (every replica
/// down) and whose events were lost. Longer outages rely on the events themselves.
pub const LOOKBACK: TimeDelta = TimeDelta::minutes(15);
/// How far ahead the sweep looks; more than [`SWEEP_EVERY`], so every future reminder is seen
/// at least once before its time.
pub const AHEAD: TimeDelta = TimeDelta::minutes(2);
/// Tasks asked for per page (the backend's largest page).
const PAGE: u32 = 200;
/// How long to wait between attempts to register the job while the sidecar is not up.
const REGISTER_RETRY: Duration = Duration::from_secs(2);

/// The sweep job: every [`SWEEP_EVERY`], never retried (the next tick is the retry).
pub fn sweep_job() -> Job {
    Job::recurring(format!("@every {}s", SWEEP_EVERY.as_secs()), Value::Null)
        .with_overwrite(true)
        .with_failure_policy(FailurePolicy::Drop)
}

/// Registers [`SWEEP_JOB`] through our sidecar, retrying until it is up; returns when done.
pub async fn keep_registered(dapr: DaprClient) {
    loop {
        match dapr.schedule_job(SWEEP_JOB, &sweep_job()).await {
            Ok(()) => {
                tracing::info!(job = SWEEP_JOB, every = ?SWEEP_EVERY, "reminder sweep registered");
                return;
            }
            Err(e) => {
                tracing::debug!(job = SWEEP_JOB, error = %e, "reminder sweep not registered yet; retrying");
                tokio::time::sleep(REGISTER_RETRY).await;
            }
        }
    }
}

/// A page of `GET /internal/reminders`.
#[derive(Debug, Deserialize)]
struct ReminderPage {
    items: Vec<TaskSnapshot>,
    next: Option<Cursor>,
}

#[derive(Debug, Deserialize)]
struct Cursor {
    after_at: DateTime<Utc>,
    after_id: Uuid,
}

/// Handles one trigger of [`SWEEP_JOB`].
pub async fn on_sweep_job(state: AppState, _trigger: JobTrigger) -> Result<(), JobError> {
    let now = Utc::now();
    let (from, to) = (now - LOOKBACK, now + AHEAD);
    let mut after: Option<Cursor> = None;
    let (mut seen, mut repaired) = (0_usize, 0_usize);
    loop {
        let mut path = format!(
            "internal/reminders?from={}&to={}&limit={PAGE}",
            rfc3339(from),
            rfc3339(to)
        );
        if let Some(cursor) = &after {
            path.push_str(&format!(
                "&after_at={}&after_id={}",
                rfc3339(cursor.after_at),
                cursor.after_id
            ));
        }
        let page: ReminderPage = state
            .dapr
            .invoke_json(&state.backend_app_id, Method::GET, &path, None, &[])
            .await
            .map_err(|e| JobError::transient(format!("asking the backend for reminders: {e}")))?;
        seen += page.items.len();
        repaired += repair(&state, &page.items).await?;
        match page.next {
            Some(cursor) if !page.items.is_empty() => after = Some(cursor),
            _ => break,
        }
    }
    state.reminders.sweep(repaired);
    if repaired > 0 {
        tracing::warn!(
            seen,
            repaired,
            "reminder sweep applied tasks whose events had not arrived"
        );
    } else {
        tracing::debug!(seen, "reminder sweep found every reminder applied");
    }
    Ok(())
}

/// Applies the snapshots of `tasks` that the guard has not seen, and those due, unsettled and
/// without a job; returns how many.
async fn repair(state: &AppState, tasks: &[TaskSnapshot]) -> Result<usize, JobError> {
    if tasks.is_empty() {
        return Ok(0);
    }
    let records = bulk_read(state, tasks.iter().map(|t| record_key(t.id))).await?;
    let now = Utc::now();
    let mut applied = Vec::new();
    let mut due = Vec::new();
    for (task, record) in tasks.iter().zip(records) {
        let record: Option<TaskRecord> = record.and_then(|v| serde_json::from_value(v).ok());
        let current = record
            .as_ref()
            .is_some_and(|r| r.deleted || r.updated_at >= task.updated_at);
        if !current {
            tracing::info!(
                task_id = %task.id,
                remind_at = ?task.remind_at.map(rfc3339),
                applied_updated_at = ?record.as_ref().map(|r| r.updated_at),
                task_updated_at = %task.updated_at,
                "reminder sweep: the task's newest event has not been applied; applying the task"
            );
            applied.push(task);
        } else if let Some(at) = record.and_then(|r| r.remind_at).filter(|at| *at <= now) {
            due.push((task, at));
        }
    }
    // Due and applied: settled, or its job still exists (firing or being retried)?
    let settled = bulk_read(
        state,
        due.iter()
            .map(|(task, at)| crate::trigger::sent_key(task.id, *at)),
    )
    .await?;
    for ((task, at), settled) in due.into_iter().zip(settled) {
        if settled.is_some() {
            continue;
        }
        let job = state
            .dapr
            .get_job(&reminders::job_name(task.id))
            .await
            .map_err(|e| {
                JobError::transient(format!("looking up the job of task {}: {e}", task.id))
            })?;
        if job.is_none() {
            tracing::info!(
                task_id = %task.id, remind_at = %rfc3339(at),
                "reminder sweep: the reminder is due, not sent and has no job; applying the task again"
            );
            applied.push(task);
        }
    }
    for task in &applied {
        let Some(incoming) = TaskRecord::of(event_types::TASK_UPDATED, task) else {
            continue;
        };
        reminders::apply(state, task.id, incoming, "sweep")
            .await
            .map_err(|e| JobError::transient(format!("applying task {}: {e}", task.id)))?;
    }
    Ok(applied.len())
}

/// The values stored under `keys`, in order (`None`: absent); one bulk read.
async fn bulk_read(
    state: &AppState,
    keys: impl Iterator<Item = String>,
) -> Result<Vec<Option<Value>>, JobError> {
    let keys: Vec<String> = keys.collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let items = state
        .dapr
        .get_bulk_state(&state.state_store, &key_refs)
        .await
        .map_err(|e| JobError::transient(format!("reading state: {e}")))?;
    keys.iter()
        .map(|key| {
            let item = items.iter().find(|i| &i.key == key);
            if let Some(error) = item.and_then(|i| i.error.as_deref()) {
                return Err(JobError::transient(format!("reading {key}: {error}")));
            }
            Ok(item.and_then(|i| i.data.clone()))
        })
        .collect()
}
