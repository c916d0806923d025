//! Property tests of [`CloudEvent`] decoding (issue 12, generated bad input): whatever JSON a
//! delivery holds, decoding and reading its payload answer `Ok` or a typed error, never a
//! panic, and what decodes encodes back to the same event.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::*;

/// Attribute names with a field of their own; the rest land in `extensions`.
const KNOWN: [&str; 14] = [
    "id",
    "source",
    "specversion",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
    "traceparent",
    "tracestate",
    "topic",
    "pubsubname",
];

/// Any JSON value, floats included, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    json_tree(prop_oneof![
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        json_leaf(),
    ])
}

/// JSON without floats: serde_json parses floats to within one ulp by default (without its
/// `float_roundtrip` feature), so byte round trips compare on integers and text only.
fn exact_json() -> impl Strategy<Value = Value> {
    json_tree(json_leaf())
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
    .boxed()
}

fn json_tree(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(any::<String>())
}

/// A CloudEvent as Dapr could deliver it: any attribute values, extensions under other names.
fn any_event() -> impl Strategy<Value = CloudEvent> {
    let core = (
        any::<String>(),
        any::<String>(),
        prop_oneof![Just(SPEC_VERSION.to_owned()), any::<String>()],
        any::<String>(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
    );
    let payload = (
        // `Some(Null)` is written as `"data": null`, which reads back as no data.
        prop::option::of(exact_json().prop_filter("data null is absent", |v| !v.is_null())),
        opt_text(),
    );
    let routing = (opt_text(), opt_text(), opt_text(), opt_text());
    let extensions = prop::collection::btree_map(
        "[a-z][a-z0-9]{0,12}".prop_filter("not an attribute of its own", |k| {
            !KNOWN.contains(&k.as_str())
        }),
        exact_json(),
        0..4,
    );
    (core, payload, routing, extensions).prop_map(
        |(
            (id, source, specversion, ty, subject, time, datacontenttype, dataschema),
            (data, data_base64),
            (traceparent, tracestate, topic, pubsubname),
            extensions,
        )| CloudEvent {
            id,
            source,
            specversion,
            ty,
            subject,
            time,
            datacontenttype,
            dataschema,
            data,
            data_base64,
            traceparent,
            tracestate,
            topic,
            pubsubname,
            extensions: extensions.into_iter().collect(),
        },
    )
}

/// A JSON object that is mostly a CloudEvent: a valid event with one attribute replaced by any
/// value, removed, or joined by a stray one.
fn mutated_event_json() -> impl Strategy<Value = Value> {
    let base = serde_json::to_value(
        CloudEvent::new("e-1", "/todo/backend", "com.todo.task.created.v1")
            .with_subject("7")
            .with_json_data(&serde_json::json!({"task_id": 7}))
            .unwrap(),
    )
    .unwrap();
    (
        prop::sample::select(KNOWN.to_vec()),
        prop::option::of(any_json()),
    )
        .prop_map(move |(name, replacement)| {
            let mut object = base.clone();
            let map = object.as_object_mut().unwrap();
            match replacement {
                Some(value) => map.insert(name.to_owned(), value),
                None => map.remove(name),
            };
            object
        })
}

/// A payload type with a struct shape, as our consumers read.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Payload {
    task_id: u64,
    title: Option<String>,
}

/// Reads the payload in every way a consumer might; none may panic.
fn read_payload(event: &CloudEvent) {
    let _ = event.data_as::<Value>();
    let _ = event.data_as::<Payload>();
    let _ = event.data_as::<Option<Payload>>();
    if let Ok(value) = event.data_object_as::<Value>() {
        assert!(value.is_object(), "data_object_as gave {value}");
    }
    let _ = event.data_object_as::<Payload>();
    let _ = event.validate();
    let _ = event.is_json();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes: a typed error or an event, and a decoded event re-encodes to itself.
    #[test]
    fn arbitrary_bytes_decode_or_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(event) = serde_json::from_slice::<CloudEvent>(&bytes) {
            read_payload(&event);
            let bytes = serde_json::to_vec(&event).unwrap();
            let again: CloudEvent = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(again, event);
        }
    }

    /// Arbitrary JSON values (objects mostly not events) decode or fail, never panic.
    #[test]
    fn arbitrary_json_decodes_or_fails_typed(value in any_json()) {
        if let Ok(event) = serde_json::from_value::<CloudEvent>(value) {
            read_payload(&event);
        }
    }

    /// A valid event with one attribute mutated: decoding, validating and reading the payload
    /// answer without panicking; one that still decodes keeps its attributes on a round trip.
    #[test]
    fn mutated_events_decode_or_fail_typed(value in mutated_event_json()) {
        if let Ok(event) = serde_json::from_value::<CloudEvent>(value) {
            read_payload(&event);
            let value = serde_json::to_value(&event).unwrap();
            let again: CloudEvent = serde_json::from_value(value).unwrap();
            prop_assert_eq!(again, event);
        }
    }

    /// Any event, extensions included, serialises and decodes back to itself.
    #[test]
    fn events_round_trip(event in any_event()) {
        read_payload(&event);
        let bytes = serde_json::to_vec(&event).unwrap();
        let again: CloudEvent = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&again, &event);
        prop_assert_eq!(again.validate().is_ok(), event.validate().is_ok());
    }

    /// Any base64-ish text in `data_base64`, under any content type: a typed error or a value.
    #[test]
    fn data_base64_never_panics(text in any::<String>(), content_type in opt_text()) {
        let mut event = CloudEvent::new("i", "s", "t");
        event.data_base64 = Some(text);
        event.datacontenttype = content_type;
        read_payload(&event);
    }

    /// Any string in `data` (JSON text or not), under any content type.
    #[test]
    fn data_strings_never_panic(text in any::<String>(), content_type in opt_text()) {
        let mut event = CloudEvent::new("i", "s", "t");
        event.data = Some(Value::String(text));
        event.datacontenttype = content_type;
        read_payload(&event);
    }

    /// A JSON object payload reads back equal, sent as `data`, as JSON text in `data`, or as
    /// `data_base64`.
    #[test]
    fn object_payloads_round_trip(
        object in prop::collection::btree_map(any::<String>(), exact_json(), 0..6),
    ) {
        let object = Value::Object(object.into_iter().collect::<Map<_, _>>());
        let event = CloudEvent::new("i", "s", "t").with_json_data(&object).unwrap();
        prop_assert_eq!(&event.data_object_as::<Value>().unwrap(), &object);

        let mut as_text = event.clone();
        as_text.data = Some(Value::String(object.to_string()));
        prop_assert_eq!(&as_text.data_object_as::<Value>().unwrap(), &object);

        let mut binary = event;
        binary.data = None;
        binary.data_base64 = Some(STANDARD_PAD_INDIFFERENT.encode(object.to_string()));
        prop_assert_eq!(binary.data_object_as::<Value>().unwrap(), object);
    }
}
