//! Router-level tests: events and job triggers sent with `oneshot` through the full layer
//! stack, against `dapr::testing::FakeSidecar` standing in for daprd and [`backend::Backend`]
//! for the backend behind it.

mod backend;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use contracts::{Priority, TaskEventData, TaskSnapshot, event_types, topics};
use dapr::testing::{FakeSidecar, JobCall, Published, Stored};
use dapr::{ClientConfig, DaprClient};
use http_body_util::BodyExt;
use middleware::{AppTokenLayer, Metrics, Publisher, PublisherConfig};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use self::backend::Backend;
use crate::app::{AppState, router};
use crate::metrics::{
    REMINDER_JOBS_DELETED_TOTAL, REMINDER_JOBS_SCHEDULED_TOTAL, REMINDER_LATENESS_SECONDS,
    REMINDER_OVERDUE_TOTAL, REMINDER_STALE_EVENTS_TOTAL, REMINDER_SWEEP_REPAIRS_TOTAL,
    REMINDER_SWEEPS_TOTAL, REMINDER_TRIGGERS_TOTAL,
};
use crate::reminders::{CATCH_UP_WINDOW, TOMBSTONE_TTL_SECS, job_name, record_key, rfc3339};
use crate::sweep::SWEEP_JOB;
use crate::trigger::{reminder_event_id, sent_key};
use crate::{SERVICE, TASK_EVENTS_ROUTE, subscriptions, subscriptions_yaml};

/// The service's router wired to a fresh fake sidecar.
struct Harness {
    sidecar: FakeSidecar,
    backend: Arc<Mutex<Backend>>,
    app: Router,
    metrics: Metrics,
}

/// What the fake sidecar saw, in the shapes these tests read.
struct Seen {
    /// The publishes the sidecar accepted.
    published: Vec<Published>,
    /// The backend's method paths invoked.
    invocations: Vec<String>,
    job_calls: Vec<JobCall>,
    /// Every item of every save request, as sent.
    saves: Vec<Value>,
    state: BTreeMap<String, Stored>,
}

impl Harness {
    async fn new() -> Self {
        Self::with_app_token(AppTokenLayer::new(None)).await
    }

    /// The router behind `app_token`, as `main` builds it.
    async fn with_app_token(app_token: AppTokenLayer) -> Self {
        let sidecar = FakeSidecar::start().await.unwrap();
        let backend = Arc::new(Mutex::new(Backend::default()));
        let answers = Arc::clone(&backend);
        sidecar.on_invoke(move |call| answers.lock().unwrap().answer(call));
        let dapr = DaprClient::new(ClientConfig {
            http_endpoint: sidecar.endpoint(),
            ..ClientConfig::default()
        })
        .unwrap();
        // No publisher retries: a failed publish must surface at once as a failed trigger.
        let mut no_retries = PublisherConfig::default();
        no_retries.retry.max_retries = 0;
        let publisher = Publisher::dapr(dapr.clone(), &no_retries);
        let metrics = Metrics::new(SERVICE).unwrap();
        let state =
            AppState::new(dapr, publisher, metrics.clone(), "backend", "statestore").unwrap();
        let app = router(state, app_token);
        Self {
            sidecar,
            backend,
            app,
            metrics,
        }
    }

    /// Delivers a task event as daprd does and returns the Dapr status answered.
    async fn deliver(&self, event_type: &str, task: &TaskSnapshot) -> String {
        let data = TaskEventData::new(task.clone());
        self.deliver_raw(event_type, serde_json::to_value(data).unwrap())
            .await
    }

    /// Delivers `task` as an `event_type` event that must be acknowledged with SUCCESS.
    async fn deliver_ok(&self, event_type: &str, task: &TaskSnapshot) {
        let status = self.deliver(event_type, task).await;
        assert_eq!(status, "SUCCESS", "{event_type} of task {}", task.id);
    }

    async fn deliver_raw(&self, event_type: &str, data: Value) -> String {
        let event = json!({
            "id": Uuid::new_v4().to_string(),
            "source": "/todo/backend",
            "specversion": "1.0",
            "type": event_type,
            "datacontenttype": "application/json",
            "data": data,
            "topic": topics::TASK_EVENTS,
            "pubsubname": topics::PUBSUB,
        });
        let request = Request::post(TASK_EVENTS_ROUTE)
            .header(header::CONTENT_TYPE, "application/cloudevents+json")
            .body(Body::from(event.to_string()))
            .unwrap();
        let (status, body) = self.call(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["status"].as_str().unwrap().to_owned()
    }

    /// Triggers job `name` with `data` as daprd does and returns the HTTP status answered.
    async fn trigger(&self, name: &str, data: &Value) -> StatusCode {
        let request = Request::post(format!("/job/{name}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(data.to_string()))
            .unwrap();
        self.call(request).await.0
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    fn job_calls(&self) -> Vec<JobCall> {
        self.sidecar.job_calls()
    }

    /// What the sidecar has seen so far.
    fn seen(&self) -> Seen {
        Seen {
            published: (self.sidecar.publishes().into_iter())
                .filter(|p| p.accepted)
                .collect(),
            invocations: (self.sidecar.invocations().into_iter())
                .map(|call| call.path)
                .collect(),
            job_calls: self.sidecar.job_calls(),
            saves: (self.sidecar.saves().into_iter())
                .map(|saved| saved.item)
                .collect(),
            state: self.sidecar.state(),
        }
    }

    /// The backend's answers, to fill in.
    fn backend(&self) -> MutexGuard<'_, Backend> {
        self.backend.lock().unwrap()
    }

    /// The value stored under `key`, if any.
    fn stored(&self, key: &str) -> Option<Value> {
        self.sidecar.get(key)
    }

    /// Makes the backend answer `GET internal/tasks/{id}` with the task and an owner.
    /// A task written an hour ago and due now, known to the backend with Ada's address, and
    /// the data of its reminder job.
    fn known_task_due_now(&self) -> (TaskSnapshot, Value) {
        let remind_at = from_now(TimeDelta::zero());
        let t = task(from_now(-TimeDelta::hours(1)), Some(remind_at));
        self.backend_knows(&t, Some("ada@example.org"));
        let data = job_data(&t, remind_at);
        (t, data)
    }

    fn backend_knows(&self, task: &TaskSnapshot, email: Option<&str>) {
        let body = json!({"task": task, "owner_email": email, "owner_name": "Ada Lovelace"});
        self.backend().tasks.insert(task.id, (200, body));
    }

    /// The metric line starting with `prefix` exists and ends with `suffix` (its value).
    #[track_caller]
    fn assert_metric_ends(&self, prefix: &str, suffix: &str) {
        let line = self.metric_line(prefix);
        assert!(
            line.as_deref().is_some_and(|l| l.ends_with(suffix)),
            "{prefix}: {line:?}"
        );
    }

    fn metric_line(&self, prefix: &str) -> Option<String> {
        let text = self.metrics.render().unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
    }
}

/// Save items whose key starts with `prefix`.
fn key_starts_with(prefix: &'static str) -> impl Fn(&Value) -> bool + Send + 'static {
    move |item| {
        item["key"]
            .as_str()
            .is_some_and(|key| key.starts_with(prefix))
    }
}

/// A time as PostgreSQL keeps it (microseconds), `offset` from now.
fn from_now(offset: TimeDelta) -> DateTime<Utc> {
    (Utc::now() + offset).trunc_subsecs(6)
}

/// A task written now with a reminder `ahead` of now: its `updated_at`, its reminder, itself.
fn written_now_reminding_in(ahead: TimeDelta) -> (DateTime<Utc>, DateTime<Utc>, TaskSnapshot) {
    let (t0, remind_at) = (from_now(TimeDelta::zero()), from_now(ahead));
    (t0, remind_at, task(t0, Some(remind_at)))
}

fn task(updated_at: DateTime<Utc>, remind_at: Option<DateTime<Utc>>) -> TaskSnapshot {
    TaskSnapshot {
        id: Uuid::from_u128(0x0192_f5a0_7c1e_7d3a_9b2f_4e5d_6c7b_8a91),
        user_id: "auth0|ada".to_owned(),
        title: "Water the plants".to_owned(),
        description: "Balcony and kitchen".to_owned(),
        completed: false,
        completed_at: None,
        priority: Priority::High,
        category: None,
        tags: Vec::new(),
        due_at: remind_at.map(|at| at + TimeDelta::hours(1)),
        remind_at,
        recurrence_rule: None,
        parent_task_id: None,
        occurrence_index: 0,
        created_at: updated_at,
        updated_at,
    }
}

fn job_data(task: &TaskSnapshot, remind_at: DateTime<Utc>) -> Value {
    json!({"task_id": task.id, "remind_at": rfc3339(remind_at)})
}

fn schedule(task: &TaskSnapshot, remind_at: DateTime<Utc>) -> JobCall {
    JobCall::Schedule(
        job_name(task.id),
        json!({
            "dueTime": rfc3339(remind_at),
            "data": job_data(task, remind_at),
            "overwrite": true,
            "failurePolicy": {"constant": {"interval": "2s", "maxRetries": 1800}}
        }),
    )
}

fn delete(task: &TaskSnapshot) -> JobCall {
    JobCall::Delete(job_name(task.id))
}

// ---- task events → jobs ------------------------------------------------------------------

#[tokio::test]
async fn created_with_a_future_reminder_schedules_the_job() {
    let h = Harness::new().await;
    let remind_at = from_now(TimeDelta::hours(1));
    let t = task(from_now(TimeDelta::zero()), Some(remind_at));
    h.deliver_ok(event_types::TASK_CREATED, &t).await;

    assert_eq!(h.job_calls(), [schedule(&t, remind_at)]);
    let record = h.stored(&record_key(t.id)).unwrap();
    assert_eq!(record["deleted"], false);
    assert_eq!(
        record["remind_at"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(remind_at)
    );
    h.assert_metric_ends(REMINDER_JOBS_SCHEDULED_TOTAL, " 1");
}

#[tokio::test]
async fn a_task_created_without_a_reminder_needs_no_record_and_no_job_call() {
    let h = Harness::new().await;
    let t = task(from_now(TimeDelta::zero()), None);
    h.deliver_ok(event_types::TASK_CREATED, &t).await;
    let seen = h.seen();
    assert_eq!(seen.job_calls, []);
    assert_eq!(seen.saves, Vec::<Value>::new());
    assert!(seen.state.is_empty(), "no record written");

    // A reminder added later is scheduled as usual, with no record before it.
    let remind_at = from_now(TimeDelta::hours(1));
    let updated = task(t.updated_at + TimeDelta::seconds(5), Some(remind_at));
    h.deliver_ok(event_types::TASK_UPDATED, &updated).await;
    assert_eq!(h.job_calls(), [schedule(&updated, remind_at)]);
    // The create redelivered after it changes nothing: the job stays.
    h.deliver_ok(event_types::TASK_CREATED, &t).await;
    assert_eq!(h.job_calls(), [schedule(&updated, remind_at)]);
    assert_eq!(h.sidecar.jobs().len(), 1);
}

#[tokio::test]
async fn a_moved_reminder_overwrites_the_job() {
    let h = Harness::new().await;
    let first = from_now(TimeDelta::hours(1));
    let moved = from_now(TimeDelta::hours(2));
    let created = task(from_now(TimeDelta::zero()), Some(first));
    let updated = task(created.updated_at + TimeDelta::seconds(5), Some(moved));
    h.deliver_ok(event_types::TASK_CREATED, &created).await;
    h.deliver_ok(event_types::TASK_UPDATED, &updated).await;

    assert_eq!(
        h.job_calls(),
        [schedule(&created, first), schedule(&updated, moved)]
    );
    let jobs = h.sidecar.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[&job_name(created.id)]["dueTime"], rfc3339(moved));
}

/// The job of an overdue reminder: due at once, with the reminder time it was asked for.
fn schedule_now(task: &TaskSnapshot, remind_at: DateTime<Utc>) -> JobCall {
    match schedule(task, remind_at) {
        JobCall::Schedule(name, mut body) => {
            body["dueTime"] = json!("0s");
            JobCall::Schedule(name, body)
        }
        other => other,
    }
}

#[tokio::test]
async fn a_cleared_or_too_old_reminder_deletes_the_job() {
    let h = Harness::new().await;
    let t0 = from_now(TimeDelta::zero());
    let created = task(t0, Some(from_now(TimeDelta::hours(1))));
    let cleared = task(t0 + TimeDelta::seconds(1), None);
    let ancient = task(
        t0 + TimeDelta::seconds(2),
        Some(from_now(-CATCH_UP_WINDOW - TimeDelta::minutes(5))),
    );
    h.deliver_ok(event_types::TASK_CREATED, &created).await;
    h.deliver_ok(event_types::TASK_UPDATED, &cleared).await;
    h.deliver_ok(event_types::TASK_UPDATED, &ancient).await;

    let calls = h.job_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1..], [delete(&created), delete(&created)]);
    assert!(h.sidecar.jobs().is_empty());
}

/// An event that arrives after its reminder time (it waited in the broker while notification
/// was down) still gets its reminder, at once — unless a trigger already sent it.
#[tokio::test]
async fn an_overdue_reminder_fires_at_once_unless_already_sent() {
    let h = Harness::new().await;
    let remind_at = from_now(-TimeDelta::minutes(5));
    let created = task(remind_at - TimeDelta::hours(1), Some(remind_at));
    h.deliver_ok(event_types::TASK_CREATED, &created).await;
    assert_eq!(h.job_calls(), [schedule_now(&created, remind_at)]);
    assert!(
        h.metric_line(&format!("{REMINDER_OVERDUE_TOTAL}{{outcome=\"scheduled\""))
            .is_some_and(|l| l.ends_with(" 1")),
        "{:?}",
        h.metrics.render()
    );

    // Once the trigger recorded it as sent, a later event about the task (a new title, say)
    // must not send it again: the job is removed instead.
    h.sidecar.put(
        &sent_key(created.id, remind_at),
        json!({"event_id": "x"}),
        None,
    );
    let renamed = TaskSnapshot {
        title: "Water the plants (balcony)".to_owned(),
        ..task(created.updated_at + TimeDelta::minutes(10), Some(remind_at))
    };
    h.deliver_ok(event_types::TASK_UPDATED, &renamed).await;
    assert_eq!(h.job_calls()[1..], [delete(&created)]);
    assert!(
        h.metric_line(&format!(
            "{REMINDER_OVERDUE_TOTAL}{{outcome=\"already_sent\""
        ))
        .is_some_and(|l| l.ends_with(" 1"))
    );
}

/// The sweep applies the pending tasks whose events never arrived — scheduling the future
/// reminder, firing the one whose time has passed — and leaves alone what events applied.
#[tokio::test]
async fn the_sweep_applies_tasks_whose_events_never_arrived() {
    let h = Harness::new().await;
    let remind_at = from_now(TimeDelta::minutes(1));
    let applied = task(from_now(-TimeDelta::minutes(1)), Some(remind_at));
    h.deliver_ok(event_types::TASK_CREATED, &applied).await;
    let lost = TaskSnapshot {
        id: Uuid::from_u128(0xa1),
        ..task(from_now(-TimeDelta::minutes(1)), Some(remind_at))
    };
    let overdue_at = from_now(-TimeDelta::minutes(1));
    let overdue = TaskSnapshot {
        id: Uuid::from_u128(0xa2),
        ..task(from_now(-TimeDelta::minutes(10)), Some(overdue_at))
    };
    h.backend().pending_reminders = [&applied, &lost, &overdue]
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();

    assert_eq!(h.trigger(SWEEP_JOB, &Value::Null).await, StatusCode::OK);
    assert_eq!(
        h.job_calls(),
        [
            schedule(&applied, remind_at),
            schedule(&lost, remind_at),
            schedule_now(&overdue, overdue_at)
        ]
    );
    assert!(h.stored(&record_key(lost.id)).is_some());
    let line = |name: &str| h.metric_line(name).unwrap_or_default();
    assert!(line(REMINDER_SWEEP_REPAIRS_TOTAL).ends_with(" 2"));

    // Everything applied now (the overdue one's job exists, firing or retried): the next
    // sweep reads and looks, and does nothing else.
    assert_eq!(h.trigger(SWEEP_JOB, &Value::Null).await, StatusCode::OK);
    assert_eq!(h.job_calls().len(), 3);
    assert!(line(REMINDER_SWEEP_REPAIRS_TOTAL).ends_with(" 2"));
    assert!(line(REMINDER_SWEEPS_TOTAL).ends_with(" 2"));
    let asked = h.seen().invocations;
    assert_eq!(asked, ["internal/reminders", "internal/reminders"]);

    // The process died between the record and the job, and the redelivery is held elsewhere:
    // a due reminder, applied, not sent, without a job, is applied again. One that is settled
    // (sent, or nobody to send it to) is left alone although its job is gone too.
    let settled_at = from_now(-TimeDelta::minutes(2));
    let settled = TaskSnapshot {
        id: Uuid::from_u128(0xa3),
        ..task(from_now(-TimeDelta::minutes(10)), Some(settled_at))
    };
    h.deliver_ok(event_types::TASK_CREATED, &settled).await;
    h.sidecar.clear_jobs();
    h.sidecar.put(
        &sent_key(settled.id, settled_at),
        json!({"outcome": "no_recipient"}),
        None,
    );
    h.backend()
        .pending_reminders
        .push(serde_json::to_value(&settled).unwrap());
    let calls_before = h.job_calls().len();
    assert_eq!(h.trigger(SWEEP_JOB, &Value::Null).await, StatusCode::OK);
    assert_eq!(
        h.job_calls()[calls_before..],
        [schedule_now(&overdue, overdue_at)]
    );
    assert!(line(REMINDER_SWEEP_REPAIRS_TOTAL).ends_with(" 3"));
}

#[test]
fn the_sweep_is_a_recurring_job_that_is_never_retried() {
    let job = serde_json::to_value(crate::sweep::sweep_job()).unwrap();
    assert_eq!(job["schedule"], "@every 30s");
    assert_eq!(job["overwrite"], true);
    assert_eq!(job["failurePolicy"], json!({"drop": {}}));
    assert!(crate::sweep::AHEAD.to_std().unwrap() > crate::sweep::SWEEP_EVERY);
    assert!(!SWEEP_JOB.starts_with(crate::reminders::JOB_PREFIX));
}

#[tokio::test]
async fn completed_and_deleted_tasks_lose_their_job() {
    let h = Harness::new().await;
    let (t0, remind_at, created) = written_now_reminding_in(TimeDelta::hours(1));
    let completed = TaskSnapshot {
        completed: true,
        completed_at: Some(t0 + TimeDelta::seconds(1)),
        ..task(t0 + TimeDelta::seconds(1), Some(remind_at))
    };
    h.deliver_ok(event_types::TASK_CREATED, &created).await;
    h.deliver_ok(event_types::TASK_COMPLETED, &completed).await;
    assert_eq!(h.job_calls()[1], delete(&created));

    // A deleted task (whose snapshot still has a future remind_at) loses it too, and leaves a
    // tombstone that expires.
    let other = TaskSnapshot {
        id: Uuid::from_u128(77),
        ..task(t0, Some(remind_at))
    };
    h.deliver_ok(event_types::TASK_CREATED, &other).await;
    h.deliver_ok(event_types::TASK_DELETED, &other).await;
    assert_eq!(h.job_calls()[3], delete(&other));
    let stored = h.sidecar.state()[&record_key(other.id)].clone();
    assert_eq!(stored.value["deleted"], true);
    assert_eq!(
        stored.metadata["ttlInSeconds"],
        TOMBSTONE_TTL_SECS.to_string()
    );
    assert!(h.sidecar.jobs().is_empty());
    h.assert_metric_ends(REMINDER_JOBS_DELETED_TOTAL, " 2");
}

#[tokio::test]
async fn an_older_snapshot_delivered_late_is_ignored() {
    let h = Harness::new().await;
    let t0 = from_now(TimeDelta::zero());
    let old_time = from_now(TimeDelta::hours(1));
    let new_time = from_now(TimeDelta::hours(2));
    let older = task(t0, Some(old_time));
    let newer = task(t0 + TimeDelta::seconds(1), Some(new_time));
    // Delivered out of order: the newer update first.
    h.deliver_ok(event_types::TASK_UPDATED, &newer).await;
    h.deliver_ok(event_types::TASK_CREATED, &older).await;
    assert_eq!(h.job_calls(), [schedule(&newer, new_time)]);
    // A redelivery of the applied snapshot is applied again (idempotent overwrite).
    h.deliver_ok(event_types::TASK_UPDATED, &newer).await;
    assert_eq!(h.job_calls().len(), 2);

    // After a delete nothing revives the job, not even an update with the same timestamp.
    h.deliver_ok(event_types::TASK_DELETED, &newer).await;
    h.deliver_ok(event_types::TASK_UPDATED, &newer).await;
    let calls = h.job_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[2], delete(&newer));
    assert!(h.sidecar.jobs().is_empty());
    h.assert_metric_ends(REMINDER_STALE_EVENTS_TOTAL, " 2");
}

#[tokio::test]
async fn an_etag_conflict_is_read_again_and_decided_again() {
    let h = Harness::new().await;
    let (t0, remind_at, t) = written_now_reminding_in(TimeDelta::hours(1));

    // Another replica applies an older snapshot between our read and our write: we lose the
    // write, re-read, still supersede it, and win the second time.
    let key = record_key(t.id);
    let older =
        json!({"updated_at": t0 - TimeDelta::seconds(10), "deleted": false, "remind_at": null});
    h.sidecar.write_before_next_save(&key, older);
    h.deliver_ok(event_types::TASK_UPDATED, &t).await;
    assert_eq!(h.sidecar.saves().len(), 2, "one conflict, one success");
    assert_eq!(h.job_calls(), [schedule(&t, remind_at)]);
    assert_eq!(h.stored(&key).unwrap()["remind_at"], json!(remind_at));

    // This time the concurrent writer applied the delete: our update is stale on re-read.
    let other = TaskSnapshot {
        id: Uuid::from_u128(5),
        ..t.clone()
    };
    let tombstone = json!({"updated_at": t0, "deleted": true, "remind_at": null});
    h.sidecar
        .write_before_next_save(&record_key(other.id), tombstone);
    h.deliver_ok(event_types::TASK_UPDATED, &other).await;
    assert_eq!(h.job_calls().len(), 1, "no job for a deleted task");
}

#[tokio::test]
async fn a_newer_record_written_meanwhile_is_applied_too() {
    let h = Harness::new().await;
    let (t0, remind_at, t) = written_now_reminding_in(TimeDelta::hours(1));
    // Another replica applies the delete while our schedule call is on its way: its delete
    // may have reached the Scheduler first, so we must delete again after our schedule.
    let tombstone = json!({"updated_at": t0, "deleted": true, "remind_at": null});
    h.sidecar
        .write_after_next_job_call(&record_key(t.id), tombstone);
    h.deliver_ok(event_types::TASK_CREATED, &t).await;
    assert_eq!(h.job_calls(), [schedule(&t, remind_at), delete(&t)]);
    assert!(h.sidecar.jobs().is_empty());
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_garbage_is_dropped() {
    let h = Harness::new().await;
    let sent = json!({
        "schema_version": 1, "user_id": "auth0|ada", "task_id": Uuid::from_u128(1),
        "remind_at": "2030-01-01T00:00:00Z", "sent_at": "2030-01-01T00:00:01Z",
        "reminder_event_id": "x"
    });
    assert_eq!(
        h.deliver_raw(event_types::REMINDER_SENT, sent).await,
        "SUCCESS"
    );
    assert_eq!(
        h.deliver_raw(event_types::TASK_CREATED, json!({"task": "nope"}))
            .await,
        "DROP"
    );
    let request = Request::post(TASK_EVENTS_ROUTE)
        .header(header::CONTENT_TYPE, "application/cloudevents+json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(h.call(request).await.1["status"], "DROP");
    assert!(h.job_calls().is_empty());
    assert!(h.sidecar.saves().is_empty());
}

#[tokio::test]
async fn a_state_store_outage_asks_for_redelivery() {
    let h = Harness::new().await;
    let remind_at = from_now(TimeDelta::hours(1));
    let t = task(from_now(TimeDelta::zero()), Some(remind_at));
    h.sidecar
        .fail_next_saves(1, key_starts_with("reminder-task-"));
    assert_eq!(h.deliver(event_types::TASK_CREATED, &t).await, "RETRY");
    assert!(h.job_calls().is_empty());
    // The redelivery succeeds.
    h.deliver_ok(event_types::TASK_CREATED, &t).await;
    assert_eq!(h.job_calls(), [schedule(&t, remind_at)]);
}

// ---- job triggers → reminder.due ---------------------------------------------------------

#[tokio::test]
async fn a_trigger_publishes_reminder_due_with_a_deterministic_id() {
    let h = Harness::new().await;
    let remind_at = from_now(-TimeDelta::milliseconds(200));
    let t = task(from_now(-TimeDelta::hours(1)), Some(remind_at));
    h.backend_knows(&t, Some("ada@example.org"));

    let status = h.trigger(&job_name(t.id), &job_data(&t, remind_at)).await;
    assert_eq!(status, StatusCode::OK);

    let fake = h.seen();
    assert_eq!(fake.invocations, [format!("internal/tasks/{}", t.id)]);
    assert_eq!(fake.published.len(), 1);
    let published = &fake.published[0];
    assert_eq!(published.pubsub, "pubsub");
    assert_eq!(published.topic, "task-reminders");
    assert_eq!(
        published.content_type.as_deref(),
        Some("application/cloudevents+json")
    );
    let event = &published.event;
    assert_eq!(event["id"], reminder_event_id(t.id, remind_at).to_string());
    assert_eq!(event["type"], "com.todo.reminder.due.v1");
    assert_eq!(event["source"], "/todo/notification");
    assert_eq!(event["subject"], t.id.to_string());
    assert_eq!(event["specversion"], "1.0");
    let data: contracts::ReminderDueData = serde_json::from_value(event["data"].clone()).unwrap();
    assert_eq!(
        data,
        contracts::ReminderDueData {
            schema_version: contracts::SCHEMA_VERSION,
            user_id: "auth0|ada".to_owned(),
            task_id: t.id,
            recipient_email: "ada@example.org".to_owned(),
            recipient_name: Some("Ada Lovelace".to_owned()),
            title: "Water the plants".to_owned(),
            description: "Balcony and kitchen".to_owned(),
            priority: Priority::High,
            due_at: t.due_at,
            remind_at,
        }
    );
    // The sent record was inserted first-write.
    let sent = fake
        .saves
        .iter()
        .find(|s| s["key"] == sent_key(t.id, remind_at))
        .unwrap();
    assert_eq!(sent["options"]["concurrency"], "first-write");
    assert_eq!(sent["value"]["event_id"], event["id"]);
    drop(fake);

    let count = h
        .metric_line(&format!("{REMINDER_LATENESS_SECONDS}_count"))
        .unwrap();
    assert!(count.ends_with(" 1"), "{count}");
    let sum: f64 = h
        .metric_line(&format!("{REMINDER_LATENESS_SECONDS}_sum"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sum >= 0.2, "lateness {sum}");
}

#[tokio::test]
async fn a_second_trigger_has_no_second_effect() {
    let h = Harness::new().await;
    let (t, data) = h.known_task_due_now();
    assert_eq!(h.trigger(&job_name(t.id), &data).await, StatusCode::OK);
    assert_eq!(h.trigger(&job_name(t.id), &data).await, StatusCode::OK);
    let fake = h.seen();
    assert_eq!(fake.published.len(), 1);
    assert_eq!(
        fake.invocations.len(),
        1,
        "the repeat stops at the sent record"
    );
    drop(fake);
    let line = h
        .metric_line(&format!(
            r#"{REMINDER_TRIGGERS_TOTAL}{{outcome="already_sent""#
        ))
        .unwrap();
    assert!(line.ends_with(" 1"), "{line}");
}

#[tokio::test]
async fn a_completed_changed_deleted_or_unaddressable_task_gets_no_reminder() {
    let h = Harness::new().await;
    let remind_at = from_now(TimeDelta::zero());
    let base = task(from_now(-TimeDelta::hours(1)), Some(remind_at));
    let variant = |n: u128| TaskSnapshot {
        id: Uuid::from_u128(n),
        ..base.clone()
    };

    let completed = TaskSnapshot {
        completed: true,
        ..variant(1)
    };
    h.backend_knows(&completed, Some("ada@example.org"));
    let moved = TaskSnapshot {
        remind_at: Some(remind_at + TimeDelta::hours(1)),
        ..variant(2)
    };
    h.backend_knows(&moved, Some("ada@example.org"));
    let cleared = TaskSnapshot {
        remind_at: None,
        ..variant(3)
    };
    h.backend_knows(&cleared, Some("ada@example.org"));
    let deleted = variant(4); // unknown to the backend: 404
    let no_email = variant(5);
    h.backend_knows(&no_email, None);

    for t in [&completed, &moved, &cleared, &deleted, &no_email] {
        let status = h.trigger(&job_name(t.id), &job_data(t, remind_at)).await;
        assert_eq!(status, StatusCode::OK, "task {}", t.id);
    }
    let fake = h.seen();
    assert!(fake.published.is_empty(), "{:?}", fake.published);
    assert_eq!(fake.invocations.len(), 5);
    // Only the reminder with nobody to go to is settled (so the sweep leaves it alone); the
    // others are not owed at this time any more.
    let settled: Vec<&String> = fake
        .state
        .keys()
        .filter(|k| k.starts_with("reminder-sent-"))
        .collect();
    assert_eq!(settled, [&sent_key(no_email.id, remind_at)]);
    assert_eq!(
        fake.state[&sent_key(no_email.id, remind_at)].value,
        json!({"outcome": "no_recipient"})
    );
}

#[tokio::test]
async fn an_unavailable_backend_fails_the_trigger_for_a_retry() {
    let h = Harness::new().await;
    let remind_at = from_now(TimeDelta::zero());
    let t = task(from_now(-TimeDelta::hours(1)), Some(remind_at));
    h.backend().tasks.insert(
        t.id,
        (503, json!({"code": "UNAVAILABLE", "message": "db down"})),
    );
    let data = job_data(&t, remind_at);
    assert_eq!(
        h.trigger(&job_name(t.id), &data).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(h.seen().published.is_empty());

    // The Scheduler's retry finds the backend back.
    h.backend_knows(&t, Some("ada@example.org"));
    assert_eq!(h.trigger(&job_name(t.id), &data).await, StatusCode::OK);
    assert_eq!(h.seen().published.len(), 1);
}

#[tokio::test]
async fn failed_publishing_or_bookkeeping_retries_with_the_same_event_id() {
    let h = Harness::new().await;
    let (t, data) = h.known_task_due_now();

    h.sidecar.fail_next_publishes(1);
    assert_eq!(
        h.trigger(&job_name(t.id), &data).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(h.seen().published.is_empty());

    // Published, but the sent record cannot be written: the retry publishes again, with the
    // same id, which email-delivery de-duplicates.
    h.sidecar
        .fail_next_saves(1, key_starts_with("reminder-sent-"));
    assert_eq!(
        h.trigger(&job_name(t.id), &data).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(h.trigger(&job_name(t.id), &data).await, StatusCode::OK);
    assert_eq!(h.trigger(&job_name(t.id), &data).await, StatusCode::OK);
    let fake = h.seen();
    let ids: Vec<&Value> = fake.published.iter().map(|p| &p.event["id"]).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn unusable_job_data_is_acknowledged_without_effect() {
    let h = Harness::new().await;
    let t = task(from_now(TimeDelta::zero()), None);
    assert_eq!(
        h.trigger(&job_name(t.id), &json!({"what": 1})).await,
        StatusCode::OK
    );
    // Data for another task than the job's name.
    let other = job_data(
        &TaskSnapshot {
            id: Uuid::from_u128(9),
            ..t.clone()
        },
        Utc::now(),
    );
    assert_eq!(h.trigger(&job_name(t.id), &other).await, StatusCode::OK);
    // Not one of our jobs at all.
    assert_eq!(
        h.trigger("cleanup-1", &json!(null)).await,
        StatusCode::NOT_FOUND
    );
    let fake = h.seen();
    assert!(fake.invocations.is_empty() && fake.published.is_empty());
}

// ---- subscriptions, probes, metrics ------------------------------------------------------

#[tokio::test]
async fn dapr_subscribe_serves_the_table() {
    let h = Harness::new().await;
    let (status, body) = h.get("/dapr/subscribe").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{
            "pubsubname": "pubsub", "topic": "task-events", "route": "/events/task-events",
            "deadLetterTopic": "task-events-dlq"
        }])
    );
    assert_eq!(body, subscriptions().to_json());
}

#[test]
fn committed_subscription_manifest_matches_the_table() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dapr/subscriptions/notification.yaml"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        committed,
        subscriptions_yaml().unwrap(),
        "{path} is out of date with notification::subscriptions(); regenerate it with\n  \
         cargo run -p notification -- --print-subscriptions > dapr/subscriptions/notification.yaml"
    );
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let h = Harness::new().await;
    let (status, body) = h.get("/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = h.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["sidecar"], "ok");
    let t = task(
        from_now(TimeDelta::zero()),
        Some(from_now(TimeDelta::hours(1))),
    );
    h.deliver(event_types::TASK_CREATED, &t).await;
    let (status, body) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    for name in [
        "todo_http_requests_total",
        "todo_events_consumed_total",
        REMINDER_JOBS_SCHEDULED_TOTAL,
        REMINDER_LATENESS_SECONDS,
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    assert!(
        text.contains(r#"route="/events/task-events""#),
        "route template label missing"
    );
}

#[tokio::test]
async fn readiness_fails_without_a_sidecar() {
    let metrics = Metrics::new(SERVICE).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dapr = DaprClient::new(ClientConfig {
        http_endpoint: url,
        ..ClientConfig::default()
    })
    .unwrap();
    let publisher = Publisher::dapr(dapr.clone(), &PublisherConfig::default());
    let state = AppState::new(dapr, publisher, metrics, "backend", "statestore").unwrap();
    let app = router(state, AppTokenLayer::new(Some("t0ken".into())));
    let response = app
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Callbacks without the app token are refused before any work.
    let response = app
        .oneshot(
            Request::post("/job/reminder-x")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn serves_on_a_real_socket_and_stops_on_the_signal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(middleware::server::serve(
        listener,
        h.app.clone(),
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(5),
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /dapr/subscribe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("task-events-dlq"), "{response}");
    stop.send(()).unwrap();
    assert_eq!(
        server.await.unwrap().unwrap(),
        middleware::server::Stopped::Drained
    );
}

// ---- the app token -----------------------------------------------------------------------

/// Test fixture only: the app API token daprd would present.
const APP_TOKEN: &str = "fixture-notification-app-token";

/// A request body and its content type.
type Payload = (&'static str, Value);

/// `request` with `header` added.
fn with_header(request: &Request<Body>, header: Option<(&str, &str)>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(request.method())
        .uri(request.uri());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    if let Some((name, value)) = header {
        builder = builder.header(name, value);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_sidecar_route_needs_the_app_token_but_probes_and_metrics_do_not() {
    let h = Harness::with_app_token(AppTokenLayer::new(Some(APP_TOKEN.into()))).await;
    let remind_at = from_now(TimeDelta::hours(1));
    let t = task(from_now(TimeDelta::zero()), Some(remind_at));
    let event = json!({
        "id": Uuid::new_v4().to_string(), "source": "/todo/backend", "specversion": "1.0",
        "type": event_types::TASK_CREATED, "datacontenttype": "application/json",
        "data": TaskEventData::new(t.clone()), "topic": topics::TASK_EVENTS,
        "pubsubname": topics::PUBSUB,
    });
    // Another task whose reminder is due now (no event for it, so the trigger alone decides).
    let due = TaskSnapshot {
        id: Uuid::from_u128(7),
        ..task(
            from_now(-TimeDelta::hours(1)),
            Some(from_now(-TimeDelta::milliseconds(200))),
        )
    };
    h.backend_knows(&due, Some("ada@example.org"));
    let fired = job_data(&due, due.remind_at.unwrap());
    // Every route daprd calls, with a body it would send; unrouted paths are refused alike,
    // so a caller without the token cannot even learn which routes exist.
    let calls: [(&str, &str, Option<Payload>); 6] = [
        (
            "POST",
            TASK_EVENTS_ROUTE,
            Some(("application/cloudevents+json", event)),
        ),
        (
            "POST",
            "/job/reminder-ignored",
            Some(("application/json", json!({"what": 1}))),
        ),
        (
            "POST",
            &format!("/job/{}", job_name(due.id)),
            Some(("application/json", fired)),
        ),
        ("POST", &format!("/job/{SWEEP_JOB}"), None),
        ("GET", "/dapr/subscribe", None),
        ("GET", "/dapr/config", None),
    ];
    let request =
        |method: &str, path: &str, body: &Option<Payload>, header: Option<(&str, &str)>| {
            let mut builder = Request::builder().method(method).uri(path);
            if let Some((name, value)) = header {
                builder = builder.header(name, value);
            }
            match body {
                Some((content_type, body)) => builder
                    .header(header::CONTENT_TYPE, *content_type)
                    .body(Body::from(body.to_string())),
                None => builder.body(Body::empty()),
            }
            .unwrap()
        };
    for (method, path, body) in &calls {
        for (case, header) in dapr::testing::wrong_app_tokens(APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, answer) = h.call(request(method, path, body, header)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{case}: {method} {path}: {answer}"
            );
            assert_eq!(answer["code"], "UNAUTHORIZED", "{case}: {method} {path}");
        }
    }
    {
        let fake = h.seen();
        assert!(
            fake.job_calls.is_empty() && fake.published.is_empty() && fake.invocations.is_empty(),
            "a refused call reached the sidecar"
        );
    }
    // With the token, each route does its work.
    let token = Some(("dapr-api-token", APP_TOKEN));
    let expected = [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::NOT_FOUND,
    ];
    for ((method, path, body), want) in calls.iter().zip(expected) {
        let (status, answer) = h.call(request(method, path, body, token)).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
    }
    assert!(
        h.job_calls().contains(&schedule(&t, remind_at)),
        "the event was applied"
    );
    assert_eq!(h.seen().published.len(), 1, "the trigger published");

    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, answer) = h.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        let probe = Request::get(path).body(Body::empty()).unwrap();
        for (case, header) in dapr::testing::wrong_app_tokens(APP_TOKEN) {
            let header = header.as_ref().map(|(n, v)| (*n, v.as_str()));
            let (status, _) = h.call(with_header(&probe, header)).await;
            assert_eq!(status, StatusCode::OK, "{path} with {case}");
        }
    }
}
