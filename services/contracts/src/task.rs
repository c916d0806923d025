//! The `data` of the `com.todo.task.*.v1` events: a full task snapshot.
//!
//! Every task event carries the whole task as of the event rather than a diff, so a consumer
//! never needs to call the backend to act on it (notification reads `remind_at`,
//! recurring-task reads `recurrence_rule` and `due_at`) and a late or replayed event is still
//! self-describing. Updates add the names of the fields that changed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CONTRACTS, Priority, SCHEMA_VERSION, topics};

/// The category a task belongs to, as of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryRef {
    /// Category id.
    pub id: Uuid,
    /// Category name, unique per user.
    pub name: String,
    /// Display colour, `#RRGGBB`, if set.
    pub color: Option<String>,
}

/// A tag on a task, as of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TagRef {
    /// Tag id.
    pub id: Uuid,
    /// Tag name, unique per user.
    pub name: String,
    /// Display colour, `#RRGGBB`, if set.
    pub color: Option<String>,
}

/// The full task as of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskSnapshot {
    /// Task id; also the CloudEvent `subject`.
    pub id: Uuid,
    /// Owner: the JWT `sub` of the user, verbatim.
    pub user_id: String,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Free text, possibly empty.
    pub description: String,
    /// Whether the task is done.
    pub completed: bool,
    /// When it was marked done; null while open.
    pub completed_at: Option<DateTime<Utc>>,
    /// Priority.
    pub priority: Priority,
    /// Category, if any.
    pub category: Option<CategoryRef>,
    /// Tags (at most 10).
    pub tags: Vec<TagRef>,
    /// Due time, if any.
    pub due_at: Option<DateTime<Utc>>,
    /// When to send the reminder, if one is set.
    pub remind_at: Option<DateTime<Utc>>,
    /// RFC 5545 RRULE (without `RRULE:`), if the task repeats.
    pub recurrence_rule: Option<String>,
    /// The task this one is an occurrence of; null for a series' first task and one-off tasks.
    pub parent_task_id: Option<Uuid>,
    /// Position in its series: 0 for the first task, n for the n-th generated occurrence.
    pub occurrence_index: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change time.
    pub updated_at: DateTime<Utc>,
}

impl TaskSnapshot {
    /// Whether the task repeats (has a non-blank recurrence rule).
    pub fn is_recurring(&self) -> bool {
        self.recurrence_rule
            .as_deref()
            .is_some_and(|rule| !rule.trim().is_empty())
    }
}

/// The `data` of every `com.todo.task.*.v1` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskEventData {
    /// Payload revision within the major version of the event type (see `SCHEMA_VERSION`).
    pub schema_version: u32,
    /// Owner of the task: the JWT `sub`, verbatim (equal to `task.user_id`).
    pub user_id: String,
    /// The task as of the event; for deletions, its last state.
    pub task: TaskSnapshot,
    /// For updates: the snapshot fields that changed (e.g. `title`, `remind_at`). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
}

impl TaskEventData {
    /// The data of an event about `task`, at the current [`SCHEMA_VERSION`], owned by its user.
    pub fn new(task: TaskSnapshot) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            user_id: task.user_id.clone(),
            task,
            changed_fields: Vec::new(),
        }
    }

    /// The same data with the names of the changed fields (for `com.todo.task.updated.v1`).
    #[must_use]
    pub fn with_changed_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.changed_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The topics an event of `event_type` with this data goes to, per [`CONTRACTS`]:
    /// [`topics::TASK_RECURRENCE`] only when the task repeats. Empty for unknown types.
    pub fn publish_topics(&self, event_type: &str) -> Vec<&'static str> {
        CONTRACTS
            .iter()
            .filter(|c| c.event_type == event_type)
            .flat_map(|c| c.topics.iter().copied())
            .filter(|&topic| topic != topics::TASK_RECURRENCE || self.task.is_recurring())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_types;

    /// A task with every optional field set.
    fn full_task() -> TaskSnapshot {
        TaskSnapshot {
            id: Uuid::from_u128(0x0192_f5a0_7c1e_7d3a_9b2f_4e5d_6c7b_8a91),
            user_id: "auth0|user-42".to_owned(),
            title: "Water the plants".to_owned(),
            description: "Balcony and kitchen".to_owned(),
            completed: true,
            completed_at: Some("2026-03-02T08:15:30.123456Z".parse().unwrap()),
            priority: Priority::High,
            category: Some(CategoryRef {
                id: Uuid::from_u128(1),
                name: "Home".to_owned(),
                color: Some("#22AA66".to_owned()),
            }),
            tags: vec![
                TagRef {
                    id: Uuid::from_u128(2),
                    name: "garden".to_owned(),
                    color: None,
                },
                TagRef {
                    id: Uuid::from_u128(3),
                    name: "weekly".to_owned(),
                    color: Some("#0000FF".to_owned()),
                },
            ],
            due_at: Some("2026-03-02T09:00:00Z".parse().unwrap()),
            remind_at: Some("2026-03-02T08:00:00Z".parse().unwrap()),
            recurrence_rule: Some("FREQ=WEEKLY;BYDAY=MO".to_owned()),
            parent_task_id: Some(Uuid::from_u128(4)),
            occurrence_index: 3,
            created_at: "2026-02-23T07:00:00Z".parse().unwrap(),
            updated_at: "2026-03-02T08:15:30.123456Z".parse().unwrap(),
        }
    }

    /// A one-off open task with no optional field set.
    fn bare_task() -> TaskSnapshot {
        TaskSnapshot {
            id: Uuid::from_u128(5),
            user_id: "user-7".to_owned(),
            title: "t".to_owned(),
            description: String::new(),
            completed: false,
            completed_at: None,
            priority: Priority::default(),
            category: None,
            tags: Vec::new(),
            due_at: None,
            remind_at: None,
            recurrence_rule: None,
            parent_task_id: None,
            occurrence_index: 0,
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            updated_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn round_trip<T>(value: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, value, "{json}");
    }

    #[test]
    fn task_payloads_round_trip() {
        round_trip(&full_task());
        round_trip(&bare_task());
        round_trip(&TaskEventData::new(full_task()));
        round_trip(&TaskEventData::new(bare_task()).with_changed_fields(["title", "priority"]));
        round_trip(&CategoryRef {
            id: Uuid::nil(),
            name: "n".to_owned(),
            color: None,
        });
        round_trip(&TagRef {
            id: Uuid::max(),
            name: "n".to_owned(),
            color: Some("#000000".to_owned()),
        });
    }

    #[test]
    fn new_fills_version_and_owner() {
        let data = TaskEventData::new(full_task());
        assert_eq!(data.schema_version, SCHEMA_VERSION);
        assert_eq!(data.user_id, "auth0|user-42");
        assert!(data.changed_fields.is_empty());
    }

    #[test]
    fn empty_changed_fields_are_omitted_and_default_when_absent() {
        let json = serde_json::to_value(TaskEventData::new(bare_task())).unwrap();
        assert!(json.get("changed_fields").is_none(), "{json}");
        let back: TaskEventData = serde_json::from_value(json).unwrap();
        assert!(back.changed_fields.is_empty());

        let updated = TaskEventData::new(bare_task()).with_changed_fields(["title"]);
        let json = serde_json::to_value(updated).unwrap();
        assert_eq!(json["changed_fields"], serde_json::json!(["title"]));
    }

    #[test]
    fn wire_form_is_snake_case_rfc3339_and_explicit_nulls() {
        let json = serde_json::to_value(full_task()).unwrap();
        assert_eq!(json["due_at"], "2026-03-02T09:00:00Z");
        assert_eq!(json["completed_at"], "2026-03-02T08:15:30.123456Z");
        assert_eq!(json["priority"], "high");
        assert_eq!(
            json["parent_task_id"],
            "00000000-0000-0000-0000-000000000004"
        );
        assert_eq!(json["occurrence_index"], 3);
        let json = serde_json::to_value(bare_task()).unwrap();
        assert!(json["remind_at"].is_null());
        assert!(json["category"].is_null());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut json = serde_json::to_value(TaskEventData::new(full_task())).unwrap();
        json["added_in_a_later_revision"] = serde_json::json!({"x": 1});
        json["task"]["estimate_minutes"] = serde_json::json!(30);
        let back: TaskEventData = serde_json::from_value(json).unwrap();
        assert_eq!(back, TaskEventData::new(full_task()));
    }

    #[test]
    fn completed_goes_to_recurrence_only_when_the_task_repeats() {
        let recurring = TaskEventData::new(full_task());
        assert_eq!(
            recurring.publish_topics(event_types::TASK_COMPLETED),
            [topics::TASK_EVENTS, topics::TASK_RECURRENCE]
        );
        let one_off = TaskEventData::new(bare_task());
        assert_eq!(
            one_off.publish_topics(event_types::TASK_COMPLETED),
            [topics::TASK_EVENTS]
        );
        let mut blank_rule = bare_task();
        blank_rule.recurrence_rule = Some("  ".to_owned());
        assert!(!blank_rule.is_recurring());
        for ty in [
            event_types::TASK_CREATED,
            event_types::TASK_UPDATED,
            event_types::TASK_DELETED,
        ] {
            assert_eq!(recurring.publish_topics(ty), [topics::TASK_EVENTS], "{ty}");
        }
        assert!(recurring.publish_topics("com.todo.unknown.v1").is_empty());
    }
}
