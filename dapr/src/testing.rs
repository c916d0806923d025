//! A scripted fake of daprd's HTTP API for unit tests (feature `test-support`).
//!
//! [`FakeSidecar`] listens on a loopback port and answers the way daprd does (see `docs/dapr.md`,
//! "daprd behaviour the code relies on"): state with ETags, `first-write` and TTL as
//! `state.postgresql` v2 keeps them, jobs, publishes, secrets, service invocation answered by a
//! test-provided handler, and the health and metadata endpoints clients probe. It records every
//! request, and a test can script answers that take precedence or inject failures.
//!
//! It fakes the outside world for one layer's unit tests only: whether the real daprd behaves
//! like this is for the end-to-end tests in the workspace's `tests/` crate to prove.

mod answer;
mod app_token;
mod record;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::Method;
use serde_json::Value;

pub use self::answer::Answer;
pub use self::app_token::{WrongToken, wrong_app_tokens};
pub use self::record::{Invocation, Recorded};
use self::state::StateStore;
pub use self::state::{Saved, Stored};

/// Answers the service invocations of a test: what the called app would answer.
type InvokeHandler = dyn Fn(&Invocation) -> Answer + Send + Sync;

/// One call of the jobs API, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum JobCall {
    /// `POST /v1.0/jobs/{name}` with its body.
    Schedule(String, Value),
    /// `DELETE /v1.0/jobs/{name}`.
    Delete(String),
}

/// One publish as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// The pub/sub component named in the path.
    pub pubsub: String,
    /// The topic named in the path (slashes kept).
    pub topic: String,
    /// The request's `content-type`.
    pub content_type: Option<String>,
    /// The body as JSON.
    pub event: Value,
    /// Whether the fake accepted it (204) rather than failing it as told.
    pub accepted: bool,
}

/// An answer scripted for the next request that matches.
#[derive(Debug)]
struct Scripted {
    /// `None` matches any request.
    matches: Option<(Method, String)>,
    answer: Answer,
}

/// Everything the fake remembers, behind one lock so that each request sees and leaves a
/// consistent whole (concurrent writers race as they would on one database).
#[derive(Default)]
struct Model {
    requests: Vec<Recorded>,
    script: VecDeque<Scripted>,
    state: StateStore,
    jobs: BTreeMap<String, Value>,
    job_calls: Vec<JobCall>,
    /// After the next job call, another writer stores this value (a newer event applied by
    /// another replica between a job call and its re-read).
    write_after_next_job_call: Option<(String, Value)>,
    publishes: Vec<Published>,
    failing_publishes: usize,
    secrets: HashMap<String, BTreeMap<String, String>>,
    invoke: Option<Arc<InvokeHandler>>,
}

/// The fake daprd, serving on a free loopback port until the test's runtime ends.
#[derive(Clone)]
pub struct FakeSidecar {
    addr: SocketAddr,
    model: Arc<Mutex<Model>>,
}

impl FakeSidecar {
    /// Binds a free loopback port and serves on it.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let fake = Self {
            addr: listener.local_addr()?,
            model: Arc::default(),
        };
        let serving = fake.clone();
        let router = Router::new().fallback(move |request: Request| {
            let fake = serving.clone();
            async move { fake.handle(request).await }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(fake)
    }

    /// `http://127.0.0.1:<port>`, for `ClientConfig::http_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    // ------------------------------------------------------------ scripts and records

    /// Answers the next request, whatever it asks, with `answer` (scripts are used in order).
    pub fn script(&self, answer: Answer) {
        self.push_script(None, answer);
    }

    /// Answers the next `method` request whose path starts with `path_prefix` with `answer`.
    pub fn script_for(&self, method: Method, path_prefix: &str, answer: Answer) {
        self.push_script(Some((method, path_prefix.to_owned())), answer);
    }

    fn push_script(&self, matches: Option<(Method, String)>, answer: Answer) {
        self.lock().script.push_back(Scripted { matches, answer });
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests received since the last call, in order; forgets them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.lock().requests)
    }

    /// Every service invocation received so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.requests()
            .into_iter()
            .filter_map(Invocation::from_request)
            .collect()
    }

    /// Answers service invocations (`/v1.0/invoke/{app}/method/...`) with `handler`; without
    /// one, they fail as an unreachable app does.
    pub fn on_invoke(&self, handler: impl Fn(&Invocation) -> Answer + Send + Sync + 'static) {
        self.lock().invoke = Some(Arc::new(handler));
    }

    // ------------------------------------------------------------ state

    /// The live value of `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.lock()
            .state
            .live(key)
            .map(|stored| stored.value.clone())
    }

    /// Every live key with its value, ETag and metadata.
    pub fn state(&self) -> BTreeMap<String, Stored> {
        self.lock().state.snapshot()
    }

    /// Stores `value` under `key` with a fresh ETag, as another writer would.
    pub fn put(&self, key: &str, value: Value, ttl: Option<Duration>) {
        self.lock().state.put(key, value, ttl);
    }

    /// Lets `key`'s TTL run out now.
    pub fn expire(&self, key: &str) {
        self.lock().state.expire(key);
    }

    /// Every item of every save request, with the status its request was answered.
    pub fn saves(&self) -> Vec<Saved> {
        self.lock().state.saves.clone()
    }

    /// Every state delete: the key and its `If-Match` ETag.
    pub fn deletes(&self) -> Vec<(String, Option<String>)> {
        self.lock().state.deletes.clone()
    }

    /// While `down`, every state call answers 500 (the database is unreachable).
    pub fn set_state_down(&self, down: bool) {
        self.lock().state.down = down;
    }

    /// The next `n` save requests with an item for which `matches` holds answer 500 (the
    /// database fails at that moment).
    pub fn fail_next_saves(&self, n: usize, matches: impl Fn(&Value) -> bool + Send + 'static) {
        self.lock().state.failing_saves = Some((n, Box::new(matches)));
    }

    /// Just before the next save request touching `key`, another writer stores `value` there
    /// (the request loses a race it would otherwise win).
    pub fn write_before_next_save(&self, key: &str, value: Value) {
        self.lock().state.write_before_next_save = Some((key.to_owned(), value));
    }

    // ------------------------------------------------------------ jobs

    /// The jobs scheduled now: name → the body they were scheduled with.
    pub fn jobs(&self) -> BTreeMap<String, Value> {
        self.lock().jobs.clone()
    }

    /// Every schedule and delete, in order.
    pub fn job_calls(&self) -> Vec<JobCall> {
        self.lock().job_calls.clone()
    }

    /// Forgets every job, as if the Scheduler had lost them.
    pub fn clear_jobs(&self) {
        self.lock().jobs.clear();
    }

    /// Right after the next job call, another writer stores `value` under state `key`.
    pub fn write_after_next_job_call(&self, key: &str, value: Value) {
        self.lock().write_after_next_job_call = Some((key.to_owned(), value));
    }

    // ------------------------------------------------------------ publishes and secrets

    /// Every publish, accepted or failed, in order.
    pub fn publishes(&self) -> Vec<Published> {
        self.lock().publishes.clone()
    }

    /// The next `n` publishes answer 500 (the broker is down).
    pub fn fail_next_publishes(&self, n: usize) {
        self.lock().failing_publishes = n;
    }

    /// Adds secret `name` with `keys`, in whichever secret store is asked.
    pub fn add_secret(&self, name: &str, keys: &[(&str, &str)]) {
        let keys = keys
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.lock().secrets.insert(name.to_owned(), keys);
    }

    // ------------------------------------------------------------ serving

    /// A poisoned lock only means another test thread panicked; its data is still whole.
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(&self, request: Request) -> Response {
        let request = match Recorded::read(request).await {
            Ok(request) => request,
            Err(answer) => return answer.into_response(),
        };
        let scripted = {
            let mut model = self.lock();
            model.requests.push(request.clone());
            let found = model.script.iter().position(|s| match &s.matches {
                None => true,
                Some((method, prefix)) => {
                    request.method == method && request.path.starts_with(prefix.as_str())
                }
            });
            found.and_then(|i| model.script.remove(i)).map(|s| s.answer)
        };
        match scripted {
            Some(answer) => answer.into_response(),
            None => routes::answer(self, &request).into_response(),
        }
    }
}

impl std::fmt::Debug for FakeSidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSidecar")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
