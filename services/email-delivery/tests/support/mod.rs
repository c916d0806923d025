//! A harness that wires the real router to a fake sidecar (`dapr::testing`) and to a mail
//! server (the workspace harness's SMTP sink, a real SMTP server on loopback).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use contracts::{Priority, ReminderDueData, SCHEMA_VERSION, event_types};
use dapr::testing::FakeSidecar;
use dapr::{ClientConfig, DaprClient};
use email_delivery::app::{self, AppState};
use email_delivery::config::{SmtpConfig, SmtpTls};
use email_delivery::delivery::Delivery;
use email_delivery::ledger::Ledger;
use email_delivery::mail::Mailer;
use email_delivery::metrics::EmailMetrics;
use http_body_util::BodyExt;
use middleware::{AppTokenLayer, Metrics, Publisher, PublisherConfig};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// The token daprd presents in these tests.
pub(crate) const APP_TOKEN: &str = "app-token";
/// Claim TTL the harness configures.
pub(crate) const CLAIM_TTL_SECS: u64 = 120;
/// Record TTL the harness configures.
pub(crate) const RECORD_TTL_SECS: u64 = 2_592_000;

/// The real router in front of a fake sidecar and a mail server on `smtp_port`.
#[derive(Clone)]
pub(crate) struct Harness {
    pub(crate) sidecar: FakeSidecar,
    pub(crate) metrics: Metrics,
    pub(crate) app: Router,
}

impl Harness {
    pub(crate) async fn new(smtp_port: u16) -> Self {
        Self::with_smtp_timeout(smtp_port, Duration::from_secs(5)).await
    }

    /// As [`Harness::new`], with `timeout` for one whole SMTP conversation.
    pub(crate) async fn with_smtp_timeout(smtp_port: u16, timeout: Duration) -> Self {
        let sidecar = FakeSidecar::start().await.unwrap();
        let dapr = DaprClient::new(ClientConfig {
            http_endpoint: sidecar.endpoint(),
            api_token: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        let smtp = SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: SmtpTls::None,
            from: "Todo Reminders <reminders@localhost>".parse().unwrap(),
            timeout,
            hello_name: "email-delivery.test".into(),
            credentials: None,
        };
        let metrics = Metrics::new(email_delivery::SERVICE).unwrap();
        // No publisher retries: a failed publish must show in the first answer.
        let mut no_retries = PublisherConfig::default();
        no_retries.retry.max_retries = 0;
        let publisher = Publisher::dapr(dapr.clone(), &no_retries).with_metrics(metrics.clone());
        let ledger = Ledger::new(
            dapr.clone(),
            "statestore",
            Duration::from_secs(CLAIM_TTL_SECS),
            Some(Duration::from_secs(RECORD_TTL_SECS)),
        );
        let delivery = Delivery::new(
            ledger,
            Mailer::new(&smtp, None).unwrap(),
            publisher,
            EmailMetrics::register(&metrics).unwrap(),
        );
        let app = app::router(
            AppState {
                delivery,
                dapr,
                metrics: metrics.clone(),
            },
            AppTokenLayer::new(Some(APP_TOKEN.into())),
        );
        Self {
            sidecar,
            metrics,
            app,
        }
    }

    /// Delivers `event` as daprd would and returns the Dapr status answered.
    pub(crate) async fn deliver(&self, event: &Value) -> String {
        let (status, body) = self
            .call(
                Request::post(email_delivery::EVENTS_PATH)
                    .header("content-type", "application/cloudevents+json")
                    .header("dapr-api-token", APP_TOKEN)
                    .body(Body::from(event.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["status"].as_str().unwrap().to_owned()
    }

    /// Sends `request` through the router; the status and the body as JSON (or a string).
    pub(crate) async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    /// Makes the next `n` writes of a `sent` record fail (the database fails just after the
    /// mail went out).
    pub(crate) fn fail_next_sent_saves(&self, n: usize) {
        self.sidecar
            .fail_next_saves(n, |item| item["value"]["status"] == "sent");
    }

    /// The state calls the sidecar has seen (get, save, delete).
    pub(crate) fn state_calls(&self) -> usize {
        let requests = self.sidecar.requests();
        requests
            .iter()
            .filter(|r| r.path.starts_with("/v1.0/state/"))
            .count()
    }

    /// The value of `name{labels}` in `/metrics`, 0 when absent.
    pub(crate) fn metric(&self, series: &str) -> f64 {
        let text = self.metrics.render().unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// A reminder for `ada@example.org`.
pub(crate) fn reminder() -> ReminderDueData {
    ReminderDueData {
        schema_version: SCHEMA_VERSION,
        user_id: "auth0|user-42".into(),
        task_id: Uuid::from_u128(0x42),
        recipient_email: "ada@example.org".into(),
        recipient_name: Some("Ada".into()),
        title: "Water the plants".into(),
        description: "Basil & <mint>".into(),
        priority: Priority::High,
        due_at: Some("2026-03-03T09:00:00Z".parse().unwrap()),
        remind_at: "2026-03-03T08:00:00Z".parse().unwrap(),
    }
}

/// A `reminder.due` CloudEvent as daprd delivers it.
pub(crate) fn due_event(id: &str, data: &ReminderDueData) -> Value {
    event(
        id,
        event_types::REMINDER_DUE,
        &serde_json::to_value(data).unwrap(),
    )
}

/// Any CloudEvent on `task-reminders`.
pub(crate) fn event(id: &str, ty: &str, data: &Value) -> Value {
    json!({
        "id": id,
        "source": "/todo/notification",
        "specversion": "1.0",
        "type": ty,
        "datacontenttype": "application/json",
        "subject": "00000000-0000-0000-0000-000000000042",
        "topic": "task-reminders",
        "pubsubname": "pubsub",
        "time": "2026-03-03T08:00:00.010Z",
        "data": data,
    })
}

/// A fresh event id.
pub(crate) fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// The record key of event `id`.
pub(crate) fn key(id: &str) -> String {
    Ledger::key(id)
}
