//! The `legacy_ids` map (original integer id → our UUID) and the few writes only the importer
//! makes: users with their contact details, label look-ups by name, a task's whole tag set.
//!
//! Look-ups for the MCP tools join the mapped row and check its owner, so an entry whose row
//! was deleted here, or that belongs to another user, resolves to nothing.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::LegacyKind;

/// One entry of the map, as the importer compares it with the original row.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct MapEntry {
    pub(crate) legacy_id: i64,
    pub(crate) user_id: String,
    pub(crate) id: Uuid,
    pub(crate) merged: bool,
    pub(crate) fingerprint: Uuid,
    /// Whether the mapped row still exists (it may have been deleted here since).
    pub(crate) exists: bool,
}

/// The select of [`MapEntry`] rows of one kind, `exists` checked against the kind's table,
/// followed by `$rest` (sqlx takes only static SQL, so the variants are spelt out).
macro_rules! entries_sql {
    ($rest:literal) => {
        [
            concat!(
                "SELECT m.legacy_id, m.user_id, m.id, m.merged, m.fingerprint, \
                        EXISTS (SELECT 1 FROM tasks r WHERE r.id = m.id) AS exists \
                 FROM legacy_ids m WHERE m.kind = 'task'",
                $rest
            ),
            concat!(
                "SELECT m.legacy_id, m.user_id, m.id, m.merged, m.fingerprint, \
                        EXISTS (SELECT 1 FROM categories r WHERE r.id = m.id) AS exists \
                 FROM legacy_ids m WHERE m.kind = 'category'",
                $rest
            ),
            concat!(
                "SELECT m.legacy_id, m.user_id, m.id, m.merged, m.fingerprint, \
                        EXISTS (SELECT 1 FROM tags r WHERE r.id = m.id) AS exists \
                 FROM legacy_ids m WHERE m.kind = 'tag'",
                $rest
            ),
        ]
    };
}

/// Picks the variant of an [`entries_sql!`] array for `kind`.
fn for_kind(kind: LegacyKind, sql: [&'static str; 3]) -> &'static str {
    match kind {
        LegacyKind::Task => sql[0],
        LegacyKind::Category => sql[1],
        LegacyKind::Tag => sql[2],
    }
}

/// The map entries of `kind` for the given original ids.
pub(crate) async fn entries(
    conn: &mut PgConnection,
    kind: LegacyKind,
    legacy_ids: &[i64],
) -> Result<Vec<MapEntry>, sqlx::Error> {
    let sql = for_kind(kind, entries_sql!(" AND m.legacy_id = ANY($1)"));
    sqlx::query_as(sql).bind(legacy_ids).fetch_all(conn).await
}

/// Every map entry of `kind`, by original id (what a run compares with the original's rows
/// to find those deleted there).
pub(crate) async fn all_entries(
    conn: &mut PgConnection,
    kind: LegacyKind,
) -> Result<Vec<MapEntry>, sqlx::Error> {
    let sql = for_kind(kind, entries_sql!(" ORDER BY m.legacy_id"));
    sqlx::query_as(sql).fetch_all(conn).await
}

/// How many entries the map holds, of every kind.
pub(crate) async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM legacy_ids")
        .fetch_one(conn)
        .await
}

/// Writes the entry of `(kind, legacy_id)`, replacing the one there was.
pub(crate) async fn put(
    conn: &mut PgConnection,
    kind: LegacyKind,
    entry: &MapEntry,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO legacy_ids (kind, legacy_id, user_id, id, merged, fingerprint) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (kind, legacy_id) DO UPDATE SET user_id = EXCLUDED.user_id, \
             id = EXCLUDED.id, merged = EXCLUDED.merged, fingerprint = EXCLUDED.fingerprint, \
             imported_at = now()",
    )
    .bind(kind.as_str())
    .bind(entry.legacy_id)
    .bind(&entry.user_id)
    .bind(entry.id)
    .bind(entry.merged)
    .bind(entry.fingerprint)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes many entries of `kind` in one statement (see [`put`]).
pub(crate) async fn put_many(
    conn: &mut PgConnection,
    kind: LegacyKind,
    entries: &[MapEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let legacy_ids: Vec<i64> = entries.iter().map(|e| e.legacy_id).collect();
    let users: Vec<&str> = entries.iter().map(|e| e.user_id.as_str()).collect();
    let ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
    let merged: Vec<bool> = entries.iter().map(|e| e.merged).collect();
    let fingerprints: Vec<Uuid> = entries.iter().map(|e| e.fingerprint).collect();
    sqlx::query(
        "INSERT INTO legacy_ids (kind, legacy_id, user_id, id, merged, fingerprint) \
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::uuid[], $5::bool[], $6::uuid[]) \
         ON CONFLICT (kind, legacy_id) DO UPDATE SET user_id = EXCLUDED.user_id, \
             id = EXCLUDED.id, merged = EXCLUDED.merged, fingerprint = EXCLUDED.fingerprint, \
             imported_at = now()",
    )
    .bind(kind.as_str())
    .bind(legacy_ids)
    .bind(users)
    .bind(ids)
    .bind(merged)
    .bind(fingerprints)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the entries of `kind` for the given original ids.
pub(crate) async fn remove(
    conn: &mut PgConnection,
    kind: LegacyKind,
    legacy_ids: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM legacy_ids WHERE kind = $1 AND legacy_id = ANY($2)")
        .bind(kind.as_str())
        .bind(legacy_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The caller's row of `kind` that original ids map to, for those of `legacy_ids` that map
/// to a row of the caller that still exists; as `(legacy_id, id)` pairs.
pub(crate) async fn resolve(
    conn: &mut PgConnection,
    kind: LegacyKind,
    user_id: &str,
    legacy_ids: &[i64],
) -> Result<Vec<(i64, Uuid)>, sqlx::Error> {
    // The owner is checked on the mapped row too: the map's `user_id` is the original owner,
    // and nothing but the importer writes it, but a row must never resolve for a non-owner.
    let sql = match kind {
        LegacyKind::Task => {
            "SELECT m.legacy_id, m.id FROM legacy_ids m \
             JOIN tasks r ON r.id = m.id AND r.user_id = m.user_id \
             WHERE m.kind = 'task' AND m.user_id = $1 AND m.legacy_id = ANY($2)"
        }
        LegacyKind::Category => {
            "SELECT m.legacy_id, m.id FROM legacy_ids m \
             JOIN categories r ON r.id = m.id AND r.user_id = m.user_id \
             WHERE m.kind = 'category' AND m.user_id = $1 AND m.legacy_id = ANY($2)"
        }
        LegacyKind::Tag => {
            "SELECT m.legacy_id, m.id FROM legacy_ids m \
             JOIN tags r ON r.id = m.id AND r.user_id = m.user_id \
             WHERE m.kind = 'tag' AND m.user_id = $1 AND m.legacy_id = ANY($2)"
        }
    };
    sqlx::query_as(sql)
        .bind(user_id)
        .bind(legacy_ids)
        .fetch_all(conn)
        .await
}

/// What [`import_user`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserWrite {
    Inserted,
    Updated,
    Unchanged,
}

/// Makes sure user `id` exists, filling in an e-mail or name it lacks. Values a user's own
/// token brought are never replaced: the original system only fills gaps (reminder mails need
/// an address before the user has signed in here).
pub(crate) async fn import_user(
    conn: &mut PgConnection,
    id: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> Result<UserWrite, sqlx::Error> {
    // `xmax = 0` tells a fresh insert from an update; no row back means nothing was missing.
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO users AS u (id, email, display_name) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET \
             email = COALESCE(u.email, EXCLUDED.email), \
             display_name = COALESCE(u.display_name, EXCLUDED.display_name) \
         WHERE (u.email IS NULL AND EXCLUDED.email IS NOT NULL) \
            OR (u.display_name IS NULL AND EXCLUDED.display_name IS NOT NULL) \
         RETURNING (xmax = 0)",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(match inserted {
        Some(true) => UserWrite::Inserted,
        Some(false) => UserWrite::Updated,
        None => UserWrite::Unchanged,
    })
}

/// The user's label of `kind` named `name` (ignoring case, as the unique index does), other
/// than `except`.
pub(crate) async fn label_named(
    conn: &mut PgConnection,
    kind: LegacyKind,
    user_id: &str,
    name: &str,
    except: Option<Uuid>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = match kind {
        LegacyKind::Category => {
            "SELECT id FROM categories WHERE user_id = $1 AND lower(name) = lower($2) \
             AND id IS DISTINCT FROM $3"
        }
        LegacyKind::Tag => {
            "SELECT id FROM tags WHERE user_id = $1 AND lower(name) = lower($2) \
             AND id IS DISTINCT FROM $3"
        }
        LegacyKind::Task => return Ok(None),
    };
    sqlx::query_scalar(sql)
        .bind(user_id)
        .bind(name)
        .bind(except)
        .fetch_optional(conn)
        .await
}

/// Gives task `task_id` exactly the tags `tag_ids`.
pub(crate) async fn set_tags(
    conn: &mut PgConnection,
    task_id: Uuid,
    tag_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM task_tags WHERE task_id = $1 AND NOT (tag_id = ANY($2))")
        .bind(task_id)
        .bind(tag_ids)
        .execute(&mut *conn)
        .await?;
    super::tasks::add_tags(conn, task_id, tag_ids).await
}
