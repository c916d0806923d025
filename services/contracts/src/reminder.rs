//! The `data` of the reminder events.
//!
//! `reminder.due` carries everything the email needs (recipient, title, times), so
//! email-delivery never reads the task database; notification fills it in after re-checking
//! the task when the reminder job fires. `reminder.sent` closes the loop for bookkeeping and
//! audit.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Priority;

/// The `data` of `com.todo.reminder.due.v1` on `task-reminders`: send this reminder now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderDueData {
    /// Payload revision within the major version of the event type (see `SCHEMA_VERSION`).
    pub schema_version: u32,
    /// Owner of the task: the JWT `sub`, verbatim.
    pub user_id: String,
    /// The task the reminder is about.
    pub task_id: Uuid,
    /// Where to send the reminder (the JWT `email` claim of the owner).
    pub recipient_email: String,
    /// The owner's display name, if known.
    pub recipient_name: Option<String>,
    /// Task title, as of the reminder.
    pub title: String,
    /// Task description, possibly empty.
    pub description: String,
    /// Task priority.
    pub priority: Priority,
    /// Task due time, if any.
    pub due_at: Option<DateTime<Utc>>,
    /// The reminder time this event fires for; with `task_id` it identifies the reminder.
    pub remind_at: DateTime<Utc>,
}

/// The `data` of `com.todo.reminder.sent.v1` on `task-events`: a reminder email went out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderSentData {
    /// Payload revision within the major version of the event type (see `SCHEMA_VERSION`).
    pub schema_version: u32,
    /// Owner of the task: the JWT `sub`, verbatim.
    pub user_id: String,
    /// The task the reminder was about.
    pub task_id: Uuid,
    /// The reminder time that fired.
    pub remind_at: DateTime<Utc>,
    /// When the mail server accepted the email.
    pub sent_at: DateTime<Utc>,
    /// CloudEvent `id` of the `com.todo.reminder.due.v1` event that was delivered.
    pub reminder_event_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SCHEMA_VERSION;

    fn due() -> ReminderDueData {
        ReminderDueData {
            schema_version: SCHEMA_VERSION,
            user_id: "auth0|user-42".to_owned(),
            task_id: Uuid::from_u128(9),
            recipient_email: "ada@example.org".to_owned(),
            recipient_name: Some("Ada".to_owned()),
            title: "Water the plants".to_owned(),
            description: String::new(),
            priority: Priority::Urgent,
            due_at: Some("2026-03-02T09:00:00Z".parse().unwrap()),
            remind_at: "2026-03-02T08:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn reminder_payloads_round_trip() {
        let full = due();
        let bare = ReminderDueData {
            recipient_name: None,
            due_at: None,
            ..due()
        };
        let sent = ReminderSentData {
            schema_version: SCHEMA_VERSION,
            user_id: "auth0|user-42".to_owned(),
            task_id: Uuid::from_u128(9),
            remind_at: "2026-03-02T08:00:00Z".parse().unwrap(),
            sent_at: "2026-03-02T08:00:00.250Z".parse().unwrap(),
            reminder_event_id: "0192f5a0-0000-7000-8000-000000000001".to_owned(),
        };
        for value in [&full, &bare] {
            let back: ReminderDueData =
                serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap();
            assert_eq!(&back, value);
        }
        let back: ReminderSentData =
            serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn optional_fields_may_be_absent_and_unknown_ones_are_ignored() {
        let mut json = serde_json::to_value(due()).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("recipient_name");
        obj.remove("due_at");
        obj.insert("locale".to_owned(), "de-DE".into());
        let back: ReminderDueData = serde_json::from_value(json).unwrap();
        assert_eq!(back.recipient_name, None);
        assert_eq!(back.due_at, None);
        assert_eq!(back.priority, Priority::Urgent);
    }
}
