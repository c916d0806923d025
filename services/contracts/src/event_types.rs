//! CloudEvent `type` strings.
//!
//! Reverse-DNS names ending in the major version (`.v1`); see the crate docs for when that
//! suffix changes. Consumers route on these exact strings, so they are constants rather than
//! something built from parts.

/// A task was created (by a person, the assistant, or recurring-task's next occurrence).
pub const TASK_CREATED: &str = "com.todo.task.created.v1";
/// A task's fields changed; `data.changed_fields` names them.
pub const TASK_UPDATED: &str = "com.todo.task.updated.v1";
/// A task was marked done.
pub const TASK_COMPLETED: &str = "com.todo.task.completed.v1";
/// A task was deleted; `data.task` is its last state.
pub const TASK_DELETED: &str = "com.todo.task.deleted.v1";
/// A task's reminder time has come; email-delivery should send the reminder.
pub const REMINDER_DUE: &str = "com.todo.reminder.due.v1";
/// email-delivery sent a reminder.
pub const REMINDER_SENT: &str = "com.todo.reminder.sent.v1";

/// Every event type, task events first.
pub const ALL: &[&str] = &[
    TASK_CREATED,
    TASK_UPDATED,
    TASK_COMPLETED,
    TASK_DELETED,
    REMINDER_DUE,
    REMINDER_SENT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_distinct_versioned_and_namespaced() {
        for (i, ty) in ALL.iter().enumerate() {
            assert!(ty.starts_with("com.todo."), "{ty}");
            assert!(ty.ends_with(".v1"), "{ty}");
            assert!(!ALL[i + 1..].contains(ty), "{ty} listed twice");
        }
    }
}
