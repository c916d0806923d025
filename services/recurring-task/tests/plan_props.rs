//! Property tests of how recurring-task reads a delivered completion (issue 12, generated bad
//! input): [`plan`] on completion events whose task snapshot has any field replaced — a rule
//! of any text, an index of any sign, timestamps at the ends of chrono's range, values of the
//! wrong type — answers a plan or a `DROP`, never a panic, never a `RETRY` (redelivering the
//! same bytes cannot help); and a next occurrence it plans is later than the one completed,
//! with its reminder no later than its due time.

#![allow(clippy::unwrap_used, missing_docs)]

use chrono::{DateTime, TimeZone, Utc};
use contracts::event_types;
use dapr::CloudEvent;
use middleware::DaprStatus;
use proptest::prelude::*;
use recurring_task::occurrence::{Plan, plan};
use serde_json::{Value, json};

/// A completed occurrence of a daily series, as the backend publishes it.
fn snapshot() -> Value {
    json!({
        "id": "0190f3c4-7d2a-7000-8000-000000000001",
        "user_id": "alice",
        "title": "Water the plants",
        "description": "",
        "completed": true,
        "completed_at": "2030-01-02T10:00:00Z",
        "priority": "medium",
        "category": null,
        "tags": [],
        "due_at": "2030-01-02T09:00:00Z",
        "remind_at": "2030-01-02T08:45:00Z",
        "recurrence_rule": "FREQ=DAILY",
        "parent_task_id": null,
        "occurrence_index": 3,
        "created_at": "2030-01-01T00:00:00Z",
        "updated_at": "2030-01-02T10:00:00Z",
    })
}

/// Timestamps as JSON: anywhere in chrono's range, its ends, and text that is no time.
fn timestamp() -> impl Strategy<Value = Value> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        3 => (min..=max, 0u32..1_000_000_000).prop_map(|(s, n)| {
            json!(Utc.timestamp_opt(s, n).single().unwrap())
        }),
        1 => (0i64..253_402_300_799).prop_map(|s| json!(Utc.timestamp_opt(s, 0).single().unwrap())),
        1 => prop::sample::select(vec![
            json!(DateTime::<Utc>::MIN_UTC),
            json!(DateTime::<Utc>::MAX_UTC),
            Value::Null,
            json!("2030-01-02T09:00:00"),
            json!("not a time"),
            json!(0),
        ]),
    ]
}

/// Rules: valid ones, near-valid ones, any text, and no rule.
fn rule() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=MONTHLY;BYMONTHDAY=31;INTERVAL=12", "FREQ=YEARLY;INTERVAL=1000",
            "FREQ=DAILY;COUNT=4", "FREQ=DAILY;UNTIL=20300101", "FREQ=HOURLY", "", " ",
            "FREQ=DAILY;COUNT=0",
        ])
        .prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

/// Any JSON value, for a field of the wrong type.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::from)
    })
}

/// A field of the snapshot and a value for it.
fn edit() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        3 => (prop::sample::select(vec!["due_at", "completed_at", "remind_at"]), timestamp()),
        2 => rule().prop_map(|r| ("recurrence_rule", r)),
        1 => any::<i32>().prop_map(|n| ("occurrence_index", json!(n))),
        1 => (
            prop::sample::select(vec![
                "id", "user_id", "completed", "priority", "tags", "due_at", "occurrence_index",
                "recurrence_rule", "stray",
            ]),
            any_json(),
        ),
    ]
}

/// A delivered event: any type now and then, the snapshot edited, sometimes not an object.
fn event() -> impl Strategy<Value = CloudEvent> {
    let ty = prop_oneof![
        8 => Just(event_types::TASK_COMPLETED.to_owned()),
        1 => Just(event_types::TASK_UPDATED.to_owned()),
        1 => any::<String>(),
    ];
    let data = prop_oneof![
        8 => prop::collection::vec(edit(), 0..5).prop_map(|edits| {
            let mut task = snapshot();
            for (field, value) in edits {
                task[field] = value;
            }
            json!({"schema_version": 1, "user_id": "alice", "task": task})
        }),
        1 => any_json(),
    ];
    (ty, data).prop_map(|(ty, data)| {
        let mut event = CloudEvent::new("evt-1", "/todo/backend", ty);
        event.data = Some(data);
        event
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_completion_is_planned_or_dropped(event in event()) {
        match plan(&event) {
            Ok(Plan::Create(next)) => {
                let task = &event.data.as_ref().unwrap()["task"];
                let time = |field: &str| -> Option<DateTime<Utc>> {
                    serde_json::from_value(task[field].clone()).unwrap()
                };
                let (due, completed) = (time("due_at"), time("completed_at"));
                let anchor = due.or(completed).unwrap();
                prop_assert!(next.due_at > anchor, "{} after {}", next.due_at, anchor);
                if let Some(remind) = next.remind_at {
                    prop_assert!(remind <= next.due_at, "{:?}", next);
                }
                prop_assert_eq!(next.idempotency_key, event.id);
            }
            Ok(Plan::Ignore(_) | Plan::SeriesEnded { .. }) => {}
            Err(e) => prop_assert_eq!(e.status(), DaprStatus::Drop, "{}", e),
        }
    }
}
