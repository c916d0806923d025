//! Reading the original system's PostgreSQL schema: `tasks_phaseiii`, `categories`,
//! `tags_phasev`, `task_tags` and, when present, Better Auth's `"user"` table.
//!
//! Every read runs in one `REPEATABLE READ, READ ONLY` transaction, so a run sees one snapshot
//! of the original even while it is in use, and writes nothing there. Tables are paged by id.
//! Columns are cast in SQL to the few types read here: ids to `bigint`, text-like columns to
//! `text`, times to `timestamptz` (a zone-less time is read as UTC, the session's zone, which is
//! what the original stored) with infinite values read as NULL, and `due_date` to text, parsed
//! by `convert` — so an unparsable due date is a finding about one row, not a failed run.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::ImportError;
use crate::domain::LegacyKind;

/// The tables and columns a run reads; a source without one of them is not the original.
const REQUIRED: [(&str, &[&str]); 4] = [
    (
        "tasks_phaseiii",
        &[
            "id",
            "user_id",
            "title",
            "description",
            "completed",
            "priority",
            "due_date",
            "category_id",
            "recurrence_rule",
            "reminder_sent",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "categories",
        &["id", "user_id", "name", "color", "created_at"],
    ),
    (
        "tags_phasev",
        &["id", "user_id", "name", "color", "created_at"],
    ),
    ("task_tags", &["task_id", "tag_id"]),
];

/// Better Auth's user table: where reminder mails find an address before its owner signs in.
const USER_TABLE: (&str, &[&str]) = ("user", &["id", "email", "name"]);

/// What the source offers beyond the required tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Schema {
    /// Better Auth's `"user"` table is there, with `id`, `email` and `name`.
    pub(super) users_table: bool,
}

/// Checks that the tables and columns the run reads exist on the source's search path.
pub(super) async fn check(conn: &mut PgConnection) -> Result<Schema, ImportError> {
    let tables: Vec<&str> = REQUIRED
        .iter()
        .chain([&USER_TABLE])
        .map(|(t, _)| *t)
        .collect();
    let present: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = ANY(current_schemas(false)) AND table_name = ANY($1)",
    )
    .bind(&tables)
    .fetch_all(conn)
    .await
    .map_err(ImportError::Source)?;
    let has = |table: &str, column: &str| present.iter().any(|(t, c)| t == table && c == column);
    let missing: Vec<String> = REQUIRED
        .iter()
        .flat_map(|(table, columns)| {
            columns
                .iter()
                .filter(|c| !has(table, c))
                .map(move |c| format!("{table}.{c}"))
        })
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::SchemaMismatch { missing });
    }
    Ok(Schema {
        users_table: USER_TABLE.1.iter().all(|c| has(USER_TABLE.0, c)),
    })
}

/// A user who owns a row of the original, with the contact details Better Auth kept.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(super) struct SourceUser {
    pub(super) user_id: String,
    pub(super) email: Option<String>,
    pub(super) name: Option<String>,
}

/// Every user who owns a task, category or tag, by id.
pub(super) async fn users(
    conn: &mut PgConnection,
    schema: Schema,
) -> Result<Vec<SourceUser>, sqlx::Error> {
    let sql = if schema.users_table {
        "SELECT o.user_id, u.email::text AS email, u.name::text AS name \
         FROM (SELECT user_id::text FROM tasks_phaseiii UNION SELECT user_id::text FROM categories \
               UNION SELECT user_id::text FROM tags_phasev) o \
         LEFT JOIN \"user\" u ON u.id::text = o.user_id \
         WHERE o.user_id IS NOT NULL ORDER BY o.user_id"
    } else {
        "SELECT o.user_id, NULL::text AS email, NULL::text AS name \
         FROM (SELECT user_id::text FROM tasks_phaseiii UNION SELECT user_id::text FROM categories \
               UNION SELECT user_id::text FROM tags_phasev) o \
         WHERE o.user_id IS NOT NULL ORDER BY o.user_id"
    };
    sqlx::query_as(sql).fetch_all(conn).await
}

/// A row of `categories` or `tags_phasev`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct SourceLabel {
    pub(super) id: i64,
    pub(super) user_id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) color: Option<String>,
    pub(super) created_at: Option<DateTime<Utc>>,
}

/// Up to `limit` categories or tags with an id above `after`, by id.
pub(super) async fn labels(
    conn: &mut PgConnection,
    kind: LegacyKind,
    after: i64,
    limit: u32,
) -> Result<Vec<SourceLabel>, sqlx::Error> {
    let sql = match kind {
        LegacyKind::Tag => {
            "SELECT id::bigint AS id, user_id::text AS user_id, name::text AS name, \
                    color::text AS color, \
                    CASE WHEN isfinite(created_at) THEN created_at::timestamptz END AS created_at \
             FROM tags_phasev WHERE id > $1 ORDER BY id LIMIT $2"
        }
        LegacyKind::Category | LegacyKind::Task => {
            "SELECT id::bigint AS id, user_id::text AS user_id, name::text AS name, \
                    color::text AS color, \
                    CASE WHEN isfinite(created_at) THEN created_at::timestamptz END AS created_at \
             FROM categories WHERE id > $1 ORDER BY id LIMIT $2"
        }
    };
    sqlx::query_as(sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
}

/// A row of `tasks_phaseiii` with the ids of its tags (from `task_tags`, ascending).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct SourceTask {
    pub(super) id: i64,
    pub(super) user_id: Option<String>,
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    pub(super) completed: Option<bool>,
    pub(super) priority: Option<String>,
    /// As text: see the module docs.
    pub(super) due_date: Option<String>,
    pub(super) category_id: Option<i64>,
    pub(super) recurrence_rule: Option<String>,
    pub(super) reminder_sent: Option<bool>,
    pub(super) created_at: Option<DateTime<Utc>>,
    pub(super) updated_at: Option<DateTime<Utc>>,
    pub(super) tag_ids: Vec<i64>,
}

/// Up to `limit` tasks with an id above `after`, by id.
pub(super) async fn tasks(
    conn: &mut PgConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<SourceTask>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id::bigint AS id, t.user_id::text AS user_id, t.title::text AS title, \
                t.description::text AS description, t.completed, t.priority::text AS priority, \
                t.due_date::text AS due_date, t.category_id::bigint AS category_id, \
                t.recurrence_rule::text AS recurrence_rule, t.reminder_sent, \
                CASE WHEN isfinite(t.created_at) THEN t.created_at::timestamptz END AS created_at, \
                CASE WHEN isfinite(t.updated_at) THEN t.updated_at::timestamptz END AS updated_at, \
                ARRAY(SELECT tt.tag_id::bigint FROM task_tags tt \
                      WHERE tt.task_id = t.id AND tt.tag_id IS NOT NULL ORDER BY tt.tag_id) \
                    AS tag_ids \
         FROM tasks_phaseiii t WHERE t.id > $1 ORDER BY t.id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
}

/// `task_tags` rows whose task does not exist (the original's foreign keys should prevent
/// them; a restore without its constraints does not), as `(task_id, tag_id)`.
pub(super) async fn orphan_links(conn: &mut PgConnection) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tt.task_id::bigint, tt.tag_id::bigint FROM task_tags tt \
         WHERE tt.task_id IS NOT NULL AND tt.tag_id IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM tasks_phaseiii t WHERE t.id = tt.task_id) \
         ORDER BY 1, 2",
    )
    .fetch_all(conn)
    .await
}
