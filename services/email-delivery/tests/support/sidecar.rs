//! A scripted fake Dapr sidecar: state with ETags, TTL and PostgreSQL-v2 first-write
//! semantics, publishes, secrets and the outbound health probe, all recorded.
//!
//! Only what email-delivery calls is implemented, the way daprd answers it (see
//! `docs/dapr.md`, "daprd behaviour the code relies on"): a refused `first-write` is a generic 500,
//! a stale ETag a 409, a missing key a 204, a missing secret a 500 saying "not found".

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// One stored key.
#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    etag: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }
}

/// One publish request as received.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    pub(crate) topic: String,
    pub(crate) content_type: Option<String>,
    pub(crate) event: Value,
    /// Whether the fake answered 204.
    pub(crate) accepted: bool,
}

/// One state write item as received.
#[derive(Clone, Debug)]
pub(crate) struct Saved {
    pub(crate) item: Value,
    /// The status the fake answered for the request it came in.
    pub(crate) status: u16,
}

#[derive(Default)]
struct Shared {
    state: Mutex<HashMap<String, Entry>>,
    saves: Mutex<Vec<Saved>>,
    deletes: Mutex<Vec<(String, Option<String>)>>,
    publishes: Mutex<Vec<Published>>,
    secrets: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Every state call answers 500 while set (the database is down).
    state_down: AtomicBool,
    /// The next N publishes answer 500.
    failing_publishes: AtomicUsize,
    /// The next N saves of a `sent` record answer 500 (the database fails just after the mail
    /// went out).
    failing_sent_saves: AtomicUsize,
    /// State calls seen (get, save, delete).
    state_calls: AtomicUsize,
}

/// A running fake sidecar on a loopback port.
#[derive(Clone)]
pub(crate) struct FakeSidecar {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeSidecar {
    pub(crate) async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let state = Arc::clone(&shared);
        let router = Router::new().fallback(move |request: Request| {
            let state = Arc::clone(&state);
            async move { answer(&state, request).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, shared }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stored value of `key`, if it is there and not expired.
    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        let state = self.shared.state.lock().unwrap();
        state.get(key).filter(|e| e.live()).map(|e| e.value.clone())
    }

    /// Stores `value` under `key` as if another delivery had written it.
    pub(crate) fn put(&self, key: &str, value: Value, ttl: Option<Duration>) {
        self.shared.state.lock().unwrap().insert(
            key.to_owned(),
            Entry {
                value,
                etag: uuid::Uuid::new_v4().to_string(),
                expires_at: ttl.map(|ttl| Instant::now() + ttl),
            },
        );
    }

    /// Lets `key`'s TTL run out now.
    pub(crate) fn expire(&self, key: &str) {
        if let Some(entry) = self.shared.state.lock().unwrap().get_mut(key) {
            entry.expires_at = Some(Instant::now() - Duration::from_millis(1));
        }
    }

    pub(crate) fn saves(&self) -> Vec<Saved> {
        self.shared.saves.lock().unwrap().clone()
    }

    pub(crate) fn deletes(&self) -> Vec<(String, Option<String>)> {
        self.shared.deletes.lock().unwrap().clone()
    }

    pub(crate) fn publishes(&self) -> Vec<Published> {
        self.shared.publishes.lock().unwrap().clone()
    }

    pub(crate) fn state_calls(&self) -> usize {
        self.shared.state_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn set_state_down(&self, down: bool) {
        self.shared.state_down.store(down, Ordering::SeqCst);
    }

    pub(crate) fn fail_next_publishes(&self, n: usize) {
        self.shared.failing_publishes.store(n, Ordering::SeqCst);
    }

    pub(crate) fn fail_next_sent_saves(&self, n: usize) {
        self.shared.failing_sent_saves.store(n, Ordering::SeqCst);
    }

    pub(crate) fn add_secret(&self, name: &str, keys: &[(&str, &str)]) {
        self.shared.secrets.lock().unwrap().insert(
            name.to_owned(),
            keys.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }
}

fn dapr_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errorCode": code, "message": message}).to_string(),
    )
        .into_response()
}

async fn answer(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path = decode(parts.uri.path());
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(4, '/').collect();
    match (parts.method.clone(), segments.as_slice()) {
        (Method::GET, ["v1.0", "healthz", "outbound"]) => StatusCode::NO_CONTENT.into_response(),
        (Method::GET, ["v1.0", "secrets", _store, name]) => {
            match shared.secrets.lock().unwrap().get(*name) {
                Some(secret) => axum::Json(secret.clone()).into_response(),
                None => dapr_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_SECRET_GET",
                    &format!("failed getting secret with key {name}: secret {name} not found"),
                ),
            }
        }
        (Method::POST, ["v1.0", "publish", _pubsub, topic]) => {
            let failing = shared
                .failing_publishes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            shared.publishes.lock().unwrap().push(Published {
                topic: (*topic).to_owned(),
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                event: serde_json::from_slice(&body).unwrap(),
                accepted: !failing,
            });
            if failing {
                dapr_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_PUBSUB_PUBLISH_MESSAGE",
                    "broker unavailable",
                )
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        (method, ["v1.0", "state", _store, rest @ ..]) => {
            shared.state_calls.fetch_add(1, Ordering::SeqCst);
            if shared.state_down.load(Ordering::SeqCst) {
                return dapr_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_STATE_SAVE",
                    "failed to connect to the database: connection refused",
                );
            }
            match (method, rest) {
                (Method::GET, [key]) => get_state(shared, key),
                (Method::POST, []) => save_state(shared, &body),
                (Method::DELETE, [key]) => {
                    let etag = parts
                        .headers
                        .get(header::IF_MATCH)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    delete_state(shared, key, etag)
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn get_state(shared: &Shared, key: &str) -> Response {
    let state = shared.state.lock().unwrap();
    match state.get(key).filter(|e| e.live()) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(entry) => (
            [(header::ETAG, entry.etag.clone())],
            serde_json::to_vec(&entry.value).unwrap(),
        )
            .into_response(),
    }
}

fn save_state(shared: &Shared, body: &[u8]) -> Response {
    let items: Vec<Value> = serde_json::from_slice(body).unwrap();
    let mut state = shared.state.lock().unwrap();
    let sent = items.iter().any(|item| item["value"]["status"] == "sent");
    if sent
        && shared
            .failing_sent_saves
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        shared
            .saves
            .lock()
            .unwrap()
            .extend(items.iter().map(|item| Saved {
                item: item.clone(),
                status: 500,
            }));
        return dapr_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_SAVE",
            "failed to connect to the database: connection refused",
        );
    }
    // Checked all first, applied all after: one request is one transaction in PostgreSQL v2.
    let mut status = StatusCode::NO_CONTENT;
    for item in &items {
        let key = item["key"].as_str().unwrap();
        let live = state.get(key).filter(|e| e.live());
        let first_write = item["options"]["concurrency"] == "first-write";
        match item["etag"].as_str() {
            Some(etag) if live.is_none_or(|e| e.etag != etag) => status = StatusCode::CONFLICT,
            None if first_write && live.is_some() => status = StatusCode::INTERNAL_SERVER_ERROR,
            _ => {}
        }
    }
    shared
        .saves
        .lock()
        .unwrap()
        .extend(items.iter().map(|item| Saved {
            item: item.clone(),
            status: status.as_u16(),
        }));
    match status {
        StatusCode::CONFLICT => {
            return dapr_error(status, "ERR_STATE_SAVE", "possible etag mismatch");
        }
        StatusCode::INTERNAL_SERVER_ERROR => {
            return dapr_error(
                status,
                "ERR_STATE_SAVE",
                "failed saving state in state store statestore: no item was updated",
            );
        }
        _ => {}
    }
    for item in items {
        let ttl = item["metadata"]["ttlInSeconds"]
            .as_str()
            .map(|s| Duration::from_secs(s.parse().unwrap()));
        state.insert(
            item["key"].as_str().unwrap().to_owned(),
            Entry {
                value: item["value"].clone(),
                etag: uuid::Uuid::new_v4().to_string(),
                expires_at: ttl.map(|ttl| Instant::now() + ttl),
            },
        );
    }
    status.into_response()
}

fn delete_state(shared: &Shared, key: &str, etag: Option<String>) -> Response {
    shared
        .deletes
        .lock()
        .unwrap()
        .push((key.to_owned(), etag.clone()));
    let mut state = shared.state.lock().unwrap();
    if let Some(etag) = etag
        && state.get(key).is_none_or(|e| e.etag != etag)
    {
        return dapr_error(
            StatusCode::CONFLICT,
            "ERR_STATE_DELETE",
            "possible etag mismatch",
        );
    }
    state.remove(key);
    StatusCode::NO_CONTENT.into_response()
}

/// Percent-decodes a URL path.
fn decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
