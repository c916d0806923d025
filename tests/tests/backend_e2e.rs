//! End-to-end tests of the backend through real daprd, the pub/sub broker of the profile in
//! `TODO_BROKER` (Redis Streams by default, Kafka or RabbitMQ) and PostgreSQL.
//!
//! The backend binary runs as its own process with its own sidecar; an observer app with a
//! second sidecar records what reaches the topics. Tests run one at a time because one of them
//! stops the backend's sidecar.

#![allow(clippy::print_stderr)] // The fault scenarios report their figures on the test output.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use contracts::{event_types, topics};
use harness::suite::{self, Parallelism};
use harness::{
    AppHealthCheck, Daprd, Infra, InfraOptions, Service, ServiceOptions, TopicGrant, ports, wait,
};
use serde_json::{Value, json};
use support::observer::Observer;
use support::tokens::{JWT_FIXTURE_KEY, token_for};

/// Marked as a test fixture: not a real credential.
const APP_TOKEN: &str = "test-fixture-app-token";
/// Generous for a loaded 2-core machine; tests return as soon as the condition holds.
const DEADLINE: Duration = Duration::from_secs(60);
/// The app-id of the observer that comes and goes in `events_wait_for_a_consumer_app_that_is_down`.
const LATE_OBSERVER: &str = "e2e-late-observer";

struct Env {
    http: reqwest::Client,
    backend: tokio::sync::Mutex<Service>,
    backend_dapr: tokio::sync::Mutex<Daprd>,
    observer: Observer,
    infra: Infra,
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        // The observers read the backend's topics, which the committed component protects.
        let infra = Infra::start(InfraOptions {
            topic_grants: vec![
                TopicGrant::new(
                    "e2e-observer",
                    &[topics::TASK_EVENTS, topics::TASK_RECURRENCE],
                    &[],
                ),
                TopicGrant::new(LATE_OBSERVER, &[topics::TASK_EVENTS], &[]),
            ],
            ..InfraOptions::from_env()?
        })
        .await?;
        infra.postgres.create_database("backend")?;
        let port = ports::free_port()?;
        let backend_dapr = infra
            .daprd("backend", Some(port), |o| {
                o.app_api_token = Some(APP_TOKEN.into());
                o.app_health = Some(AppHealthCheck::SERVICES);
            })
            .await?;
        let backend = Service::start(
            &ServiceOptions {
                binary: "backend".into(),
                log_name: "backend".into(),
                port,
                env: vec![
                    ("BACKEND_PORT".into(), port.to_string()),
                    ("DATABASE_URL".into(), infra.postgres.url("backend")),
                    ("JWT_SECRET".into(), JWT_FIXTURE_KEY.into()),
                    (
                        "DAPR_HTTP_PORT".into(),
                        backend_dapr.http_port().to_string(),
                    ),
                    ("APP_API_TOKEN".into(), APP_TOKEN.into()),
                ],
                binary_path: None,
            },
            infra.log_dir(),
            false,
        )
        .await?;
        // In order: on RabbitMQ the per-task order is checked from what this observer receives.
        let observer = Observer::start_in_order(
            &infra,
            "e2e-observer",
            &[topics::TASK_EVENTS, topics::TASK_RECURRENCE],
        )
        .await?;
        Ok(Self {
            http: reqwest::Client::new(),
            backend: tokio::sync::Mutex::new(backend),
            backend_dapr: tokio::sync::Mutex::new(backend_dapr),
            observer,
            infra,
        })
    }

    async fn base(&self) -> String {
        self.backend.lock().await.base_url()
    }

    /// POST/PATCH JSON as `user`; returns (status, body).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base().await))
            .bearer_auth(token_for(user))
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

fn task_id(body: &Value) -> anyhow::Result<String> {
    body["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no task id in {body}"))
}

/// A task created over REST produces `com.todo.task.created.v1` on `task-events`.
async fn task_created_over_rest_is_published_as_cloudevent(env: &Env) -> anyhow::Result<()> {
    let user = format!("alice-{}", uuid::Uuid::now_v7());
    let (status, body) = env
        .send(
            reqwest::Method::POST,
            "/api/v1/tasks",
            &user,
            &json!({"title": "Buy milk", "priority": "high", "due_at": "2030-01-01T09:00:00Z"}),
        )
        .await?;
    ensure!(status == 201, "create answered {status}: {body}");
    let id = task_id(&body)?;

    let seen = wait::until("task.created on task-events", DEADLINE, || async {
        let found = env.observer.seen.matching(topics::TASK_EVENTS, |e| {
            e.subject.as_deref() == Some(id.as_str()) && e.ty == event_types::TASK_CREATED
        });
        Ok::<_, std::convert::Infallible>(found.into_iter().next())
    })
    .await?;
    ensure!(
        seen.source == contracts::source("backend"),
        "source: {}",
        seen.source
    );
    ensure!(
        uuid::Uuid::parse_str(&seen.id).is_ok(),
        "event id is not a UUID: {}",
        seen.id
    );
    let data: contracts::TaskEventData = seen.data_as()?;
    ensure!(data.user_id == user, "user_id: {}", data.user_id);
    ensure!(data.task.title == "Buy milk", "title: {}", data.task.title);
    ensure!(
        data.task.priority == contracts::Priority::High,
        "priority: {:?}",
        data.task.priority
    );
    ensure!(
        data.task.id.to_string() == id,
        "snapshot id: {}",
        data.task.id
    );
    Ok(())
}

/// With the sidecar stopped, writes are still accepted; once it is back every event arrives,
/// in commit order per task, none lost and none duplicated.
async fn events_survive_a_sidecar_outage_in_order(env: &Env) -> anyhow::Result<()> {
    let user = format!("bob-{}", uuid::Uuid::now_v7());
    env.backend_dapr.lock().await.process_mut().kill();

    // Writes while the sidecar is down: 5 tasks, each created then renamed twice.
    // Per task, in commit order: (event type, the title its snapshot carries).
    let mut expected: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for n in 0..5 {
        let (status, body) = env
            .send(
                reqwest::Method::POST,
                "/api/v1/tasks",
                &user,
                &json!({"title": format!("t{n}")}),
            )
            .await?;
        ensure!(
            status == 201,
            "create during outage answered {status}: {body}"
        );
        let id = task_id(&body)?;
        for rename in ["a", "b"] {
            let (status, body) = env
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/tasks/{id}"),
                    &user,
                    &json!({"title": format!("t{n}{rename}")}),
                )
                .await?;
            ensure!(
                status == 200,
                "update during outage answered {status}: {body}"
            );
        }
        expected.insert(
            id,
            vec![
                (event_types::TASK_CREATED.to_owned(), format!("t{n}")),
                (event_types::TASK_UPDATED.to_owned(), format!("t{n}a")),
                (event_types::TASK_UPDATED.to_owned(), format!("t{n}b")),
            ],
        );
    }
    let ready = env
        .http
        .get(format!("{}/readyz", env.base().await))
        .send()
        .await?;
    ensure!(
        ready.status() == 503,
        "readyz with the sidecar down: {}",
        ready.status()
    );

    {
        let mut daprd = env.backend_dapr.lock().await;
        daprd.restart(&env.infra.bins, env.infra.log_dir()).await?;
    }

    // Delivered: every expected event reaches the observer.
    let total: usize = expected.values().map(Vec::len).sum();
    let mine = |e: &dapr::CloudEvent| {
        e.subject
            .as_deref()
            .is_some_and(|s| expected.contains_key(s))
    };
    let delivered = wait::until("all events after the outage", DEADLINE, || async {
        let got = env.observer.seen.matching(topics::TASK_EVENTS, mine);
        Ok::<_, std::convert::Infallible>((got.len() >= total).then_some(got))
    })
    .await?;
    let ids: BTreeSet<&str> = delivered.iter().map(|e| e.id.as_str()).collect();
    ensure!(
        ids.len() == delivered.len(),
        "duplicate deliveries: {} events, {} ids",
        delivered.len(),
        ids.len()
    );
    ensure!(
        delivered.len() == total,
        "expected {total} events, got {}",
        delivered.len()
    );

    // Published: each event once, in commit order per task. A Redis stream and a Kafka topic
    // keep what was published, readable in broker order; a RabbitMQ exchange keeps nothing (a
    // message lives only in the consumers' queues until acked), so there the order is the one
    // in which the observer — reading its queue one delivery at a time — received them.
    let stream = match env.infra.topic_messages(topics::TASK_EVENTS)? {
        Some(log) => log,
        None => {
            let mut first_arrivals = Vec::new();
            let mut seen_ids = BTreeSet::new();
            for event in env.observer.seen.matching(topics::TASK_EVENTS, mine) {
                if seen_ids.insert(event.id.clone()) {
                    first_arrivals.push(serde_json::to_value(&event)?);
                }
            }
            first_arrivals
        }
    };
    let mut per_task: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut stream_ids = BTreeSet::new();
    for msg in &stream {
        let Some(subject) = msg["subject"].as_str() else {
            continue;
        };
        if !expected.contains_key(subject) {
            continue;
        }
        let id = msg["id"].as_str().unwrap_or_default().to_owned();
        ensure!(
            stream_ids.insert(id.clone()),
            "event {id} is in the stream twice"
        );
        per_task.entry(subject.to_owned()).or_default().push((
            msg["type"].as_str().unwrap_or_default().to_owned(),
            msg["data"]["task"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    // Types and titles together: the two renames have the same type, and only the titles show
    // that they were not swapped.
    for (task, events) in &expected {
        let got = per_task.get(task).cloned().unwrap_or_default();
        ensure!(
            got == *events,
            "task {task}: order {got:?}, expected {events:?}"
        );
    }
    Ok(())
}

/// The outbox survives a backend restart: rows committed but not yet published when the
/// process stops are published by the next process.
async fn pending_events_survive_a_backend_restart(env: &Env) -> anyhow::Result<()> {
    let user = format!("carol-{}", uuid::Uuid::now_v7());
    env.backend_dapr.lock().await.process_mut().kill();
    let (status, body) = env
        .send(
            reqwest::Method::POST,
            "/api/v1/tasks",
            &user,
            &json!({"title": "survivor"}),
        )
        .await?;
    ensure!(status == 201, "create answered {status}: {body}");
    let id = task_id(&body)?;
    {
        let mut backend = env.backend.lock().await;
        backend.process_mut().kill();
        let mut daprd = env.backend_dapr.lock().await;
        daprd.restart(&env.infra.bins, env.infra.log_dir()).await?;
        backend.restart(env.infra.log_dir()).await?;
    }
    wait::until(
        "the event committed before the restart",
        DEADLINE,
        || async {
            let found = env.observer.seen.matching(topics::TASK_EVENTS, |e| {
                e.subject.as_deref() == Some(id.as_str()) && e.ty == event_types::TASK_CREATED
            });
            Ok::<_, std::convert::Infallible>((found.len() == 1).then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// Completing a recurring task also publishes the completion to `task-recurrence`.
async fn recurring_completion_goes_to_task_recurrence(env: &Env) -> anyhow::Result<()> {
    let user = format!("dave-{}", uuid::Uuid::now_v7());
    let (status, body) = env
        .send(
            reqwest::Method::POST,
            "/api/v1/tasks",
            &user,
            &json!({"title": "water plants", "due_at": "2030-01-01T09:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await?;
    ensure!(status == 201, "create answered {status}: {body}");
    let id = task_id(&body)?;
    let (status, body) = env
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/tasks/{id}/complete"),
            &user,
            &json!({}),
        )
        .await?;
    ensure!(status == 200, "complete answered {status}: {body}");
    let completion = wait::until("task.completed on task-recurrence", DEADLINE, || async {
        let found = env.observer.seen.matching(topics::TASK_RECURRENCE, |e| {
            e.subject.as_deref() == Some(id.as_str()) && e.ty == event_types::TASK_COMPLETED
        });
        Ok::<_, std::convert::Infallible>(found.into_iter().next())
    })
    .await?;
    let data: contracts::TaskEventData = completion.data_as()?;
    ensure!(
        data.task.recurrence_rule.as_deref() == Some("FREQ=DAILY"),
        "rule: {:?}",
        data.task.recurrence_rule
    );
    ensure!(data.task.completed, "the snapshot must be completed");
    Ok(())
}

/// Events published while every replica of a consumer app is down wait for it: the app's
/// subscription outlives its sidecars (a Redis consumer group, a Kafka consumer group's offset,
/// a RabbitMQ queue that is not deleted when unused — `deletedWhenUnused: false` in that
/// profile's component, since the component's default would drop the queue and the events).
async fn events_wait_for_a_consumer_app_that_is_down(env: &Env) -> anyhow::Result<()> {
    const APP: &str = LATE_OBSERVER;
    // First start: the app-id's subscription (group / queue) now exists; then all of it stops.
    drop(Observer::start(&env.infra, APP, &[topics::TASK_EVENTS]).await?);

    let user = format!("erin-{}", uuid::Uuid::now_v7());
    let (status, body) = env
        .send(
            reqwest::Method::POST,
            "/api/v1/tasks",
            &user,
            &json!({"title": "while you were out"}),
        )
        .await?;
    ensure!(status == 201, "create answered {status}: {body}");
    let id = task_id(&body)?;
    // Published for certain (the always-on observer has it) before the app comes back.
    wait::until("task.created on task-events", DEADLINE, || async {
        let found = env.observer.seen.matching(topics::TASK_EVENTS, |e| {
            e.subject.as_deref() == Some(id.as_str())
        });
        Ok::<_, std::convert::Infallible>((!found.is_empty()).then_some(()))
    })
    .await?;

    let back = Observer::start(&env.infra, APP, &[topics::TASK_EVENTS]).await?;
    wait::until("the event to reach the returning app", DEADLINE, || async {
        let found = back.seen.matching(topics::TASK_EVENTS, |e| {
            e.subject.as_deref() == Some(id.as_str()) && e.ty == event_types::TASK_CREATED
        });
        Ok::<_, std::convert::Infallible>((!found.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}

/// Shortest interval between one burst client's requests.
const CLIENT_PACE: Duration = Duration::from_millis(25);

/// One create request of a [`Burst`]: when it was sent, how long it took, what came back.
#[derive(Clone, Debug)]
struct Outcome {
    sent: Instant,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// Clients creating tasks for one user, each at most every [`CLIENT_PACE`], until told to stop;
/// every answer is kept, so a fault test can say what each request got while it ran.
struct Burst {
    user: String,
    outcomes: std::sync::Mutex<Vec<Outcome>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Burst {
    fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            outcomes: std::sync::Mutex::default(),
            stop: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs `clients` clients until [`Burst::finish`].
    async fn run(&self, env: &Env, clients: usize) {
        let client = |n: usize| async move {
            let mut i = 0u32;
            while !self.stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let sent = Instant::now();
                let answer = env
                    .http
                    .post(format!("{}/api/v1/tasks", env.base().await))
                    .bearer_auth(token_for(&self.user))
                    .json(&json!({"title": format!("burst {n}.{i}")}))
                    .send()
                    .await;
                let outcome = match answer {
                    Ok(resp) => Outcome {
                        sent,
                        took: sent.elapsed(),
                        status: resp.status().as_u16(),
                        retry_after: resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        body: resp.json::<Value>().await.unwrap_or(Value::Null),
                    },
                    // No answer at all is an outcome too (status 0): the assertions reject it.
                    Err(e) => Outcome {
                        sent,
                        took: sent.elapsed(),
                        status: 0,
                        retry_after: None,
                        body: json!({"transport error": e.to_string()}),
                    },
                };
                self.lock().push(outcome);
                // A steady pace, not a flood: the faults are the point, not the throughput.
                tokio::time::sleep_until((sent + CLIENT_PACE).into()).await;
            }
        };
        futures_util::future::join_all((0..clients).map(client)).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Outcome>> {
        self.outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many requests sent at or after `since` got `status`.
    fn count(&self, status: u16, since: Instant) -> usize {
        self.lock()
            .iter()
            .filter(|o| o.status == status && o.sent >= since)
            .count()
    }

    /// Waits until `n` requests sent at or after `since` got `status`.
    async fn until(&self, n: usize, status: u16, since: Instant, what: &str) -> anyhow::Result<()> {
        wait::until(what, DEADLINE, || async {
            Ok::<_, std::convert::Infallible>((self.count(status, since) >= n).then_some(()))
        })
        .await?;
        Ok(())
    }

    fn finish(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every outcome, once the clients have returned.
    fn outcomes(&self) -> Vec<Outcome> {
        self.lock().clone()
    }
}

/// The ids of the tasks whose create answered 201.
fn accepted_ids(outcomes: &[Outcome]) -> anyhow::Result<BTreeSet<String>> {
    outcomes
        .iter()
        .filter(|o| o.status == 201)
        .map(|o| task_id(&o.body))
        .collect()
}

/// Waits until every task in `ids` has had its `task.created` delivered; fails if an event id
/// arrived twice. Returns when the last one arrived. A failure says which side lost the missing
/// ones: the relay (rows still pending in the outbox) or the broker and the subscriber (rows
/// marked published after daprd acknowledged them), and on RabbitMQ where the queues stand.
async fn created_events_delivered(env: &Env, ids: &BTreeSet<String>) -> anyhow::Result<Instant> {
    let mine = |e: &dapr::CloudEvent| {
        e.ty == event_types::TASK_CREATED && e.subject.as_deref().is_some_and(|s| ids.contains(s))
    };
    let delivered = || -> BTreeSet<String> {
        env.observer
            .seen
            .matching(topics::TASK_EVENTS, mine)
            .into_iter()
            .filter_map(|e| e.subject)
            .collect()
    };
    let waited = wait::until(
        "a task.created for every accepted write",
        DEADLINE,
        || async {
            Ok::<_, std::convert::Infallible>((delivered().len() == ids.len()).then_some(()))
        },
    )
    .await;
    if let Err(e) = waited {
        // Which side lost them: the relay (rows still pending) or the broker and subscriber
        // (rows marked published, events never delivered).
        let arrived = delivered();
        let missing: Vec<&String> = ids.difference(&arrived).collect();
        let list = missing
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        let pending: usize = env
            .infra
            .postgres
            .psql(
                "backend",
                &format!(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL \
                     AND event_type = '{}' AND aggregate_id::text IN ({list})",
                    event_types::TASK_CREATED
                ),
            )?
            .trim()
            .parse()
            .context("counting pending outbox rows")?;
        anyhow::bail!(
            "{e}: {} of {} never arrived, {pending} of them still pending in the outbox \
             (the rest were acknowledged by daprd); first: {:?}{}",
            missing.len(),
            ids.len(),
            missing.first(),
            rabbitmq_queues(env)
        );
    }
    let arrived = Instant::now();
    // One write, one event, also where the broker keeps no readable log (RabbitMQ): every copy
    // a subscriber got of a task's creation carries the same id.
    let mut event_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in env.observer.seen.matching(topics::TASK_EVENTS, mine) {
        if let Some(subject) = e.subject {
            event_ids.entry(subject).or_default().insert(e.id);
        }
    }
    let split: Vec<_> = event_ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
    ensure!(
        split.is_empty(),
        "one write delivered as several events: {split:?}"
    );
    Ok(arrived)
}

/// On RabbitMQ, waits until every subscription queue has at most one consumer (each app of this
/// suite runs one sidecar) and nothing unacknowledged: a consumer the sidecar registered and then
/// lost track of would hold up to `prefetchCount` events unread. Returns a note for the report;
/// nothing to check on the other brokers.
async fn one_consumer_per_subscription(env: &Env) -> anyhow::Result<String> {
    let Some(rabbitmq) = env.infra.broker.rabbitmq() else {
        return Ok(String::new());
    };
    let settled = wait::until(
        "one consumer per subscription queue, nothing unacknowledged",
        DEADLINE,
        || async {
            let queues = rabbitmq.queues()?;
            let subscriptions: Vec<_> = queues
                .iter()
                .filter(|q| !q.name.starts_with("dlq-"))
                .collect();
            let settled = subscriptions
                .iter()
                .all(|q| q.consumers <= 1 && q.unacked == 0);
            Ok::<_, anyhow::Error>(settled.then_some(subscriptions.len()))
        },
    )
    .await;
    match settled {
        Ok(n) => Ok(format!(
            "; {n} subscription queues with one consumer each, none unacknowledged"
        )),
        Err(e) => anyhow::bail!("{e}{}", rabbitmq_queues(env)),
    }
}

/// On RabbitMQ, every queue's depth and consumers (for failure messages); empty elsewhere.
fn rabbitmq_queues(env: &Env) -> String {
    let Some(rabbitmq) = env.infra.broker.rabbitmq() else {
        return String::new();
    };
    match rabbitmq.queues() {
        Ok(queues) => queues.iter().map(|q| format!("\n  {q}")).collect(),
        Err(e) => format!("\n  (queues unreadable: {e:#})"),
    }
}

/// Every accepted task's `task.created` is in the broker's topic log (where the broker keeps a
/// readable log: Redis, Kafka) as one event: one event id per write, however many copies of it.
/// Returns `(tasks checked, extra copies)`, `None` on RabbitMQ.
///
/// Copies are the at-least-once seam between the relay and the broker: a publish daprd reports
/// as failed may still have been written (the broker died after appending, before answering),
/// and the relay publishes that row again, with the same id, which every consumer deduplicates.
fn published_as_one_event(
    env: &Env,
    ids: &BTreeSet<String>,
) -> anyhow::Result<Option<(usize, usize)>> {
    let Some(log) = env.infra.topic_messages(topics::TASK_EVENTS)? else {
        return Ok(None);
    };
    let mut per_task: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut copies = 0;
    for msg in &log {
        if msg["type"] == event_types::TASK_CREATED
            && let Some(subject) = msg["subject"].as_str()
            && ids.contains(subject)
        {
            let id = msg["id"].as_str().unwrap_or_default();
            if !per_task.entry(subject).or_default().insert(id) {
                copies += 1;
            }
        }
    }
    let split: Vec<_> = per_task.iter().filter(|(_, ids)| ids.len() > 1).collect();
    ensure!(
        split.is_empty(),
        "one write published as several events: {split:?}"
    );
    ensure!(
        per_task.len() == ids.len(),
        "{} of {} accepted tasks are in the topic log",
        per_task.len(),
        ids.len()
    );
    Ok(Some((per_task.len(), copies)))
}

/// Delivered event ids that arrived more than once (the broker's at-least-once redelivery).
fn redelivered(env: &Env, ids: &BTreeSet<String>) -> usize {
    let events = env.observer.seen.matching(topics::TASK_EVENTS, |e| {
        e.subject.as_deref().is_some_and(|s| ids.contains(s))
    });
    let unique: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    events.len() - unique.len()
}

/// Publishes the backend counted as failed (daprd's error or our timeout).
async fn failed_publishes(env: &Env) -> anyhow::Result<f64> {
    let base = env.base().await;
    let mut failed = 0.0;
    for outcome in ["dapr_error", "timeout"] {
        failed += support::metrics::counter(
            &env.http,
            &base,
            "todo_publish_duration_seconds_count",
            &format!("outcome=\"{outcome}\""),
        )
        .await?;
    }
    Ok(failed)
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

/// PostgreSQL stops (a fast shutdown) in the middle of a burst of creates and comes back. While
/// it is down the API answers 503 `UNAVAILABLE` with `Retry-After` (no hang, no 500) and
/// `/readyz` fails; every create answered 201, before or after, is published exactly once.
async fn postgres_outage_answers_503_and_loses_nothing(env: &Env) -> anyhow::Result<()> {
    let burst = Burst::new(&format!("pg-outage-{}", uuid::Uuid::now_v7()));
    let start = Instant::now();
    let fault = async {
        let result = async {
            burst
                .until(20, 201, start, "20 creates before the outage")
                .await?;
            env.infra.postgres.stop();
            let stopped = Instant::now();
            burst
                .until(3, 503, stopped, "3 answers of 503 while PostgreSQL is down")
                .await?;
            let ready = env
                .http
                .get(format!("{}/readyz", env.base().await))
                .send()
                .await?
                .status();
            ensure!(ready == 503, "readyz with PostgreSQL down: {ready}");
            env.infra.postgres.start_again().await?;
            let back = Instant::now();
            burst
                .until(20, 201, back, "20 creates after the outage")
                .await?;
            Ok::<_, anyhow::Error>((stopped, back))
        }
        .await;
        burst.finish();
        result
    };
    let ((), fault) = tokio::join!(burst.run(env, 4), fault);
    let (stopped, back) = fault?;
    let outcomes = burst.outcomes();

    let unexpected: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status != 201 && o.status != 503)
        .collect();
    ensure!(
        unexpected.is_empty(),
        "answers other than 201 and 503: {unexpected:?}"
    );
    let refused: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 503).collect();
    for o in &refused {
        ensure!(
            o.body["code"] == "UNAVAILABLE" && o.retry_after.is_some(),
            "a 503 without code UNAVAILABLE or Retry-After: {o:?}"
        );
    }
    let ids = accepted_ids(&outcomes)?;
    ensure!(
        outcomes.iter().any(|o| o.status == 201 && o.sent < stopped)
            && outcomes.iter().any(|o| o.status == 201 && o.sent >= back),
        "creates were accepted only on one side of the outage"
    );
    // What the store holds for the user: every accepted task, and perhaps one whose answer was
    // lost after its commit (the client saw 503). Every stored task must be published.
    let stored = stored_ids(env, &burst.user).await?;
    let missing: Vec<_> = ids.difference(&stored).collect();
    ensure!(missing.is_empty(), "accepted but not stored: {missing:?}");
    let delivered = created_events_delivered(env, &stored).await?;
    // The broker stayed up, so nothing may be published twice: a publish acknowledged just as
    // PostgreSQL went away is recorded later, not published again (the relay keeps the ack).
    let checked = published_as_one_event(env, &stored)?;
    if let Some((_, copies)) = checked {
        ensure!(
            copies == 0,
            "{copies} events published twice across the outage"
        );
    }

    let mut waits: Vec<u128> = refused.iter().map(|o| millis(o.took)).collect();
    waits.sort_unstable();
    eprintln!(
        "postgres outage: {} creates, {} accepted, {} answered 503 (answer time p50 {} ms, max {} ms), \
         {} stored though not acknowledged; down {} ms; last event delivered {} ms after \
         PostgreSQL was back; {}; {} redelivered to the subscriber",
        outcomes.len(),
        ids.len(),
        refused.len(),
        waits.get(waits.len() / 2).copied().unwrap_or(0),
        waits.last().copied().unwrap_or(0),
        stored.len() - ids.len(),
        millis(back - stopped),
        millis(delivered.saturating_duration_since(back)),
        checked.map_or_else(
            || "no readable topic log: one event id each at the subscriber".to_owned(),
            |(n, _)| format!("{n} in the topic log once each")
        ),
        redelivered(env, &stored),
    );
    Ok(())
}

/// The ids of every task `user` has, page by page.
async fn stored_ids(env: &Env, user: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    loop {
        let path = format!("/api/v1/tasks?limit=200&offset={}", ids.len());
        let (status, page) = env
            .send(reqwest::Method::GET, &path, user, &Value::Null)
            .await?;
        ensure!(status == 200, "list answered {status}: {page}");
        let items = page["items"].as_array().context("no items in a page")?;
        for item in items {
            ids.insert(task_id(item)?);
        }
        if items.is_empty() || ids.len() as u64 >= page["total"].as_u64().unwrap_or(0) {
            return Ok(ids);
        }
    }
}

/// The broker is killed (`SIGKILL`) in the middle of a burst of creates and restarted on its
/// data (Redis with its append-only file, Kafka with its log directory, RabbitMQ with its
/// durable queues and persistent messages). Writes keep being
/// accepted throughout (the outbox holds them); afterwards every accepted create is in the
/// topic log exactly once and reaches the subscriber.
async fn broker_crash_loses_no_accepted_write(env: &Env) -> anyhow::Result<()> {
    let burst = Burst::new(&format!("broker-crash-{}", uuid::Uuid::now_v7()));
    let start = Instant::now();
    let fault = async {
        let result = async {
            burst
                .until(20, 201, start, "20 creates before the crash")
                .await?;
            let failed_before = failed_publishes(env).await?;
            env.infra.broker.kill();
            let killed = Instant::now();
            burst
                .until(20, 201, killed, "20 creates while the broker is down")
                .await?;
            // Positive evidence that the outage was seen: the relay's publishes failed.
            wait::until(
                "a publish to fail while the broker is down",
                DEADLINE,
                || async {
                    let failed = failed_publishes(env).await?;
                    Ok::<_, anyhow::Error>((failed > failed_before).then_some(()))
                },
            )
            .await?;
            env.infra.broker.start_again().await?;
            let back = Instant::now();
            burst
                .until(20, 201, back, "20 creates after the restart")
                .await?;
            Ok::<_, anyhow::Error>((killed, back))
        }
        .await;
        burst.finish();
        result
    };
    let ((), fault) = tokio::join!(burst.run(env, 4), fault);
    let (killed, back) = fault?;
    let outcomes = burst.outcomes();

    let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 201).collect();
    ensure!(
        failed.is_empty(),
        "writes refused while the broker was down: {failed:?}"
    );
    let ids = accepted_ids(&outcomes)?;
    let broker = env.infra.broker.kind();
    let delivered = created_events_delivered(env, &ids).await?;
    let consumers = one_consumer_per_subscription(env).await?;
    let log = match published_as_one_event(env, &ids)? {
        Some((checked, copies)) => format!(
            "{checked} in the topic log as one event each, {copies} extra copies (same event id)"
        ),
        None => "no readable topic log: one event id each at the subscriber".to_owned(),
    };
    eprintln!(
        "{broker} crash: {} creates, all accepted; down {} ms; last event delivered {} ms after \
         the restart; {log}; {} redelivered to the subscriber{consumers}",
        outcomes.len(),
        millis(back - killed),
        millis(delivered.saturating_duration_since(back)),
        redelivered(env, &ids),
    );
    Ok(())
}

fn main() -> ExitCode {
    let tests = harness::tests![
        task_created_over_rest_is_published_as_cloudevent,
        recurring_completion_goes_to_task_recurrence,
        events_survive_a_sidecar_outage_in_order,
        pending_events_survive_a_backend_restart,
        events_wait_for_a_consumer_app_that_is_down,
        postgres_outage_answers_503_and_loses_nothing,
        broker_crash_loses_no_accepted_write,
    ];
    suite::run(Env::start, tests, Parallelism::Serial, |env| {
        env.infra.log_dir().to_path_buf()
    })
}
