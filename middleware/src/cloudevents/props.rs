//! Property tests of the CloudEvent decoding layer (issue 12, generated bad input): whatever
//! daprd could deliver — any bytes under any content type, `ce-*` headers with any values, a
//! valid event with one attribute mutated, a body over the limit — the layer never panics and
//! answers `200` with `SUCCESS` (the handler ran) or `DROP` (poison, before the handler);
//! never `RETRY`, which would redeliver the poison forever. Valid events reach the handler as
//! they were sent.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::{Extension, Router, routing::post};
use contracts::TaskEventData;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};

use super::decode::decode;
use super::*;
use crate::DaprStatusLayer;

/// Body limit of the app under test: small, so generated bodies cross it.
const LIMIT: usize = 512;

/// The events the handlers received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<CloudEvent>>>);

impl Seen {
    fn take(&self) -> Vec<CloudEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Two subscription routes as the consumers have them: any JSON object, and a contract type.
fn app(seen: &Seen) -> Router {
    let value = {
        let seen = seen.clone();
        move |event: Event<Value>| async move {
            seen.0.lock().unwrap().push(event.event);
            DaprStatus::Success
        }
    };
    let typed = {
        let seen = seen.clone();
        move |event: Event<TaskEventData>, Extension(raw): Extension<CloudEvent>| async move {
            assert_eq!(event.event, raw);
            seen.0.lock().unwrap().push(raw);
            DaprStatus::Success
        }
    };
    Router::new()
        .route("/events/value", post(value))
        .route("/events/typed", post(typed))
        .route_layer(
            ServiceBuilder::new()
                .layer(CloudEventLayer::new().max_body_bytes(LIMIT))
                .layer(DaprStatusLayer::new()),
        )
}

/// Sends one delivery and returns the HTTP status and the Dapr status of the answer.
fn deliver(seen: &Seen, req: Request<Body>) -> (StatusCode, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let res = app(seen).oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{status} answered non-JSON {body:?}"));
        (
            status,
            json["status"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

/// Any JSON value, floats included.
fn any_json() -> impl Strategy<Value = Value> {
    json_tree(prop_oneof![
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        exact_leaf(),
    ])
}

/// JSON without floats, which serde_json reads back only to within one ulp by default: for
/// the payloads of round trips.
fn exact_json() -> impl Strategy<Value = Value> {
    json_tree(exact_leaf())
}

fn exact_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
    .boxed()
}

fn json_tree(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Content types daprd and odd publishers send, and anything else.
fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(known_or_any(
        &[
            "application/cloudevents+json",
            "application/cloudevents+json; charset=utf-8",
            "application/cloudevents-batch+json",
            "application/json",
            "text/plain",
            "application/octet-stream",
        ],
        "[ -~]{0,40}",
    ))
}

/// One of `known`, or a string matching `other`; weighted so each known value is as likely
/// as the open-ended arm, as one `prop_oneof!` arm per value would be.
fn known_or_any(known: &[&str], other: &'static str) -> BoxedStrategy<String> {
    let known: Vec<String> = known.iter().map(|s| (*s).to_owned()).collect();
    let weight = u32::try_from(known.len()).unwrap();
    prop_oneof![weight => prop::sample::select(known), 1 => other].boxed()
}

/// `ce-*` headers, known attributes and extensions, with any value a header can carry
/// (including bytes that are not visible ASCII).
fn ce_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = known_or_any(
        &[
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-specversion",
            "ce-subject",
            "ce-time",
            "ce-topic",
            "ce-traceparent",
        ],
        "ce-[a-z]{1,8}",
    );
    let value = prop_oneof![
        Just(b"1.0".to_vec()),
        "[ -~]{0,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..20),
    ];
    prop::collection::vec((name, value), 0..8)
}

/// The headers of a delivery; values a header cannot carry are left out.
fn headers(content_type: Option<&str>, ce: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(ct).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    for (name, value) in ce {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
    }
    headers
}

fn request(
    path: &str,
    content_type: Option<&str>,
    ce: &[(String, Vec<u8>)],
    body: Vec<u8>,
) -> Request<Body> {
    let mut req = Request::post(path).body(Body::from(body)).unwrap();
    *req.headers_mut() = headers(content_type, ce);
    req
}

/// A valid event of our own shape, with any printable attribute values.
fn valid_event() -> impl Strategy<Value = CloudEvent> {
    let text = "[!-~][ -~]{0,30}";
    (
        (text, text, text),
        prop::option::of(text),
        prop::option::of("[a-z-]{1,20}"),
        prop::collection::btree_map("[a-z_]{1,10}", exact_json(), 0..5),
    )
        .prop_map(|((id, source, ty), subject, topic, data)| {
            let mut event = CloudEvent::new(id, source, ty)
                .with_json_data(&Value::Object(data.into_iter().collect()))
                .unwrap();
            event.subject = subject;
            event.topic = topic;
            event.pubsubname = Some("pubsub".to_owned());
            event
        })
}

/// What a route may answer: `200` with `SUCCESS` exactly when the handler saw the event,
/// `DROP` otherwise.
fn assert_settled(answer: &(StatusCode, String), handled: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(answer.0, StatusCode::OK);
    match answer.1.as_str() {
        "SUCCESS" => prop_assert_eq!(handled, 1),
        "DROP" => prop_assert_eq!(handled, 0),
        other => prop_assert!(false, "answered {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The decoder on any headers and bytes: an event that validates, or a rejection with a
    /// reason.
    #[test]
    fn decode_answers_an_event_or_a_reason(
        ct in content_type(),
        ce in ce_headers(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        match decode(&headers(ct.as_deref(), &ce), &body) {
            Ok(event) => prop_assert!(event.validate().is_ok()),
            Err(rejected) => prop_assert!(!rejected.reason.is_empty()),
        }
    }

    /// Valid structured events decode to exactly what was serialised.
    #[test]
    fn structured_events_round_trip(event in valid_event()) {
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_static("application/cloudevents+json");
        headers.insert(header::CONTENT_TYPE, ct);
        let decoded = decode(&headers, &serde_json::to_vec(&event).unwrap());
        prop_assert_eq!(decoded.ok(), Some(event));
    }

    /// Valid binary-mode events keep every attribute and their data.
    #[test]
    fn binary_events_round_trip(event in valid_event()) {
        let mut ce = vec![
            ("ce-id".to_owned(), event.id.clone().into_bytes()),
            ("ce-source".to_owned(), event.source.clone().into_bytes()),
            ("ce-type".to_owned(), event.ty.clone().into_bytes()),
            ("ce-specversion".to_owned(), event.specversion.clone().into_bytes()),
            ("ce-time".to_owned(), event.time.clone().unwrap().into_bytes()),
            ("ce-pubsubname".to_owned(), b"pubsub".to_vec()),
        ];
        ce.extend(event.subject.clone().map(|s| ("ce-subject".to_owned(), s.into_bytes())));
        ce.extend(event.topic.clone().map(|t| ("ce-topic".to_owned(), t.into_bytes())));
        let body = serde_json::to_vec(event.data.as_ref().unwrap()).unwrap();
        let decoded = decode(&headers(Some("application/json"), &ce), &body);
        prop_assert_eq!(decoded.ok(), Some(event));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any delivery through the layer is settled: `SUCCESS` after the handler, else `DROP`.
    #[test]
    fn any_delivery_is_settled_success_or_drop(
        typed in any::<bool>(),
        ct in content_type(),
        ce in ce_headers(),
        body in prop::collection::vec(any::<u8>(), 0..700),
    ) {
        let seen = Seen::default();
        let path = if typed { "/events/typed" } else { "/events/value" };
        let answer = deliver(&seen, request(path, ct.as_deref(), &ce, body));
        assert_settled(&answer, seen.take().len())?;
    }

    /// A valid event with one attribute replaced by any JSON value (or removed), sent
    /// structured: settled, and what reached the handler is what the decoder reads.
    #[test]
    fn mutated_events_are_settled(
        typed in any::<bool>(),
        event in valid_event(),
        name in prop::sample::select(vec![
            "id", "source", "specversion", "type", "subject", "time", "datacontenttype",
            "data", "data_base64", "topic", "traceparent", "tracestate", "extra",
        ]),
        replacement in prop::option::of(any_json()),
    ) {
        let mut object = serde_json::to_value(&event).unwrap();
        let map = object.as_object_mut().unwrap();
        match replacement {
            Some(value) => map.insert(name.to_owned(), value),
            None => map.remove(name),
        };
        let body = serde_json::to_vec(&object).unwrap();
        let seen = Seen::default();
        let path = if typed { "/events/typed" } else { "/events/value" };
        let ct = Some("application/cloudevents+json");
        let answer = deliver(&seen, request(path, ct, &[], body.clone()));
        let handled = seen.take();
        assert_settled(&answer, handled.len())?;
        if let Some(got) = handled.first() {
            let decoded = decode(&headers(ct, &[]), &body).ok();
            prop_assert_eq!(decoded.as_ref(), Some(got));
        }
    }

    /// Valid events of any size: over the limit they are dropped unread (with or without a
    /// Content-Length), under it they reach the handler unchanged.
    #[test]
    fn valid_events_reach_the_handler_or_drop_when_too_large(
        event in valid_event(),
        pad in 0usize..600,
        declare_length in any::<bool>(),
    ) {
        let mut event = event;
        event.extensions.insert("pad".to_owned(), json!("x".repeat(pad)));
        let body = serde_json::to_vec(&event).unwrap();
        let len = body.len();
        let mut req = request("/events/value", Some("application/cloudevents+json"), &[], body);
        if declare_length {
            req.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        let seen = Seen::default();
        let answer = deliver(&seen, req);
        let handled = seen.take();
        prop_assert_eq!(answer.0, StatusCode::OK);
        if len > LIMIT {
            prop_assert_eq!(answer.1, "DROP");
            prop_assert!(handled.is_empty());
        } else {
            prop_assert_eq!(answer.1, "SUCCESS");
            prop_assert_eq!(handled, vec![event]);
        }
    }
}
