//! End-to-end tests of the backend through real daprd, the pub/sub broker of the profile in
//! `TODO_BROKER` (Redis Streams by default, Kafka or RabbitMQ) and PostgreSQL.
//!
//! The backend binary runs as its own process with its own sidecar; an observer app with a
//! second sidecar records what reaches the topics. Tests run one at a time because one of them
//! stops the backend's sidecar.

#![allow(clippy::print_stderr)] // A skipped broker-specific check says so on the test output.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

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
        let observer = Observer::start(
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
    let mut expected: BTreeMap<String, Vec<&str>> = BTreeMap::new();
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
                event_types::TASK_CREATED,
                event_types::TASK_UPDATED,
                event_types::TASK_UPDATED,
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

    // Published: the broker's log holds each event once, in commit order per task. A Redis
    // stream and a Kafka topic keep what was published, readable in broker order; a RabbitMQ
    // exchange keeps nothing (a message lives only in the consumers' queues until acked), so
    // there the delivery checks above (all events, none twice) are what this test proves.
    let Some(stream) = env.infra.topic_messages(topics::TASK_EVENTS)? else {
        eprintln!(
            "note: the {} broker keeps no readable topic log; broker-order check skipped",
            env.infra.broker.kind()
        );
        return Ok(());
    };
    let mut per_task: BTreeMap<String, Vec<String>> = BTreeMap::new();
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
        per_task
            .entry(subject.to_owned())
            .or_default()
            .push(msg["type"].as_str().unwrap_or_default().to_owned());
    }
    for (task, types) in &expected {
        let got = per_task.get(task).cloned().unwrap_or_default();
        ensure!(
            got == *types,
            "task {task}: stream order {got:?}, expected {types:?}"
        );
    }
    // Titles in stream order end with the last rename: updates were not reordered.
    for msg in stream.iter().rev() {
        if let Some(subject) = msg["subject"].as_str()
            && expected.contains_key(subject)
        {
            let title = msg["data"]["task"]["title"].as_str().unwrap_or_default();
            ensure!(
                title.ends_with('b'),
                "last event of {subject} has title {title}"
            );
            break;
        }
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

fn main() -> ExitCode {
    let tests = harness::tests![
        task_created_over_rest_is_published_as_cloudevent,
        recurring_completion_goes_to_task_recurrence,
        events_survive_a_sidecar_outage_in_order,
        pending_events_survive_a_backend_restart,
        events_wait_for_a_consumer_app_that_is_down,
    ];
    suite::run(Env::start, tests, Parallelism::Serial, |env| {
        env.infra.log_dir().to_path_buf()
    })
}
