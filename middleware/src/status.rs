//! Dapr delivery statuses: what a subscription route answers daprd.
//!
//! daprd reads the outcome of a delivery from the HTTP status *and* a JSON body: `200` with
//! `{"status":"SUCCESS"|"RETRY"|"DROP"}` is explicit, a `404` drops the event silently (without
//! the dead-letter topic) and any other non-2xx means retry. Returning ordinary HTTP errors from
//! handlers — the obvious choice in axum — therefore loses events on a 404 and turns a
//! permanently bad event into an endless retry loop on a 400/500. Here the outcome is explicit:
//! handlers return [`DaprStatus`] or `Result<(), ConsumeError>`, and [`DaprStatusLayer`]
//! rewrites anything else into a `200` with the matching status, so daprd only ever sees `200`.

use std::{
    borrow::Cow,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::{BoxError, error::DisplayChain};

/// The outcome of one event delivery, as Dapr understands it.
///
/// As a response it is `200` with `{"status":"..."}`, and it also inserts itself into the
/// response extensions so outer layers (metrics) can read the outcome without parsing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DaprStatus {
    /// The event was handled (or is a duplicate); Dapr acks it.
    Success,
    /// A transient failure; Dapr redelivers (resiliency policy, broker) or dead-letters it.
    Retry,
    /// The event can never be handled; Dapr drops it, to the dead-letter topic if one is set.
    Drop,
}

impl DaprStatus {
    /// The wire value: `SUCCESS`, `RETRY` or `DROP`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Retry => "RETRY",
            Self::Drop => "DROP",
        }
    }

    /// What daprd itself concludes from a response that carries no explicit status:
    /// 2xx acks, 404 drops (without dead-lettering), anything else retries.
    pub fn inferred_by_dapr(status: StatusCode) -> Self {
        if status.is_success() {
            Self::Success
        } else if status == StatusCode::NOT_FOUND {
            Self::Drop
        } else {
            Self::Retry
        }
    }

    const fn body(self) -> &'static str {
        match self {
            Self::Success => r#"{"status":"SUCCESS"}"#,
            Self::Retry => r#"{"status":"RETRY"}"#,
            Self::Drop => r#"{"status":"DROP"}"#,
        }
    }
}

impl fmt::Display for DaprStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IntoResponse for DaprStatus {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.body()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res.extensions_mut().insert(self);
        res
    }
}

/// Why a handler could not consume an event, and therefore what Dapr should do with it.
///
/// Return it from subscription handlers (`Result<(), ConsumeError>`); the response is the
/// matching [`DaprStatus`] and one `warn!` line with the reason and its source chain.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// A transient failure: the same event may succeed later (database down, sidecar busy).
    #[error("transient failure, will retry: {reason}")]
    Retry {
        /// What failed, for the log line.
        reason: Cow<'static, str>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A permanent failure: the event can never be handled (invalid payload, unknown entity).
    #[error("permanent failure, dropping event: {reason}")]
    Drop {
        /// What failed, for the log line.
        reason: Cow<'static, str>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl ConsumeError {
    /// A transient failure without an underlying error.
    pub fn retry(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Retry {
            reason: reason.into(),
            source: None,
        }
    }

    /// A permanent failure without an underlying error.
    pub fn drop(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Drop {
            reason: reason.into(),
            source: None,
        }
    }

    /// A transient failure caused by `source`.
    pub fn retry_with(reason: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::Retry {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A permanent failure caused by `source`.
    pub fn drop_with(reason: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::Drop {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// Classifies a failed Dapr call: transient errors retry, all others drop.
    pub fn from_dapr(reason: impl Into<Cow<'static, str>>, err: dapr::Error) -> Self {
        if err.is_transient() {
            Self::retry_with(reason, err)
        } else {
            Self::drop_with(reason, err)
        }
    }

    /// The status Dapr receives for this error.
    pub fn status(&self) -> DaprStatus {
        match self {
            Self::Retry { .. } => DaprStatus::Retry,
            Self::Drop { .. } => DaprStatus::Drop,
        }
    }
}

impl From<dapr::Error> for ConsumeError {
    fn from(err: dapr::Error) -> Self {
        Self::from_dapr("dapr call failed", err)
    }
}

impl IntoResponse for ConsumeError {
    fn into_response(self) -> Response {
        let status = self.status();
        tracing::warn!(dapr_status = %status, error = %DisplayChain(&self), "event not consumed");
        status.into_response()
    }
}

/// Wraps subscription routes so that daprd never receives anything but a `200` with a status.
///
/// * a response carrying a [`DaprStatus`] extension passes unchanged;
/// * any other 2xx becomes `SUCCESS`;
/// * 4xx (including 404, which Dapr would drop *without* dead-lettering) becomes `DROP`;
/// * 5xx and anything else becomes `RETRY`.
///
/// Rewrites are logged with the original status. Panics are not handled here.
#[derive(Debug, Clone, Copy, Default)]
pub struct DaprStatusLayer {
    _priv: (),
}

impl DaprStatusLayer {
    /// Creates the layer.
    pub const fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for DaprStatusLayer {
    type Service = MapDaprStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MapDaprStatus { inner }
    }
}

/// The service made by [`DaprStatusLayer`].
#[derive(Debug, Clone)]
pub struct MapDaprStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MapDaprStatus<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            // Cheap (reference-counted) and only read when a rewrite is logged.
            uri: req.uri().clone(),
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`MapDaprStatus`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        uri: Uri,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(map_response(res, this.uri)))
    }
}

fn map_response<B>(res: http::Response<B>, uri: &Uri) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if res.extensions().get::<DaprStatus>().is_some() {
        return res.map(Body::new);
    }
    let status = res.status();
    let mapped = if status.is_success() {
        DaprStatus::Success
    } else if status.is_client_error() {
        tracing::warn!(
            http_status = status.as_u16(),
            path = uri.path(),
            "subscription handler answered a client error; telling dapr to drop the event"
        );
        DaprStatus::Drop
    } else {
        tracing::warn!(
            http_status = status.as_u16(),
            path = uri.path(),
            "subscription handler failed; telling dapr to retry the event"
        );
        DaprStatus::Retry
    };
    mapped.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, routing::post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn post_to(path: &str) -> Request<Body> {
        Request::post(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn status_response_is_200_with_body_and_extension() {
        for (status, wire) in [
            (DaprStatus::Success, "SUCCESS"),
            (DaprStatus::Retry, "RETRY"),
            (DaprStatus::Drop, "DROP"),
        ] {
            let res = status.into_response();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.extensions().get::<DaprStatus>(), Some(&status));
            assert_eq!(body_json(res).await, serde_json::json!({ "status": wire }));
        }
    }

    #[tokio::test]
    async fn consume_error_maps_to_status() {
        let res = ConsumeError::retry("database down").into_response();
        assert_eq!(
            res.extensions().get::<DaprStatus>(),
            Some(&DaprStatus::Retry)
        );
        let res =
            ConsumeError::drop_with("bad payload", std::io::Error::other("x")).into_response();
        assert_eq!(
            res.extensions().get::<DaprStatus>(),
            Some(&DaprStatus::Drop)
        );
    }

    #[test]
    fn dapr_errors_classify_by_transience() {
        let err = ConsumeError::from(dapr::Error::InvalidArgument("empty topic".into()));
        assert_eq!(err.status(), DaprStatus::Drop);
        let err = ConsumeError::from(crate::test_support::connection_refused());
        assert_eq!(err.status(), DaprStatus::Retry);
    }

    fn app() -> Router {
        Router::new()
            .route("/ok", post(|| async { StatusCode::NO_CONTENT }))
            .route("/retry", post(|| async { DaprStatus::Retry }))
            .route("/bad", post(|| async { StatusCode::BAD_REQUEST }))
            .route("/missing", post(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/boom",
                post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/fails",
                post(|| async { Err::<(), _>(ConsumeError::retry("later")) }),
            )
            .layer(DaprStatusLayer::new())
    }

    #[tokio::test]
    async fn layer_never_lets_a_non_200_through() {
        let cases = [
            ("/ok", "SUCCESS"),
            ("/retry", "RETRY"),
            ("/bad", "DROP"),
            ("/missing", "DROP"),
            ("/boom", "RETRY"),
            ("/fails", "RETRY"),
            // Unmatched path: the router's own 404 fallback is rewritten too.
            ("/nowhere", "DROP"),
        ];
        for (path, expected) in cases {
            let res = app().oneshot(post_to(path)).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert!(res.extensions().get::<DaprStatus>().is_some(), "{path}");
            assert_eq!(body_json(res).await["status"], expected, "{path}");
        }
    }
}
