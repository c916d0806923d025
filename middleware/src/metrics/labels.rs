//! Bounded label values for what arrives from outside: topics and CloudEvent types.
//!
//! A delivery's `topic` and `type` are whatever the sender wrote, so using them as label
//! values verbatim would let any publisher (or anyone who reaches a subscription route) create
//! a new series per request. Only the names in the event contracts become label values; anything
//! else is counted under [`OTHER`], and the log line of the delivery still carries the raw value.

use contracts::{event_types, topics};

use super::UNKNOWN;

/// `topic`/`type` label value for a name outside the contracts.
pub const OTHER: &str = "other";

/// The `topic` label for `topic`: a topic of [`contracts::topics`], [`UNKNOWN`], or [`OTHER`].
pub fn topic(topic: &str) -> &'static str {
    bounded(topics::ALL, topic)
}

/// The `type` label for `ty`: a type of [`contracts::event_types`], [`UNKNOWN`], or [`OTHER`].
pub fn event_type(ty: &str) -> &'static str {
    bounded(event_types::ALL, ty)
}

fn bounded(known: &[&'static str], value: &str) -> &'static str {
    if value == UNKNOWN {
        return UNKNOWN;
    }
    known
        .iter()
        .copied()
        .find(|name| *name == value)
        .unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_names_keep_their_value() {
        for name in topics::ALL {
            assert_eq!(topic(name), *name);
        }
        for name in event_types::ALL {
            assert_eq!(event_type(name), *name);
        }
        assert_eq!(topic(UNKNOWN), UNKNOWN);
        assert_eq!(event_type(UNKNOWN), UNKNOWN);
    }

    #[test]
    fn anything_else_is_other() {
        for value in [
            "",
            "task-events-dlq",
            "TASK-EVENTS",
            "x\u{1b}[31m",
            "com.evil.v1",
        ] {
            assert_eq!(topic(value), OTHER, "{value:?}");
            assert_eq!(event_type(value), OTHER, "{value:?}");
        }
        // A type is not a topic and vice versa.
        assert_eq!(topic(event_types::TASK_CREATED), OTHER);
        assert_eq!(event_type(topics::TASK_EVENTS), OTHER);
    }
}
