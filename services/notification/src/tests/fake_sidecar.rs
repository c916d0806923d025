//! A scripted stand-in for daprd: just enough of the HTTP API for this service's unit tests.
//!
//! It keeps jobs and state (with ETags and first-write, the way `state.postgresql` v2 answers)
//! in memory, answers service invocations to the backend from a per-task script, records
//! publishes, and can inject failures and concurrent writers. That the real sidecar behaves
//! like this is the job of the end-to-end tests in `tests/`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

/// One job API call, in order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JobCall {
    /// `POST /v1.0/jobs/{name}` with its body.
    Schedule(String, Value),
    /// `DELETE /v1.0/jobs/{name}`.
    Delete(String),
}

/// A stored state value.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) value: Value,
    pub(crate) etag: String,
    pub(crate) metadata: Value,
}

/// One publish as received.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    pub(crate) pubsub: String,
    pub(crate) topic: String,
    pub(crate) content_type: String,
    pub(crate) event: Value,
}

/// Everything the fake remembers and every knob a test can turn.
#[derive(Debug, Default)]
pub(crate) struct Fake {
    /// Jobs currently scheduled: name → request body.
    pub(crate) jobs: BTreeMap<String, Value>,
    /// Every job call, in order.
    pub(crate) job_calls: Vec<JobCall>,
    /// The state store.
    pub(crate) state: BTreeMap<String, Stored>,
    /// Every item of every save request, as sent.
    pub(crate) saves: Vec<Value>,
    next_etag: u64,
    /// Before the next save of this key, another writer stores this value (a lost race).
    pub(crate) write_before_next_save: Option<(String, Value)>,
    /// After the next job call, another writer stores this value (a newer event applied by
    /// another replica between our job call and our re-read).
    pub(crate) write_after_next_job_call: Option<(String, Value)>,
    /// Saves of keys starting with `.0` fail with 500, `.1` more times.
    pub(crate) failing_saves: Option<(String, usize)>,
    /// Backend answers to `GET internal/tasks/{id}`: status and body. Unlisted tasks get 404.
    pub(crate) tasks: HashMap<Uuid, (u16, Value)>,
    /// Backend answer to `GET internal/reminders`: the pending tasks, as one page.
    pub(crate) pending_reminders: Vec<Value>,
    /// Every invoked method path.
    pub(crate) invocations: Vec<String>,
    /// Every accepted publish.
    pub(crate) published: Vec<Published>,
    /// The next this-many publishes fail with 500.
    pub(crate) failing_publishes: usize,
}

impl Fake {
    /// Stores `value` under `key` with a fresh ETag, as a successful save does.
    pub(crate) fn put(&mut self, key: &str, value: Value, metadata: Value) {
        self.next_etag += 1;
        self.state.insert(
            key.to_owned(),
            Stored {
                value,
                etag: self.next_etag.to_string(),
                metadata,
            },
        );
    }
}

/// The fake daprd, listening on a free loopback port until dropped with the test runtime.
pub(crate) struct FakeSidecar {
    addr: SocketAddr,
    fake: Arc<Mutex<Fake>>,
}

impl FakeSidecar {
    pub(crate) async fn start() -> Self {
        let fake = Arc::new(Mutex::new(Fake::default()));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, fake }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fake's memory and knobs.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Fake> {
        self.fake.lock().unwrap()
    }
}

fn dapr_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorCode": code, "message": message})),
    )
        .into_response()
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn handle(State(fake): State<Arc<Mutex<Fake>>>, req: Request) -> Response {
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let segments: Vec<String> = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let body = to_bytes(req.into_body(), usize::MAX).await.unwrap();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut fake = fake.lock().unwrap();
    match (method, segments.as_slice()) {
        (Method::POST, ["v1.0", "jobs", name]) => {
            let job: Value = serde_json::from_slice(&body).unwrap();
            fake.jobs.insert((*name).to_owned(), job.clone());
            fake.job_calls
                .push(JobCall::Schedule((*name).to_owned(), job));
            after_job_call(&mut fake);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, ["v1.0", "jobs", name]) => match fake.jobs.get(*name) {
            Some(job) => axum::Json(job.clone()).into_response(),
            // What daprd answers for a job the Scheduler does not have.
            None => dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "DAPR_SCHEDULER_GET_JOB",
                &format!(
                    "failed to get job due to: rpc error: code = NotFound desc = job not found: {name}"
                ),
            ),
        },
        (Method::DELETE, ["v1.0", "jobs", name]) => {
            fake.jobs.remove(*name);
            fake.job_calls.push(JobCall::Delete((*name).to_owned()));
            after_job_call(&mut fake);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, ["v1.0", "state", _store, key]) => match fake.state.get(*key) {
            Some(stored) => (
                [(header::ETAG, stored.etag.clone())],
                stored.value.to_string(),
            )
                .into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        (Method::POST, ["v1.0", "state", _store]) => {
            let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
            for item in &items {
                if let Err((status, message)) = save(&mut fake, item) {
                    return dapr_error(status, "ERR_STATE_SAVE", message);
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::POST, ["v1.0", "state", _store, "bulk"]) => {
            let request: Value = serde_json::from_slice(&body).unwrap();
            let items: Vec<Value> = request["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|key| {
                    let key = key.as_str().unwrap();
                    match fake.state.get(key) {
                        Some(stored) => {
                            json!({"key": key, "data": stored.value, "etag": stored.etag})
                        }
                        None => json!({"key": key}),
                    }
                })
                .collect();
            axum::Json(items).into_response()
        }
        (
            Method::GET,
            [
                "v1.0",
                "invoke",
                "backend",
                "method",
                "internal",
                "reminders",
            ],
        ) => {
            fake.invocations.push("internal/reminders".to_owned());
            let items = fake.pending_reminders.clone();
            axum::Json(json!({"items": items, "next": null})).into_response()
        }
        (Method::GET, ["v1.0", "invoke", "backend", "method", rest @ ..]) => {
            fake.invocations.push(rest.join("/"));
            let task = rest
                .strip_prefix(&["internal", "tasks"])
                .and_then(|r| r.first())
                .and_then(|id| id.parse::<Uuid>().ok());
            match task.and_then(|id| fake.tasks.get(&id)) {
                Some((status, body)) => (
                    StatusCode::from_u16(*status).unwrap(),
                    axum::Json(body.clone()),
                )
                    .into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"code": "TASK_NOT_FOUND", "message": "no such task"})),
                )
                    .into_response(),
            }
        }
        (Method::POST, ["v1.0", "publish", pubsub, topic]) => {
            if fake.failing_publishes > 0 {
                fake.failing_publishes -= 1;
                return dapr_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_PUBSUB_PUBLISH_MESSAGE",
                    "broker down",
                );
            }
            let published = Published {
                pubsub: (*pubsub).to_owned(),
                topic: (*topic).to_owned(),
                content_type,
                event: serde_json::from_slice(&body).unwrap(),
            };
            fake.published.push(published);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, ["v1.0", "healthz", "outbound"]) => StatusCode::NO_CONTENT.into_response(),
        (method, path) => dapr_error(
            StatusCode::NOT_FOUND,
            "ERR_FAKE_UNKNOWN_ROUTE",
            &format!(
                "the fake sidecar does not serve {method} /{}",
                path.join("/")
            ),
        ),
    }
}

fn after_job_call(fake: &mut Fake) {
    if let Some((key, value)) = fake.write_after_next_job_call.take() {
        fake.put(&key, value, Value::Null);
    }
}

/// One save item with `state.postgresql` v2 semantics: a given ETag must match (else 409); a
/// first-write without ETag must find the key absent (else a generic 500).
fn save(fake: &mut Fake, item: &Value) -> Result<(), (StatusCode, &'static str)> {
    fake.saves.push(item.clone());
    let key = item["key"].as_str().unwrap().to_owned();
    if let Some((target, value)) = fake.write_before_next_save.take() {
        if target == key {
            fake.put(&key, value, Value::Null);
        } else {
            fake.write_before_next_save = Some((target, value));
        }
    }
    if let Some((prefix, remaining)) = &mut fake.failing_saves
        && key.starts_with(prefix.as_str())
        && *remaining > 0
    {
        *remaining -= 1;
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "database unavailable"));
    }
    let existing = fake.state.get(&key).map(|s| s.etag.clone());
    match (item["etag"].as_str(), existing) {
        (Some(sent), Some(current)) if sent == current => {}
        (Some(_), _) => {
            return Err((StatusCode::CONFLICT, "possible etag mismatch"));
        }
        (None, Some(_)) if item["options"]["concurrency"] == "first-write" => {
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "no item was updated"));
        }
        (None, _) => {}
    }
    fake.put(&key, item["value"].clone(), item["metadata"].clone());
    Ok(())
}
