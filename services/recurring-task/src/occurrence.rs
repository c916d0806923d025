//! The `task-recurrence` handler: from a completion event to the backend's next occurrence.
//!
//! Two steps, kept apart so the decision is testable without HTTP: [`plan`] reads the event
//! and decides (ignore, series ended, or create at a computed date), [`create`] asks the backend
//! and maps its answer to a Dapr status. Every outcome is explicit: `SUCCESS` for done, ignored
//! and duplicate; `DROP` (to `task-recurrence-dlq`, with a log line) for what can never
//! succeed; `RETRY` for what may succeed later.
//!
//! The next due date follows the previous **due** date; only a task without one is anchored on
//! its completion time (logged), because there is nothing else to follow. The reminder keeps
//! its distance before the due time; a task without a due date or reminder gets none.

use std::borrow::Cow;

use axum::extract::{Extension, State};
use chrono::{DateTime, Utc};
use contracts::{TaskEventData, TaskSnapshot, event_types};
use dapr::CloudEvent;
use http::{Method, StatusCode};
use middleware::{ConsumeError, DaprStatus, TraceContext};
use recurrence::{Rrule, next_occurrence};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::metrics::Outcome;

/// Longest backend error text quoted in a log line.
const MAX_QUOTED_BODY: usize = 300;

/// What a delivered event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do; acknowledged. The reason is for the debug log.
    Ignore(&'static str),
    /// The rule has no occurrence after this one.
    SeriesEnded {
        /// The completed task.
        task_id: Uuid,
    },
    /// Ask the backend for the next occurrence.
    Create(NextOccurrence),
}

/// The backend request for one next occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextOccurrence {
    /// The completed (previous) task.
    pub task_id: Uuid,
    /// Due time of the new occurrence.
    pub due_at: DateTime<Utc>,
    /// Reminder time of the new occurrence, keeping the previous offset.
    pub remind_at: Option<DateTime<Utc>>,
    /// The completion event's id: the backend creates one task per key.
    pub idempotency_key: String,
}

impl NextOccurrence {
    /// The backend path, relative to the app: `internal/tasks/{id}/next-occurrence`.
    pub fn path(&self) -> String {
        format!("internal/tasks/{}/next-occurrence", self.task_id)
    }

    /// The JSON body the backend's internal endpoint takes.
    pub fn body(&self) -> Value {
        json!({
            "due_at": self.due_at,
            "remind_at": self.remind_at,
            "idempotency_key": self.idempotency_key,
        })
    }
}

/// How the backend answered a [`NextOccurrence`] that it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The new occurrence's id, if the answer carried it.
    pub new_task_id: Option<String>,
    /// False when an earlier delivery of the same event had already created it.
    pub created: bool,
}

/// `POST /events/task-recurrence`: one delivery from daprd.
///
/// Takes the whole [`CloudEvent`] rather than `Event<TaskEventData>`, so that an event of
/// another type is acknowledged as ignored whatever its `data` looks like.
pub async fn on_task_recurrence(
    State(state): State<AppState>,
    Extension(event): Extension<CloudEvent>,
) -> Result<DaprStatus, ConsumeError> {
    let result = match plan(&event) {
        Ok(Plan::Ignore(why)) => {
            tracing::debug!(event_id = %event.id, event_type = %event.ty, why, "event ignored");
            return Ok(DaprStatus::Success);
        }
        Ok(Plan::SeriesEnded { task_id }) => {
            tracing::info!(
                event_id = %event.id, %task_id,
                "recurring series ended (COUNT or UNTIL reached); no next occurrence"
            );
            Ok(Outcome::SeriesEnded)
        }
        Ok(Plan::Create(next)) => create(&state, &next).await.map(|created| {
            tracing::info!(
                event_id = %event.id,
                task_id = %next.task_id,
                new_task_id = created.new_task_id.as_deref().unwrap_or("-"),
                due_at = %next.due_at,
                remind_at = ?next.remind_at,
                created = created.created,
                "next occurrence {}",
                if created.created { "created" } else { "already created by an earlier delivery" }
            );
            if created.created {
                Outcome::Created
            } else {
                Outcome::Duplicate
            }
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => {
            state.occurrences.record(outcome);
            Ok(DaprStatus::Success)
        }
        Err(e) => {
            if e.status() == DaprStatus::Drop {
                state.occurrences.record(Outcome::Dropped);
            }
            // Logged once, with the reason, by `ConsumeError`'s response.
            Err(e)
        }
    }
}

/// Decides what a delivered event asks for; `Err` is a `DROP` (the event can never be handled).
pub fn plan(event: &CloudEvent) -> Result<Plan, ConsumeError> {
    if event.ty != event_types::TASK_COMPLETED {
        return Ok(Plan::Ignore("not a task completion"));
    }
    let data: TaskEventData = event.data_object_as().map_err(|e| {
        ConsumeError::drop_with(
            format!("event {}: data is not a task snapshot", event.id),
            e,
        )
    })?;
    let task = data.task;
    let Some(text) = task
        .recurrence_rule
        .as_deref()
        .filter(|_| task.is_recurring())
    else {
        return Ok(Plan::Ignore("task does not recur"));
    };
    // The backend validated the rule when it was written; a bad one here is a bug, not a blip.
    let rule = Rrule::parse(text).map_err(|e| {
        ConsumeError::drop_with(
            format!("task {}: cannot follow recurrence rule `{text}`", task.id),
            e,
        )
    })?;
    let index = u32::try_from(task.occurrence_index).map_err(|_| {
        ConsumeError::drop(format!(
            "task {}: occurrence_index {} is negative",
            task.id, task.occurrence_index
        ))
    })?;
    let anchor = anchor(&task)?;
    let Some(due_at) = next_occurrence(&rule, anchor, index) else {
        return Ok(Plan::SeriesEnded { task_id: task.id });
    };
    Ok(Plan::Create(NextOccurrence {
        task_id: task.id,
        due_at,
        remind_at: reminder(&task, due_at),
        idempotency_key: event.id.clone(),
    }))
}

/// The date the next occurrence follows: the previous due date, or, for a task without one,
/// its completion time.
fn anchor(task: &TaskSnapshot) -> Result<DateTime<Utc>, ConsumeError> {
    match (task.due_at, task.completed_at) {
        (Some(due), _) => Ok(due),
        (None, Some(completed)) => {
            tracing::info!(
                task_id = %task.id,
                %completed,
                "recurring task has no due date; next occurrence follows its completion time"
            );
            Ok(completed)
        }
        (None, None) => Err(ConsumeError::drop(format!(
            "task {}: completed recurring task has neither due_at nor completed_at",
            task.id
        ))),
    }
}

/// The next reminder: as long before `next_due` as the previous one was before its due time.
fn reminder(task: &TaskSnapshot, next_due: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (Some(due), Some(remind)) = (task.due_at, task.remind_at) else {
        return None;
    };
    let offset = due.signed_duration_since(remind);
    if offset < chrono::TimeDelta::zero() {
        // The backend never stores this; better an occurrence without reminder than none.
        tracing::warn!(
            task_id = %task.id, %due, %remind,
            "reminder was after the due time; next occurrence gets no reminder"
        );
        return None;
    }
    next_due.checked_sub_signed(offset)
}

/// Asks the backend, through our sidecar, to create `next`; maps its answer to an outcome.
pub async fn create(state: &AppState, next: &NextOccurrence) -> Result<Created, ConsumeError> {
    let path = next.path();
    let app = &*state.backend_app_id;
    // daprd continues the trace from this header; a child span marks our call.
    let traceparent = TraceContext::current().map(|ctx| ctx.child().traceparent());
    let headers: Vec<(&str, &str)> = traceparent
        .as_deref()
        .map(|tp| ("traceparent", tp))
        .into_iter()
        .collect();
    let response = state
        .dapr
        .invoke(app, Method::POST, &path, Some(&next.body()), &headers)
        .await
        .map_err(|e| ConsumeError::from_dapr(format!("invoking {app} {path}"), e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ConsumeError::retry_with(format!("reading {app}'s answer to {path}"), e))?;
    if status.is_success() {
        let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Ok(Created {
            new_task_id: reply["task"]["id"].as_str().map(str::to_owned),
            created: reply["created"]
                .as_bool()
                .unwrap_or(status == StatusCode::CREATED),
        });
    }
    let answer = describe(status, &body);
    let task = next.task_id;
    Err(match status {
        StatusCode::NOT_FOUND => ConsumeError::drop(format!(
            "task {task} is gone ({app} answered {answer}); no next occurrence"
        )),
        StatusCode::UNPROCESSABLE_ENTITY => ConsumeError::drop(format!(
            "{app} refused the next occurrence of task {task}: {answer}"
        )),
        // Our credentials or the backend's load, not the event: it will go through later.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ConsumeError::retry(format!(
            "{app} rejected the call for task {task} ({answer}); check APP_API_TOKEN and access control"
        )),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            ConsumeError::retry(format!("{app} is busy for task {task}: {answer}"))
        }
        s if s.is_client_error() => ConsumeError::drop(format!(
            "{app} rejected the next occurrence of task {task}: {answer}"
        )),
        _ => ConsumeError::retry(format!(
            "{app} failed to create the next occurrence of task {task}: {answer}"
        )),
    })
}

/// `404 TASK_NOT_FOUND: task … not found` from our `ErrorBody` (`code`) or daprd's
/// (`errorCode`), else the status and the start of the body.
fn describe(status: StatusCode, body: &[u8]) -> String {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["code"].as_str().or(parsed["errorCode"].as_str());
    let message: Cow<'_, str> = match parsed["message"].as_str() {
        Some(m) => m.into(),
        None => String::from_utf8_lossy(body),
    };
    let message: String = message.trim().chars().take(MAX_QUOTED_BODY).collect();
    match code {
        Some(code) => format!("{} {code}: {message}", status.as_u16()),
        None => format!("{}: {message}", status.as_u16()),
    }
}
