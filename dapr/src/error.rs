//! The one error type of every sidecar call, and the parsed error body daprd answers with.
//!
//! Callers mostly need two decisions from an error: "retry later?" ([`Error::is_transient`])
//! and "which Dapr condition was it?" ([`Error::status`], [`Error::error_code`]). Keeping the
//! daprd body as a typed [`DaprApiError`] instead of a string makes both cheap.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

use crate::client::ConfigError;

/// Longest daprd body text kept in a [`DaprApiError`] message when the body is not JSON.
const MAX_RAW_MESSAGE: usize = 1024;

/// Anything that can go wrong talking to the Dapr sidecar.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// daprd answered with a non-success status.
    #[error("{0}")]
    Api(DaprApiError),
    /// A state write or delete carried an ETag that no longer matches (daprd answered 409).
    #[error("etag mismatch: {0}")]
    EtagMismatch(DaprApiError),
    /// The request never got an HTTP answer (connection refused, reset, timeout).
    #[error("request to the dapr sidecar failed")]
    Transport(#[source] reqwest::Error),
    /// A body could not be decoded (or encoded) as JSON.
    #[error("failed to decode {what}")]
    Decode {
        /// What was being decoded, for the message.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be encoded as JSON.
    #[error("failed to encode {what}")]
    Encode {
        /// What was being encoded, for the message.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Rendering YAML failed.
    #[error("failed to encode {what} as yaml")]
    Yaml {
        /// What was being encoded, for the message.
        what: &'static str,
        /// The YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The caller passed a value that daprd would reject or misroute; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The environment did not describe a usable sidecar address.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sidecar did not report ready before the deadline.
    #[error("dapr sidecar not ready after {waited:?}")]
    NotReady {
        /// How long we polled.
        waited: Duration,
        /// The last probe failure.
        #[source]
        last: Box<Error>,
    },
}

impl Error {
    /// Whether trying the same call again later can succeed: transport failures, 5xx, 408 and 429.
    ///
    /// daprd wraps component errors in 500 even when they are permanent; a 5xx that says
    /// "not found" (a missing secret, a missing job) is therefore not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => {
                (e.status.is_server_error() && !e.is_not_found())
                    || e.status == StatusCode::TOO_MANY_REQUESTS
                    || e.status == StatusCode::REQUEST_TIMEOUT
            }
            // `is_request` covers a connection dropped mid-request (sidecar restarting); builder
            // and decode errors are ours and would fail the same way again.
            Self::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            Self::NotReady { .. } => true,
            Self::EtagMismatch(_)
            | Self::Decode { .. }
            | Self::Encode { .. }
            | Self::Yaml { .. }
            | Self::InvalidArgument(_)
            | Self::Config(_) => false,
        }
    }

    /// The HTTP status daprd answered with, if there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(e) | Self::EtagMismatch(e) => Some(e.status),
            Self::Transport(e) => e.status(),
            Self::NotReady { last, .. } => last.status(),
            _ => None,
        }
    }

    /// daprd's `errorCode` (e.g. `ERR_PUBSUB_NOT_FOUND`), if it sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Api(e) | Self::EtagMismatch(e) => e.error_code.as_deref(),
            Self::NotReady { last, .. } => last.error_code(),
            _ => None,
        }
    }

    /// The parsed daprd answer, for `Api` and `EtagMismatch`.
    pub fn api_error(&self) -> Option<&DaprApiError> {
        match self {
            Self::Api(e) | Self::EtagMismatch(e) => Some(e),
            _ => None,
        }
    }
}

/// A non-success answer from daprd: the status plus its `{"errorCode","message"}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaprApiError {
    /// HTTP status daprd answered with.
    pub status: StatusCode,
    /// daprd's machine-readable code (`errorCode`), absent when the body was not daprd JSON.
    pub error_code: Option<String>,
    /// daprd's message, or the raw body text, or the status reason when the body was empty.
    pub message: String,
}

/// The fields we read from daprd's error body; `details` and the rest are ignored.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    message: Option<String>,
}

impl DaprApiError {
    /// Parses daprd's answer; tolerates empty and non-JSON bodies (proxies, invoked apps).
    pub fn from_response(status: StatusCode, body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
            && (parsed.error_code.is_some() || parsed.message.is_some())
        {
            return Self {
                status,
                error_code: parsed.error_code.filter(|c| !c.is_empty()),
                message: parsed.message.unwrap_or_default(),
            };
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("no body").to_owned()
        } else {
            truncate(text, MAX_RAW_MESSAGE)
        };
        Self {
            status,
            error_code: None,
            message,
        }
    }
}

impl DaprApiError {
    /// Whether daprd reports something missing: a 404, or a 5xx whose message says "not found"
    /// (how a component's missing-secret or missing-job error reaches us).
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            || (self.status.is_server_error()
                && self.message.to_ascii_lowercase().contains("not found"))
    }
}

impl fmt::Display for DaprApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dapr answered {}", self.status.as_u16())?;
        if let Some(code) = &self.error_code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DaprApiError {}

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_daprd_error_body() {
        let e = DaprApiError::from_response(
            StatusCode::NOT_FOUND,
            br#"{"errorCode":"ERR_PUBSUB_NOT_FOUND","message":"pubsub nope not found","details":[]}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("ERR_PUBSUB_NOT_FOUND"));
        assert_eq!(e.message, "pubsub nope not found");
        assert_eq!(
            e.to_string(),
            "dapr answered 404 ERR_PUBSUB_NOT_FOUND: pubsub nope not found"
        );
    }

    #[test]
    fn tolerates_non_json_and_empty_bodies() {
        let e = DaprApiError::from_response(StatusCode::BAD_GATEWAY, b"  upstream down \n");
        assert_eq!(e.error_code, None);
        assert_eq!(e.message, "upstream down");

        let e = DaprApiError::from_response(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(e.message, "Service Unavailable");

        // JSON, but not daprd's shape: keep the text rather than an empty message.
        let e = DaprApiError::from_response(StatusCode::BAD_REQUEST, br#"{"status":"x"}"#);
        assert_eq!(e.message, r#"{"status":"x"}"#);

        let long = "é".repeat(MAX_RAW_MESSAGE);
        let e = DaprApiError::from_response(StatusCode::BAD_REQUEST, long.as_bytes());
        assert!(e.message.len() <= MAX_RAW_MESSAGE + '…'.len_utf8());
    }

    #[test]
    fn transient_classification() {
        let api = |code: u16| {
            Error::Api(DaprApiError {
                status: StatusCode::from_u16(code).unwrap(),
                error_code: None,
                message: String::new(),
            })
        };
        assert!(api(500).is_transient());
        assert!(api(503).is_transient());
        assert!(api(429).is_transient());
        assert!(!api(400).is_transient());
        assert!(!api(404).is_transient());
        // daprd v1.18.3, local.file store, missing secret.
        let missing_secret = Error::Api(DaprApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_code: Some("ERR_SECRET_GET".into()),
            message: "failed getting secret with key x from secret store s: secret x not found"
                .into(),
        });
        assert!(!missing_secret.is_transient());
        let conflict = DaprApiError {
            status: StatusCode::CONFLICT,
            error_code: Some("ERR_STATE_SAVE".into()),
            message: String::new(),
        };
        let etag = Error::EtagMismatch(conflict);
        assert!(!etag.is_transient());
        assert_eq!(etag.status(), Some(StatusCode::CONFLICT));
        assert_eq!(etag.error_code(), Some("ERR_STATE_SAVE"));
        assert!(!Error::InvalidArgument("x".into()).is_transient());
        let decode = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(
            !Error::Decode {
                what: "x",
                source: decode
            }
            .is_transient()
        );
    }
}
