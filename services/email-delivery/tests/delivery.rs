//! Unit tests of the delivery path through the real router, against a fake sidecar (state with
//! first-write semantics, publishes, secrets) and a scripted SMTP server.
//!
//! These fake the outside world only; the same scenarios against real daprd, PostgreSQL and a
//! real SMTP sink live in the workspace's end-to-end suite.

// Test code: unwrapping is the assertion.
#![allow(clippy::unwrap_used)]

mod support;

use secrecy::ExposeSecret;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use contracts::{ReminderDueData, ReminderSentData, event_types};
use dapr::{ClientConfig, DaprClient};
use email_delivery::credentials;
use serde_json::json;

use harness::{DataGate, SmtpSink};
use support::{CLAIM_TTL_SECS, Harness, RECORD_TTL_SECS, due_event, event, key, new_id, reminder};

const SENT: &str = r#"todo_emails_sent_total{outcome="sent",service="email-delivery"}"#;
const DUPLICATE: &str = r#"todo_emails_sent_total{outcome="duplicate",service="email-delivery"}"#;
const RETRY: &str = r#"todo_emails_sent_total{outcome="retry",service="email-delivery"}"#;
const FAILED: &str = r#"todo_emails_sent_total{outcome="failed",service="email-delivery"}"#;

/// A loopback port nobody listens on (bound, then released).
/// A sink that accepts every message and the service in front of it.
async fn started() -> (SmtpSink, Harness) {
    let smtp = SmtpSink::start().await.unwrap();
    let h = Harness::new(smtp.port()).await;
    (smtp, h)
}

/// A CloudEvent of type `ty` carrying `data`, under a new id.
fn event_with_new_id(ty: &str, data: &serde_json::Value) -> serde_json::Value {
    event(&new_id(), ty, data)
}

/// A new event id and the reminder-due event it names.
fn fresh_due_event() -> (String, serde_json::Value) {
    let id = new_id();
    let event = due_event(&id, &reminder());
    (id, event)
}

fn free_port() -> u16 {
    harness::ports::free_port().unwrap()
}

#[tokio::test]
async fn one_reminder_sends_one_multipart_email_and_publishes_reminder_sent() {
    let (smtp, h) = started().await;
    let (id, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "SUCCESS");

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "reminders@localhost");
    assert_eq!(mail.to, ["ada@example.org"]);
    assert_eq!(mail.header("To").unwrap(), "Ada <ada@example.org>");
    assert_eq!(
        mail.header("From").unwrap(),
        "\"Todo Reminders\" <reminders@localhost>"
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Reminder: Water the plants"
    );
    assert_eq!(mail.header("Auto-Submitted").unwrap(), "auto-generated");
    assert!(mail.header("Date").is_some());
    let message_id = mail.header("Message-ID").unwrap();
    assert!(message_id.ends_with("@localhost>"), "{message_id}");
    let content_type = mail.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let data = &mail.data;
    let plain = data.find("Content-Type: text/plain").unwrap();
    let html = data.find("Content-Type: text/html").unwrap();
    assert!(plain < html, "plain text first, HTML preferred last");
    assert!(data[plain..html].contains("Water the plants"));
    assert!(data[plain..html].contains("Basil & <mint>"));
    assert!(data[html..].contains("<h2>Water the plants</h2>"));
    assert!(data[html..].contains("Basil &amp; &lt;mint&gt;"));
    assert!(data.contains("Tue, 3 Mar 2026 09:00 UTC"));

    // Claim with first-write and the claim TTL, then the final record with the record TTL.
    let saves = h.sidecar.saves();
    let claim = &saves[0].item;
    assert_eq!(claim["key"], key(&id));
    assert_eq!(claim["value"]["status"], "sending");
    assert_eq!(claim["options"]["concurrency"], "first-write");
    assert_eq!(
        claim["metadata"]["ttlInSeconds"],
        CLAIM_TTL_SECS.to_string()
    );
    let sent = &saves[1].item;
    assert_eq!(sent["value"]["status"], "sent");
    assert_eq!(sent["value"]["message_id"], message_id);
    assert_eq!(
        sent["metadata"]["ttlInSeconds"],
        RECORD_TTL_SECS.to_string()
    );
    let record = h.sidecar.get(&key(&id)).unwrap();
    assert_eq!(record["status"], "sent");
    assert_eq!(record["published"], true);
    assert_eq!(record["smtp_reply"], "2.0.0 Ok: queued as Q1");

    // reminder.sent: once, on task-events, with the id derived from the reminder's.
    let publishes = h.sidecar.publishes();
    assert_eq!(publishes.len(), 1);
    let published = &publishes[0];
    assert_eq!(published.topic, "task-events");
    assert_eq!(
        published.content_type.as_deref(),
        Some("application/cloudevents+json")
    );
    let ce = &published.event;
    assert_eq!(ce["id"], email_delivery::reminder_sent_id(&id).to_string());
    assert_eq!(ce["type"], event_types::REMINDER_SENT);
    assert_eq!(ce["source"], "/todo/email-delivery");
    assert_eq!(ce["subject"], reminder().task_id.to_string());
    let data: ReminderSentData = serde_json::from_value(ce["data"].clone()).unwrap();
    assert_eq!(data.reminder_event_id, id);
    assert_eq!(data.task_id, reminder().task_id);
    assert_eq!(data.user_id, "auth0|user-42");
    assert_eq!(data.remind_at, reminder().remind_at);
    assert_eq!(h.metric(SENT), 1.0);
}

#[tokio::test]
async fn the_same_event_twice_sends_one_email_and_one_reminder_sent() {
    let (smtp, h) = started().await;
    let (_, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(h.deliver(&event).await, "SUCCESS");

    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        smtp.connections(),
        1,
        "the duplicate never talks to the server"
    );
    let refused: Vec<_> = h
        .sidecar
        .saves()
        .into_iter()
        .filter(|s| s.status != 204)
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "the duplicate's claim was refused: {refused:?}"
    );
    assert_eq!(refused[0].item["options"]["concurrency"], "first-write");
    assert_eq!(h.sidecar.publishes().len(), 1);
    assert_eq!(h.metric(SENT), 1.0);
    assert_eq!(h.metric(DUPLICATE), 1.0);

    // A different event for the same task is a different reminder.
    assert_eq!(
        h.deliver(&due_event(&new_id(), &reminder())).await,
        "SUCCESS"
    );
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_concurrent_duplicate_is_retried_while_the_first_is_sending() {
    let smtp = SmtpSink::start().await.unwrap();
    let gate = DataGate::default();
    smtp.hold_data(gate.clone());
    let h = Harness::new(smtp.port()).await;
    let (_, event) = fresh_due_event();

    let first = tokio::spawn({
        let h = h.clone();
        let event = event.clone();
        async move { h.deliver(&event).await }
    });
    // The first delivery holds the claim and is waiting for the server's reply to DATA.
    tokio::time::timeout(Duration::from_secs(10), gate.reached.notified())
        .await
        .unwrap();
    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(
        smtp.connections(),
        1,
        "the duplicate never talks to the server"
    );

    gate.release.notify_one();
    assert_eq!(first.await.unwrap(), "SUCCESS");
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(h.metric(RETRY), 1.0);
    assert_eq!(h.metric(SENT), 1.0);
    assert_eq!(h.metric(DUPLICATE), 1.0);
}

#[tokio::test]
async fn a_claim_left_by_another_replica_means_retry_until_its_ttl_frees_it() {
    let (smtp, h) = started().await;
    let (id, event) = fresh_due_event();
    h.sidecar.put(
        &key(&id),
        json!({"status": "sending", "claimed_at": "2026-03-03T08:00:00Z",
               "claim": "00000000-0000-4000-8000-000000000001"}),
        Some(Duration::from_secs(120)),
    );

    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(smtp.connections(), 0);

    // That replica died mid-send: its claim expires and the next delivery sends.
    h.sidecar.expire(&key(&id));
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn smtp_down_releases_the_claim_and_retries_then_sends_once_it_is_back() {
    let port = free_port();
    let h = Harness::new(port).await;
    let (id, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(h.sidecar.get(&key(&id)), None, "claim released");
    let deletes = h.sidecar.deletes();
    assert_eq!(deletes.len(), 1);
    assert!(
        deletes[0].1.is_some(),
        "released only with the claim's ETag"
    );
    assert_eq!(h.metric(RETRY), 1.0);

    let smtp = SmtpSink::start_on(port).await.unwrap();
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(h.sidecar.get(&key(&id)).unwrap()["status"], "sent");
}

#[tokio::test]
async fn a_server_that_accepts_and_stalls_is_cut_off_by_the_timeout_then_retried_once() {
    let smtp = SmtpSink::start().await.unwrap();
    smtp.stall_next_greetings(1);
    let h = Harness::with_smtp_timeout(smtp.port(), Duration::from_secs(1)).await;
    let (id, event) = fresh_due_event();

    // The conversation never gets past the greeting: the deadline ends it, the claim is
    // released and daprd is told to retry.
    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(smtp.stalled(), 1);
    assert!(smtp.messages().is_empty());
    assert!(h.sidecar.get(&key(&id)).is_none(), "claim released");
    assert_eq!(h.metric(RETRY), 1.0);

    // The retry reaches a server that answers: one mail, and a further redelivery sends none.
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(h.metric(SENT), 1.0);
    assert_eq!(h.metric(DUPLICATE), 1.0);
}

#[tokio::test]
async fn a_4xx_reply_is_transient() {
    let smtp = SmtpSink::start().await.unwrap();
    smtp.reply_to_rcpt(Some("451 4.3.0 mailbox temporarily unavailable"));
    let h = Harness::new(smtp.port()).await;
    let (id, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(h.sidecar.get(&key(&id)), None, "claim released");

    smtp.reply_to_rcpt(None);
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_550_drops_records_failed_and_a_redelivery_does_not_try_again() {
    let smtp = SmtpSink::start().await.unwrap();
    smtp.reply_to_rcpt(Some(
        "550 5.1.1 <ada@example.org>: Recipient address rejected: User unknown",
    ));
    let h = Harness::new(smtp.port()).await;
    let (id, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "DROP");
    let record = h.sidecar.get(&key(&id)).unwrap();
    assert_eq!(record["status"], "failed");
    let reason = record["reason"].as_str().unwrap();
    assert!(reason.contains("550"), "{reason}");
    assert!(reason.contains("***@example.org"), "{reason}");
    assert!(!reason.contains("ada@"), "mailbox redacted: {reason}");
    assert_eq!(h.metric(FAILED), 1.0);

    let attempts = smtp.connections();
    smtp.reply_to_rcpt(None);
    assert_eq!(h.deliver(&event).await, "DROP");
    assert_eq!(smtp.connections(), attempts, "no new attempt");
    assert!(smtp.messages().is_empty());
    assert!(h.sidecar.publishes().is_empty());
}

#[tokio::test]
async fn a_5xx_to_authentication_is_not_the_messages_fault() {
    let smtp = SmtpSink::start().await.unwrap();
    smtp.reply_to_rcpt(Some("530 5.7.0 Authentication required"));
    let h = Harness::new(smtp.port()).await;
    assert_eq!(h.deliver(&due_event(&new_id(), &reminder())).await, "RETRY");
}

#[tokio::test]
async fn an_invalid_address_is_dropped_without_talking_to_the_server() {
    let (smtp, h) = started().await;
    let id = new_id();
    let bad = ReminderDueData {
        recipient_email: "not an address".into(),
        ..reminder()
    };

    assert_eq!(h.deliver(&due_event(&id, &bad)).await, "DROP");
    assert_eq!(smtp.connections(), 0);
    assert_eq!(h.sidecar.get(&key(&id)).unwrap()["status"], "failed");
    assert_eq!(h.metric(FAILED), 1.0);
}

#[tokio::test]
async fn state_store_down_means_retry_and_no_email() {
    let (smtp, h) = started().await;
    h.sidecar.set_state_down(true);
    let (_, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(smtp.connections(), 0);

    h.sidecar.set_state_down(false);
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_publish_is_retried_without_a_second_email() {
    let (smtp, h) = started().await;
    h.sidecar.fail_next_publishes(1);
    let (id, event) = fresh_due_event();

    assert_eq!(h.deliver(&event).await, "RETRY");
    assert_eq!(smtp.messages().len(), 1);
    let record = h.sidecar.get(&key(&id)).unwrap();
    assert_eq!(record["status"], "sent");
    assert_eq!(record["published"], false);

    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1, "no second email");
    let publishes = h.sidecar.publishes();
    assert_eq!(publishes.len(), 2);
    assert!(!publishes[0].accepted && publishes[1].accepted);
    assert_eq!(publishes[0].event["id"], publishes[1].event["id"]);
    assert_eq!(publishes[0].event["data"], publishes[1].event["data"]);
    assert_eq!(h.sidecar.get(&key(&id)).unwrap()["published"], true);

    // Settled for good now.
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(h.sidecar.publishes().len(), 2);
}

/// The `sent` record writes the fake saw: (attempts, failed ones).
fn sent_saves(h: &Harness) -> (usize, usize) {
    let saves: Vec<_> = h
        .sidecar
        .saves()
        .into_iter()
        .filter(|s| s.item["value"]["status"] == "sent" && s.item["value"]["published"] == false)
        .collect();
    let failed = saves.iter().filter(|s| s.status == 500).count();
    (saves.len(), failed)
}

#[tokio::test]
async fn a_state_store_hiccup_after_sending_is_retried_quickly() {
    let (smtp, h) = started().await;
    let (id, event) = fresh_due_event();
    h.fail_next_sent_saves(2);

    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        sent_saves(&h),
        (3, 2),
        "two failed writes, then the third lands"
    );
    let record = h.sidecar.get(&key(&id)).unwrap();
    assert_eq!(record["status"], "sent");
    assert_eq!(record["published"], true);
    assert_eq!(h.sidecar.publishes().len(), 1);
}

/// Polls the fake sidecar until `key` holds a `sent` record; panics after 30 s.
async fn until_recorded_sent(h: &Harness, key: &str) -> serde_json::Value {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(record) = h.sidecar.get(key).filter(|r| r["status"] == "sent") {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no sent record for {key}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_sent_record_that_cannot_be_saved_still_acknowledges_the_event_and_lands_later() {
    let (smtp, h) = started().await;
    let retries = email_delivery::delivery::SENT_RECORD_RETRY.max_retries as usize;
    // Every quick attempt fails (the sidecar is gone); the store answers again afterwards.
    h.fail_next_sent_saves(retries + 1);
    let (id, event) = fresh_due_event();

    // Three attempts (SENT_RECORD_RETRY), then SUCCESS: a redelivery could mail again.
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        h.sidecar.publishes().len(),
        1,
        "reminder.sent still published"
    );
    assert_eq!(h.metric(SENT), 1.0);

    // The record the store refused is written in the background, once it answers again.
    until_recorded_sent(&h, &key(&id)).await;
    let (attempts, failed) = sent_saves(&h);
    assert_eq!(failed, retries + 1, "only the quick attempts failed");
    assert!(attempts > failed, "and a later one landed: {attempts}");
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1, "the redelivery sends nothing");
}

#[tokio::test]
async fn a_redelivery_before_the_record_lands_settles_from_memory_without_a_second_email() {
    let (smtp, h) = started().await;
    // More failures than the quick attempts and the redelivery's own write together.
    h.fail_next_sent_saves(6);
    let (id, event) = fresh_due_event();
    assert_eq!(h.deliver(&event).await, "SUCCESS");

    // The broker redelivers at once (the acknowledgement was lost with the sidecar); the claim
    // is still there, or has expired, and no sent record exists yet: only memory knows.
    h.sidecar.expire(&key(&id));
    assert_eq!(h.deliver(&event).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1, "no second email");
    assert_eq!(h.metric(DUPLICATE), 1.0);

    let record = until_recorded_sent(&h, &key(&id)).await;
    assert_eq!(record["published"], true, "the latest version landed");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_ignored() {
    let (smtp, h) = started().await;
    let other = event_with_new_id(event_types::TASK_CREATED, &json!({"anything": 1}));

    assert_eq!(h.deliver(&other).await, "SUCCESS");
    assert_eq!(h.state_calls(), 0);
    assert_eq!(smtp.connections(), 0);
}

#[tokio::test]
async fn reminder_data_that_breaks_the_contract_is_dropped() {
    let (_smtp, h) = started().await;
    let broken = event_with_new_id(event_types::REMINDER_DUE, &json!({"title": "no recipient"}));

    assert_eq!(h.deliver(&broken).await, "DROP");
    assert_eq!(h.state_calls(), 0);
    assert_eq!(h.metric(FAILED), 1.0);
    // Not even a CloudEvent: dropped by the CloudEvent layer.
    let (status, body) = h
        .call(
            Request::post(email_delivery::EVENTS_PATH)
                .header("content-type", "application/cloudevents+json")
                .header("dapr-api-token", support::APP_TOKEN)
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("DROP"))
    );
}

#[tokio::test]
async fn odd_event_ids_get_a_safe_key() {
    let (smtp, h) = started().await;
    let id = "weird||id";
    assert_eq!(h.deliver(&due_event(id, &reminder())).await, "SUCCESS");
    assert_eq!(h.deliver(&due_event(id, &reminder())).await, "SUCCESS");
    assert_eq!(smtp.messages().len(), 1);
    assert!(key(id).starts_with("email-v5-"));
}

#[tokio::test]
async fn routes_need_the_app_token_except_probes_and_metrics() {
    let (smtp, h) = started().await;
    let event = due_event(&new_id(), &reminder()).to_string();
    let request = |method: &str, path: &str, header: Option<(&str, &str)>| {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        if method == "POST" {
            builder = builder.header("content-type", "application/cloudevents+json");
            return builder.body(Body::from(event.clone())).unwrap();
        }
        builder.body(Body::empty()).unwrap()
    };
    // Every route daprd calls; an unrouted path is refused alike (no probing for routes).
    let calls = [
        ("POST", email_delivery::EVENTS_PATH, StatusCode::OK),
        ("GET", "/dapr/subscribe", StatusCode::OK),
        ("GET", "/dapr/config", StatusCode::NOT_FOUND),
    ];
    for (method, path, _) in calls {
        for (case, header) in dapr::testing::wrong_app_tokens(support::APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, body) = h.call(request(method, path, header)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {method} {path}");
            assert_eq!(body["code"], "UNAUTHORIZED", "{case}: {method} {path}");
        }
    }
    assert_eq!(smtp.connections(), 0, "a refused delivery reached SMTP");

    let token = Some(("dapr-api-token", support::APP_TOKEN));
    for (method, path, want) in calls {
        let (status, body) = h.call(request(method, path, token)).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        match path {
            email_delivery::EVENTS_PATH => assert_eq!(body["status"], "SUCCESS"),
            "/dapr/subscribe" => assert_eq!(body, email_delivery::subscriptions().to_json()),
            _ => {}
        }
    }
    assert_eq!(
        smtp.messages().len(),
        1,
        "the delivery with the token mailed"
    );

    // Probes and metrics answer without the token, whatever else is sent.
    for path in ["/healthz", "/readyz", "/metrics"] {
        for (case, header) in dapr::testing::wrong_app_tokens(support::APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, body) = h.call(request("GET", path, header)).await;
            assert_eq!(status, StatusCode::OK, "{path} with {case}: {body}");
        }
    }
    let (_, body) = h
        .call(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let text = body.as_str().unwrap();
    assert!(text.contains("todo_emails_sent_total"), "{text}");
    assert!(text.contains("todo_smtp_send_duration_seconds"), "{text}");
}

fn client(h: &Harness) -> DaprClient {
    DaprClient::new(ClientConfig {
        http_endpoint: h.sidecar.endpoint(),
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn credentials_come_from_either_secret_shape_or_are_absent() {
    let h = Harness::new(free_port()).await;
    let dapr = client(&h);

    // Absent: no authentication.
    let none = credentials::from_secret_store(&dapr, "secretstore", "smtp-credentials")
        .await
        .unwrap();
    assert!(none.is_none());

    // Flattened by the local file store (`nestedSeparator: ":"`).
    h.sidecar
        .add_secret("flat:username", &[("flat:username", "robot")]);
    h.sidecar
        .add_secret("flat:password", &[("flat:password", "hunter2")]);
    let flat = credentials::from_secret_store(&dapr, "secretstore", "flat")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flat.username.expose_secret(), "robot");
    assert_eq!(flat.password.expose_secret(), "hunter2");

    // One multi-key secret (Kubernetes).
    h.sidecar
        .add_secret("k8s", &[("username", "u2"), ("password", "p2")]);
    let k8s = credentials::from_secret_store(&dapr, "secretstore", "k8s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k8s.username.expose_secret(), "u2");
    assert!(!format!("{k8s:?}").contains("p2"));

    // Half a secret is an error, not an anonymous login.
    h.sidecar.add_secret("half", &[("username", "u3")]);
    let err = credentials::from_secret_store(&dapr, "secretstore", "half")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
}

/// One raw HTTP/1.1 exchange with `connection: close`; the status code and the body.
async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/cloudevents+json\r\ndapr-api-token: {}\r\n\
         content-length: {}\r\n\r\n{body}",
        support::APP_TOKEN,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_binary_serves_deliveries_and_stops_on_sigterm() {
    let smtp = SmtpSink::start().await.unwrap();
    // Only for its fake sidecar; the binary builds its own router.
    let h = Harness::new(smtp.port()).await;
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_email-delivery"))
        .env_clear()
        .env("EMAIL_DELIVERY_PORT", port.to_string())
        .env("SMTP_PORT", smtp.port().to_string())
        .env("DAPR_HTTP_ENDPOINT", h.sidecar.endpoint())
        .env("APP_API_TOKEN", support::APP_TOKEN)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Up once it accepts connections (it first asks the secret store: none configured here).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "binary did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = http(port, "GET", "/dapr/subscribe", "").await;
    assert_eq!(status, 200);
    let table: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(table, email_delivery::subscriptions().to_json());

    let event = due_event(&new_id(), &reminder()).to_string();
    let (status, body) = http(port, "POST", email_delivery::EVENTS_PATH, &event).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"SUCCESS"}"#));
    assert_eq!(smtp.messages().len(), 1);

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
