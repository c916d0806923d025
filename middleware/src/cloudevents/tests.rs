use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, routing::post};
use http::StatusCode;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt};

use super::*;
use crate::{ConsumeError, DaprStatusLayer, metrics::EVENTS_CONSUMED_TOTAL};

#[derive(Debug, Deserialize)]
struct TaskCreated {
    task_id: u64,
}

/// What the handlers saw: how often they ran, and the trace context of the last run.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>, Arc<Mutex<Option<String>>>);

impl Calls {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn trace(&self) -> Option<String> {
        self.1.lock().unwrap().clone()
    }
}

async fn on_task(
    State(calls): State<Calls>,
    event: Event<TaskCreated>,
) -> Result<DaprStatus, ConsumeError> {
    calls.0.fetch_add(1, Ordering::SeqCst);
    match event.data.task_id {
        0 => Err(ConsumeError::retry("database unavailable")),
        _ => Ok(DaprStatus::Success),
    }
}

async fn trace_of(State(calls): State<Calls>) {
    calls.0.fetch_add(1, Ordering::SeqCst);
    *calls.1.lock().unwrap() = TraceContext::current().map(|c| c.traceparent());
}

fn app(calls: &Calls, metrics: Option<&Metrics>, limit: usize) -> Router {
    let mut layer = CloudEventLayer::new().max_body_bytes(limit);
    if let Some(metrics) = metrics {
        layer = layer.metrics(metrics.clone());
    }
    Router::new()
        .route("/events/tasks", post(on_task))
        .route("/events/trace", post(trace_of))
        .route_layer(
            ServiceBuilder::new()
                .layer(layer)
                .layer(DaprStatusLayer::new()),
        )
        .route("/unwrapped", post(|_: Event<TaskCreated>| async {}))
        .with_state(calls.clone())
}

fn event(data: &serde_json::Value) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/todo/backend",
        "type": "com.todo.task.created.v1",
        "topic": "task-events",
        "pubsubname": "pubsub",
        "datacontenttype": "application/json",
        "data": data,
    })
}

fn structured(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(body.into())
        .unwrap()
}

async fn status_of(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (status, json["status"].as_str().unwrap().to_owned())
}

/// Posts one structured event with `data` to the counting app and returns what the sidecar
/// would see, with the handler calls and metrics for the test to inspect.
async fn deliver(data: serde_json::Value) -> (Calls, Metrics, (StatusCode, String)) {
    let (calls, metrics) = (Calls::default(), Metrics::new("test").unwrap());
    let body = event(&data).to_string();
    let res = app(&calls, Some(&metrics), 1024)
        .oneshot(structured("/events/tasks", body))
        .await
        .unwrap();
    let status = status_of(res).await;
    (calls, metrics, status)
}

fn task_created_series() -> (String, String) {
    (
        "task-events".to_owned(),
        "com.todo.task.created.v1".to_owned(),
    )
}

fn consumed(metrics: &Metrics, status: &str) -> Vec<(String, String)> {
    let family = metrics
        .registry()
        .gather()
        .into_iter()
        .find(|f| f.name() == EVENTS_CONSUMED_TOTAL);
    let Some(family) = family else {
        return Vec::new();
    };
    let label = |m: &prometheus::proto::Metric, name: &str| {
        m.get_label()
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.value().to_owned())
            .unwrap_or_default()
    };
    family
        .get_metric()
        .iter()
        .filter(|m| label(m, "status") == status)
        .map(|m| (label(m, "topic"), label(m, "type")))
        .collect()
}

#[tokio::test]
async fn valid_event_reaches_handler_and_is_counted() {
    let (calls, metrics, status) = deliver(json!({"task_id": 7})).await;
    assert_eq!(status, (StatusCode::OK, "SUCCESS".into()));
    assert_eq!(calls.count(), 1);
    assert_eq!(consumed(&metrics, "SUCCESS"), [task_created_series()]);
}

#[tokio::test]
async fn handler_retry_is_counted_as_retry() {
    let (_, metrics, (_, status)) = deliver(json!({"task_id": 0})).await;
    assert_eq!(status, "RETRY");
    assert_eq!(consumed(&metrics, "RETRY").len(), 1);
}

#[tokio::test]
async fn binary_mode_event_reaches_handler() {
    let calls = Calls::default();
    let req = Request::post("/events/tasks")
        .header(header::CONTENT_TYPE, "application/json")
        .header("ce-id", "evt-2")
        .header("ce-source", "/todo/backend")
        .header("ce-type", "com.todo.task.created.v1")
        .header("ce-specversion", "1.0")
        .body(Body::from(r#"{"task_id": 9}"#))
        .unwrap();
    let res = app(&calls, None, 1024).oneshot(req).await.unwrap();
    assert_eq!(status_of(res).await.1, "SUCCESS");
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn undecodable_deliveries_are_dropped_before_the_handler() {
    let oversized = event(&json!({"task_id": 1, "pad": "x".repeat(2048)})).to_string();
    let mut invalid = event(&json!({"task_id": 1}));
    invalid["source"] = json!("");
    let cases: Vec<(&str, Request<Body>)> = vec![
        (
            "malformed json",
            structured("/events/tasks", "{\"specversion\":"),
        ),
        ("not an object", structured("/events/tasks", "42")),
        (
            "invalid event",
            structured("/events/tasks", invalid.to_string()),
        ),
        (
            "oversized with content-length",
            Request::post("/events/tasks")
                .header(header::CONTENT_TYPE, "application/cloudevents+json")
                .header(header::CONTENT_LENGTH, oversized.len())
                .body(Body::from(oversized.clone()))
                .unwrap(),
        ),
        (
            "oversized without content-length",
            structured("/events/tasks", oversized),
        ),
        (
            "plain json without specversion",
            Request::post("/events/tasks")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"task_id": 1}"#))
                .unwrap(),
        ),
    ];
    for (name, req) in cases {
        let (calls, metrics) = (Calls::default(), Metrics::new("test").unwrap());
        let res = app(&calls, Some(&metrics), 1024)
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(
            status_of(res).await,
            (StatusCode::OK, "DROP".into()),
            "{name}"
        );
        assert_eq!(calls.count(), 0, "{name}");
        assert_eq!(consumed(&metrics, "DROP").len(), 1, "{name}");
    }
}

/// Topics and types come from the sender; outside the contracts they share one label value.
#[tokio::test]
async fn unknown_topics_and_types_do_not_create_series() {
    let (calls, metrics) = (Calls::default(), Metrics::new("test").unwrap());
    for i in 0..5 {
        let mut handled = event(&json!({"task_id": 7}));
        handled["type"] = json!(format!("com.evil.type-{i}.v1"));
        handled["topic"] = json!(format!("topic-{i}"));
        let mut dropped = handled.clone();
        dropped["source"] = json!("");
        for body in [handled, dropped] {
            app(&calls, Some(&metrics), 1024)
                .oneshot(structured("/events/tasks", body.to_string()))
                .await
                .unwrap();
        }
    }
    let other = || vec![("other".to_owned(), "other".to_owned())];
    assert_eq!(consumed(&metrics, "SUCCESS"), other());
    assert_eq!(consumed(&metrics, "DROP"), other());
    assert_eq!(calls.count(), 5);
}

#[tokio::test]
async fn data_of_the_wrong_shape_is_dropped() {
    let (calls, metrics, status) = deliver(json!({"task_id": "not a number"})).await;
    assert_eq!(status, (StatusCode::OK, "DROP".into()));
    assert_eq!(calls.count(), 0);
    assert_eq!(consumed(&metrics, "DROP"), [task_created_series()]);
}

/// serde reads `[7]` into a one-field struct positionally; a payload that is not an object is
/// poison all the same.
#[tokio::test]
async fn data_that_is_not_an_object_is_dropped() {
    let (calls, _, status) = deliver(json!([7])).await;
    assert_eq!(status, (StatusCode::OK, "DROP".into()));
    assert_eq!(calls.count(), 0);
}

#[tokio::test]
async fn extractor_without_layer_is_a_server_error() {
    let body = event(&json!({"task_id": 1})).to_string();
    let res = app(&Calls::default(), None, 1024)
        .oneshot(structured("/unwrapped", body))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn event_traceparent_is_used_when_the_header_is_missing() {
    const EVENT_TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut body = event(&json!({"task_id": 1}));
    body["traceparent"] = json!(EVENT_TP);

    let calls = Calls::default();
    let req = structured("/events/trace", body.to_string());
    let res = app(&calls, None, 4096).oneshot(req).await.unwrap();
    assert_eq!(status_of(res).await.1, "SUCCESS");
    assert_eq!(calls.trace().as_deref(), Some(EVENT_TP));

    // With a traceparent header the layer leaves the context to TraceContextLayer.
    let calls = Calls::default();
    let mut req = structured("/events/trace", body.to_string());
    req.headers_mut().insert(
        TRACEPARENT,
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let res = app(&calls, None, 4096).oneshot(req).await.unwrap();
    assert_eq!(status_of(res).await.1, "SUCCESS");
    assert_eq!(calls.count(), 1);
    assert_eq!(calls.trace(), None);
}
