//! The `users` table: one row per JWT subject.

use sqlx::PgConnection;

use crate::domain::AuthUser;

/// Records `user` as seen: inserts it, or refreshes its e-mail, name and `last_seen_at`.
///
/// A row that is current (same claims, seen in the last minute) is not rewritten, so calling
/// this on every request costs a read, not a write. Missing claims keep the stored values.
pub(crate) async fn upsert(conn: &mut PgConnection, user: &AuthUser) -> Result<(), sqlx::Error> {
    write(
        conn,
        user,
        "INSERT INTO users AS u (id, email, display_name) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET \
             email = COALESCE(EXCLUDED.email, u.email), \
             display_name = COALESCE(EXCLUDED.display_name, u.display_name), \
             last_seen_at = now() \
         WHERE u.last_seen_at < now() - interval '1 minute' \
            OR u.email IS DISTINCT FROM COALESCE(EXCLUDED.email, u.email) \
            OR u.display_name IS DISTINCT FROM COALESCE(EXCLUDED.display_name, u.display_name)",
    )
    .await
}

/// Locks the user's row until the transaction ends, serialising per-user limit checks.
/// `NO KEY UPDATE` does not conflict with the key-share locks that foreign-key checks of
/// concurrent task writes take, so those are not held up.
pub(crate) async fn lock(conn: &mut PgConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes sure `user` has a row (tasks and labels reference it) without touching an existing
/// one: unlike [`upsert`], `DO NOTHING` takes no row lock, so concurrent writes of one user do
/// not queue behind each other.
pub(crate) async fn ensure(conn: &mut PgConnection, user: &AuthUser) -> Result<(), sqlx::Error> {
    write(
        conn,
        user,
        "INSERT INTO users (id, email, display_name) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .await
}

/// Runs `sql` with the user's id, e-mail and name as `$1`, `$2` and `$3`.
async fn write(
    conn: &mut PgConnection,
    user: &AuthUser,
    sql: &'static str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql)
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .execute(conn)
        .await?;
    Ok(())
}
