//! Tool results: successes as structured JSON, failures as `isError: true` results carrying
//! `{"code", "message", "field"?, "suggestions"}`.
//!
//! Failures are tool results, not JSON-RPC errors, so the model sees them and can correct
//! itself (pick another task id, shorten a title). The one protocol error — a call that reached
//! a tool without an authenticated user — is raised by the `Caller` extractor in `tools`.

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult};
use serde::Serialize;
use serde_json::{Value, json};

use super::args::InvalidArgument;
use crate::domain::LegacyKind;
use crate::error::ServiceError;

/// Why a tool call did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The service refused or failed.
    Service(ServiceError),
    /// An argument could not be read or the arguments contradict each other.
    Argument(InvalidArgument),
}

impl From<ServiceError> for Failure {
    fn from(err: ServiceError) -> Self {
        Self::Service(err)
    }
}

impl From<InvalidArgument> for Failure {
    fn from(err: InvalidArgument) -> Self {
        Self::Argument(err)
    }
}

/// What a tool returns.
pub(super) type Reply = Result<CallToolResult, Failure>;

/// A successful result whose structured content is `value` (which must serialise to a JSON
/// object, as MCP requires of structured content).
pub(super) fn ok(value: impl Serialize) -> Reply {
    match serde_json::to_value(value) {
        Ok(value) => Ok(CallToolResult::structured(value)),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise an MCP tool result");
            Ok(CallToolResult::structured_error(internal_body()))
        }
    }
}

/// The body of an `INTERNAL` error: nothing about the cause reaches the client.
fn internal_body() -> Value {
    json!({
        "code": "INTERNAL",
        "message": "internal error; the request was not completed, try again later",
        "suggestions": [],
    })
}

/// The argument name the MCP tools use for a service field (`due_at` is `due_date` here).
fn tool_field(field: &str) -> &str {
    match field {
        "due_at" => "due_date",
        other => other,
    }
}

/// The body of an argument that could not be read.
fn argument_body(InvalidArgument { field, message }: InvalidArgument) -> Value {
    json!({
        "code": "VALIDATION_ERROR",
        "message": message,
        "field": field,
        "suggestions": [],
    })
}

/// The body of a service failure.
fn service_body(err: &ServiceError) -> Value {
    match err {
        ServiceError::TaskNotFound { id, suggestions } => {
            let hint = if suggestions.is_empty() {
                "the user has no pending tasks"
            } else {
                "`suggestions` lists the user's most recent pending tasks: ask which one was \
                 meant, or look it up with search_tasks / list_tasks"
            };
            json!({
                "code": err.code(),
                "message": format!("task {id} not found; {hint}"),
                "suggestions": suggestions,
            })
        }
        ServiceError::LegacyNotFound {
            kind,
            legacy_id,
            suggestions,
        } => {
            let hint = match (kind, suggestions.is_empty()) {
                (LegacyKind::Task, false) => {
                    "`suggestions` lists the user's most recent pending tasks: ask which one was \
                     meant, or look it up with search_tasks / list_tasks"
                }
                _ => {
                    "original ids name only the user's own rows that were carried over; look \
                      it up with the list tools"
                }
            };
            json!({
                "code": err.code(),
                "message": format!("{} {legacy_id} not found; {hint}", kind.as_str()),
                "suggestions": suggestions,
            })
        }
        ServiceError::Validation { field, message } => json!({
            "code": err.code(),
            "message": message,
            "field": field.map(tool_field),
            "suggestions": [],
        }),
        ServiceError::Unavailable(cause) => {
            // Said as it is: an assistant should wait and call the tool again, not give up.
            tracing::warn!(error = %err, %cause, "MCP tool call failed: database unavailable");
            json!({
                "code": err.code(),
                "message": format!("{err}; the request was not completed"),
                "suggestions": [],
            })
        }
        err if !err.is_client_error() => {
            // Logged once, here, with its cause; the client learns only that it failed.
            match std::error::Error::source(err) {
                Some(cause) => tracing::error!(error = %err, %cause, "MCP tool call failed"),
                None => tracing::error!(error = %err, "MCP tool call failed"),
            }
            internal_body()
        }
        err => json!({
            "code": err.code(),
            "message": err.to_string(),
            "suggestions": [],
        }),
    }
}

impl IntoCallToolResult for Failure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let body = match self {
            Self::Argument(arg) => argument_body(arg),
            Self::Service(err) => service_body(&err),
        };
        Ok(CallToolResult::structured_error(body).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use uuid::Uuid;

    use super::*;
    use crate::domain::{Priority, TaskSummary};

    fn body(failure: Failure) -> Value {
        let CallToolResponse::Complete(result) = failure.into_call_tool_result().unwrap() else {
            panic!("not a complete result");
        };
        assert_eq!(result.is_error, Some(true));
        result.structured_content.unwrap()
    }

    #[test]
    fn not_found_carries_suggestions() {
        let summary = TaskSummary {
            id: Uuid::nil(),
            title: "Water plants".into(),
            due_at: None,
            priority: Priority::Low,
        };
        let b = body(Failure::Service(ServiceError::TaskNotFound {
            id: Uuid::nil(),
            suggestions: vec![summary],
        }));
        assert_eq!(b["code"], "TASK_NOT_FOUND");
        assert_eq!(b["suggestions"][0]["title"], "Water plants");
    }

    #[test]
    fn unknown_original_ids_are_not_found() {
        let b = body(Failure::Service(ServiceError::LegacyNotFound {
            kind: LegacyKind::Task,
            legacy_id: 42,
            suggestions: vec![],
        }));
        assert_eq!(b["code"], "TASK_NOT_FOUND");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .starts_with("task 42 not found")
        );
        let b = body(Failure::Service(ServiceError::LegacyNotFound {
            kind: LegacyKind::Tag,
            legacy_id: 3,
            suggestions: vec![],
        }));
        assert_eq!(b["code"], "NOT_FOUND");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .starts_with("tag 3 not found")
        );
    }

    #[test]
    fn database_errors_are_generic() {
        let b = body(Failure::Service(ServiceError::Database(
            sqlx::Error::RowNotFound,
        )));
        assert_eq!(b["code"], "INTERNAL");
        assert!(!b["message"].as_str().unwrap().contains("row"));

        let b = body(Failure::Service(ServiceError::Unavailable(
            sqlx::Error::PoolTimedOut,
        )));
        assert_eq!(b["code"], "UNAVAILABLE");
        assert!(!b["message"].as_str().unwrap().contains("pool"));
    }

    #[test]
    fn validation_fields_use_tool_names() {
        let b = body(Failure::Service(ServiceError::validation("due_at", "bad")));
        assert_eq!(b["code"], "VALIDATION_ERROR");
        assert_eq!(b["field"], "due_date");
    }
}
