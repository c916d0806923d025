//! The routing table: which topics each event type travels on, and its schema file.
//!
//! A plain `const` table rather than logic scattered over the producers, so the docs, the
//! AsyncAPI document, the subscription tables and the tests all read the same rows.

use crate::event_types::{
    REMINDER_DUE, REMINDER_SENT, TASK_COMPLETED, TASK_CREATED, TASK_DELETED, TASK_UPDATED,
};
use crate::topics::{TASK_EVENTS, TASK_RECURRENCE, TASK_REMINDERS};

/// One event type: the topics it is published to and the JSON Schema of its `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventContract {
    /// The CloudEvent `type`, one of [`crate::event_types::ALL`].
    pub event_type: &'static str,
    /// Every topic the type may be published to (see [`CONTRACTS`] for conditions).
    pub topics: &'static [&'static str],
    /// File name of the `data` schema under the crate's `schemas/` directory.
    pub data_schema: &'static str,
}

impl EventContract {
    /// The row for `event_type`, if it is one of ours.
    pub fn find(event_type: &str) -> Option<&'static EventContract> {
        CONTRACTS.iter().find(|c| c.event_type == event_type)
    }
}

/// One row per event type, in [`crate::event_types::ALL`] order.
///
/// * `task.created/updated/deleted` → `task-events` (backend, through its outbox).
/// * `task.completed` → `task-events`, and **also** `task-recurrence` when the task has a
///   recurrence rule (the same `data`, published once per topic, each copy with its own `id`
///   — the backend's outbox row id — so every consumer deduplicates within its own topic;
///   [`crate::TaskEventData::publish_topics`] applies the condition).
/// * `reminder.due` → `task-reminders` (notification, when a reminder job fires).
/// * `reminder.sent` → `task-events` (email-delivery, after the mail went out): it is part of
///   the task's history, and `task-events` is the audit stream every task-level observer
///   already reads; putting it on `task-reminders` would feed email-delivery its own output.
pub const CONTRACTS: &[EventContract] = &[
    EventContract {
        event_type: TASK_CREATED,
        topics: &[TASK_EVENTS],
        data_schema: "com.todo.task.created.v1.json",
    },
    EventContract {
        event_type: TASK_UPDATED,
        topics: &[TASK_EVENTS],
        data_schema: "com.todo.task.updated.v1.json",
    },
    EventContract {
        event_type: TASK_COMPLETED,
        topics: &[TASK_EVENTS, TASK_RECURRENCE],
        data_schema: "com.todo.task.completed.v1.json",
    },
    EventContract {
        event_type: TASK_DELETED,
        topics: &[TASK_EVENTS],
        data_schema: "com.todo.task.deleted.v1.json",
    },
    EventContract {
        event_type: REMINDER_DUE,
        topics: &[TASK_REMINDERS],
        data_schema: "com.todo.reminder.due.v1.json",
    },
    EventContract {
        event_type: REMINDER_SENT,
        topics: &[TASK_EVENTS],
        data_schema: "com.todo.reminder.sent.v1.json",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event_types, topics};

    #[test]
    fn every_event_type_has_exactly_one_row_in_order() {
        let types: Vec<&str> = CONTRACTS.iter().map(|c| c.event_type).collect();
        assert_eq!(types, event_types::ALL);
        for ty in event_types::ALL {
            let rows = CONTRACTS.iter().filter(|c| c.event_type == *ty).count();
            assert_eq!(rows, 1, "{ty}");
            assert_eq!(EventContract::find(ty).map(|c| c.event_type), Some(*ty));
        }
        assert_eq!(EventContract::find("com.todo.task.created.v2"), None);
    }

    #[test]
    fn rows_use_known_topics_and_schema_file_named_after_type() {
        for c in CONTRACTS {
            assert!(!c.topics.is_empty(), "{}", c.event_type);
            for topic in c.topics {
                assert!(topics::ALL.contains(topic), "{}: {topic}", c.event_type);
            }
            assert_eq!(c.data_schema, format!("{}.json", c.event_type));
        }
    }

    #[test]
    fn every_topic_carries_something() {
        for topic in topics::ALL {
            assert!(
                CONTRACTS.iter().any(|c| c.topics.contains(topic)),
                "{topic}"
            );
        }
    }
}
