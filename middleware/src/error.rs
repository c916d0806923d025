//! The JSON error body shared by every service: `{"code": "...", "message": "...", "details": ...}`.
//!
//! axum's own rejections answer plain text, and ad-hoc `json!` bodies drift apart between
//! services; this one type gives clients a stable machine `code` (e.g. `UNAUTHORIZED`,
//! `TASK_NOT_FOUND`) beside a human `message`. Choosing the HTTP status stays with the caller's
//! single error-to-response mapping; this module only shapes the body.

use std::fmt;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// A machine-readable error code with a human message and optional structured details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, upper-snake-case code that clients may match on.
    pub code: String,
    /// Human-readable explanation; never contains secrets or internal error text.
    pub message: String,
    /// Optional structured details (e.g. the fields that failed validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// A body with `code` and `message` and no details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attaches structured details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Turns the body into a JSON response with the given status.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        (status, Json(self)).into_response()
    }
}

/// Displays an error followed by its `source()` chain, separated by `: `, for one-line logs.
pub(crate) struct DisplayChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn serialises_without_empty_details() {
        let res = ErrorBody::new("UNAUTHORIZED", "missing token")
            .into_response_with(StatusCode::UNAUTHORIZED);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body.as_ref(),
            br#"{"code":"UNAUTHORIZED","message":"missing token"}"#
        );
    }

    #[test]
    fn details_are_serialised_when_present() {
        let body = ErrorBody::new("VALIDATION_ERROR", "bad title")
            .with_details(serde_json::json!({"field": "title"}));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["details"]["field"], "title");
    }

    #[test]
    fn chain_includes_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(DisplayChain(&err).to_string(), "outer: inner");
    }
}
