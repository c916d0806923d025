//! Pub/sub component and topic names.
//!
//! The topic names are the original system's, so dashboards and runbooks keep working. The
//! component is always called [`PUBSUB`] whatever broker backs it (Redis, Kafka, RabbitMQ):
//! swapping brokers changes a component YAML, never code. Each subscription sends what it gives
//! up on to [`dead_letter`]`(topic)`.

/// Name of the Dapr pub/sub component every service publishes to and subscribes through.
pub const PUBSUB: &str = "pubsub";

/// Every task change (`com.todo.task.*.v1`) and `com.todo.reminder.sent.v1`; read by notification.
pub const TASK_EVENTS: &str = "task-events";

/// `com.todo.reminder.due.v1`: reminders whose time has come; read by email-delivery.
pub const TASK_REMINDERS: &str = "task-reminders";

/// `com.todo.task.completed.v1` of tasks with a recurrence rule; read by recurring-task.
pub const TASK_RECURRENCE: &str = "task-recurrence";

/// The three topics, in data-flow order.
pub const ALL: &[&str] = &[TASK_EVENTS, TASK_REMINDERS, TASK_RECURRENCE];

/// What [`dead_letter`] appends to a topic name.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// The dead-letter topic of `topic`: `<topic>-dlq`.
pub fn dead_letter(topic: &str) -> String {
    format!("{topic}{DEAD_LETTER_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_appends_suffix() {
        assert_eq!(dead_letter(TASK_EVENTS), "task-events-dlq");
        assert_eq!(dead_letter(TASK_REMINDERS), "task-reminders-dlq");
        assert_eq!(dead_letter(TASK_RECURRENCE), "task-recurrence-dlq");
    }

    #[test]
    fn topics_are_distinct_and_not_dead_letters() {
        for (i, topic) in ALL.iter().enumerate() {
            assert!(!topic.ends_with(DEAD_LETTER_SUFFIX), "{topic}");
            assert!(!ALL[i + 1..].contains(topic), "{topic} listed twice");
        }
    }
}
