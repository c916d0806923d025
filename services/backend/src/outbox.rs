//! The transactional outbox: events are rows written in the same transaction as the change
//! they describe, and published later by the relay (`relay.rs`).
//!
//! Writing the event with the change (instead of publishing after commit) means an accepted
//! write always gets its event and a rolled-back one never does, whatever happens to the
//! sidecar or the process in between. Each row holds the complete structured CloudEvent as it
//! will be published, with the row id as the event id, so a retried publish carries the same id
//! and consumers can de-duplicate on it. `seq` is the global publication order; rows of one task
//! are written under that task's row lock, so their `seq` order is their commit order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use contracts::{TaskEventData, TaskSnapshot, event_types};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A row waiting to be published.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxRow {
    /// The row id, equal to the CloudEvent `id`.
    pub id: Uuid,
    /// Global order of publication.
    pub seq: i64,
    /// The task the event is about; the relay keeps order per aggregate.
    pub aggregate_id: Uuid,
    /// Topic to publish to.
    pub topic: String,
    /// The complete structured CloudEvent.
    pub event: serde_json::Value,
    /// Failed publish attempts so far.
    pub attempts: i32,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

/// PostgreSQL notification channel on which commits wake the active relay of another process.
pub const RELAY_CHANNEL: &str = "todo_outbox";

/// A row a transaction has written, as the relay would read it back.
#[derive(Clone, Debug)]
pub(crate) struct Written {
    pub(crate) row: OutboxRow,
    /// No earlier row of the same task was waiting when this one was written (rows of this
    /// transaction aside): once committed, it may be published at once without overtaking
    /// one. Decided under the task's row lock, so no other writer of the task can change it
    /// before the commit.
    pub(crate) first_of_task: bool,
}

#[cfg(test)]
impl OutboxRow {
    /// A row for unit tests: id and `seq` from `seq`, task id from `task`, no event.
    pub(crate) fn sample(seq: i64, task: u128) -> Self {
        Self {
            id: Uuid::from_u128(seq as u128),
            seq,
            aggregate_id: Uuid::from_u128(task),
            topic: "task-events".into(),
            event: serde_json::Value::Null,
            attempts: 0,
            created_at: Utc::now(),
        }
    }
}

/// Writes `event` for publication on `topic`, inside the caller's transaction.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    topic: &str,
    event: &dapr::CloudEvent,
    aggregate_id: Uuid,
) -> Result<Written, sqlx::Error> {
    let id = Uuid::parse_str(&event.id).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let json = serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // `created_at` is the time of this insert, near the transaction's end, not `now()` (the
    // transaction's start): the publish lag then measures commit → broker, not also the rest of
    // the transaction. The subquery runs on the statement's snapshot, which does not hold the
    // row being inserted, but holds every committed row and this transaction's earlier ones.
    let (seq, created_at, first_of_task): (i64, DateTime<Utc>, bool) = sqlx::query_as(
        "INSERT INTO outbox (id, aggregate_id, topic, event_type, event, created_at)
         VALUES ($1, $2, $3, $4, $5, clock_timestamp())
         RETURNING seq, created_at, NOT EXISTS (
             SELECT 1 FROM outbox w WHERE w.aggregate_id = $2 AND w.published_at IS NULL)",
    )
    .bind(id)
    .bind(aggregate_id)
    .bind(topic)
    .bind(&event.ty)
    .bind(&json)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Written {
        row: OutboxRow {
            id,
            seq,
            aggregate_id,
            topic: topic.to_owned(),
            event: json,
            attempts: 0,
            created_at,
        },
        first_of_task,
    })
}

/// Asks the active relay, wherever it runs, to read the outbox once `tx` commits (PostgreSQL
/// delivers a notification only on commit, and never for a rolled-back transaction).
pub(crate) async fn notify_relays(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(RELAY_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Splits one transaction's rows into the groups that may be handed to the relay at once
/// (every row of a task whose first row here was [`Written::first_of_task`], in commit order)
/// and whether any row is left for the relay to read.
pub(crate) fn ready_groups(written: Vec<Written>) -> (Vec<Vec<OutboxRow>>, bool) {
    let mut left_to_read = false;
    let mut ready = Vec::new();
    for group in group_by_task(written, |w| w.row.aggregate_id) {
        if group[0].first_of_task {
            ready.push(group.into_iter().map(|w| w.row).collect());
        } else {
            left_to_read = true;
        }
    }
    (ready, left_to_read)
}

/// Splits `items` into per-task groups (the task given by `task`), keeping their order within
/// each group and ordering the groups by their first item.
pub(crate) fn group_by_task<T>(items: Vec<T>, task: impl Fn(&T) -> Uuid) -> Vec<Vec<T>> {
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    let mut groups: Vec<Vec<T>> = Vec::new();
    for item in items {
        let i = *index.entry(task(&item)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(item);
    }
    groups
}

/// The kind of change a task event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskChange {
    Created,
    Updated,
    Completed,
    Deleted,
}

impl TaskChange {
    fn event_type(self) -> &'static str {
        match self {
            Self::Created => event_types::TASK_CREATED,
            Self::Updated => event_types::TASK_UPDATED,
            Self::Completed => event_types::TASK_COMPLETED,
            Self::Deleted => event_types::TASK_DELETED,
        }
    }
}

/// Builds the CloudEvent(s) of a task change and enqueues them: one on
/// [`topics::TASK_EVENTS`], and for the completion of a recurring task a second one (its own
/// id) on [`topics::TASK_RECURRENCE`]; returns the rows, for the commit to hand over.
pub(crate) async fn enqueue_task_event(
    tx: &mut Transaction<'_, Postgres>,
    change: TaskChange,
    task: TaskSnapshot,
    changed_fields: &[&str],
) -> Result<Vec<Written>, sqlx::Error> {
    let task_id = task.id;
    let ty = change.event_type();
    let data = TaskEventData::new(task).with_changed_fields(changed_fields.iter().copied());
    let mut written = Vec::new();
    for topic in data.publish_topics(ty) {
        let event = task_cloud_event(ty, task_id, &data)?;
        written.push(enqueue(tx, topic, &event, task_id).await?);
    }
    Ok(written)
}

/// The structured CloudEvent of a task event, with a fresh UUID v7 id.
fn task_cloud_event(
    ty: &str,
    task_id: Uuid,
    data: &TaskEventData,
) -> Result<dapr::CloudEvent, sqlx::Error> {
    dapr::CloudEvent::new(Uuid::now_v7().to_string(), contracts::source("backend"), ty)
        .with_subject(task_id.to_string())
        .with_json_data(data)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The oldest `limit` unpublished rows, in publication order.
pub async fn fetch_pending(pool: &PgPool, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, seq, aggregate_id, topic, event, attempts, created_at
         FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks rows as published, each at the time the sidecar acknowledged it: `published_at -
/// created_at` is then the real commit → broker delay, not the length of the relay's pass.
pub async fn mark_published(
    pool: &PgPool,
    acks: &[(Uuid, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if acks.is_empty() {
        return Ok(());
    }
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = acks.iter().copied().unzip();
    sqlx::query(
        "UPDATE outbox AS o SET published_at = v.acked_at
         FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, acked_at)
         WHERE o.id = v.id AND o.published_at IS NULL",
    )
    .bind(ids)
    .bind(times)
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts a failed publish attempt of row `id` and keeps the error (truncated to 1000
/// characters).
pub async fn record_failure(pool: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    let error: String = error.chars().take(1000).collect();
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes rows published before `before` (retention); returns how many went.
pub async fn delete_published_before(
    pool: &PgPool,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM outbox WHERE published_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// How many rows wait for publication.
pub async fn pending_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_event() -> dapr::CloudEvent {
        dapr::CloudEvent::new(Uuid::now_v7().to_string(), "/todo/test", "com.todo.test.v1")
            .with_json_data(&serde_json::json!({"n": 1}))
            .unwrap()
    }

    async fn enqueue_one(pool: &PgPool, task: Uuid) -> Uuid {
        let event = test_event();
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut tx, "task-events", &event, task).await.unwrap();
        tx.commit().await.unwrap();
        event.id.parse().unwrap()
    }

    /// Enqueues one event per task in `tasks`, in one transaction; returns what was written.
    async fn enqueue_in_one_transaction(pool: &PgPool, tasks: &[Uuid]) -> Vec<Written> {
        let mut tx = pool.begin().await.unwrap();
        let mut written = Vec::new();
        for task in tasks {
            written.push(
                enqueue(&mut tx, "task-events", &test_event(), *task)
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
        written
    }

    #[sqlx::test]
    async fn a_row_is_first_of_its_task_only_when_nothing_of_the_task_waits(pool: PgPool) {
        let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
        let first = enqueue_in_one_transaction(&pool, &[t1, t1, t2]).await;
        let flags: Vec<bool> = first.iter().map(|w| w.first_of_task).collect();
        assert_eq!(
            flags,
            [true, false, true],
            "the transaction's own earlier row counts"
        );
        let stored = fetch_pending(&pool, 10).await.unwrap();
        for (w, row) in first.iter().zip(&stored) {
            assert_eq!((w.row.id, w.row.seq), (row.id, row.seq));
            assert_eq!(
                w.row.created_at, row.created_at,
                "as the relay would read it"
            );
            assert_eq!(w.row.event, row.event);
        }

        let behind = enqueue_in_one_transaction(&pool, &[t1]).await;
        assert!(!behind[0].first_of_task, "t1's rows still wait");

        let acked = Utc::now();
        let t1_rows: Vec<(Uuid, DateTime<Utc>)> = first[..2]
            .iter()
            .chain(&behind)
            .map(|w| (w.row.id, acked))
            .collect();
        mark_published(&pool, &t1_rows).await.unwrap();
        let again = enqueue_in_one_transaction(&pool, &[t1, t2]).await;
        assert!(again[0].first_of_task, "every t1 row is published");
        assert!(!again[1].first_of_task, "t2's first row still waits");
    }

    fn written(seq: i64, task: u128, first_of_task: bool) -> Written {
        Written {
            row: OutboxRow::sample(seq, task),
            first_of_task,
        }
    }

    #[test]
    fn a_task_whose_first_row_is_ready_is_handed_over_with_its_later_rows() {
        let (ready, left) = ready_groups(vec![
            written(1, 7, true),
            written(2, 8, false),
            written(3, 7, false),
            written(4, 9, true),
        ]);
        let seqs: Vec<Vec<i64>> = ready
            .iter()
            .map(|g| g.iter().map(|r| r.seq).collect())
            .collect();
        assert_eq!(seqs, vec![vec![1, 3], vec![4]]);
        assert!(
            left,
            "task 8 waits behind an earlier row: a read must find it"
        );

        let (ready, left) = ready_groups(vec![written(1, 7, true)]);
        assert_eq!(ready.len(), 1);
        assert!(!left);
    }

    #[sqlx::test]
    async fn relay_queries(pool: PgPool) {
        let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
        let a = enqueue_one(&pool, t1).await;
        let b = enqueue_one(&pool, t2).await;
        let c = enqueue_one(&pool, t1).await;
        assert_eq!(pending_count(&pool).await.unwrap(), 3);

        let rows = fetch_pending(&pool, 10).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [a, b, c]);
        assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(rows[0].aggregate_id, t1);
        assert_eq!(rows[0].topic, "task-events");
        assert_eq!(rows[0].attempts, 0);
        let event: dapr::CloudEvent = serde_json::from_value(rows[0].event.clone()).unwrap();
        assert_eq!(event.id, a.to_string());
        assert_eq!(event.data, Some(serde_json::json!({"n": 1})));
        assert_eq!(fetch_pending(&pool, 1).await.unwrap().len(), 1);

        record_failure(&pool, a, &"x".repeat(5000)).await.unwrap();
        record_failure(&pool, a, "sidecar down").await.unwrap();
        let (attempts, last_error): (i32, String) =
            sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE id = $1")
                .bind(a)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((attempts, last_error.as_str()), (2, "sidecar down"));

        let acked = Utc::now() - chrono::Duration::milliseconds(1500);
        mark_published(&pool, &[(a, acked), (b, acked)])
            .await
            .unwrap();
        mark_published(&pool, &[]).await.unwrap();
        assert_eq!(pending_count(&pool).await.unwrap(), 1);
        let stored: DateTime<Utc> =
            sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                .bind(b)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            stored.timestamp_micros(),
            acked.timestamp_micros(),
            "published_at is the acknowledgement time"
        );
        // A second acknowledgement of a published row (a retried pass) keeps the first.
        mark_published(&pool, &[(a, Utc::now())]).await.unwrap();
        let kept: DateTime<Utc> =
            sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                .bind(a)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(kept.timestamp_micros(), acked.timestamp_micros());
        let rows = fetch_pending(&pool, 10).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [c]);

        let later = Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(delete_published_before(&pool, later).await.unwrap(), 2);
        assert_eq!(
            pending_count(&pool).await.unwrap(),
            1,
            "pending rows are kept"
        );
    }

    #[sqlx::test]
    async fn enqueue_rolls_back_with_its_transaction(pool: PgPool) {
        let event = dapr::CloudEvent::new(Uuid::now_v7().to_string(), "/todo/test", "t");
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut tx, "task-events", &event, Uuid::now_v7())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(pending_count(&pool).await.unwrap(), 0);
    }
}
