//! `backend import-legacy`: carries an installation of the original (Python) system over —
//! its users' tasks, categories, tags, tag links, due dates, recurrence rules, completion state
//! and pending reminders — and can be run again and again until the switch.
//!
//! # What a run does
//!
//! It reads one consistent snapshot of the original (see `source`), converts each row with our
//! own validation (`convert`), and writes ours in batches (`apply`): users, categories, tags,
//! tasks with their tags, then deletions of rows gone from the original. The map table
//! `legacy_ids` keeps, per original row, our id and a digest of the row as imported:
//!
//! - a row without an entry is inserted (a new UUID v7) and gets one;
//! - a row whose digest is unchanged is not written at all, so a second run over an unchanged
//!   original writes nothing (`Report::wrote` is false);
//! - a changed row brings ours in line (the original is the truth until the switch);
//! - an entry whose row is gone from the original deletes ours.
//!
//! A row deleted *here* after its import keeps its entry and is not brought back. Each batch
//! commits its rows, their map entries and their events together, so a run that fails half-way
//! leaves whole batches behind and the next run carries on from there.
//!
//! # Events
//!
//! An import emits events only where a consumer has to act, which today means reminders: a
//! new task with a pending reminder gets `task.created` (notification schedules its job), a
//! changed task that has or had a pending reminder gets `task.updated`, a deleted one
//! `task.deleted`. Tasks without a reminder emit nothing (notification would only record that
//! there is nothing to do, once per task). An import never emits `task.completed`: that event
//! starts a recurring task's next occurrence, which the original created itself and which is
//! imported as a task of its own. Unchanged rows emit nothing, so the delta run repeats no event.
//!
//! # Reminders
//!
//! The original stored no reminder time: a poller mailed each pending task whose due time came
//! within the next hour, once (`reminder_sent`). A task still due ahead whose reminder was not
//! sent gets `remind_at` = due time − the lead (`--reminder-lead-minutes`, default 60), never
//! earlier than the task's creation; one whose lead has begun is reminded at once.

mod apply;
mod cli;
mod convert;
mod report;
mod source;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Connection, PgConnection, PgPool};

pub use cli::{ImportArgs, SecretUrl, main};
pub use report::{Counts, Entity, Finding, Issue, Outcome, Report};

/// How a run behaves.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Rows per read and per write transaction.
    pub batch_size: u32,
    /// How long before the due time the original reminded; `None` carries no reminders.
    pub reminder_lead: Option<TimeDelta>,
    /// The run's "now": what decides whether a task is still due ahead.
    pub now: DateTime<Utc>,
}

impl ImportOptions {
    /// The defaults: batches of 500, the original's 60-minute reminder lead, now.
    pub fn new() -> Self {
        Self {
            batch_size: 500,
            reminder_lead: Some(TimeDelta::minutes(60)),
            now: Utc::now(),
        }
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a run failed. Rows that cannot be carried are no failure: they are [`Issue`]s.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A database could not be reached (`which`: the original, or ours).
    #[error("cannot connect to {which}")]
    Connect {
        /// `the original database` or `our database`.
        which: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The source lacks tables or columns of the original system's schema.
    #[error(
        "the source does not have the original system's schema: missing {}",
        .missing.join(", ")
    )]
    SchemaMismatch {
        /// `table.column` for each missing column (every column of a missing table).
        missing: Vec<String>,
    },
    /// Reading the original failed.
    #[error("reading the original database failed")]
    Source(#[source] sqlx::Error),
    /// Writing ours failed; the batches committed before stay, and the next run goes on.
    #[error("writing our database failed")]
    Target(#[source] sqlx::Error),
    /// Our migrations could not be applied.
    #[error("applying our database migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The source has no task, category or tag, but rows were imported before.
    #[error(
        "the source has no task, category or tag, but {imported} rows were imported from the \
         original before; refusing to delete them all (is the source the right database?)"
    )]
    SourceEmpty {
        /// How many map entries exist.
        imported: i64,
    },
    /// The JSON report could not be written.
    #[error("writing the report to {path} failed")]
    Report {
        /// Where it was to go.
        path: std::path::PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Imports the original system from `source` into `target` (which must have our schema) and
/// reports what was carried and what could not be.
pub async fn import(
    source: &mut PgConnection,
    target: &PgPool,
    options: &ImportOptions,
) -> Result<Report, ImportError> {
    let rules = convert::Rules {
        now: crate::service::micros(options.now),
        reminder_lead: options.reminder_lead,
    };
    let batch = options.batch_size.max(1);
    let mut snapshot = source
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(ImportError::Source)?;
    let schema = source::check(&mut snapshot).await?;
    let mut run = apply::Importer::new(target, rules, batch);

    let users = source::users(&mut snapshot, schema)
        .await
        .map_err(ImportError::Source)?;
    run.users(users, schema).await?;
    for kind in [
        crate::domain::LegacyKind::Category,
        crate::domain::LegacyKind::Tag,
    ] {
        let mut after = i64::MIN;
        loop {
            let rows = source::labels(&mut snapshot, kind, after, batch)
                .await
                .map_err(ImportError::Source)?;
            let Some(last) = rows.last().map(|r| r.id) else {
                break;
            };
            run.labels(kind, rows).await?;
            after = last;
        }
    }
    let mut after = i64::MIN;
    loop {
        let rows = source::tasks(&mut snapshot, after, batch)
            .await
            .map_err(ImportError::Source)?;
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        run.tasks(rows).await?;
        after = last;
    }
    run.orphan_links(
        source::orphan_links(&mut snapshot)
            .await
            .map_err(ImportError::Source)?,
    );
    run.prune().await?;
    // Read only: nothing to commit.
    snapshot.rollback().await.map_err(ImportError::Source)?;
    Ok(run.finish())
}
