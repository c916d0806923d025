//! Integration tests of the `dapr` client and the shared middleware against the real runtime:
//! daprd + Scheduler + the broker of `TODO_BROKER` (Redis Streams by default) + PostgreSQL,
//! started by the harness.
//!
//! One environment serves every test (starting daprd and its infrastructure takes seconds), so
//! this binary has its own `main` (libtest-mimic): it starts the stack, runs the tests — in
//! parallel, each on its own topic, key or job name — and stops every process at the end, also
//! when tests fail. The app under test is built from the middleware crate and runs in-process;
//! daprd reaches it over a real socket and must present the app API token.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use dapr::{
    ClientConfig, CloudEvent, DaprClient, Error as DaprError, Insert, Job, JobError, JobRouter,
    JobTrigger, PublishOptions, SaveItem, Subscription, SubscriptionTable,
};
use harness::suite::{self, Parallelism};
use harness::{Daprd, Infra, InfraOptions, wait};
use middleware::{
    AppTokenLayer, CloudEventLayer, ConsumeError, DaprStatus, DaprStatusLayer, Event,
};
use serde_json::{Value, json};
use tower::ServiceBuilder;

const PUBSUB: &str = "pubsub";
const STATE: &str = "statestore";
const SECRETS: &str = "secretstore";
const APP_ID: &str = "it-app";
/// Marked as a test fixture: not a real credential.
const APP_TOKEN: &str = "test-fixture-app-token";
/// Marked as a test fixture: not a real credential.
const DAPR_TOKEN: &str = "test-fixture-dapr-token";
const SECRET_NAME: &str = "it-secret";
/// Marked as a test fixture: not a real credential.
const SECRET_VALUE: &str = "test-fixture-secret-value";

/// How long anything asynchronous (delivery, redelivery, job trigger) may take before a test
/// fails. Generous for a loaded 2-core machine; tests return as soon as the condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The app under test

/// What the app saw, for the tests to poll.
#[derive(Clone, Default)]
struct Seen {
    inner: Arc<Mutex<SeenInner>>,
}

#[derive(Default)]
struct SeenInner {
    /// Events by route, in arrival order.
    events: BTreeMap<&'static str, Vec<CloudEvent>>,
    /// Delivery attempts per event id on the retry route.
    retry_attempts: BTreeMap<String, u32>,
    /// Job triggers by job name.
    jobs: BTreeMap<String, Vec<Value>>,
}

impl Seen {
    fn record(&self, route: &'static str, event: CloudEvent) {
        let mut inner = self.inner.lock().expect("seen lock");
        inner.events.entry(route).or_default().push(event);
    }

    fn events(&self, route: &'static str, id: &str) -> Vec<CloudEvent> {
        let inner = self.inner.lock().expect("seen lock");
        inner
            .events
            .get(route)
            .map(|v| v.iter().filter(|e| e.id == id).cloned().collect())
            .unwrap_or_default()
    }

    fn retry_attempts(&self, id: &str) -> u32 {
        let inner = self.inner.lock().expect("seen lock");
        inner.retry_attempts.get(id).copied().unwrap_or(0)
    }

    fn job_triggers(&self, name: &str) -> Vec<Value> {
        let inner = self.inner.lock().expect("seen lock");
        inner.jobs.get(name).cloned().unwrap_or_default()
    }
}

fn subscriptions() -> SubscriptionTable {
    SubscriptionTable::new()
        .add(Subscription::new(PUBSUB, "it-basic", "/events/basic"))
        .add(Subscription::new(PUBSUB, "it-retry", "/events/retry"))
        .add(
            Subscription::new(PUBSUB, "it-drop", "/events/drop")
                .with_dead_letter_topic("it-drop-dlq"),
        )
        .add(Subscription::new(PUBSUB, "it-drop-dlq", "/events/dlq"))
}

async fn on_basic(State(seen): State<Seen>, event: Event<Value>) -> DaprStatus {
    seen.record("basic", event.event);
    DaprStatus::Success
}

/// Answers RETRY to the first delivery of each event and SUCCESS afterwards.
async fn on_retry(State(seen): State<Seen>, event: Event<Value>) -> Result<(), ConsumeError> {
    let attempt = {
        let mut inner = seen.inner.lock().expect("seen lock");
        let n = inner
            .retry_attempts
            .entry(event.event.id.clone())
            .or_default();
        *n += 1;
        *n
    };
    if attempt == 1 {
        return Err(ConsumeError::retry("first attempt is refused on purpose"));
    }
    seen.record("retry", event.event);
    Ok(())
}

async fn on_drop(State(seen): State<Seen>, event: Event<Value>) -> Result<(), ConsumeError> {
    seen.record("drop", event.event);
    Err(ConsumeError::drop("this route drops everything"))
}

async fn on_dead_letter(State(seen): State<Seen>, event: Event<Value>) -> DaprStatus {
    seen.record("dlq", event.event);
    DaprStatus::Success
}

fn app(seen: Seen) -> Router {
    let events = Router::new()
        .route("/events/basic", post(on_basic))
        .route("/events/retry", post(on_retry))
        .route("/events/drop", post(on_drop))
        .route("/events/dlq", post(on_dead_letter))
        .route_layer(
            ServiceBuilder::new()
                .layer(CloudEventLayer::new())
                .layer(DaprStatusLayer::new()),
        )
        .with_state(seen.clone());
    let jobs_seen = seen;
    let jobs = JobRouter::new()
        .on_prefix("it-job-", move |trigger: JobTrigger| {
            let seen = jobs_seen.clone();
            async move {
                let mut inner = seen.inner.lock().expect("seen lock");
                inner
                    .jobs
                    .entry(trigger.name)
                    .or_default()
                    .push(trigger.data);
                Ok::<(), JobError>(())
            }
        })
        .into_router();
    Router::new()
        .merge(events)
        .merge(jobs)
        .merge(subscriptions().router())
        .route("/healthz", get(|| async { "ok" }))
        .layer(AppTokenLayer::new(Some(APP_TOKEN.into())))
}

// ---------------------------------------------------------------------------------------------
// The environment

struct Env {
    seen: Seen,
    client: DaprClient,
    app_port: u16,
    daprd: Daprd,
    // Declared last: dropped after the sidecar, so daprd never outlives its infrastructure.
    infra: Infra,
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        let mut secrets = serde_json::Map::new();
        secrets.insert(SECRET_NAME.into(), SECRET_VALUE.into());
        let infra = Infra::start(InfraOptions {
            secrets,
            ..InfraOptions::from_env()?
        })
        .await?;

        let seen = Seen::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let app_port = listener.local_addr()?.port();
        let router = app(seen.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let daprd = infra
            .daprd(APP_ID, Some(app_port), |o| {
                o.app_api_token = Some(APP_TOKEN.into());
                o.dapr_api_token = Some(DAPR_TOKEN.into());
            })
            .await?;
        // Subscriptions are read once the app channel is up; wait for it so the first
        // publish cannot race the sidecar's subscription set-up.
        daprd.wait_app_channel(DEADLINE).await?;
        let client = DaprClient::new(ClientConfig {
            http_endpoint: daprd.http_endpoint(),
            api_token: Some(DAPR_TOKEN.into()),
            ..ClientConfig::default()
        })?;
        wait_for_subscriptions(&client).await?;
        Ok(Self {
            seen,
            client,
            app_port,
            daprd,
            infra,
        })
    }
}

/// Waits until daprd lists every topic of our table as subscribed.
async fn wait_for_subscriptions(client: &DaprClient) -> anyhow::Result<()> {
    let expected = subscriptions().iter().count();
    wait::until("daprd to load our subscriptions", DEADLINE, || async {
        let meta = client.metadata().await?;
        let n = meta["subscriptions"].as_array().map_or(0, Vec::len);
        Ok::<_, DaprError>((n >= expected).then_some(()))
    })
    .await?;
    Ok(())
}

fn new_event(ty: &str, data: &Value) -> anyhow::Result<CloudEvent> {
    Ok(
        CloudEvent::new(uuid::Uuid::now_v7().to_string(), "/todo/it", ty)
            .with_subject("it-subject")
            .with_json_data(data)?,
    )
}

// ---------------------------------------------------------------------------------------------
// The tests

/// 1. Publish → the subscription route receives a decoded CloudEvent with our own `id`.
async fn publish_delivers_decoded_cloudevent_with_our_id(env: &Env) -> anyhow::Result<()> {
    let data = json!({"title": "buy milk", "n": 1});
    let event = new_event("com.todo.test.created.v1", &data)?;
    env.client
        .publish_event(PUBSUB, "it-basic", &event, &PublishOptions::default())
        .await?;
    let got = wait::until("the event on /events/basic", DEADLINE, || async {
        Ok::<_, std::convert::Infallible>(env.seen.events("basic", &event.id).pop())
    })
    .await?;
    ensure!(got.id == event.id, "id changed: {} != {}", got.id, event.id);
    ensure!(got.ty == event.ty, "type changed: {}", got.ty);
    ensure!(got.source == event.source, "source changed: {}", got.source);
    ensure!(
        got.subject == event.subject,
        "subject changed: {:?}",
        got.subject
    );
    ensure!(
        got.data.as_ref() == Some(&data),
        "data changed: {:?}",
        got.data
    );
    ensure!(
        got.topic.as_deref() == Some("it-basic"),
        "topic: {:?}",
        got.topic
    );
    ensure!(
        got.pubsubname.as_deref() == Some(PUBSUB),
        "pubsub: {:?}",
        got.pubsubname
    );
    ensure!(
        got.traceparent
            .as_deref()
            .is_some_and(|t| t.starts_with("00-")),
        "daprd should stamp a W3C traceparent, got {:?}",
        got.traceparent
    );
    Ok(())
}

/// 2. The handler answers RETRY once → the event is redelivered and then succeeds.
async fn retry_answer_redelivers_then_succeeds(env: &Env) -> anyhow::Result<()> {
    let event = new_event("com.todo.test.retry.v1", &json!({"k": "v"}))?;
    env.client
        .publish_event(PUBSUB, "it-retry", &event, &PublishOptions::default())
        .await?;
    wait::until("the retried event to succeed", DEADLINE, || async {
        Ok::<_, std::convert::Infallible>(env.seen.events("retry", &event.id).pop())
    })
    .await?;
    let attempts = env.seen.retry_attempts(&event.id);
    ensure!(
        attempts == 2,
        "expected RETRY then SUCCESS (2 attempts), saw {attempts}"
    );
    Ok(())
}

/// 3. The handler answers DROP → the event lands on the dead-letter topic, same id.
async fn drop_answer_routes_event_to_dead_letter_topic(env: &Env) -> anyhow::Result<()> {
    let data = json!({"poison": true});
    let event = new_event("com.todo.test.poison.v1", &data)?;
    env.client
        .publish_event(PUBSUB, "it-drop", &event, &PublishOptions::default())
        .await?;
    let dead = wait::until("the event on the dead-letter topic", DEADLINE, || async {
        Ok::<_, std::convert::Infallible>(env.seen.events("dlq", &event.id).pop())
    })
    .await?;
    ensure!(
        dead.data.as_ref() == Some(&data),
        "dead letter data: {:?}",
        dead.data
    );
    let drops = env.seen.events("drop", &event.id).len();
    ensure!(
        drops == 1,
        "DROP must not be retried; the handler saw the event {drops} times"
    );
    Ok(())
}

/// 4. State: save, get, ETag conflict → typed error; `first-write` twice → second refused.
async fn state_etags_and_first_write(env: &Env) -> anyhow::Result<()> {
    let key = format!("it-state-{}", uuid::Uuid::now_v7());
    let c = &env.client;
    ensure!(
        c.get_state(STATE, &key).await?.is_none(),
        "a fresh key must be absent"
    );

    c.save_state(STATE, &[SaveItem::new(&key, json!({"v": 1}))])
        .await?;
    let first = c
        .get_state(STATE, &key)
        .await?
        .context("saved key is missing")?;
    ensure!(
        first.json::<Value>()? == json!({"v": 1}),
        "read back a different value"
    );
    let etag = first
        .etag
        .clone()
        .context("postgresql v2 returns an ETag")?;

    // Update with the current ETag succeeds and changes the ETag.
    c.save_state(
        STATE,
        &[SaveItem::new(&key, json!({"v": 2})).with_etag(&etag)],
    )
    .await?;
    let second = c.get_state(STATE, &key).await?.context("key vanished")?;
    ensure!(
        second.etag.as_deref() != Some(etag.as_str()),
        "ETag did not change"
    );

    // The stale ETag is now a conflict, for save and for delete.
    match c
        .save_state(
            STATE,
            &[SaveItem::new(&key, json!({"v": 3})).with_etag(&etag)],
        )
        .await
    {
        Err(DaprError::EtagMismatch(_)) => {}
        other => bail!("stale ETag save: expected EtagMismatch, got {other:?}"),
    }
    match c.delete_state(STATE, &key, Some(&etag)).await {
        Err(DaprError::EtagMismatch(_)) => {}
        other => bail!("stale ETag delete: expected EtagMismatch, got {other:?}"),
    }
    let still = c.get_state(STATE, &key).await?.context("key vanished")?;
    ensure!(
        still.json::<Value>()? == json!({"v": 2}),
        "a refused write changed the value"
    );

    // first-write: the first insert wins, a second one is refused and changes nothing.
    let once = format!("it-once-{}", uuid::Uuid::now_v7());
    c.save_state(STATE, &[SaveItem::new(&once, json!("a")).first_write()])
        .await?;
    let again = c
        .save_state(STATE, &[SaveItem::new(&once, json!("b")).first_write()])
        .await;
    ensure!(again.is_err(), "second first-write of {once} was accepted");
    let kept = c.get_state(STATE, &once).await?.context("key vanished")?;
    ensure!(
        kept.json::<Value>()? == json!("a"),
        "first-write overwrote the value"
    );

    // The de-duplication primitive built on it tells "already there" apart from failure, and
    // keeps the item's metadata (a TTL here).
    let dedup = format!("it-dedup-{}", uuid::Uuid::now_v7());
    let first = c
        .insert_state_if_absent(
            STATE,
            SaveItem::new(&dedup, json!(1)).with_ttl_seconds(3600),
        )
        .await?;
    ensure!(first.is_inserted(), "first insert refused: {first:?}");
    match c
        .insert_state_if_absent(STATE, SaveItem::new(&dedup, json!(2)))
        .await?
    {
        Insert::Existing(existing) => ensure!(
            existing.json::<Value>()? == json!(1),
            "the existing item is not the first value"
        ),
        Insert::Inserted => bail!("second insert of {dedup} reported as new"),
    }
    let dedup_value = c
        .get_state(STATE, &dedup)
        .await?
        .context("dedup key vanished")?;
    ensure!(
        dedup_value.json::<Value>()? == json!(1),
        "second insert changed the value"
    );
    match c
        .insert_state_if_absent("no-such-store", SaveItem::new(&dedup, json!(3)))
        .await
    {
        Err(_) => {}
        Ok(outcome) => bail!("an unknown store must fail, got Ok({outcome:?})"),
    }
    // A TTL'd insert expires: first-write after expiry is accepted again.
    let short = format!("it-dedup-ttl-{}", uuid::Uuid::now_v7());
    ensure!(
        c.insert_state_if_absent(STATE, SaveItem::new(&short, json!("a")).with_ttl_seconds(1))
            .await?
            .is_inserted(),
        "TTL insert refused"
    );
    wait::until("the 1 s TTL to expire the key", DEADLINE, || async {
        Ok::<_, DaprError>(c.get_state(STATE, &short).await?.is_none().then_some(()))
    })
    .await?;

    c.delete_state(STATE, &key, None).await?;
    ensure!(
        c.get_state(STATE, &key).await?.is_none(),
        "deleted key still present"
    );
    Ok(())
}

/// 5. A secret is read from the `secretstores.local.file` store.
async fn secret_is_read_from_local_file_store(env: &Env) -> anyhow::Result<()> {
    let secret = env.client.get_secret(SECRETS, SECRET_NAME).await?;
    ensure!(
        secret.get(SECRET_NAME).map(String::as_str) == Some(SECRET_VALUE),
        "unexpected secret map (keys: {:?})",
        secret.keys().collect::<Vec<_>>()
    );
    let all = env.client.get_bulk_secrets(SECRETS).await?;
    ensure!(
        all.contains_key(SECRET_NAME),
        "bulk secrets lack {SECRET_NAME}"
    );
    match env.client.get_secret(SECRETS, "it-no-such-secret").await {
        Err(e) => ensure!(!e.is_transient(), "a missing secret is not transient: {e}"),
        Ok(map) => bail!("a missing secret was returned: {:?}", map.keys()),
    }
    Ok(())
}

/// 6. A job with `dueTime` 1 s → exactly one `POST /job/{name}` carrying the job's `data`.
async fn job_due_in_one_second_triggers_once_with_data(env: &Env) -> anyhow::Result<()> {
    let name = format!("it-job-{}", uuid::Uuid::now_v7());
    let data = json!({"task_id": "t-1", "remind_at": "2026-11-27T10:00:00Z"});
    env.client
        .schedule_job(
            &name,
            &Job::once_after(Duration::from_secs(1), data.clone()),
        )
        .await?;
    let scheduled = env.client.get_job(&name).await?;
    // The Scheduler may have fired and deleted a 1 s job already; when it is there, it is ours.
    if let Some(job) = scheduled {
        ensure!(
            job.data == data,
            "GET job returned other data: {}",
            job.data
        );
    }
    let first = wait::until("the job trigger", DEADLINE, || async {
        Ok::<_, std::convert::Infallible>(env.seen.job_triggers(&name).first().cloned())
    })
    .await?;
    ensure!(first == data, "trigger carried {first}, expected {data}");
    // A one-shot job is deleted by the Scheduler once its trigger succeeded; after that no
    // second trigger can come, so counting then is final.
    wait::until("the one-shot job to be deleted", DEADLINE, || async {
        Ok::<_, DaprError>(env.client.get_job(&name).await?.is_none().then_some(()))
    })
    .await?;
    let n = env.seen.job_triggers(&name).len();
    ensure!(n == 1, "expected exactly one trigger, saw {n}");
    Ok(())
}

/// 7. With `APP_API_TOKEN`, daprd's calls reach the app; a call without the token gets 401.
async fn app_token_guards_the_app(env: &Env) -> anyhow::Result<()> {
    // daprd → app with the token: a delivery arrives (the route is behind the token check).
    publish_delivers_decoded_cloudevent_with_our_id(env).await?;

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", env.app_port);
    let event = new_event("com.todo.test.created.v1", &json!({}))?;
    let unauthenticated = http
        .post(format!("{base}/events/basic"))
        .header("content-type", "application/cloudevents+json")
        .json(&event)
        .send()
        .await?;
    ensure!(
        unauthenticated.status() == 401,
        "no token: expected 401, got {}",
        unauthenticated.status()
    );
    let body: Value = unauthenticated.json().await?;
    ensure!(body["code"].is_string(), "401 body has no code: {body}");
    ensure!(
        env.seen.events("basic", &event.id).is_empty(),
        "a rejected event reached the handler"
    );

    let wrong = http
        .post(format!("{base}/dapr/subscribe"))
        .header("dapr-api-token", "not-the-token")
        .send()
        .await?;
    ensure!(
        wrong.status() == 401,
        "wrong token: expected 401, got {}",
        wrong.status()
    );
    let health = http.get(format!("{base}/healthz")).send().await?;
    ensure!(
        health.status() == 200,
        "health must not need the token: {}",
        health.status()
    );

    // And the other direction: daprd configured with DAPR_API_TOKEN refuses a client without it.
    let sidecar = format!("{}/v1.0/metadata", env.daprd.http_endpoint());
    let refused = http.get(&sidecar).send().await?;
    ensure!(
        refused.status() == 401,
        "daprd without token: {}",
        refused.status()
    );
    Ok(())
}

/// 8. The committed declarative Subscriptions (what the Helm chart deploys) load in the real
///    daprd: a sidecar for each scoped app id, given the file beside the profile's components,
///    lists each of them as DECLARATIVE with its topic, route and dead-letter topic.
async fn declarative_subscriptions_load_in_daprd(env: &Env) -> anyhow::Result<()> {
    let dir = harness::repo_root().join("dapr").join("subscriptions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    ensure!(!files.is_empty(), "no files in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(<Value as serde::Deserialize>::deserialize)
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing {}", file.display()))?;
        let app_ids: std::collections::BTreeSet<String> = docs
            .iter()
            .flat_map(|d| d["scopes"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        ensure!(!app_ids.is_empty(), "{}: no scopes", file.display());
        for app_id in app_ids {
            let resources = tempfile::Builder::new()
                .prefix("declarative-subs-")
                .tempdir()?;
            for entry in std::fs::read_dir(env.infra.resources_dir())? {
                let entry = entry?;
                std::fs::copy(entry.path(), resources.path().join(entry.file_name()))?;
            }
            std::fs::copy(&file, resources.path().join("subscriptions.yaml"))?;
            let sidecar = env
                .infra
                .daprd(&app_id, None, |o| {
                    o.resources = resources.path().to_path_buf();
                    o.log_name = Some(format!("daprd-declarative-{app_id}"));
                })
                .await?;
            let client = DaprClient::new(ClientConfig {
                http_endpoint: sidecar.http_endpoint(),
                ..ClientConfig::default()
            })?;
            let meta = client.metadata().await?;
            let listed = meta["subscriptions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for doc in docs.iter().filter(|d| {
                d["scopes"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(app_id.as_str())))
            }) {
                let spec = &doc["spec"];
                let found = listed
                    .iter()
                    .find(|s| s["topic"] == spec["topic"] && s["pubsubname"] == spec["pubsubname"]);
                let Some(found) = found else {
                    bail!(
                        "{app_id}: {} not listed by daprd: {listed:?}",
                        spec["topic"]
                    );
                };
                ensure!(
                    found["type"] == "DECLARATIVE",
                    "{app_id}: {} is {}, not DECLARATIVE",
                    spec["topic"],
                    found["type"]
                );
                ensure!(
                    found["deadLetterTopic"] == spec["deadLetterTopic"],
                    "{app_id}: dead-letter topic {} != {}",
                    found["deadLetterTopic"],
                    spec["deadLetterTopic"]
                );
                let route = &spec["routes"]["default"];
                let routes = found["rules"].as_array().cloned().unwrap_or_default();
                ensure!(
                    routes.iter().any(|r| &r["path"] == route),
                    "{app_id}: route {route} not among {routes:?}"
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Runner

fn main() -> ExitCode {
    let tests = harness::tests![
        publish_delivers_decoded_cloudevent_with_our_id,
        retry_answer_redelivers_then_succeeds,
        drop_answer_routes_event_to_dead_letter_topic,
        state_etags_and_first_write,
        secret_is_read_from_local_file_store,
        job_due_in_one_second_triggers_once_with_data,
        app_token_guards_the_app,
        declarative_subscriptions_load_in_daprd,
    ];
    suite::run(Env::start, tests, Parallelism::Parallel, |env| {
        env.infra.log_dir().to_path_buf()
    })
}
