//! The outbox relay: publishes committed outbox rows to Dapr pub/sub, in order per task.
//!
//! Every state change commits its event in the same transaction (`outbox.rs`); this task is
//! the only path from there to the broker. A commit in this process hands a task's first
//! waiting rows straight to the relay (`handoff.rs`), which publishes them without reading
//! them back; for any other row it wakes the relay to read the outbox (a `tokio::sync::Notify`
//! permit, so a commit while the relay is busy is never missed). A commit in another process
//! wakes it through a PostgreSQL notification. Beside that it polls slowly, which covers rows
//! left by a crash or a wake-up that got lost. A row is marked published only
//! after daprd answered 204; failures are retried with capped backoff, so a sidecar that is
//! down for a while delays events but loses none. An acknowledgement the database could not
//! record (it went away between the publish and the update) is kept and recorded before the
//! next read, so a database outage does not publish those rows a second time; only a crash of
//! the process in that moment can (same event id, which consumers deduplicate).
//!
//! Order: rows of one task are published one after another in commit order, and a failure
//! stops that task's later rows until its retry delay (doubling with the row's failed
//! attempts) has passed; different tasks are published concurrently, and a row is read and
//! sent as soon as there is room, without waiting for the other tasks' publishes to end. One
//! relay is active per database (a PostgreSQL advisory lock), so replicas of the backend
//! cannot interleave a task's events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use middleware::{PublishRequest, Publisher};
use prometheus::{Histogram, HistogramOpts, IntGauge, Registry};
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::handoff::{Handed, HandoffInbox};
use crate::outbox::{self, OutboxRow};

/// Histogram of the time from commit to the sidecar's acknowledgement, per event.
pub const OUTBOX_PUBLISH_LAG_SECONDS: &str = "todo_outbox_publish_lag_seconds";
/// Gauge of rows not yet published, as of the last read.
pub const OUTBOX_PENDING: &str = "todo_outbox_pending";

/// A group handed over longer ago than this is left to a read: by then a read may have
/// published it, and [`RecentlyAcked`] only remembers acknowledgements for twice as long.
const HANDOFF_MAX_AGE: Duration = Duration::from_secs(5);

/// How long the relay waits to start listening for other processes' commits.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(2);

/// Key of the advisory lock that elects the active relay ("todo" + "outbox" in ASCII, truncated).
const RELAY_LOCK_KEY: i64 = 0x746f_646f_6f75_7462;

/// Tuning of the relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Pub/sub component to publish to.
    pub pubsub: String,
    /// Rows read at a time.
    pub batch_size: i64,
    /// Tasks published in parallel.
    pub concurrency: usize,
    /// Poll interval when nothing woke the relay (rows from elsewhere, crash recovery).
    pub idle_poll: Duration,
    /// Shortest retry delay: of a task after its first failed publish, and of reading after a
    /// database error.
    pub min_backoff: Duration,
    /// Longest retry delay, reached by doubling after repeated failures.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            pubsub: contracts::topics::PUBSUB.to_owned(),
            batch_size: 256,
            concurrency: 32,
            idle_poll: Duration::from_secs(2),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The relay's metrics, registered in the service's registry.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    lag: Histogram,
    pending: IntGauge,
}

impl RelayMetrics {
    /// Creates and registers the relay metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let lag = Histogram::with_opts(
            HistogramOpts::new(
                OUTBOX_PUBLISH_LAG_SECONDS,
                "Time from the outbox commit to daprd acknowledging the publish.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
        )?;
        let pending = IntGauge::new(OUTBOX_PENDING, "Outbox rows not yet published.")?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        Ok(Self { lag, pending })
    }
}

/// What one pass achieved.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Nothing was pending.
    Idle,
    /// Some rows were published (there may be more).
    Progress,
    /// Rows are pending but none could be published.
    Blocked,
}

/// The outbox relay task.
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    // Permits stored by commits; a commit while the relay is busy makes its next wait return at
    // once.
    waker: Arc<Notify>,
    config: RelayConfig,
    metrics: Option<RelayMetrics>,
    // Rows daprd acknowledged whose `published_at` could not be written (the database went
    // away between the publish and the update). They are marked before anything else is read,
    // so losing the database at that moment does not publish them a second time.
    unmarked: Arc<std::sync::Mutex<Vec<Ack>>>,
    /// Rows this process's commits hand over ([`crate::handoff`]).
    inbox: Option<HandoffInbox>,
}

impl Relay {
    /// A relay over `pool`'s outbox, publishing with `publisher`, woken by `waker`.
    pub fn new(
        pool: PgPool,
        publisher: Publisher,
        waker: Arc<Notify>,
        config: RelayConfig,
        metrics: Option<RelayMetrics>,
    ) -> Self {
        Self {
            pool,
            publisher,
            waker,
            config,
            metrics,
            unmarked: Arc::default(),
            inbox: None,
        }
    }

    /// The same relay, also publishing the rows this process's commits hand to `inbox`.
    #[must_use]
    pub fn with_handoff(mut self, inbox: HandoffInbox) -> Self {
        self.inbox = Some(inbox);
        self
    }

    /// Runs until `shutdown` turns true, then publishes what it can within `flush_deadline`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>, flush_deadline: Duration) {
        let mut inbox = self.inbox.take();
        loop {
            let Some(mut lock) = self.become_leader(&mut shutdown, &mut inbox).await else {
                return;
            };
            tracing::info!("outbox relay active");
            if let Some(inbox) = &mut inbox {
                // Its first read finds whatever was handed over before this.
                inbox.discard_queued();
                inbox.set_leading(true);
            }
            let lead = self
                .lead(&mut lock, &mut shutdown, flush_deadline, &mut inbox)
                .await;
            if let Some(inbox) = &inbox {
                inbox.set_leading(false);
            }
            match lead {
                Lead::Lost => continue,
                Lead::Shutdown { until } => {
                    self.flush(until).await;
                    return;
                }
            }
        }
    }

    /// Publishes as the active relay until shutdown (returns once the groups in flight have
    /// landed, or `flush_deadline` after the signal) or until the lock's connection is gone.
    ///
    /// Groups are started as soon as there is room, not pass by pass: a row committed while
    /// other tasks' events are being published is read and sent at once, without waiting for
    /// the slowest of them. A read's groups that found no room wait in a queue, so under a
    /// backlog the outbox is still read a batch at a time. Each task has at most one group in
    /// flight, so its events stay in commit order; a task whose publish failed is held back
    /// for a delay that doubles with its row's failed attempts (the others go on), and a
    /// database error pauses reading. Acknowledged rows are marked published by one update at
    /// a time while publishing goes on, so a slow update holds up no publish; until it has
    /// run, reads skip its rows.
    ///
    /// The outbox is read when something may be waiting that the relay does not hold: at the
    /// start, on a wake-up (a commit that handed nothing over, a notification from another
    /// process, a group it could not take), when a held-back task's delay ends, after a read
    /// that filled its batch, and on the slow poll. Groups handed over by this process's
    /// commits start without a read.
    async fn lead(
        &self,
        lock: &mut PoolConnection<sqlx::Postgres>,
        shutdown: &mut watch::Receiver<bool>,
        flush_deadline: Duration,
        inbox: &mut Option<HandoffInbox>,
    ) -> Lead {
        let room = self.config.concurrency.max(1);
        let mut flight = InFlight::default();
        let mut listener = self.listen().await;
        let mut held: HashMap<Uuid, Instant> = HashMap::new();
        let mut read_again_at: Option<Instant> = None;
        let mut db_backoff = self.config.min_backoff;
        let mut read = true;
        // The slow poll counts from the last read, not from the last event: a steady stream of
        // handed-over groups must not put it off for ever.
        let mut poll_at = Instant::now() + self.config.idle_poll;
        loop {
            if *shutdown.borrow() {
                let until = Instant::now() + flush_deadline;
                // Groups cut off here were not recorded: the next start publishes them again,
                // with the same ids.
                let _ = tokio::time::timeout_at(until, self.land_all(&mut flight, &mut held)).await;
                return Lead::Shutdown { until };
            }
            let now = Instant::now();
            held.retain(|_, until| *until > now);
            flight.recent.forget_before(now);
            read |= now >= poll_at;
            if read
                && read_again_at.is_none_or(|at| now >= at)
                && flight.groups.len() < room
                && !flight.can_start(&held)
            {
                read = false;
                poll_at = now + self.config.idle_poll;
                match self.read_into(&mut flight).await {
                    Ok(()) => {
                        read_again_at = None;
                        db_backoff = self.config.min_backoff;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox relay read failed");
                        // The lock lives on its connection: if that is gone, so is leadership.
                        if sqlx::query("SELECT 1").execute(&mut **lock).await.is_err() {
                            self.land_all(&mut flight, &mut held).await;
                            return Lead::Lost;
                        }
                        read_again_at = Some(now + db_backoff);
                        db_backoff = (db_backoff * 2).min(self.config.max_backoff);
                        read = true;
                    }
                }
            }
            while flight.groups.len() < room {
                let Some(group) = flight.next_startable(&held) else {
                    break;
                };
                flight.groups.push(Box::pin(self.publish_group(group)));
            }
            // A read that is due but found no room waits for a landing, not for its time again
            // (which has passed, and would wake this loop at once, over and over).
            let wake_at = [
                read_again_at.filter(|at| *at > now),
                held.values().min().copied(),
            ]
            .into_iter()
            .flatten()
            .fold(
                if poll_at > now {
                    poll_at
                } else {
                    now + self.config.idle_poll
                },
                Instant::min,
            );
            tokio::select! {
                Some(first) = flight.groups.next() => {
                    self.land(first, &mut flight, &mut held);
                    self.start_marking(&mut flight);
                    read |= flight.more_to_read;
                }
                Some(marked) = marking_done(&mut flight.marking), if flight.marking.is_some() => {
                    flight.marking = None;
                    for id in marked {
                        flight.rows.remove(&id);
                    }
                    self.start_marking(&mut flight);
                    read |= flight.more_to_read;
                }
                handed = handed_over(inbox) => {
                    if !flight.take_handed(handed, &held) {
                        read = true;
                    }
                }
                woke = notified(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "outbox notifications lost; polling until the next wake-up");
                        listener = None;
                    }
                    read = true;
                }
                () = self.waker.notified() => read = true,
                () = tokio::time::sleep_until(wake_at) => {
                    if listener.is_none() {
                        listener = self.listen().await;
                    }
                    read = true;
                }
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Reads the oldest pending rows into the queue, in place of what it held, leaving out
    /// the rows in flight.
    async fn read_into(&self, flight: &mut InFlight<'_>) -> Result<(), sqlx::Error> {
        self.mark_carried_over().await?;
        let rows = outbox::fetch_pending(&self.pool, self.config.batch_size).await?;
        self.note_pending(rows.len()).await;
        flight.more_to_read = rows.len() as i64 >= self.config.batch_size;
        let fresh = rows
            .into_iter()
            .filter(|row| !flight.rows.contains(&row.id))
            .collect();
        flight.queued = group_by_task(fresh).into();
        Ok(())
    }

    /// Takes in `first` and every other group that has finished meanwhile: their tasks may
    /// start again, and their acknowledgements wait to be marked ([`Relay::start_marking`]).
    /// Until they are, their rows stay in `flight.rows`, so a read does not return them again.
    fn land(&self, first: Published, flight: &mut InFlight<'_>, held: &mut HashMap<Uuid, Instant>) {
        let mut done = vec![first];
        while let Some(Some(more)) = flight.groups.next().now_or_never() {
            done.push(more);
        }
        for group in done {
            flight.tasks.remove(&group.task);
            // The rows that were not acknowledged are read again (the failed one first).
            for id in group.ids.iter().skip(group.acked.len()) {
                flight.rows.remove(id);
            }
            if let Some(attempts) = group.failed_attempts {
                held.insert(group.task, Instant::now() + self.retry_delay(attempts));
                // Its queued rows come after the one that failed: the next read brings them
                // back together with it.
                flight
                    .queued
                    .retain(|queued| queued[0].aggregate_id != group.task);
            }
            let now = Instant::now();
            for acked in &group.acked {
                flight.recent.remember(acked.row.id, now);
            }
            flight.landed.extend(group.acked);
        }
    }

    /// Starts marking the landed acknowledgements in one update, unless an update is running:
    /// publishing goes on meanwhile, and what lands in the meantime goes into the next one.
    fn start_marking<'a>(&'a self, flight: &mut InFlight<'a>) {
        if flight.marking.is_some() || flight.landed.is_empty() {
            return;
        }
        let acked = std::mem::take(&mut flight.landed);
        let ids: Vec<Uuid> = acked.iter().map(|a| a.row.id).collect();
        flight.marking = Some(Box::pin(async move {
            // Marked, or kept to be marked before the next read (`record`): either way the
            // rows may leave `flight.rows`.
            self.record(acked).await;
            ids
        }));
    }

    /// Waits for every group in flight and marks what they published.
    async fn land_all(&self, flight: &mut InFlight<'_>, held: &mut HashMap<Uuid, Instant>) {
        while let Some(first) = flight.groups.next().await {
            self.land(first, flight, held);
        }
        if let Some(marking) = flight.marking.take() {
            marking.await;
        }
        self.record(std::mem::take(&mut flight.landed)).await;
    }

    /// How long a task waits after its row failed `attempts` times: the minimum backoff,
    /// doubled per earlier failure, at most the maximum.
    fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(16);
        (self.config.min_backoff * 2u32.pow(doublings)).min(self.config.max_backoff)
    }

    /// Waits for the advisory lock; `None` if shutdown came first. What commits hand over
    /// meanwhile is dropped: the active relay elsewhere reads it.
    async fn become_leader(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        inbox: &mut Option<HandoffInbox>,
    ) -> Option<PoolConnection<sqlx::Postgres>> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            match self.try_lock().await {
                Ok(Some(conn)) => return Some(conn),
                Ok(None) => tracing::debug!("another relay is active; waiting"),
                Err(e) => tracing::warn!(error = %e, "cannot take the outbox relay lock"),
            }
            let again = Instant::now() + self.config.idle_poll;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(again) => break,
                    _ = handed_over(inbox) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }

    /// Listens for commits of other processes on [`outbox::RELAY_CHANNEL`], on a connection of
    /// its own beside the relay's pool; `None` (and the slow poll alone) if that fails.
    async fn listen(&self) -> Option<PgListener> {
        let listening = async {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with((*self.pool.connect_options()).clone())
                .await?;
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(outbox::RELAY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        // Bounded: the relay's loop waits for it, and an unreachable server must not stall
        // the publishing of what is already in hand.
        match tokio::time::timeout(LISTEN_TIMEOUT, listening)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other processes' commits; polling");
                None
            }
        }
    }

    async fn try_lock(&self) -> Result<Option<PoolConnection<sqlx::Postgres>>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if locked { Ok(Some(conn)) } else { Ok(None) }
    }

    /// Publishes until nothing is pending or `until` passes (graceful shutdown).
    async fn flush(&self, until: Instant) {
        while Instant::now() < until {
            match tokio::time::timeout_at(until, self.pass()).await {
                Ok(Ok(Pass::Idle)) => return,
                Ok(Ok(Pass::Progress)) => {}
                // Blocked, a database error, or out of time: what is left waits for next start.
                Ok(Ok(Pass::Blocked) | Err(_)) | Err(_) => break,
            }
        }
        match outbox::pending_count(&self.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                pending = n,
                "stopping with unpublished events; the next start publishes them"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot count unpublished events"),
        }
    }

    /// One pass over the oldest pending rows, every group to its end (the shutdown flush).
    async fn pass(&self) -> Result<Pass, sqlx::Error> {
        self.mark_carried_over().await?;
        let rows = outbox::fetch_pending(&self.pool, self.config.batch_size).await?;
        self.note_pending(rows.len()).await;
        if rows.is_empty() {
            return Ok(Pass::Idle);
        }
        let results: Vec<Published> = futures_util::stream::iter(group_by_task(rows))
            .map(|group| self.publish_group(group))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let published: Vec<Acked> = results.into_iter().flat_map(|g| g.acked).collect();
        if published.is_empty() {
            return Ok(Pass::Blocked);
        }
        if self.record(published).await {
            Ok(Pass::Progress)
        } else {
            Ok(Pass::Blocked)
        }
    }

    /// Sets the pending gauge from a read that returned `read` rows.
    async fn note_pending(&self, read: usize) {
        let Some(m) = &self.metrics else {
            return;
        };
        // A batch that was not full is everything pending: no need to count again.
        let read = read as i64;
        let pending = if read < self.config.batch_size {
            read
        } else {
            outbox::pending_count(&self.pool).await.unwrap_or(read)
        };
        m.pending.set(pending);
    }

    /// Marks `published` rows with their acknowledgement times and observes their lag; if the
    /// database cannot take it, keeps them to be marked before the next read. `false` then.
    async fn record(&self, published: Vec<Acked>) -> bool {
        if published.is_empty() {
            return true;
        }
        let acks: Vec<Ack> = published.iter().map(|a| (a.row.id, a.acked_at)).collect();
        if let Err(e) = outbox::mark_published(&self.pool, &acks).await {
            tracing::warn!(error = %e, "cannot mark published events");
            self.carry_over(acks);
            return false;
        }
        if let Some(m) = &self.metrics {
            for acked in &published {
                let lag = (acked.acked_at - acked.row.created_at)
                    .to_std()
                    .unwrap_or_default();
                m.lag.observe(lag.as_secs_f64());
            }
        }
        true
    }

    /// Publishes one task's group in order ([`Relay::publish_in_order`]).
    async fn publish_group(&self, group: Vec<OutboxRow>) -> Published {
        let task = group.first().map(|r| r.aggregate_id).unwrap_or_default();
        let attempts: Vec<i32> = group.iter().map(|r| r.attempts).collect();
        let ids = group.iter().map(|r| r.id).collect();
        let acked = self.publish_in_order(group).await;
        // The row after the acknowledged ones, if any, is the one that failed.
        let failed_attempts = attempts.get(acked.len()).map(|a| a.saturating_add(1));
        Published {
            task,
            ids,
            acked,
            failed_attempts,
        }
    }

    /// Publishes one task's rows in order, stopping at the first failure; returns the
    /// published rows with the time daprd acknowledged each.
    async fn publish_in_order(&self, group: Vec<OutboxRow>) -> Vec<Acked> {
        let mut done = Vec::with_capacity(group.len());
        for row in group {
            let event = match serde_json::from_value::<dapr::CloudEvent>(row.event.clone()) {
                Ok(event) => event,
                Err(e) => {
                    // Our own code wrote this row; it can never be published as it is.
                    tracing::error!(event_id = %row.id, error = %e, "outbox row is not a CloudEvent");
                    self.note_failure(row.id, &e.to_string()).await;
                    break;
                }
            };
            let request = PublishRequest::new(&self.config.pubsub, &row.topic, event);
            match self.publisher.publish(request).await {
                Ok(()) => done.push(Acked {
                    row,
                    acked_at: Utc::now(),
                }),
                Err(e) => {
                    tracing::warn!(event_id = %row.id, topic = %row.topic, error = %e, "publish failed; will retry");
                    self.note_failure(row.id, &e.to_string()).await;
                    break;
                }
            }
        }
        done
    }

    /// Marks the acknowledged rows a failed update left behind; an error keeps them for the
    /// next read.
    async fn mark_carried_over(&self) -> Result<(), sqlx::Error> {
        let acks = std::mem::take(&mut *self.lock_unmarked());
        if acks.is_empty() {
            return Ok(());
        }
        match outbox::mark_published(&self.pool, &acks).await {
            Ok(()) => {
                tracing::info!(
                    rows = acks.len(),
                    "marked events published before the database went away"
                );
                Ok(())
            }
            Err(e) => {
                self.carry_over(acks);
                Err(e)
            }
        }
    }

    fn carry_over(&self, acks: Vec<Ack>) {
        tracing::warn!(
            rows = acks.len(),
            "published events not marked yet; marking them before the next read"
        );
        self.lock_unmarked().extend(acks);
    }

    fn lock_unmarked(&self) -> std::sync::MutexGuard<'_, Vec<Ack>> {
        // The guard is never held across an await or a panic point: a poisoned lock still
        // holds a consistent list.
        self.unmarked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn note_failure(&self, id: Uuid, error: &str) {
        if let Err(e) = outbox::record_failure(&self.pool, id, error).await {
            tracing::warn!(event_id = %id, error = %e, "cannot record the publish failure");
        }
    }
}

/// A row's id and when daprd acknowledged its publish, as `outbox::mark_published` takes them.
type Ack = (Uuid, DateTime<Utc>);

/// How [`Relay::lead`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Lead {
    /// Shutdown was asked for; the groups in flight have landed (or `until` has come).
    Shutdown {
        /// When the shutdown flush must end.
        until: Instant,
    },
    /// The advisory lock's connection is gone.
    Lost,
}

/// The groups being published (at most one per task), the last read's groups that have not
/// been started yet, and the acknowledgements on their way to the database.
#[derive(Default)]
struct InFlight<'a> {
    groups: FuturesUnordered<Pin<Box<dyn Future<Output = Published> + Send + 'a>>>,
    /// The tasks of `groups`.
    tasks: HashSet<Uuid>,
    /// The rows of `groups`, and the acknowledged rows until they are marked: a read returns
    /// them again until then.
    rows: HashSet<Uuid>,
    /// Per-task groups in the order of their oldest row.
    queued: VecDeque<Vec<OutboxRow>>,
    /// Acknowledged rows waiting for the next update.
    landed: Vec<Acked>,
    /// The update running, if any; it yields the ids of the rows it wrote.
    marking: Option<Pin<Box<dyn Future<Output = Vec<Uuid>> + Send + 'a>>>,
    /// The last read filled its batch: more rows wait behind it.
    more_to_read: bool,
    /// Rows acknowledged lately, so a group handed over after a read already published it is
    /// not published again.
    recent: RecentlyAcked,
}

impl InFlight<'_> {
    fn startable(&self, group: &[OutboxRow], held: &HashMap<Uuid, Instant>) -> bool {
        let task = group[0].aggregate_id;
        !self.tasks.contains(&task) && !held.contains_key(&task)
    }

    /// Whether a queued group could start now.
    fn can_start(&self, held: &HashMap<Uuid, Instant>) -> bool {
        self.queued.iter().any(|g| self.startable(g, held))
    }

    /// Queues a group this process's commit handed over, ahead of those read, unless the
    /// relay already holds any of its task's rows or has just published them (a read got
    /// there first), or it is old: `false` then, and a read decides.
    fn take_handed(&mut self, handed: Handed, held: &HashMap<Uuid, Instant>) -> bool {
        let Some(first) = handed.rows.first() else {
            return true;
        };
        let task = first.aggregate_id;
        let known = held.contains_key(&task)
            || self.tasks.contains(&task)
            || self.queued.iter().any(|g| g[0].aggregate_id == task)
            || handed
                .rows
                .iter()
                .any(|row| self.rows.contains(&row.id) || self.recent.contains(row.id));
        if known || handed.at.elapsed() > HANDOFF_MAX_AGE {
            return false;
        }
        self.queued.push_front(handed.rows);
        true
    }

    /// Takes the oldest queued group that can start now and counts it as in flight.
    fn next_startable(&mut self, held: &HashMap<Uuid, Instant>) -> Option<Vec<OutboxRow>> {
        let at = self.queued.iter().position(|g| self.startable(g, held))?;
        let group = self.queued.remove(at)?;
        self.tasks.insert(group[0].aggregate_id);
        self.rows.extend(group.iter().map(|row| row.id));
        Some(group)
    }
}

/// The ids the running update wrote, once it has ended; `None` at once when none runs.
async fn marking_done(
    marking: &mut Option<Pin<Box<dyn Future<Output = Vec<Uuid>> + Send + '_>>>,
) -> Option<Vec<Uuid>> {
    match marking {
        Some(update) => Some(update.await),
        None => None,
    }
}

/// Ids of rows acknowledged in the last `2 × HANDOFF_MAX_AGE`, oldest first.
#[derive(Default)]
struct RecentlyAcked {
    order: VecDeque<(Instant, Uuid)>,
    ids: HashSet<Uuid>,
}

impl RecentlyAcked {
    fn remember(&mut self, id: Uuid, at: Instant) {
        if self.ids.insert(id) {
            self.order.push_back((at, id));
        }
    }

    fn contains(&self, id: Uuid) -> bool {
        self.ids.contains(&id)
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, id)) = self.order.front().copied() {
            if now.duration_since(at) <= 2 * HANDOFF_MAX_AGE {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&id);
        }
    }
}

/// The next group this process's commits handed over; pending forever without an inbox.
async fn handed_over(inbox: &mut Option<HandoffInbox>) -> Handed {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// The next notification of another process's commit; pending forever without a listener.
async fn notified(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

/// What publishing one task's group achieved.
struct Published {
    task: Uuid,
    /// Every row of the group.
    ids: Vec<Uuid>,
    /// The rows daprd acknowledged, a prefix of the group.
    acked: Vec<Acked>,
    /// The failed attempts of the row that stopped the group, this one counted.
    failed_attempts: Option<i32>,
}

/// A row daprd accepted, and when.
struct Acked {
    row: OutboxRow,
    acked_at: DateTime<Utc>,
}

/// Splits rows into per-task groups, keeping commit order within each group and ordering the
/// groups by their oldest row.
fn group_by_task(rows: Vec<OutboxRow>) -> Vec<Vec<OutboxRow>> {
    outbox::group_by_task(rows, |row| row.aggregate_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, task: u128) -> OutboxRow {
        OutboxRow::sample(seq, task)
    }

    fn handed(rows: Vec<OutboxRow>) -> Handed {
        Handed {
            rows,
            at: Instant::now(),
        }
    }

    #[test]
    fn a_handed_over_group_is_queued_first_unless_the_relay_knows_its_task() {
        let mut flight = InFlight::default();
        let held = HashMap::from([(Uuid::from_u128(9), Instant::now())]);
        flight.queued.push_back(vec![row(1, 7)]);
        assert!(flight.take_handed(handed(vec![row(2, 8), row(3, 8)]), &held));
        assert_eq!(flight.queued[0][0].seq, 2, "ahead of the read groups");

        assert!(
            !flight.take_handed(handed(vec![row(4, 7)]), &held),
            "a read queued task 7"
        );
        assert!(
            !flight.take_handed(handed(vec![row(5, 9)]), &held),
            "task 9 is held back"
        );
        let started = flight.next_startable(&held).unwrap();
        assert_eq!(started[0].seq, 2);
        assert!(
            !flight.take_handed(handed(vec![row(6, 8)]), &held),
            "task 8 is in flight"
        );
    }

    #[test]
    fn a_group_a_read_published_first_is_not_taken_again() {
        let mut flight = InFlight::default();
        let now = Instant::now();
        flight.recent.remember(Uuid::from_u128(1), now);
        assert!(!flight.take_handed(handed(vec![row(1, 7)]), &HashMap::new()));
        flight.rows.insert(Uuid::from_u128(2));
        assert!(
            !flight.take_handed(handed(vec![row(2, 8)]), &HashMap::new()),
            "being marked"
        );
        let stale = Handed {
            rows: vec![row(3, 9)],
            at: now - HANDOFF_MAX_AGE - Duration::from_millis(1),
        };
        assert!(
            !flight.take_handed(stale, &HashMap::new()),
            "too old to trust"
        );
    }

    #[test]
    fn acknowledgements_are_remembered_for_twice_the_age_of_a_hand_off() {
        let mut recent = RecentlyAcked::default();
        let start = Instant::now();
        recent.remember(Uuid::from_u128(1), start);
        recent.remember(Uuid::from_u128(2), start + HANDOFF_MAX_AGE);
        recent.forget_before(start + 2 * HANDOFF_MAX_AGE);
        assert!(recent.contains(Uuid::from_u128(1)));
        recent.forget_before(start + 2 * HANDOFF_MAX_AGE + Duration::from_millis(1));
        assert!(!recent.contains(Uuid::from_u128(1)));
        assert!(recent.contains(Uuid::from_u128(2)));
    }

    #[test]
    fn groups_keep_commit_order_per_task() {
        let groups = group_by_task(vec![row(1, 7), row(2, 8), row(3, 7), row(4, 9), row(5, 8)]);
        let seqs: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| g.iter().map(|r| r.seq).collect())
            .collect();
        assert_eq!(seqs, vec![vec![1, 3], vec![2, 5], vec![4]]);
    }
}
