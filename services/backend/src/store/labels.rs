//! Categories and tags: per-user labels with a unique name and an optional colour.
//!
//! Both tables have the same shape, so one set of functions serves both, picking its SQL by
//! [`Kind`]. Lock order, to avoid deadlocks with task writes: a label is locked (or key-share
//! locked, when only checked) *before* any task row.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::wrote_one;

/// Which label table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Category,
    Tag,
}

impl Kind {
    /// The entity name used in messages and `NotFound` errors.
    pub(crate) fn entity(self) -> &'static str {
        match self {
            Self::Category => "category",
            Self::Tag => "tag",
        }
    }

    /// The statement of `kind`'s table out of the two spellings of one statement.
    fn pick(self, category: &'static str, tag: &'static str) -> &'static str {
        match self {
            Self::Category => category,
            Self::Tag => tag,
        }
    }

    /// The unique index on `(user_id, lower(name))`.
    pub(crate) fn unique_name_constraint(self) -> &'static str {
        match self {
            Self::Category => "categories_user_name_key",
            Self::Tag => "tags_user_name_key",
        }
    }
}

/// A label with its task count.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct LabelRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) color: Option<String>,
    pub(crate) task_count: i64,
    pub(crate) created_at: DateTime<Utc>,
}

/// The caller's labels of `kind`, by name.
pub(crate) async fn list(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
) -> Result<Vec<LabelRow>, sqlx::Error> {
    let sql = kind.pick(
        "SELECT l.id, l.name, l.color, l.created_at, \
                (SELECT count(*) FROM tasks t WHERE t.category_id = l.id) AS task_count \
         FROM categories l WHERE l.user_id = $1 ORDER BY lower(l.name), l.id",
        "SELECT l.id, l.name, l.color, l.created_at, \
                (SELECT count(*) FROM task_tags tt WHERE tt.tag_id = l.id) AS task_count \
         FROM tags l WHERE l.user_id = $1 ORDER BY lower(l.name), l.id",
    );
    sqlx::query_as(sql).bind(user_id).fetch_all(conn).await
}

/// The caller's label `id` of `kind`.
pub(crate) async fn get(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
    id: Uuid,
) -> Result<Option<LabelRow>, sqlx::Error> {
    let sql = kind.pick(
        "SELECT l.id, l.name, l.color, l.created_at, \
                (SELECT count(*) FROM tasks t WHERE t.category_id = l.id) AS task_count \
         FROM categories l WHERE l.id = $1 AND l.user_id = $2",
        "SELECT l.id, l.name, l.color, l.created_at, \
                (SELECT count(*) FROM task_tags tt WHERE tt.tag_id = l.id) AS task_count \
         FROM tags l WHERE l.id = $1 AND l.user_id = $2",
    );
    sqlx::query_as(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// Which of `ids` are the caller's labels of `kind`; they are key-share locked until the
/// transaction ends, so they cannot be deleted under a task that is being linked to them.
pub(crate) async fn owned(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = kind.pick(
        "SELECT id FROM categories WHERE user_id = $1 AND id = ANY($2) ORDER BY id \
         FOR KEY SHARE",
        "SELECT id FROM tags WHERE user_id = $1 AND id = ANY($2) ORDER BY id FOR KEY SHARE",
    );
    sqlx::query_scalar(sql)
        .bind(user_id)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Locks the caller's label `id` for update (before deleting it); `false` when there is none.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let sql = kind.pick(
        "SELECT id FROM categories WHERE id = $1 AND user_id = $2 FOR UPDATE",
        "SELECT id FROM tags WHERE id = $1 AND user_id = $2 FOR UPDATE",
    );
    let found: Option<Uuid> = sqlx::query_scalar(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// How many labels of `kind` the caller has.
pub(crate) async fn count(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    let sql = kind.pick(
        "SELECT count(*) FROM categories WHERE user_id = $1",
        "SELECT count(*) FROM tags WHERE user_id = $1",
    );
    sqlx::query_scalar(sql).bind(user_id).fetch_one(conn).await
}

/// Inserts a label (a duplicate name fails with a unique violation of
/// [`Kind::unique_name_constraint`]).
pub(crate) async fn insert(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    user_id: &str,
    name: &str,
    color: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = kind.pick(
        "INSERT INTO categories (id, user_id, name, color, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
        "INSERT INTO tags (id, user_id, name, color, created_at) VALUES ($1, $2, $3, $4, $5)",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(user_id)
        .bind(name)
        .bind(color)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Renames and/or recolours the caller's label; `None` for a part leaves it; `false` when
/// there is no such label.
pub(crate) async fn update(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
    id: Uuid,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> Result<bool, sqlx::Error> {
    let sql = kind.pick(
        "UPDATE categories SET name = COALESCE($3, name), \
                color = CASE WHEN $4 THEN $5 ELSE color END \
         WHERE id = $1 AND user_id = $2",
        "UPDATE tags SET name = COALESCE($3, name), \
                color = CASE WHEN $4 THEN $5 ELSE color END \
         WHERE id = $1 AND user_id = $2",
    );
    wrote_one(
        sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .bind(name)
            .bind(color.is_some())
            .bind(color.flatten()),
        conn,
    )
    .await
}

/// Detaches label `id` from every task and returns those tasks (locked, `updated_at` set to
/// `now`), ordered by id.
pub(crate) async fn detach(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    match kind {
        Kind::Category => {
            // The UPDATE takes the row locks itself; ids come back in no particular order.
            let mut ids: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE tasks SET category_id = NULL, updated_at = $2 \
                 WHERE category_id = $1 RETURNING id",
            )
            .bind(id)
            .bind(now)
            .fetch_all(conn)
            .await?;
            ids.sort_unstable();
            Ok(ids)
        }
        Kind::Tag => {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT t.id FROM tasks t JOIN task_tags tt ON tt.task_id = t.id \
                 WHERE tt.tag_id = $1 ORDER BY t.id FOR UPDATE OF t",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM task_tags WHERE tag_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            super::tasks::touch(conn, &ids, now).await?;
            Ok(ids)
        }
    }
}

/// Deletes the caller's label `id`; callers [`lock`] it first, so it is there.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    kind: Kind,
    user_id: &str,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = kind.pick(
        "DELETE FROM categories WHERE id = $1 AND user_id = $2",
        "DELETE FROM tags WHERE id = $1 AND user_id = $2",
    );
    sqlx::query(sql)
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
