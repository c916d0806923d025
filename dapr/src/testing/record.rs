//! The fake's record of what it was sent: every request as it arrived, and service invocations
//! read out of them.

use axum::extract::Request;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use super::Answer;

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The HTTP method.
    pub method: Method,
    /// The path as sent, still percent-encoded (`/v1.0/state/store/a%20b`).
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Every header.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Recorded {
    pub(super) async fn read(request: Request) -> Result<Self, Answer> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
            Answer::dapr_error(
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                &e.to_string(),
            )
        })?;
        Ok(Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
        })
    }

    /// Header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; a body that is not JSON comes back as a JSON string of its text, so
    /// that comparing it with the JSON expected fails and shows what was sent.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }

    /// The path's segments after the leading `/`, each percent-decoded on its own (so an encoded
    /// `/` inside a state key stays inside its segment).
    pub(super) fn segments(&self) -> Vec<String> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect()
    }
}

/// One service invocation: `/v1.0/invoke/{app_id}/method/{path}`.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The app invoked.
    pub app_id: String,
    /// The method path after `/method/`, percent-decoded, without a leading `/`.
    pub path: String,
    /// The request as received.
    pub request: Recorded,
}

impl Invocation {
    pub(super) fn from_request(request: Recorded) -> Option<Self> {
        let segments = request.segments();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let ["v1.0", "invoke", app_id, "method", path @ ..] = segments.as_slice() else {
            return None;
        };
        Some(Self {
            app_id: (*app_id).to_owned(),
            path: path.join("/"),
            request,
        })
    }
}

/// Percent-decodes one path segment; a `%` not followed by two hex digits stays as it is.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = segment
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
