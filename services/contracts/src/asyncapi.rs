//! The AsyncAPI 3.0 document of the three topics and their dead-letter topics.
//!
//! Built from [`CONTRACTS`] rather than written by hand: each message's payload is the
//! CloudEvent envelope whose `data` `$ref`s the committed `schemas/<type>.json` (relative to
//! `asyncapi.json`), so the document and the schemas cannot disagree. The operations record
//! which service sends and receives what. Subscriptions live in the services and the Helm
//! chart; the operations also decide [`topic_access`], the only apps the `pubsub` components
//! let publish or subscribe to each topic (a test holds every component file to it).

use serde_json::{Map, Value, json};

use crate::event_types::{
    REMINDER_DUE, REMINDER_SENT, TASK_COMPLETED, TASK_CREATED, TASK_DELETED, TASK_UPDATED,
};
use crate::examples::event_example;
use crate::generate::{COMMAND, SCHEMAS_DIR};
use crate::schema::sorted;
use crate::topics::{self, TASK_EVENTS, TASK_RECURRENCE, TASK_REMINDERS};
use crate::{CONTRACTS, EventContract, SCHEMA_VERSION};

/// One service's use of one topic.
struct Operation {
    service: &'static str,
    send: bool,
    topic: &'static str,
    events: &'static [&'static str],
    summary: &'static str,
}

const TASK_CHANGES: &[&str] = &[TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_DELETED];

/// Who sends and receives what; the tests check it against [`CONTRACTS`].
const OPERATIONS: &[Operation] = &[
    Operation {
        service: "backend",
        send: true,
        topic: TASK_EVENTS,
        events: TASK_CHANGES,
        summary: "The outbox relay publishes every committed task change.",
    },
    Operation {
        service: "backend",
        send: true,
        topic: TASK_RECURRENCE,
        events: &[TASK_COMPLETED],
        summary: "Completions of tasks that have a recurrence rule are also published here.",
    },
    Operation {
        service: "notification",
        send: false,
        topic: TASK_EVENTS,
        events: &[
            TASK_CREATED,
            TASK_UPDATED,
            TASK_COMPLETED,
            TASK_DELETED,
            REMINDER_SENT,
        ],
        summary: "Keeps one reminder job per task in step with `remind_at`; \
                  acknowledges the types it does not act on.",
    },
    Operation {
        service: "notification",
        send: true,
        topic: TASK_REMINDERS,
        events: &[REMINDER_DUE],
        summary: "A reminder job fired and the task still wants its reminder.",
    },
    Operation {
        service: "email-delivery",
        send: false,
        topic: TASK_REMINDERS,
        events: &[REMINDER_DUE],
        summary: "Sends the reminder email, once per event id.",
    },
    Operation {
        service: "email-delivery",
        send: true,
        topic: TASK_EVENTS,
        events: &[REMINDER_SENT],
        summary: "Reports each reminder email the mail server accepted.",
    },
    Operation {
        service: "recurring-task",
        send: false,
        topic: TASK_RECURRENCE,
        events: &[TASK_COMPLETED],
        summary: "Asks the backend for the next occurrence, idempotent on the event id.",
    },
];

/// Who may use which topic, in the three `pubsub` component metadata values Dapr reads
/// (`protectedTopics`, `publishingScopes`, `subscriptionScopes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicAccess {
    /// Every topic and dead-letter topic: only apps a scope names may use them.
    pub protected_topics: String,
    /// `app=topic,topic;app=…`: what each service sends, plus the dead-letter topic of each
    /// topic it receives (daprd publishes what it gives up on under the subscriber's app id).
    pub publishing_scopes: String,
    /// `app=topic;…`: what each service receives.
    pub subscription_scopes: String,
}

/// The access that the contract's operations (`OPERATIONS`) imply; services and topics in a stable (sorted) order.
pub fn topic_access() -> TopicAccess {
    use std::collections::{BTreeMap, BTreeSet};

    let mut publish: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut subscribe: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for op in OPERATIONS {
        if op.send {
            publish
                .entry(op.service)
                .or_default()
                .insert(op.topic.to_owned());
        } else {
            subscribe
                .entry(op.service)
                .or_default()
                .insert(op.topic.to_owned());
            publish
                .entry(op.service)
                .or_default()
                .insert(topics::dead_letter(op.topic));
        }
    }
    let scopes = |map: &BTreeMap<&str, BTreeSet<String>>| {
        map.iter()
            .map(|(app, topics)| {
                format!(
                    "{app}={}",
                    topics
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            })
            .collect::<Vec<_>>()
            .join(";")
    };
    let protected: BTreeSet<String> = topics::ALL
        .iter()
        .flat_map(|t| [(*t).to_owned(), topics::dead_letter(t)])
        .collect();
    TopicAccess {
        protected_topics: protected.into_iter().collect::<Vec<_>>().join(","),
        publishing_scopes: scopes(&publish),
        subscription_scopes: scopes(&subscribe),
    }
}

/// Title and summary of each message.
fn describe(event_type: &str) -> (&'static str, &'static str) {
    match event_type {
        TASK_CREATED => ("Task created", "A task was created."),
        TASK_UPDATED => (
            "Task updated",
            "A task changed; `changed_fields` names the fields.",
        ),
        TASK_COMPLETED => ("Task completed", "A task was marked done."),
        TASK_DELETED => (
            "Task deleted",
            "A task was deleted; `task` is its last state.",
        ),
        REMINDER_DUE => ("Reminder due", "A task's reminder time has come."),
        REMINDER_SENT => ("Reminder sent", "A reminder email went out."),
        _ => ("", ""),
    }
}

fn topic_description(topic: &str) -> &'static str {
    match topic {
        TASK_EVENTS => {
            "Every task change and reminder receipt. Subscribers dispatch on the \
             CloudEvent `type` and acknowledge types they do not know."
        }
        TASK_REMINDERS => "Reminders whose time has come, for email delivery.",
        TASK_RECURRENCE => "Completions of recurring tasks, for generating the next occurrence.",
        _ => "",
    }
}

/// The service that sends `event_type` (the first sending operation), for the example `source`.
fn sender(event_type: &str) -> &'static str {
    OPERATIONS
        .iter()
        .find(|op| op.send && op.events.contains(&event_type))
        .map_or("", |op| op.service)
}

fn message(contract: &EventContract) -> Value {
    let (title, summary) = describe(contract.event_type);
    let examples: Vec<Value> = event_example(contract.event_type, sender(contract.event_type))
        .map(|payload| json!({"name": title, "payload": payload}))
        .into_iter()
        .collect();
    json!({
        "name": contract.event_type,
        "title": title,
        "summary": summary,
        "contentType": "application/cloudevents+json",
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {
                    "type": "object",
                    "required": ["type", "data"],
                    "properties": {
                        "type": {"const": contract.event_type},
                        "data": {"$ref": format!("{SCHEMAS_DIR}/{}", contract.data_schema)}
                    }
                }
            ]
        },
        "examples": examples
    })
}

fn envelope_schema() -> Value {
    json!({
        "type": "object",
        "description": "CloudEvents 1.0, structured mode. Dapr may add extension attributes \
                        (traceparent, tracestate, traceid, topic, pubsubname, expiration); \
                        consumers ignore attributes they do not know.",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "minLength": 1,
                "description": "Unique per event and stable across publish retries \
                                (the outbox row id); consumers de-duplicate on it."
            },
            "source": {
                "type": "string",
                "pattern": "^/todo/[a-z0-9-]+$",
                "description": "`/todo/<service>`, the producing service."
            },
            "type": {"type": "string", "description": "The event type, versioned (`.v1`)."},
            "subject": {"type": "string", "format": "uuid", "description": "The task id."},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "data": {"type": "object"}
        }
    })
}

fn operation_id(op: &Operation) -> String {
    let verb = if op.send { "send" } else { "receive" };
    format!("{}.{verb}.{}", op.service, op.topic)
}

/// The AsyncAPI 3.0 document describing the topics [`topics::ALL`], their dead-letter topics and
/// the messages of [`CONTRACTS`], each payload referencing the committed `schemas/*.json`.
pub fn asyncapi() -> Value {
    let messages: Map<String, Value> = CONTRACTS
        .iter()
        .map(|c| (c.event_type.to_owned(), message(c)))
        .collect();

    let mut channels = Map::new();
    for topic in topics::ALL {
        let carried: Map<String, Value> = CONTRACTS
            .iter()
            .filter(|c| c.topics.contains(topic))
            .map(|c| {
                let reference = format!("#/components/messages/{}", c.event_type);
                (c.event_type.to_owned(), json!({"$ref": reference}))
            })
            .collect();
        let dead_letter = topics::dead_letter(topic);
        let dlq_description = format!(
            "Dead letters of `{topic}`: deliveries a subscriber still failed after the \
             resiliency policy's retries, unchanged, for inspection and replay."
        );
        channels.insert(
            (*topic).to_owned(),
            json!({
                "address": topic,
                "title": topic,
                "description": topic_description(topic),
                "messages": carried.clone()
            }),
        );
        channels.insert(
            dead_letter.clone(),
            json!({
                "address": dead_letter,
                "title": dead_letter,
                "description": dlq_description,
                "messages": carried
            }),
        );
    }

    let operations: Map<String, Value> = OPERATIONS
        .iter()
        .map(|op| {
            let refs: Vec<Value> = op
                .events
                .iter()
                .map(|ty| json!({"$ref": format!("#/channels/{}/messages/{ty}", op.topic)}))
                .collect();
            let body = json!({
                "action": if op.send { "send" } else { "receive" },
                "channel": {"$ref": format!("#/channels/{}", op.topic)},
                "title": format!("{} {}", op.service, if op.send { "publishes" } else { "consumes" }),
                "summary": op.summary,
                "messages": refs
            });
            (operation_id(op), body)
        })
        .collect();

    sorted(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "todo-dapr events",
            "version": SCHEMA_VERSION.to_string(),
            "description": format!(
                "Events between the todo-dapr services, published through the Dapr pub/sub \
                 component `{}` whatever broker backs it. `version` is the payload revision \
                 (`data.schema_version`); breaking changes get a new `.vN` event type instead. \
                 Generated by `{COMMAND}`; do not edit.",
                topics::PUBSUB
            )
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {"CloudEvent": envelope_schema()},
            "messages": messages
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::violations;
    use crate::{event_types, json_schemas};

    #[test]
    fn operations_cover_exactly_the_contract_routes() {
        for c in CONTRACTS {
            for topic in c.topics {
                for send in [true, false] {
                    assert!(
                        OPERATIONS.iter().any(|op| op.send == send
                            && op.topic == *topic
                            && op.events.contains(&c.event_type)),
                        "{} on {topic}: no {} operation",
                        c.event_type,
                        if send { "send" } else { "receive" }
                    );
                }
            }
        }
        for op in OPERATIONS {
            for ty in op.events {
                let routed = EventContract::find(ty).is_some_and(|c| c.topics.contains(&op.topic));
                assert!(routed, "{}: {ty} is not routed to {}", op.service, op.topic);
            }
        }
    }

    #[test]
    fn topic_access_names_each_owner_and_nobody_else() {
        let access = topic_access();
        assert_eq!(
            access.protected_topics,
            "task-events,task-events-dlq,task-recurrence,task-recurrence-dlq,\
             task-reminders,task-reminders-dlq"
        );
        assert_eq!(
            access.publishing_scopes,
            "backend=task-events,task-recurrence;\
             email-delivery=task-events,task-reminders-dlq;\
             notification=task-events-dlq,task-reminders;\
             recurring-task=task-recurrence-dlq"
        );
        assert_eq!(
            access.subscription_scopes,
            "email-delivery=task-reminders;notification=task-events;\
             recurring-task=task-recurrence"
        );
    }

    #[test]
    fn document_shape() {
        let doc = asyncapi();
        assert_eq!(doc["asyncapi"], "3.0.0");
        let channels = doc["channels"].as_object().unwrap();
        assert_eq!(channels.len(), 2 * topics::ALL.len());
        for topic in topics::ALL {
            let dlq = topics::dead_letter(topic);
            assert_eq!(channels[*topic]["address"], *topic);
            assert_eq!(channels[&dlq]["address"], dlq.as_str());
            assert_eq!(channels[*topic]["messages"], channels[&dlq]["messages"]);
        }
        let carried: Vec<&String> = channels[TASK_EVENTS]["messages"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(carried.len(), 5);
        assert!(!carried.iter().any(|k| k.as_str() == REMINDER_DUE));
        assert_eq!(doc["components"]["messages"].as_object().unwrap().len(), 6);
    }

    /// Follows every local `$ref` in `value` and checks it resolves in `doc`.
    fn assert_refs_resolve(doc: &Value, value: &Value, schema_files: &[String]) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    match reference.strip_prefix('#') {
                        Some(pointer) => assert!(doc.pointer(pointer).is_some(), "{reference}"),
                        None => {
                            let file = reference.strip_prefix("schemas/").unwrap();
                            assert!(schema_files.iter().any(|f| f == file), "{reference}");
                        }
                    }
                }
                for v in map.values() {
                    assert_refs_resolve(doc, v, schema_files);
                }
            }
            Value::Array(items) => {
                for v in items {
                    assert_refs_resolve(doc, v, schema_files);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = asyncapi();
        let files: Vec<String> = json_schemas().into_iter().map(|(f, _)| f).collect();
        assert_refs_resolve(&doc, &doc, &files);
    }

    #[test]
    fn examples_are_valid_envelopes_from_the_sending_service() {
        let doc = asyncapi();
        let envelope = &doc["components"]["schemas"]["CloudEvent"];
        for ty in event_types::ALL {
            let message = &doc["components"]["messages"][*ty];
            let example = &message["examples"][0]["payload"];
            let problems = violations(&doc, envelope, example);
            assert!(problems.is_empty(), "{ty}: {problems:#?}");
            assert_eq!(example["type"], *ty);
            let own_type = &message["payload"]["allOf"][1]["properties"]["type"]["const"];
            assert_eq!(own_type, ty);
        }
        let source_of = |ty: &str| {
            doc["components"]["messages"][ty]["examples"][0]["payload"]["source"].clone()
        };
        assert_eq!(source_of(TASK_CREATED), "/todo/backend");
        assert_eq!(source_of(REMINDER_DUE), "/todo/notification");
        assert_eq!(source_of(REMINDER_SENT), "/todo/email-delivery");
    }
}
