//! todo-dapr notification: task events in, reminder jobs kept, `reminder.due` events out.
//!
//! Data flow (`docs/architecture.md`): the backend's task events arrive on `task-events`
//! ([`subscriptions`]); [`reminders`] keeps exactly one one-shot Dapr job
//! `reminder-<task_id>` per task in line with the newest snapshot, scheduled through **our
//! own** sidecar because Dapr calls a job back only on the app id that scheduled it. When the
//! job fires, [`trigger`] re-checks the task with the backend (service invocation) and
//! publishes `com.todo.reminder.due.v1` on `task-reminders` for email-delivery. [`sweep`]
//! holds the backend's pending reminders against what the guard applied, so a reminder whose
//! event was lost or stuck is still scheduled.
//!
//! The service keeps no state in memory that matters: it runs as several replicas of one app
//! id, and ordering (which snapshot is newest) and idempotency (which reminder already went
//! out) live in the Dapr state store. Modules: [`config`] (environment), [`cli`], [`app`]
//! (router and layer order, with health from [`middleware::health`]), [`metrics`]
//! (reminder-specific collectors).

pub mod app;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod reminders;
pub mod sweep;
pub mod trigger;

#[cfg(test)]
mod tests;

use contracts::topics;
use dapr::{Subscription, SubscriptionTable};

/// This service's name: its Dapr app id, its metrics `service` label and its CloudEvent source.
pub const SERVICE: &str = "notification";

/// Path daprd delivers `task-events` to.
pub const TASK_EVENTS_ROUTE: &str = "/events/task-events";

/// The topics this service consumes: `task-events` → [`TASK_EVENTS_ROUTE`], dead letters to
/// `task-events-dlq`. Served on `GET /dapr/subscribe` and rendered as the committed
/// `dapr/subscriptions/notification.yaml` (`notification --print-subscriptions`).
pub fn subscriptions() -> SubscriptionTable {
    SubscriptionTable::new().add(
        Subscription::new(topics::PUBSUB, topics::TASK_EVENTS, TASK_EVENTS_ROUTE)
            .with_dead_letter_topic(topics::dead_letter(topics::TASK_EVENTS)),
    )
}

/// The declarative `Subscription` manifests of [`subscriptions`], scoped to [`SERVICE`].
pub fn subscriptions_yaml() -> Result<String, dapr::Error> {
    subscriptions().to_declarative_yaml(&[SERVICE.to_owned()])
}
