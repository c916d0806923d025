//! [`TraceContextLayer`] and the request-id/span stack returned by [`observability_layers`].

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::extract::MatchedPath;
use http::{HeaderMap, HeaderName, Request, header};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::{
    Layer, Service, ServiceBuilder,
    layer::util::{Identity, Stack},
};
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{MakeSpan, TraceLayer},
};
use tracing::Span;

use super::TraceContext;

/// The W3C `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The W3C `tracestate` header.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The request id header set and echoed by [`observability_layers`].
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Header carrying the Dapr API token (sidecar → app and app → sidecar).
pub const DAPR_API_TOKEN: HeaderName = HeaderName::from_static("dapr-api-token");

/// Reads the trace context of an inbound request and makes it [`TraceContext::current`].
///
/// A valid `traceparent` (with its `tracestate`) is adopted as is; a missing or invalid one
/// starts a new root. The context is also inserted into the request extensions, and its trace
/// id is recorded in the `trace_id` field of the current span (declare it, e.g. as
/// `trace_id = tracing::field::Empty`, as [`RequestSpan`] does).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer {
    _priv: (),
}

impl TraceContextLayer {
    /// Creates the layer.
    pub const fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = PropagateTraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTraceContext { inner }
    }
}

/// The service made by [`TraceContextLayer`].
#[derive(Debug, Clone)]
pub struct PropagateTraceContext<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for PropagateTraceContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let ctx = from_headers(req.headers()).unwrap_or_else(TraceContext::new_root);
        Span::current().record("trace_id", ctx.trace_id().as_str());
        req.extensions_mut().insert(ctx.clone());
        // `call` itself may already look at the current context, so scope it too.
        let inner = ctx.clone().sync_scope(|| self.inner.call(req));
        ResponseFuture {
            inner: ctx.scope(inner),
        }
    }
}

/// The trace context carried by `headers`, if there is a valid `traceparent`.
fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?;
    match TraceContext::parse(value) {
        Ok(ctx) => {
            let state = headers
                .get(TRACESTATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Some(ctx.with_tracestate(state))
        }
        Err(err) => {
            tracing::debug!(%err, "ignoring invalid traceparent header");
            None
        }
    }
}

pin_project! {
    /// Response future of [`PropagateTraceContext`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: TaskLocalFuture<TraceContext, F>,
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

/// Makes the per-request span: `request` with `method`, `route` (the matched template, or the
/// path when nothing matched), `request_id` and an empty `trace_id` filled in by
/// [`TraceContextLayer`]. Headers are never recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| req.uri().path(), MatchedPath::as_str);
        let request_id = req
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %req.method(),
            route,
            request_id,
            trace_id = tracing::field::Empty,
        )
    }
}

/// The layers returned by [`observability_layers`], outermost first.
pub type ObservabilityLayers = ServiceBuilder<
    Stack<
        TraceContextLayer,
        Stack<
            TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan>,
            Stack<
                PropagateRequestIdLayer,
                Stack<
                    SetRequestIdLayer<MakeRequestUuid>,
                    Stack<SetSensitiveRequestHeadersLayer, Identity>,
                >,
            >,
        >,
    >,
>;

/// The outermost layers of every service, in this order:
///
/// 1. mark `authorization`, `cookie` and `dapr-api-token` sensitive — before anything can log
///    them, so `Debug` output of the headers shows `Sensitive`;
/// 2. set `x-request-id` to a UUID when the caller sent none — before the span is made, so the
///    span carries it;
/// 3. echo `x-request-id` on the response — so callers can quote it;
/// 4. [`TraceLayer`] with [`RequestSpan`] — one span per request, with latency and 5xx logs;
/// 5. [`TraceContextLayer`] — inside the span, so it can record `trace_id` in it.
pub fn observability_layers() -> ObservabilityLayers {
    ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            DAPR_API_TOKEN,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(RequestSpan))
        .layer(TraceContextLayer::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Extension, Router, body::Body, routing::get};
    use http::StatusCode;
    use tower::ServiceExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn app() -> Router {
        Router::new()
            .route(
                "/ctx",
                get(|Extension(ctx): Extension<TraceContext>| async move {
                    let current = TraceContext::current().map(|c| c.traceparent());
                    assert_eq!(current.as_deref(), Some(ctx.traceparent().as_str()));
                    format!("{} {}", ctx.traceparent(), ctx.tracestate().unwrap_or("-"))
                }),
            )
            .layer(observability_layers())
    }

    async fn text(res: http::Response<Body>) -> String {
        use http_body_util::BodyExt;
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn adopts_inbound_traceparent_and_tracestate() {
        let req = Request::get("/ctx")
            .header(TRACEPARENT, PARENT)
            .header(TRACESTATE, "congo=t61rcWkgMzE")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(text(res).await, format!("{PARENT} congo=t61rcWkgMzE"));
    }

    #[tokio::test]
    async fn starts_a_root_for_missing_or_invalid_traceparent() {
        for header in [None, Some("00-zz-zz-01")] {
            let mut req = Request::get("/ctx");
            if let Some(value) = header {
                req = req.header(TRACEPARENT, value);
            }
            let res = app()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let body = text(res).await;
            let (traceparent, state) = body.split_once(' ').unwrap();
            assert!(TraceContext::parse(traceparent).is_ok());
            assert_ne!(traceparent, PARENT);
            assert_eq!(state, "-");
        }
    }

    #[tokio::test]
    async fn sets_and_propagates_request_ids() {
        let res = app()
            .oneshot(Request::get("/ctx").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let id = res.headers()[X_REQUEST_ID].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

        let req = Request::get("/ctx")
            .header(X_REQUEST_ID, "abc-123")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.headers()[X_REQUEST_ID], "abc-123");
    }

    #[tokio::test]
    async fn marks_secrets_sensitive() {
        let app = Router::new()
            .route(
                "/h",
                get(|headers: HeaderMap| async move {
                    let flags = [header::AUTHORIZATION, DAPR_API_TOKEN]
                        .map(|name| headers[name].is_sensitive());
                    format!("{flags:?}")
                }),
            )
            .layer(observability_layers());
        let req = Request::get("/h")
            .header(header::AUTHORIZATION, "Bearer x")
            .header(DAPR_API_TOKEN, "secret")
            .body(Body::empty())
            .unwrap();
        assert_eq!(text(app.oneshot(req).await.unwrap()).await, "[true, true]");
    }
}
