//! Unit tests through the whole router, with a scripted fake sidecar standing in for daprd and
//! the backend behind it. The real-daprd scenarios live in the workspace `tests/` crate.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use contracts::{Priority, TagRef, TaskEventData, TaskSnapshot, event_types};
use dapr::testing::{Answer, FakeSidecar};
use dapr::{ClientConfig, CloudEvent, DaprClient};
use http_body_util::BodyExt;
use middleware::{AppTokenLayer, Metrics};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::app::{AppState, router};
use crate::metrics::Outcome;
use crate::occurrence::{Plan, plan};
use crate::{APP_ID, EVENTS_ROUTE, SUBSCRIPTION_MANIFEST, declarative_subscriptions};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One call of the backend's next-occurrence method the fake sidecar received.
#[derive(Clone, Debug)]
struct Call {
    task_id: String,
    body: Value,
    traceparent: Option<String>,
}

/// Where the app asks the backend for the next occurrence, through daprd.
const NEXT_OCCURRENCE: &str = "/v1.0/invoke/backend/method/internal/tasks/";

/// daprd as seen by our app: answers `POST /v1.0/invoke/backend/method/internal/tasks/{id}/
/// next-occurrence` with scripted replies (500 once they run out); and its endpoint.
async fn fake_sidecar(
    replies: impl IntoIterator<Item = (StatusCode, Value)>,
) -> (FakeSidecar, String) {
    let fake = FakeSidecar::start().await.unwrap();
    for (status, body) in replies {
        fake.script_for(Method::POST, NEXT_OCCURRENCE, Answer::json(status, &body));
    }
    let endpoint = fake.endpoint();
    (fake, endpoint)
}

/// The next-occurrence calls `fake` received, each checked to be JSON.
fn backend_calls(fake: &FakeSidecar) -> Vec<Call> {
    fake.invocations()
        .into_iter()
        .filter_map(|call| {
            let task_id = call
                .path
                .strip_prefix("internal/tasks/")?
                .strip_suffix("/next-occurrence")?;
            assert_eq!(call.request.method, Method::POST);
            assert_eq!(
                call.request.header("content-type"),
                Some("application/json")
            );
            Some(Call {
                task_id: task_id.to_owned(),
                body: serde_json::from_slice(&call.request.body).unwrap(),
                traceparent: call.request.header("traceparent").map(str::to_owned),
            })
        })
        .collect()
}

/// The app wired to a sidecar at `endpoint`, and its state (for the counters).
fn app_at(endpoint: String) -> (Router, AppState) {
    let dapr = DaprClient::new(ClientConfig {
        http_endpoint: endpoint,
        api_token: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let state = AppState::new(dapr, "backend", Metrics::new(APP_ID).unwrap()).unwrap();
    (router(state.clone(), AppTokenLayer::new(None)), state)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A completed daily task due 09:15:30 with a reminder 30 minutes before, and tags.
/// [`daily_task`] with another recurrence rule.
fn daily_task_with_rule(rule: &str) -> TaskSnapshot {
    TaskSnapshot {
        recurrence_rule: Some(rule.to_owned()),
        ..daily_task()
    }
}

fn daily_task() -> TaskSnapshot {
    TaskSnapshot {
        id: Uuid::from_u128(0x0192_f5a0_7c1e_7d3a_9b2f_4e5d_6c7b_8a91),
        user_id: "auth0|user-42".to_owned(),
        title: "Water the plants".to_owned(),
        description: "Balcony".to_owned(),
        completed: true,
        // Done two days late: the next date must not follow this.
        completed_at: Some(at("2026-03-04T18:00:00Z")),
        priority: Priority::High,
        category: None,
        tags: vec![TagRef {
            id: Uuid::from_u128(2),
            name: "garden".to_owned(),
            color: None,
        }],
        due_at: Some(at("2026-03-02T09:15:30Z")),
        remind_at: Some(at("2026-03-02T08:45:30Z")),
        recurrence_rule: Some("FREQ=DAILY".to_owned()),
        parent_task_id: None,
        occurrence_index: 0,
        created_at: at("2026-03-01T07:00:00Z"),
        updated_at: at("2026-03-04T18:00:00Z"),
    }
}

fn event_of(ty: &str, task: TaskSnapshot) -> CloudEvent {
    let mut event = CloudEvent::new(Uuid::new_v4().to_string(), "/todo/backend", ty)
        .with_subject(task.id.to_string())
        .with_json_data(&TaskEventData::new(task))
        .unwrap();
    event.topic = Some("task-recurrence".to_owned());
    event.pubsubname = Some("pubsub".to_owned());
    event
}

fn completed(task: TaskSnapshot) -> CloudEvent {
    event_of(event_types::TASK_COMPLETED, task)
}

/// Delivers `event` as daprd does and returns the Dapr status the app answered.
/// Delivers the completion of a daily task to an app whose backend answers with `status` and
/// `body`: the fake (to inspect the calls), the app's state and its answer to the sidecar.
async fn complete_against(status: StatusCode, body: Value) -> (FakeSidecar, AppState, String) {
    let (fake, addr) = fake_sidecar([(status, body)]).await;
    let (app, state) = app_at(addr);
    let answer = deliver(app, &completed(daily_task())).await;
    (fake, state, answer)
}

/// Delivers the completion of `task` to an app whose backend creates the next occurrence, which
/// must succeed: the body of the one call to the backend.
async fn next_occurrence_request(task: TaskSnapshot) -> Value {
    let (fake, addr) = fake_sidecar([(StatusCode::CREATED, created_reply(true))]).await;
    let (app, _) = app_at(addr);
    assert_eq!(deliver(app, &completed(task)).await, "SUCCESS");
    let calls = backend_calls(&fake);
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].body.clone()
}

async fn deliver(app: Router, event: &CloudEvent) -> String {
    let request = Request::post(EVENTS_ROUTE)
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .header("traceparent", PARENT)
        .body(Body::from(serde_json::to_vec(event).unwrap()))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "daprd must only see 200s"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    body["status"].as_str().unwrap().to_owned()
}

fn created_reply(created: bool) -> Value {
    json!({"task": {"id": Uuid::from_u128(99).to_string(), "title": "Water the plants"},
           "created": created})
}

#[tokio::test]
async fn daily_completion_creates_the_next_day_at_the_same_time_with_the_reminder_offset() {
    let (fake, addr) = fake_sidecar([(StatusCode::CREATED, created_reply(true))]).await;
    let (app, state) = app_at(addr);
    let event = completed(daily_task());

    assert_eq!(deliver(app, &event).await, "SUCCESS");

    let calls = backend_calls(&fake);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].task_id, daily_task().id.to_string());
    // Exactly one day after the previous due date, not after the (late) completion.
    assert_eq!(
        calls[0].body,
        json!({
            "due_at": "2026-03-03T09:15:30Z",
            "remind_at": "2026-03-03T08:45:30Z",
            "idempotency_key": event.id,
        })
    );
    // The trace continues through the sidecar.
    let traceparent = calls[0].traceparent.as_deref().unwrap();
    assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert_eq!(state.occurrences.count(Outcome::Created), 1);
}

#[tokio::test]
async fn a_task_without_reminder_gets_none() {
    let mut task = daily_task();
    task.remind_at = None;
    task.recurrence_rule = Some("FREQ=MONTHLY;BYDAY=-1FR".to_owned());
    task.due_at = Some(at("2026-01-30T17:00:00Z"));

    let body = &next_occurrence_request(task).await;
    assert_eq!(body["due_at"], "2026-02-27T17:00:00Z");
    assert!(body["remind_at"].is_null(), "{body}");
}

#[tokio::test]
async fn without_a_due_date_the_completion_time_is_the_anchor() {
    let mut task = daily_task();
    task.due_at = None;

    let body = &next_occurrence_request(task).await;
    assert_eq!(body["due_at"], "2026-03-05T18:00:00Z");
    // No due time, no offset to keep.
    assert!(body["remind_at"].is_null(), "{body}");
}

#[tokio::test]
async fn count_2_series_ends_after_the_second_occurrence() {
    let (fake, addr) = fake_sidecar([(StatusCode::CREATED, created_reply(true))]).await;
    let (app, state) = app_at(addr);
    let first = daily_task_with_rule("FREQ=DAILY;COUNT=2");
    let mut second = first.clone();
    second.id = Uuid::from_u128(99);
    second.parent_task_id = Some(first.id);
    second.occurrence_index = 1;
    second.due_at = Some(at("2026-03-03T09:15:30Z"));

    assert_eq!(deliver(app.clone(), &completed(first)).await, "SUCCESS");
    assert_eq!(backend_calls(&fake).len(), 1);
    assert_eq!(deliver(app, &completed(second)).await, "SUCCESS");
    assert_eq!(
        backend_calls(&fake).len(),
        1,
        "the second occurrence is the last"
    );
    assert_eq!(state.occurrences.count(Outcome::Created), 1);
    assert_eq!(state.occurrences.count(Outcome::SeriesEnded), 1);
}

#[tokio::test]
async fn until_in_the_past_ends_the_series() {
    let (fake, addr) = fake_sidecar([]).await;
    let (app, state) = app_at(addr);
    let task = daily_task_with_rule("FREQ=DAILY;UNTIL=20260302T235959Z");

    assert_eq!(deliver(app, &completed(task)).await, "SUCCESS");
    assert!(backend_calls(&fake).is_empty());
    assert_eq!(state.occurrences.count(Outcome::SeriesEnded), 1);
}

#[tokio::test]
async fn a_repeated_completion_finds_the_existing_occurrence() {
    let (fake, addr) = fake_sidecar([
        (StatusCode::CREATED, created_reply(true)),
        (StatusCode::OK, created_reply(false)),
    ])
    .await;
    let (app, state) = app_at(addr);
    let event = completed(daily_task());

    assert_eq!(deliver(app.clone(), &event).await, "SUCCESS");
    assert_eq!(deliver(app, &event).await, "SUCCESS");
    let calls = backend_calls(&fake);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body, calls[1].body, "same key both times");
    assert_eq!(state.occurrences.count(Outcome::Created), 1);
    assert_eq!(state.occurrences.count(Outcome::Duplicate), 1);
}

#[tokio::test]
async fn a_task_that_is_gone_or_refused_is_dropped() {
    for (case, status, body) in [
        (
            "a task that is gone",
            StatusCode::NOT_FOUND,
            json!({"code": "TASK_NOT_FOUND", "message": "task not found"}),
        ),
        (
            "a refused occurrence",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code": "VALIDATION_ERROR", "message": "task does not recur (its rule was removed)"}),
        ),
    ] {
        let (fake, state, answer) = complete_against(status, body).await;
        assert_eq!(answer, "DROP", "{case}");
        assert_eq!(backend_calls(&fake).len(), 1, "{case}");
        assert_eq!(state.occurrences.count(Outcome::Dropped), 1, "{case}");
    }
}

#[tokio::test]
async fn backend_failures_and_auth_problems_are_retried() {
    for (status, body) in [
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": "INTERNAL", "message": "internal error"}),
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorCode": "ERR_DIRECT_INVOKE", "message": "app backend unreachable"}),
        ),
        (
            StatusCode::UNAUTHORIZED,
            json!({"code": "UNAUTHORIZED", "message": "missing dapr-api-token"}),
        ),
        (StatusCode::TOO_MANY_REQUESTS, json!({})),
    ] {
        let (fake, state, answered) = complete_against(status, body).await;
        assert_eq!(answered, "RETRY", "{status}");
        assert_eq!(backend_calls(&fake).len(), 1);
        for outcome in [Outcome::Created, Outcome::Duplicate, Outcome::Dropped] {
            assert_eq!(state.occurrences.count(outcome), 0, "{status} {outcome:?}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_sidecar_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (app, _) = app_at(format!("http://{addr}"));
    assert_eq!(deliver(app, &completed(daily_task())).await, "RETRY");
}

#[tokio::test]
async fn events_that_need_nothing_are_acknowledged_and_ignored() {
    let (fake, addr) = fake_sidecar([]).await;
    let (app, state) = app_at(addr);
    let mut one_off = daily_task();
    one_off.recurrence_rule = None;
    let blank = daily_task_with_rule("  ");
    let mut other_type = event_of(event_types::TASK_CREATED, daily_task());
    assert_eq!(deliver(app.clone(), &other_type).await, "SUCCESS");
    // Another type is ignored whatever its data looks like.
    other_type.data = Some(json!("not a task"));
    assert_eq!(deliver(app.clone(), &other_type).await, "SUCCESS");
    assert_eq!(deliver(app.clone(), &completed(one_off)).await, "SUCCESS");
    assert_eq!(deliver(app, &completed(blank)).await, "SUCCESS");

    assert!(backend_calls(&fake).is_empty());
    for outcome in [
        Outcome::Created,
        Outcome::Duplicate,
        Outcome::SeriesEnded,
        Outcome::Dropped,
    ] {
        assert_eq!(state.occurrences.count(outcome), 0);
    }
}

#[tokio::test]
async fn events_that_can_never_be_handled_are_dropped() {
    let (fake, addr) = fake_sidecar([]).await;
    let (app, state) = app_at(addr);
    let bad_rule = daily_task_with_rule("FREQ=HOURLY");
    let mut garbage = completed(daily_task());
    garbage.data = Some(json!({"task": "nope"}));
    let mut no_dates = daily_task();
    no_dates.due_at = None;
    no_dates.completed_at = None;

    assert_eq!(deliver(app.clone(), &completed(bad_rule)).await, "DROP");
    assert_eq!(deliver(app.clone(), &garbage).await, "DROP");
    assert_eq!(deliver(app, &completed(no_dates)).await, "DROP");
    assert!(backend_calls(&fake).is_empty());
    assert_eq!(state.occurrences.count(Outcome::Dropped), 3);
}

#[test]
fn plan_keeps_the_reminder_offset_and_guards_odd_input() {
    let mut task = daily_task_with_rule("FREQ=WEEKLY;BYDAY=MO,TH");
    // Two days' notice before a Monday.
    task.remind_at = Some(at("2026-02-28T09:15:30Z"));
    let Ok(Plan::Create(next)) = plan(&completed(task.clone())) else {
        panic!("expected a next occurrence");
    };
    assert_eq!(next.due_at, at("2026-03-05T09:15:30Z"));
    assert_eq!(next.remind_at, Some(at("2026-03-03T09:15:30Z")));
    assert_eq!(
        next.path(),
        format!("internal/tasks/{}/next-occurrence", task.id)
    );

    // A reminder after the due time (never stored by the backend) is not carried over.
    task.remind_at = Some(at("2026-03-02T10:00:00Z"));
    let Ok(Plan::Create(next)) = plan(&completed(task.clone())) else {
        panic!("expected a next occurrence");
    };
    assert_eq!(next.remind_at, None);

    task.occurrence_index = -1;
    assert!(plan(&completed(task)).is_err());
}

#[tokio::test]
async fn subscribe_route_serves_the_subscription_table() {
    let (_fake, addr) = fake_sidecar([]).await;
    let (app, _) = app_at(addr);
    let response = app
        .oneshot(Request::get("/dapr/subscribe").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!([{"pubsubname": "pubsub", "topic": "task-recurrence",
                "route": "/events/task-recurrence", "deadLetterTopic": "task-recurrence-dlq"}])
    );
}

#[test]
fn committed_subscription_manifest_is_in_sync() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SUBSCRIPTION_MANIFEST);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let generated = declarative_subscriptions().unwrap();
    assert!(
        committed == generated,
        "{SUBSCRIPTION_MANIFEST} is out of date; regenerate it with\n  \
         cargo run -p recurring-task -- --print-subscriptions > {SUBSCRIPTION_MANIFEST}\n\
         generated:\n{generated}"
    );
    assert!(generated.contains("deadLetterTopic: task-recurrence-dlq"));
    assert!(generated.contains("- recurring-task"), "scoped to the app");
}

/// Test fixture only: the app API token daprd would present.
const APP_TOKEN: &str = "fixture-recurring-task-app-token";

async fn status_and_body(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_sidecar_route_needs_the_app_token_but_probes_and_metrics_do_not() {
    let (fake, addr) = fake_sidecar([(StatusCode::CREATED, created_reply(true))]).await;
    let (_, state) = app_at(addr);
    let app = router(state, AppTokenLayer::new(Some(APP_TOKEN.into())));
    let event = serde_json::to_vec(&completed(daily_task())).unwrap();
    // Every route daprd calls; an unrouted path is refused alike (no probing for routes).
    let request = |method: &str, path: &str, header: Option<(&str, &str)>| {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        if method == "POST" {
            builder = builder.header(header::CONTENT_TYPE, "application/cloudevents+json");
            return builder.body(Body::from(event.clone())).unwrap();
        }
        builder.body(Body::empty()).unwrap()
    };
    let calls = [
        ("POST", EVENTS_ROUTE, StatusCode::OK),
        ("GET", "/dapr/subscribe", StatusCode::OK),
        ("GET", "/dapr/config", StatusCode::NOT_FOUND),
    ];
    for (method, path, _) in calls {
        for (case, header) in dapr::testing::wrong_app_tokens(APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, body) = status_and_body(&app, request(method, path, header)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {method} {path}");
            assert_eq!(body["code"], "UNAUTHORIZED", "{case}: {method} {path}");
        }
    }
    assert!(
        backend_calls(&fake).is_empty(),
        "a refused delivery reached the backend"
    );
    for (method, path, want) in calls {
        let token = Some(("dapr-api-token", APP_TOKEN));
        let (status, body) = status_and_body(&app, request(method, path, token)).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        if path == EVENTS_ROUTE {
            assert_eq!(body["status"], "SUCCESS");
        }
    }
    assert_eq!(
        backend_calls(&fake).len(),
        1,
        "the delivery with the token was handled"
    );

    // Probes and metrics answer without the token, whatever else is sent. (Whether readiness
    // passes is not the point here, only that the probe answers.)
    for path in ["/healthz", "/readyz", "/metrics"] {
        for (case, header) in dapr::testing::wrong_app_tokens(APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, _) = status_and_body(&app, request("GET", path, header)).await;
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{path} with {case}");
            if path != "/readyz" {
                assert_eq!(status, StatusCode::OK, "{path} with {case}");
            }
        }
    }
}

#[tokio::test]
async fn metrics_expose_the_occurrence_counter() {
    let (_fake, addr) = fake_sidecar([(StatusCode::CREATED, created_reply(true))]).await;
    let (app, _) = app_at(addr);
    assert_eq!(
        deliver(app.clone(), &completed(daily_task())).await,
        "SUCCESS"
    );
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(
            r#"todo_occurrences_created_total{outcome="created",service="recurring-task"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"outcome="series_ended""#),
        "every outcome is exported from the start"
    );
    assert!(text.contains("todo_events_consumed_total"), "{text}");
}
