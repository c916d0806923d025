//! Hand-written example events, one per event type, shown in the AsyncAPI document.
//!
//! They are JSON literals, not values serialized from the Rust types, so the tests that
//! deserialize them and check them against the schemas catch a type whose wire form drifted
//! from what we document.

use serde_json::{Map, Value, json};

use crate::event_types::{
    REMINDER_DUE, REMINDER_SENT, TASK_COMPLETED, TASK_CREATED, TASK_DELETED, TASK_UPDATED,
};

const TASK_ID: &str = "0195b4e2-6f1c-7a3d-9b2f-4e5d6c7b8a91";
const USER_ID: &str = "auth0|6612f0c3a1b2";
/// CloudEvent `id` of the `reminder.due` example, echoed by the `reminder.sent` example.
const REMINDER_DUE_ID: &str = "0195b5a0-0c00-7000-8000-000000000005";

/// The task in its first, open state.
fn task() -> Value {
    json!({
        "id": TASK_ID,
        "user_id": USER_ID,
        "title": "Submit the quarterly report",
        "description": "PDF to finance, CC the team lead",
        "completed": false,
        "completed_at": null,
        "priority": "high",
        "category": {
            "id": "0195b4e1-0000-7000-8000-00000000c0a1",
            "name": "Work",
            "color": "#1F77B4"
        },
        "tags": [
            {"id": "0195b4e1-0000-7000-8000-0000000007a1", "name": "finance", "color": null},
            {"id": "0195b4e1-0000-7000-8000-0000000007a2", "name": "monthly", "color": "#FF7F0E"}
        ],
        "due_at": "2026-03-31T17:00:00Z",
        "remind_at": null,
        "recurrence_rule": "FREQ=MONTHLY;BYMONTHDAY=-1",
        "parent_task_id": null,
        "occurrence_index": 0,
        "created_at": "2026-03-02T09:12:44.518Z",
        "updated_at": "2026-03-02T09:12:44.518Z"
    })
}

fn task_event(task: Value, changed_fields: Option<Value>) -> Value {
    let mut data: Map<String, Value> = [
        ("schema_version", json!(1)),
        ("user_id", json!(USER_ID)),
        ("task", task),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    if let Some(fields) = changed_fields {
        data.insert("changed_fields".to_owned(), fields);
    }
    Value::Object(data)
}

/// `task` with `fields` overwritten.
fn with(mut task: Value, fields: Value) -> Value {
    if let (Some(obj), Value::Object(fields)) = (task.as_object_mut(), fields) {
        obj.extend(fields);
    }
    task
}

/// An example `data` for `event_type`, or `None` for a type that is not ours.
pub(crate) fn data_example(event_type: &str) -> Option<Value> {
    let reminded = || {
        with(
            task(),
            json!({
                "priority": "urgent",
                "remind_at": "2026-03-31T16:00:00Z",
                "updated_at": "2026-03-03T10:00:05.002Z"
            }),
        )
    };
    let done = || {
        with(
            reminded(),
            json!({
                "completed": true,
                "completed_at": "2026-03-31T15:42:10.770Z",
                "updated_at": "2026-03-31T15:42:10.770Z"
            }),
        )
    };
    Some(match event_type {
        TASK_CREATED => task_event(task(), None),
        TASK_UPDATED => task_event(reminded(), Some(json!(["priority", "remind_at"]))),
        TASK_COMPLETED => task_event(done(), None),
        TASK_DELETED => task_event(done(), None),
        REMINDER_DUE => json!({
            "schema_version": 1,
            "user_id": USER_ID,
            "task_id": TASK_ID,
            "recipient_email": "ada@example.org",
            "recipient_name": "Ada Lovelace",
            "title": "Submit the quarterly report",
            "description": "PDF to finance, CC the team lead",
            "priority": "urgent",
            "due_at": "2026-03-31T17:00:00Z",
            "remind_at": "2026-03-31T16:00:00Z"
        }),
        REMINDER_SENT => json!({
            "schema_version": 1,
            "user_id": USER_ID,
            "task_id": TASK_ID,
            "remind_at": "2026-03-31T16:00:00Z",
            "sent_at": "2026-03-31T16:00:00.840Z",
            "reminder_event_id": REMINDER_DUE_ID
        }),
        _ => return None,
    })
}

/// A whole structured-mode CloudEvent of `event_type` as `service` publishes it.
pub(crate) fn event_example(event_type: &str, service: &str) -> Option<Value> {
    let data = data_example(event_type)?;
    let (id, time) = match event_type {
        TASK_CREATED => (
            "0195b4e2-6f1c-7000-8000-000000000001",
            "2026-03-02T09:12:44.518Z",
        ),
        TASK_UPDATED => (
            "0195b9c1-1a2b-7000-8000-000000000002",
            "2026-03-03T10:00:05.002Z",
        ),
        TASK_COMPLETED => (
            "0195e6f0-3c4d-7000-8000-000000000003",
            "2026-03-31T15:42:10.770Z",
        ),
        TASK_DELETED => (
            "0195e6f8-5e6f-7000-8000-000000000004",
            "2026-03-31T16:20:00Z",
        ),
        REMINDER_DUE => (REMINDER_DUE_ID, "2026-03-31T16:00:00.310Z"),
        _ => (
            "0195b5a0-0c00-7000-8000-000000000006",
            "2026-03-31T16:00:00.840Z",
        ),
    };
    Some(json!({
        "specversion": "1.0",
        "id": id,
        "source": crate::source(service),
        "type": event_type,
        "subject": TASK_ID,
        "time": time,
        "datacontenttype": "application/json",
        "data": data
    }))
}
