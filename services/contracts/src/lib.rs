//! todo-dapr event contracts: the one definition of what travels between the services.
//!
//! Every service and test takes its topic names ([`topics`]), CloudEvent `type` strings
//! ([`event_types`]) and `data` payload types ([`TaskEventData`], [`ReminderDueData`],
//! [`ReminderSentData`]) from this crate. The JSON Schemas under `schemas/` and the AsyncAPI
//! document `asyncapi.json` are generated from the same types
//! (`cargo run -p contracts --bin generate-schemas`) and committed, so a contract change shows
//! up in review as a schema diff; `tests/schemas_in_sync.rs` fails when they drift apart.
//!
//! # Envelope
//!
//! Events are CloudEvents 1.0 in structured mode (`application/cloudevents+json`):
//! `id` is the outbox row's UUID (stable across publish retries, so consumers de-duplicate on
//! it), `source` is [`source`]`(service)`, `subject` the task id, `type` one of
//! [`event_types::ALL`] and `data` the payload type listed for it in [`CONTRACTS`], which also
//! says on which topic(s) each type travels.
//!
//! # Versioning
//!
//! * The `type` carries the **major** version (`com.todo.task.created.v1`). Only a breaking
//!   change — removing or renaming a field, changing its type or meaning — makes a new type
//!   (`….v2`) with its own schema file and [`CONTRACTS`] row; producers then publish both
//!   until every consumer has moved.
//! * **Additive** changes (a new field, optional for readers) keep the type. They raise
//!   [`SCHEMA_VERSION`], the payload revision carried in every `data.schema_version`, so a
//!   consumer can tell "this producer predates the field" from "the field is empty".
//! * Consumers **ignore unknown fields** (no type here sets `deny_unknown_fields`), never
//!   reject a higher `schema_version`, and acknowledge event types they do not handle, so
//!   producers can be upgraded first.

mod asyncapi;
mod contract;
pub mod event_types;
mod examples;
pub mod generate;
mod priority;
mod reminder;
mod schema;
mod task;
pub mod topics;

pub use asyncapi::{TopicAccess, asyncapi, topic_access};
pub use contract::{CONTRACTS, EventContract};
pub use priority::{ParsePriorityError, Priority};
pub use reminder::{ReminderDueData, ReminderSentData};
pub use schema::json_schemas;
pub use task::{CategoryRef, TagRef, TaskEventData, TaskSnapshot};

/// Revision of the v1 payloads, written into every `data.schema_version`; raised by additive changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The CloudEvent `source` of events produced by `service`: `/todo/<service>`.
pub fn source(service: &str) -> String {
    format!("/todo/{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_prefixed_service_name() {
        assert_eq!(source("backend"), "/todo/backend");
        assert_eq!(source("email-delivery"), "/todo/email-delivery");
    }
}
