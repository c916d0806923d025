//! The service layer's error: what went wrong in domain terms, with a stable machine code.
//!
//! The edges (REST, MCP, internal) map it to their own responses; the HTTP status and the
//! logging of internal errors are decided there, once. Database errors that mean a domain
//! rule (a unique name) are translated here so no edge has to look at SQLSTATEs.

use uuid::Uuid;

use crate::domain::{LegacyKind, TaskSummary};

/// Most tags one task may carry.
pub const MAX_TAGS_PER_TASK: usize = 10;
/// Most categories one user may have.
pub const MAX_CATEGORIES_PER_USER: i64 = 50;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The task does not exist or belongs to someone else (indistinguishable on purpose).
    #[error("task {id} not found")]
    TaskNotFound {
        /// The id asked for.
        id: Uuid,
        /// Up to 5 of the caller's most recent pending tasks, to help pick the right one.
        suggestions: Vec<TaskSummary>,
    },
    /// A category or tag does not exist or belongs to someone else.
    #[error("{entity} {id} not found")]
    NotFound {
        /// `category` or `tag`.
        entity: &'static str,
        /// The id asked for.
        id: Uuid,
    },
    /// An original system's integer id (MCP tools accept them) that names none of the caller's
    /// rows: never imported, imported for another user, or deleted since.
    #[error("{} {legacy_id} not found", .kind.as_str())]
    LegacyNotFound {
        /// Task, category or tag.
        kind: LegacyKind,
        /// The original id asked for.
        legacy_id: i64,
        /// For a task: up to 5 of the caller's most recent pending tasks, as for
        /// [`ServiceError::TaskNotFound`].
        suggestions: Vec<TaskSummary>,
    },
    /// The input breaks a rule; `field` names the offending input when there is one.
    #[error("{message}")]
    Validation {
        /// The input field at fault.
        field: Option<&'static str>,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A category or tag with this name already exists for the user.
    #[error("{0}")]
    Conflict(String),
    /// Internal: a next occurrence was asked for a task that is not completed (reopened since
    /// its completion event, or never completed); only a completion starts the next one.
    #[error("task {id} is not completed; its next occurrence follows only its completion")]
    NotCompleted {
        /// The task that is not completed.
        id: Uuid,
    },
    /// A per-task or per-user limit would be exceeded (10 tags per task, 50 categories per
    /// user).
    #[error("{0}")]
    LimitExceeded(String),
    /// The database cannot be reached right now (down, restarting, out of connections): the
    /// request was not carried out and may be sent again. Details are for the log.
    #[error("the task store is unavailable; try again shortly")]
    Unavailable(#[source] sqlx::Error),
    /// The database failed; details are for the log, not the client.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl ServiceError {
    /// The machine-readable code: `TASK_NOT_FOUND`, `NOT_FOUND`, `VALIDATION_ERROR`,
    /// `CONFLICT`, `TASK_NOT_COMPLETED`, `LIMIT_EXCEEDED`, `UNAVAILABLE` or `INTERNAL`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TaskNotFound { .. } => "TASK_NOT_FOUND",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::LegacyNotFound {
                kind: LegacyKind::Task,
                ..
            } => "TASK_NOT_FOUND",
            Self::LegacyNotFound { .. } => "NOT_FOUND",
            Self::Validation { .. } => "VALIDATION_ERROR",
            Self::Conflict(_) => "CONFLICT",
            Self::NotCompleted { .. } => "TASK_NOT_COMPLETED",
            Self::LimitExceeded(_) => "LIMIT_EXCEEDED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Database(_) => "INTERNAL",
        }
    }

    /// A validation error about `field`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(field),
            message: message.into(),
        }
    }

    /// Whether this is a client error (everything but [`ServiceError::Unavailable`] and
    /// [`ServiceError::Database`]).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Unavailable(_) | Self::Database(_))
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Database(err)
        }
    }
}

/// Whether `err` says the database could not be reached or refused work for now, rather than
/// that a statement failed: the same request can succeed once it is back.
///
/// A stopped server shows up as a refused connection (`Io`), and the pool's wait for one as
/// `PoolTimedOut`; a server shutting down ends sessions with SQLSTATE 57P01–57P03, and class 08
/// is "connection exception". Anything else (a constraint, a bug in a query) stays a
/// [`ServiceError::Database`].
pub(crate) fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// The SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Whether `err` is a unique violation of `constraint`.
pub(crate) fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    err.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some(UNIQUE_VIOLATION) && db.constraint() == Some(constraint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let id = Uuid::nil();
        let cases = [
            (
                ServiceError::TaskNotFound {
                    id,
                    suggestions: vec![],
                },
                "TASK_NOT_FOUND",
            ),
            (ServiceError::NotFound { entity: "tag", id }, "NOT_FOUND"),
            (
                ServiceError::LegacyNotFound {
                    kind: LegacyKind::Task,
                    legacy_id: 7,
                    suggestions: vec![],
                },
                "TASK_NOT_FOUND",
            ),
            (
                ServiceError::LegacyNotFound {
                    kind: LegacyKind::Category,
                    legacy_id: 7,
                    suggestions: vec![],
                },
                "NOT_FOUND",
            ),
            (ServiceError::validation("title", "x"), "VALIDATION_ERROR"),
            (ServiceError::Conflict("x".into()), "CONFLICT"),
            (ServiceError::NotCompleted { id }, "TASK_NOT_COMPLETED"),
            (ServiceError::LimitExceeded("x".into()), "LIMIT_EXCEEDED"),
            (
                ServiceError::Unavailable(sqlx::Error::PoolTimedOut),
                "UNAVAILABLE",
            ),
            (ServiceError::Database(sqlx::Error::RowNotFound), "INTERNAL"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
        }
        assert_eq!(
            ServiceError::NotFound { entity: "tag", id }.to_string(),
            format!("tag {id} not found")
        );
    }

    #[test]
    fn an_unreachable_database_is_unavailable_not_internal() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for err in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            let service = ServiceError::from(err);
            assert_eq!(service.code(), "UNAVAILABLE", "{service:?}");
            assert!(!service.is_client_error());
        }
        let broken_query = ServiceError::from(sqlx::Error::RowNotFound);
        assert_eq!(broken_query.code(), "INTERNAL");
    }
}
