//! The outbox relay against a real PostgreSQL, with a scripted publisher in place of daprd:
//! commit order per task, a failure holding back that task's later rows (counted and retried),
//! one active relay per database, and the flush at shutdown. Set `DATABASE_URL` to a PostgreSQL
//! server (e.g. the one `cargo xtask up` prints), as for the other suites.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend::domain::{AuthUser, NewTask};
use backend::handoff::{self, HANDOFF_CAPACITY};
use backend::relay::{Relay, RelayConfig};
use backend::service::TaskService;
use middleware::{PublishRequest, Publisher, PublisherConfig, RetryConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// Long enough for every wait below on a loaded machine; each returns as soon as it holds.
const DEADLINE: Duration = Duration::from_secs(30);

/// What the scripted sidecar saw: the event ids in the order it accepted them, and the ids it
/// refused.
#[derive(Default)]
struct Script {
    accepted: Vec<Uuid>,
    refuse_once: BTreeSet<Uuid>,
    /// Refused on every attempt, for as long as they are in the set.
    refuse_always: BTreeSet<Uuid>,
    refused: Vec<Uuid>,
    /// Not answered until the `Notify` is notified (a slow publish).
    hold: Option<(Uuid, Arc<Notify>)>,
    /// Every publish is refused while this is set.
    refuse_all: bool,
}

/// A publisher whose every publish goes to `script` (no retries inside it: each relay attempt
/// is one call), accepting unless the event is to be refused once.
fn scripted(script: &Arc<Mutex<Script>>) -> Publisher {
    let script = Arc::clone(script);
    let sidecar = tower::service_fn(move |req: PublishRequest| {
        let script = Arc::clone(&script);
        async move {
            let id: Uuid = req.event.id.parse().unwrap();
            let release = match &script.lock().unwrap().hold {
                Some((held, release)) if *held == id => Some(Arc::clone(release)),
                _ => None,
            };
            if let Some(release) = release {
                release.notified().await;
            }
            let mut s = script.lock().unwrap();
            if s.refuse_all || s.refuse_once.remove(&id) || s.refuse_always.contains(&id) {
                s.refused.push(id);
                return Err(dapr::Error::Api(dapr::DaprApiError::from_response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    br#"{"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE","message":"scripted"}"#,
                )));
            }
            s.accepted.push(id);
            Ok(())
        }
    });
    Publisher::new(
        sidecar,
        &PublisherConfig {
            retry: RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            },
            ..PublisherConfig::default()
        },
    )
}

/// Quick polling and backoff, so the tests spend their time on the behaviour, not the waits.
fn config() -> RelayConfig {
    RelayConfig {
        idle_poll: Duration::from_millis(50),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..RelayConfig::default()
    }
}

/// Commits `per_task` events for each of `tasks` tasks, interleaved across tasks; returns each
/// task's event ids in commit order.
async fn commit_events(pool: &PgPool, tasks: usize, per_task: usize) -> BTreeMap<Uuid, Vec<Uuid>> {
    let mut committed: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    let ids: Vec<Uuid> = (0..tasks).map(|_| Uuid::now_v7()).collect();
    for _ in 0..per_task {
        for task in &ids {
            let id = commit_unannounced(pool, *task).await;
            committed.entry(*task).or_default().push(id);
        }
    }
    committed
}

async fn pending(pool: &PgPool) -> i64 {
    backend::outbox::pending_count(pool).await.unwrap()
}

/// Polls `check` until it holds; panics with `what` after [`DEADLINE`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The accepted ids of each task, in the order the sidecar accepted them.
fn accepted_per_task(
    script: &Mutex<Script>,
    committed: &BTreeMap<Uuid, Vec<Uuid>>,
) -> BTreeMap<Uuid, Vec<Uuid>> {
    let task_of: BTreeMap<Uuid, Uuid> = committed
        .iter()
        .flat_map(|(task, ids)| ids.iter().map(move |id| (*id, *task)))
        .collect();
    let mut seen: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for id in &script.lock().unwrap().accepted {
        seen.entry(task_of[id]).or_default().push(*id);
    }
    seen
}

/// Relays running over one database, each publishing to its own script.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts one relay per script with `config`, each flushing for `flush` at shutdown.
    fn start(
        pool: &PgPool,
        scripts: &[&Arc<Mutex<Script>>],
        config: &RelayConfig,
        flush: Duration,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = scripts
            .iter()
            .map(|script| {
                let relay = Relay::new(
                    pool.clone(),
                    scripted(script),
                    Arc::new(Notify::new()),
                    config.clone(),
                    None,
                );
                tokio::spawn(relay.run(stopped.clone(), flush))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Signals shutdown and waits for every relay to return.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// Waits until a relay holds the outbox lock of `pool`'s database.
async fn relay_holding_lock(pool: &PgPool) {
    until("the relay holding its lock", || async {
        // Advisory locks are per database; other tests' relays hold theirs in their own.
        let locks: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        locks == 1
    })
    .await;
}

/// A relay that reads only when woken (its poll is an hour away), publishing to `script`.
fn woken_only() -> RelayConfig {
    RelayConfig {
        idle_poll: Duration::from_secs(3600),
        ..config()
    }
}

/// A backend process's two ends of the outbox: the service its requests call, handing
/// committed rows to its relay, and that relay, publishing to a script.
struct BackendProcess {
    service: TaskService,
    stop: watch::Sender<bool>,
    relay: tokio::task::JoinHandle<()>,
}

impl BackendProcess {
    /// The service over `pool`; its relay on `relay_pool` with `config`, publishing to
    /// `script`.
    fn start(
        pool: &PgPool,
        relay_pool: &PgPool,
        script: &Arc<Mutex<Script>>,
        config: RelayConfig,
    ) -> Self {
        let waker = Arc::new(Notify::new());
        let (handoff, inbox) = handoff::channel(HANDOFF_CAPACITY);
        let service = TaskService::new(pool.clone(), Arc::clone(&waker)).with_handoff(handoff);
        let relay = Relay::new(relay_pool.clone(), scripted(script), waker, config, None)
            .with_handoff(inbox);
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(relay.run(stopped, Duration::from_secs(1)));
        Self {
            service,
            stop,
            relay,
        }
    }

    /// Signals shutdown and waits for the relay to return.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.relay.await.unwrap();
    }
}

/// Polls until no outbox row waits; panics with `what` after [`DEADLINE`].
async fn until_nothing_pending(pool: &PgPool, what: &str) {
    until(what, || async { pending(pool).await == 0 }).await;
}

/// Asserts that the sidecar accepted `task`'s events, each once, in commit order, and nothing
/// else.
async fn assert_accepted_exactly(script: &Mutex<Script>, pool: &PgPool, task: Uuid) {
    let expected = events_of(pool, task).await;
    assert_eq!(script.lock().unwrap().accepted, expected);
}

/// The event ids of `task`'s outbox rows, in commit order.
async fn events_of(pool: &PgPool, task: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM outbox WHERE aggregate_id = $1 ORDER BY seq")
        .bind(task)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Commits an event of `task` the way another process would, without waking any relay.
async fn commit_unannounced(pool: &PgPool, task: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    let event = dapr::CloudEvent::new(id.to_string(), "relay-test", "task.updated")
        .with_subject(task.to_string());
    sqlx::query(
        "INSERT INTO outbox (id, aggregate_id, topic, event_type, event) VALUES ($1, $2, 'task-events', 'task.updated', $3)",
    )
    .bind(id)
    .bind(task)
    .bind(serde_json::to_value(&event).unwrap())
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn create(service: &TaskService, title: &str) -> Uuid {
    let new = NewTask {
        title: title.into(),
        ..NewTask::default()
    };
    service
        .create_task(&AuthUser::new("relay-test"), new)
        .await
        .unwrap()
        .id
}

/// Runs one relay per script until nothing is pending, then stops them.
async fn publish_everything(pool: &PgPool, scripts: &[&Arc<Mutex<Script>>]) {
    let running = Running::start(pool, scripts, &config(), Duration::from_secs(1));
    until_nothing_pending(pool, "every row published").await;
    running.stop().await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn publishes_each_row_once_in_commit_order_per_task(pool: PgPool) {
    let committed = commit_events(&pool, 5, 4).await;
    let script = Arc::new(Mutex::new(Script::default()));
    publish_everything(&pool, &[&script]).await;

    assert_eq!(accepted_per_task(&script, &committed), committed);
    assert_eq!(script.lock().unwrap().accepted.len(), 20, "each row once");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_refused_row_holds_back_its_task_and_is_retried(pool: PgPool) {
    let committed = commit_events(&pool, 3, 3).await;
    let blocked_task = *committed.keys().next().unwrap();
    let first = committed[&blocked_task][0];
    let script = Arc::new(Mutex::new(Script {
        refuse_once: BTreeSet::from([first]),
        ..Script::default()
    }));
    publish_everything(&pool, &[&script]).await;

    assert_eq!(script.lock().unwrap().refused, vec![first]);
    // The refused row still went first for its task, and the others kept their order.
    assert_eq!(accepted_per_task(&script, &committed), committed);
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "the failed attempt is counted");
    assert!(error.is_some_and(|e| !e.is_empty()), "and its error kept");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn two_relays_on_one_database_publish_each_row_once(pool: PgPool) {
    let committed = commit_events(&pool, 8, 3).await;
    let scripts: Vec<Arc<Mutex<Script>>> = (0..2)
        .map(|_| Arc::new(Mutex::new(Script::default())))
        .collect();
    publish_everything(&pool, &scripts.iter().collect::<Vec<_>>()).await;

    let counts: Vec<usize> = scripts
        .iter()
        .map(|s| s.lock().unwrap().accepted.len())
        .collect();
    // One relay holds the lock for as long as it runs: the other published nothing.
    assert!(counts.contains(&0), "both relays published: {counts:?}");
    assert_eq!(
        counts.iter().sum::<usize>(),
        24,
        "each row once: {counts:?}"
    );
    let active = scripts
        .iter()
        .find(|s| !s.lock().unwrap().accepted.is_empty())
        .unwrap();
    assert_eq!(accepted_per_task(active, &committed), committed);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn shutdown_flushes_what_was_committed(pool: PgPool) {
    let script = Arc::new(Mutex::new(Script::default()));
    let running = Running::start(
        &pool,
        &[&script],
        &RelayConfig {
            // Without a wake-up or the flush, these rows would wait an hour.
            idle_poll: Duration::from_secs(3600),
            ..config()
        },
        Duration::from_secs(10),
    );
    // The relay is active (it took the lock) before the rows exist, and nothing wakes it.
    relay_holding_lock(&pool).await;
    let committed = commit_events(&pool, 2, 2).await;
    assert_eq!(pending(&pool).await, 4);
    running.stop().await;

    assert_eq!(pending(&pool).await, 0, "the flush published every row");
    assert_eq!(accepted_per_task(&script, &committed), committed);
}

/// A publish daprd acknowledged but the database could not record (it went away between the
/// two) is recorded later, not published again: the relay keeps the acknowledgement.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn an_acknowledged_publish_that_could_not_be_recorded_is_not_published_again(pool: PgPool) {
    // A gate on the outbox's updates: while closed, every update fails, and each attempt is
    // counted in a sequence (which, unlike a table, keeps counting through the rollback).
    for statement in [
        "CREATE TABLE relay_gate (closed boolean NOT NULL)",
        "INSERT INTO relay_gate VALUES (true)",
        "CREATE SEQUENCE relay_gate_hits",
        "CREATE FUNCTION relay_gate() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM nextval('relay_gate_hits');
           IF (SELECT closed FROM relay_gate) THEN RAISE EXCEPTION 'gate closed'; END IF;
           RETURN NEW;
         END $$",
        "CREATE TRIGGER relay_gate BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION relay_gate()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let committed = commit_events(&pool, 3, 2).await;
    let script = Arc::new(Mutex::new(Script::default()));
    let running = Running::start(&pool, &[&script], &config(), Duration::from_secs(1));

    // Positive evidence that the relay tried to record its publishes several times while the
    // gate was closed (the first pass, then at least two retries).
    until("three refused attempts to record the publishes", || async {
        let hits: i64 = sqlx::query_scalar("SELECT last_value FROM relay_gate_hits")
            .fetch_one(&pool)
            .await
            .unwrap();
        hits >= 3
    })
    .await;
    assert_eq!(
        pending(&pool).await,
        6,
        "nothing recorded while the gate is closed"
    );
    sqlx::query("UPDATE relay_gate SET closed = false")
        .execute(&pool)
        .await
        .unwrap();
    until_nothing_pending(&pool, "every row recorded").await;
    running.stop().await;

    assert_eq!(
        script.lock().unwrap().accepted.len(),
        6,
        "each row published once, not again after the failed update"
    );
    assert_eq!(accepted_per_task(&script, &committed), committed);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_task_held_back_by_failures_does_not_stop_the_others(pool: PgPool) {
    let committed = commit_events(&pool, 4, 3).await;
    let blocked_task = *committed.keys().next().unwrap();
    let first = committed[&blocked_task][0];
    let script = Arc::new(Mutex::new(Script {
        refuse_always: BTreeSet::from([first]),
        ..Script::default()
    }));
    let running = Running::start(&pool, &[&script], &config(), Duration::from_secs(1));
    // Every other task's rows go out while the blocked task's three wait, and its first row is
    // tried again and again (with its backoff) meanwhile.
    until(
        "the other tasks published, the blocked one retried",
        || async {
            let retried = script.lock().unwrap().refused.len() >= 3;
            retried && pending(&pool).await == 3
        },
    )
    .await;
    let refused = script.lock().unwrap().refused.clone();
    assert!(refused.iter().all(|id| *id == first), "{refused:?}");
    script.lock().unwrap().refuse_always.clear();
    until_nothing_pending(&pool, "every row published").await;
    running.stop().await;
    assert_eq!(accepted_per_task(&script, &committed), committed);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_row_committed_during_a_slow_publish_does_not_wait_for_it(pool: PgPool) {
    let slow = commit_events(&pool, 1, 1).await;
    let slow_id = slow.values().next().unwrap()[0];
    let release = Arc::new(Notify::new());
    let script = Arc::new(Mutex::new(Script {
        hold: Some((slow_id, Arc::clone(&release))),
        ..Script::default()
    }));
    let running = Running::start(&pool, &[&script], &config(), Duration::from_secs(1));
    until("the slow publish under way", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 1
            && script.lock().unwrap().accepted.is_empty()
    })
    .await;
    let quick = commit_events(&pool, 1, 1).await;
    let quick_id = quick.values().next().unwrap()[0];
    until("the later row published", || async {
        script.lock().unwrap().accepted.contains(&quick_id)
    })
    .await;
    // Still in its first attempt (the publisher gives one attempt 2 s): the later row did not
    // wait for it to end, by an answer or a timeout.
    assert!(
        !script.lock().unwrap().accepted.contains(&slow_id),
        "the slow publish is still unanswered"
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1")
        .bind(slow_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "the slow publish has not failed yet");
    release.notify_one();
    until_nothing_pending(&pool, "every row published").await;
    running.stop().await;
    assert_eq!(script.lock().unwrap().accepted, vec![quick_id, slow_id]);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_slow_update_marking_rows_published_does_not_hold_back_publishing(pool: PgPool) {
    let first = commit_events(&pool, 1, 1).await;
    let first_id = first.values().next().unwrap()[0];
    // Another transaction holds the first row's lock, so the relay's update marking it
    // published waits (as behind a slow disk or a long lock): reads are not blocked by it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM outbox WHERE id = $1 FOR UPDATE")
        .bind(first_id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let script = Arc::new(Mutex::new(Script::default()));
    let running = Running::start(&pool, &[&script], &config(), Duration::from_secs(5));
    until("the first row published", || async {
        script.lock().unwrap().accepted.contains(&first_id)
    })
    .await;
    let second = commit_events(&pool, 1, 1).await;
    let second_id = second.values().next().unwrap()[0];
    until(
        "the second row published while the first is being marked",
        || async { script.lock().unwrap().accepted.contains(&second_id) },
    )
    .await;
    let first_marked: bool =
        sqlx::query_scalar("SELECT published_at IS NOT NULL FROM outbox WHERE id = $1")
            .bind(first_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        !first_marked,
        "the update marking the first row is still waiting"
    );
    blocker.rollback().await.unwrap();
    until_nothing_pending(&pool, "every row marked").await;
    running.stop().await;
    // Nothing was published twice while its row waited to be marked.
    assert_eq!(script.lock().unwrap().accepted, vec![first_id, second_id]);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_commit_hands_its_rows_to_the_relay_which_publishes_them_without_a_read(pool: PgPool) {
    // Two connections: the relay's lock, and one the test takes away once the relay is idle,
    // so from then on the relay cannot read the outbox (a read then fails after 200 ms).
    let relay_pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(200))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let script = Arc::new(Mutex::new(Script::default()));
    let process = BackendProcess::start(&pool, &relay_pool, &script, woken_only());
    let service = &process.service;
    relay_holding_lock(&pool).await;
    let warm_up = create(service, "warm-up").await;
    until_nothing_pending(&pool, "the first event published and marked").await;
    assert_accepted_exactly(&script, &pool, warm_up).await;

    let taken = relay_pool.acquire().await.unwrap();
    let task = create(service, "handed over").await;
    let event = events_of(&pool, task).await;
    until("the handed-over event published", || async {
        script.lock().unwrap().accepted.ends_with(&event)
    })
    .await;
    assert_eq!(
        pending(&pool).await,
        1,
        "not marked: the relay has no connection"
    );
    drop(taken);
    until_nothing_pending(&pool, "the event marked published").await;
    process.stop().await;
    assert_eq!(script.lock().unwrap().accepted.len(), 2, "each event once");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_commit_behind_a_waiting_row_of_its_task_does_not_overtake_it(pool: PgPool) {
    let script = Arc::new(Mutex::new(Script::default()));
    let process = BackendProcess::start(&pool, &pool, &script, woken_only());
    let service = &process.service;
    relay_holding_lock(&pool).await;
    let task = create(service, "ordered").await;
    until_nothing_pending(&pool, "the created event published and marked").await;
    // A row of the task that this process did not write and the relay has not read (as if
    // another replica had committed it and its notification were lost)...
    commit_unannounced(&pool, task).await;
    // ...then this process completes the task: its row is not handed over, the relay reads
    // both, and publishes them in commit order.
    service
        .complete_task(&AuthUser::new("relay-test"), task)
        .await
        .unwrap();
    until_nothing_pending(&pool, "every event published").await;
    process.stop().await;
    assert_accepted_exactly(&script, &pool, task).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_refused_handed_over_row_is_retried_before_its_task_s_later_rows(pool: PgPool) {
    let script = Arc::new(Mutex::new(Script {
        refuse_all: true,
        ..Script::default()
    }));
    let process = BackendProcess::start(&pool, &pool, &script, woken_only());
    let service = &process.service;
    relay_holding_lock(&pool).await;
    let task = create(service, "refused first").await;
    until("the created event refused", || async {
        !script.lock().unwrap().refused.is_empty()
    })
    .await;
    for _ in 0..3 {
        service
            .update_task(
                &AuthUser::new("relay-test"),
                task,
                serde_json::from_value(serde_json::json!({"title": Uuid::now_v7().to_string()}))
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    script.lock().unwrap().refuse_all = false;
    until_nothing_pending(&pool, "every event published").await;
    process.stop().await;
    assert_accepted_exactly(&script, &pool, task).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_commit_in_another_process_wakes_the_active_relay(pool: PgPool) {
    let script = Arc::new(Mutex::new(Script::default()));
    let running = Running::start(&pool, &[&script], &woken_only(), Duration::from_secs(1));
    relay_holding_lock(&pool).await;
    // This process has no relay of its own: its commits cannot hand anything over, and only
    // the database can tell the active relay (whose poll is an hour away) about them.
    let elsewhere = TaskService::new(pool.clone(), Arc::new(Notify::new()));
    let task = create(&elsewhere, "from another replica").await;
    until_nothing_pending(&pool, "the other process's event published").await;
    running.stop().await;
    assert_accepted_exactly(&script, &pool, task).await;
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_steady_stream_of_handed_over_rows_does_not_put_off_the_poll(pool: PgPool) {
    let script = Arc::new(Mutex::new(Script::default()));
    let poll = RelayConfig {
        idle_poll: Duration::from_secs(1),
        ..config()
    };
    let process = BackendProcess::start(&pool, &pool, &script, poll);
    relay_holding_lock(&pool).await;
    create(&process.service, "first").await;
    until_nothing_pending(&pool, "the first event published and marked").await;
    // A row nothing announces (a crash's leftover), then commits every 20 ms or so, each
    // handed over, so the relay is never a second without an event: only the poll, due a
    // second after the last read, reads the row.
    let orphan = commit_unannounced(&pool, Uuid::now_v7()).await;
    let end = tokio::time::Instant::now() + DEADLINE;
    while !script.lock().unwrap().accepted.contains(&orphan) {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for the poll to find the unannounced row"
        );
        create(&process.service, "stream").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_nothing_pending(&pool, "every event published").await;
    process.stop().await;
}
