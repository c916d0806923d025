//! The schema across releases. In a rolling update the new release's first pod applies its
//! migrations while pods of the old release keep running (and may restart), and after a rollback
//! the old release starts against the newer schema: the embedded migrator must accept migrations
//! it does not know. Set `DATABASE_URL` to a PostgreSQL server, as for the other suites.

#![allow(clippy::unwrap_used, missing_docs)]

use sqlx::PgPool;
use sqlx::migrate::MigrateError;

/// The version a next release's migration would have: one past every migration of this build.
fn next_version() -> i64 {
    backend::db::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
        + 1
}

/// What the next release's migration leaves behind: an added column (the only kind of change
/// the previous release must tolerate) and its row in sqlx's table of applied migrations.
async fn migrate_as_the_next_release(pool: &PgPool) {
    sqlx::query("ALTER TABLE tasks ADD COLUMN added_by_the_next_release text")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'added by the next release', true, $2, 0)",
    )
    .bind(next_version())
    .bind(vec![0u8; 48])
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn the_backend_starts_against_a_schema_the_next_release_migrated(pool: PgPool) {
    migrate_as_the_next_release(&pool).await;
    backend::db::MIGRATOR.run(&pool).await.unwrap();
    // A task as this release writes it still fits: the added column is nullable.
    sqlx::query("INSERT INTO users (id) VALUES ('alice')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO tasks (id, user_id, title) VALUES ('0192f0c4-0000-7000-8000-000000000001', 'alice', 'still fits')",
    )
    .execute(&pool)
    .await
    .unwrap();
}

/// The failure the setting prevents: sqlx's default refuses a database with a migration the
/// binary lacks, so every restarted pod of the old release would crash-loop.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_strict_migrator_would_refuse_that_schema(pool: PgPool) {
    migrate_as_the_next_release(&pool).await;
    let strict = sqlx::migrate!("./migrations");
    let refused = strict.run(&pool).await;
    assert!(
        matches!(refused, Err(MigrateError::VersionMissing(v)) if v == next_version()),
        "{refused:?}"
    );
}
