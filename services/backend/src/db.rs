//! The connection pool and the embedded migrations.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// The schema migrations under `services/backend/migrations`, embedded in the binary.
///
/// Migrations this binary does not know are accepted (`ignore_missing`): in a rolling update the
/// new release's first pod applies its migrations while the old release's pods keep running and
/// restarting, and after a rollback the old release starts against the newer schema. Each
/// migration must therefore leave a schema the previous release can use — add, never rename or
/// drop in the same release (docs/upgrades.md).
pub static MIGRATOR: Migrator = {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.ignore_missing = true;
    migrator
};

/// Opens a pool of up to `max_connections` to `url`.
///
/// Acquiring waits at most 5 s, so an exhausted or unreachable database turns into an error
/// response instead of a request that hangs.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}
