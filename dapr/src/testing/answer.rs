//! What the fake sends back: a status, headers and a body, scripted by a test or built by the
//! fake's model of daprd.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

/// One HTTP answer of the fake.
#[derive(Clone, Debug)]
pub struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// `status` with `body` as it is, without a `content-type` (as daprd sends some errors).
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// `status` with no body (daprd's 204s).
    pub fn empty(status: StatusCode) -> Self {
        Self::new(status, Bytes::new())
    }

    /// `status` with `body` as `application/json`.
    pub fn json(status: StatusCode, body: &Value) -> Self {
        Self::new(status, body.to_string())
            .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
    }

    /// daprd's error body: `{"errorCode": code, "message": message}`.
    pub fn dapr_error(status: StatusCode, code: &str, message: &str) -> Self {
        Self::json(status, &json!({"errorCode": code, "message": message}))
    }

    /// The status it answers.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// This answer with header `name` set to `value`.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, self.headers, self.body).into_response()
    }
}
