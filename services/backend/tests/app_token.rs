//! The backend's `/internal` routes (Dapr service invocation from notification and
//! recurring-task) need the app API token daprd presents; a user's bearer token is no
//! substitute, and probes and metrics stay open. Through the complete router, against a real
//! PostgreSQL (`#[sqlx::test]`, set `DATABASE_URL`).

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::Router;
use axum::body::Body;
use backend::app::{self};
use chrono::{Duration, Utc};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use middleware::AppTokenLayer;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// Test fixtures only: the app API token daprd would present, and the users' HS256 key.
const APP_TOKEN: &str = "fixture-backend-app-api-token";
const JWT_SECRET: &str = "fixture-app-token-tests-hs256-key";

fn user_token(sub: &str) -> String {
    let exp = Utc::now().timestamp() + 600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp, "email": format!("{sub}@example.com")}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn app(pool: &PgPool) -> Router {
    let state = support::app_state(pool.clone(), JWT_SECRET).await;
    app::router(state, AppTokenLayer::new(Some(APP_TOKEN.into())))
}

/// Everything but the configured token ([`dapr::testing::wrong_app_tokens`]), and a valid
/// user token instead.
fn wrong_tokens() -> Vec<dapr::testing::WrongToken> {
    let mut cases = dapr::testing::wrong_app_tokens(APP_TOKEN);
    cases.push((
        "a user's token",
        Some(("authorization", format!("Bearer {}", user_token("alice")))),
    ));
    cases
}

fn request(
    method: &str,
    uri: &str,
    body: Option<&Value>,
    header: Option<(&str, &str)>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some((name, value)) = header {
        builder = builder.header(name, value);
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn internal_routes_need_the_app_token_and_probes_and_metrics_do_not(pool: PgPool) {
    let app = app(&pool).await;
    let alice = user_token("alice");
    let now = Utc::now();
    let (status, task) = send(
        &app,
        request(
            "POST",
            "/api/v1/tasks",
            Some(
                &json!({"title": "internal", "due_at": now + Duration::days(1),
                         "remind_at": now + Duration::minutes(10)}),
            ),
            Some(("authorization", &format!("Bearer {alice}"))),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap();
    let window = format!(
        "/internal/reminders?from={}&to={}",
        (now - Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let next = json!({"due_at": now + Duration::days(2), "idempotency_key": "evt-1"});
    // Every internal route with a request its caller would send, and the answer that proves
    // the handler ran. Paths that are no route, including ones named like the open probes, are
    // refused alike without the token: no caller learns which internal routes exist.
    let snapshot = format!("/internal/tasks/{id}");
    let next_uri = format!("/internal/tasks/{id}/next-occurrence");
    let calls: Vec<(&str, &str, Option<&Value>, StatusCode)> = vec![
        ("GET", &snapshot, None, StatusCode::OK),
        // The task has no rule: the handler's own 422.
        (
            "POST",
            &next_uri,
            Some(&next),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("GET", &window, None, StatusCode::OK),
        (
            "GET",
            "/internal/no-such-route",
            None,
            StatusCode::NOT_FOUND,
        ),
        ("GET", "/internal", None, StatusCode::NOT_FOUND),
        ("GET", "/internal/healthz", None, StatusCode::NOT_FOUND),
        ("GET", "/internal/readyz", None, StatusCode::NOT_FOUND),
        ("GET", "/internal/metrics", None, StatusCode::NOT_FOUND),
    ];
    for (method, uri, body, _) in &calls {
        for (case, header) in wrong_tokens() {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, answer) = send(&app, request(method, uri, *body, header)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{case}: {method} {uri}: {answer}"
            );
            assert_eq!(answer["code"], "UNAUTHORIZED", "{case}: {method} {uri}");
        }
    }
    for (method, uri, body, want) in &calls {
        let token = Some(("dapr-api-token", APP_TOKEN));
        let (status, answer) = send(&app, request(method, uri, *body, token)).await;
        assert_eq!(status, *want, "{method} {uri}: {answer}");
    }
    let (_, snap) = send(
        &app,
        request("GET", &snapshot, None, Some(("dapr-api-token", APP_TOKEN))),
    )
    .await;
    assert_eq!(snap["task"]["title"], "internal");
    let (_, page) = send(
        &app,
        request("GET", &window, None, Some(("dapr-api-token", APP_TOKEN))),
    )
    .await;
    assert_eq!(page["items"][0]["id"], id);

    // Probes and metrics answer without the token, whatever else is sent. (Readiness fails
    // here — no sidecar — but it is the probe that answers, not the token check.)
    for path in ["/healthz", "/readyz", "/metrics"] {
        for (case, header) in wrong_tokens() {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, answer) = send(&app, request("GET", path, None, header)).await;
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} with {case}: {answer}"
            );
            if path != "/readyz" {
                assert_eq!(status, StatusCode::OK, "{path} with {case}: {answer}");
            }
        }
    }
    // The app token opens nothing of the user API: REST still wants a user.
    let (status, _) = send(
        &app,
        request(
            "GET",
            "/api/v1/tasks",
            None,
            Some(("dapr-api-token", APP_TOKEN)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
