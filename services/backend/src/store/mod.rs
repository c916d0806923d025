//! SQL access: one function per query, taking a `&mut PgConnection` so the service layer
//! decides what runs inside which transaction.
//!
//! Queries are sqlx *runtime* queries (`sqlx::query` / `query_as` with `FromRow`), not the
//! `query!` macros: the workspace builds without a database or committed offline data, and the
//! few dynamic queries (list filters and sorts) use `QueryBuilder` with bound parameters only.
//! The schema they run against is `migrations/` (embedded by `db::MIGRATOR`); the
//! `#[sqlx::test]` tests check every query against a real PostgreSQL.
//!
//! Nothing here enforces domain rules beyond user scoping: every user-facing query takes the
//! user id and filters by it, so another user's row looks exactly like a missing one.

pub(crate) mod labels;
pub(crate) mod legacy;
pub(crate) mod tasks;
pub(crate) mod users;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};

/// Runs a write meant for at most one row; `false` when it found none.
pub(crate) async fn wrote_one(
    query: Query<'_, Postgres, PgArguments>,
    conn: &mut PgConnection,
) -> Result<bool, sqlx::Error> {
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// Maps a conversion failure of a stored value into a decode error.
pub(crate) fn decode_error(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}
