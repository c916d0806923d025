//! CloudEvents decoding for subscription routes.
//!
//! [`CloudEventLayer`] reads the delivery body under a size limit, decodes a structured-mode
//! (`application/cloudevents+json`, or `application/json` carrying `specversion`) or binary-mode
//! (`ce-*` headers) CloudEvent into a [`dapr::CloudEvent`], validates it and puts it into the
//! request extensions, where the [`Event<T>`] extractor picks it up. Unlike the CloudEvents SDK's
//! axum extractor, the body is never read without a bound, and an event that can never be
//! handled — malformed, oversized, invalid — is answered `200 {"status":"DROP"}` with one
//! `warn!` line instead of an error status that would make Dapr redeliver it forever.
//!
//! With a [`Metrics`] handle the layer also counts every delivery in
//! `todo_events_consumed_total` with the status Dapr finally received, read from the
//! [`DaprStatus`] response extension; put [`crate::DaprStatusLayer`] inside it so there always
//! is one.

mod decode;
mod extract;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use dapr::CloudEvent;
use http::{Request, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service};

use self::decode::Rejected;
pub use self::extract::{Event, EventRejection};
use crate::{
    BoxError,
    metrics::{Metrics, UNKNOWN},
    status::DaprStatus,
    trace::{TRACEPARENT, TraceContext},
};

/// Default limit of a delivery body: 1 MiB (daprd's own default limit is 4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Decodes and validates the CloudEvent of each delivery; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct CloudEventLayer {
    max_body_bytes: usize,
    metrics: Option<Metrics>,
}

impl Default for CloudEventLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CloudEventLayer {
    /// A layer with a [`DEFAULT_MAX_BODY_BYTES`] limit and no metrics.
    pub fn new() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metrics: None,
        }
    }

    /// Sets the largest body accepted; larger deliveries are dropped without being read fully.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Counts consumed events into `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<S> Layer<S> for CloudEventLayer {
    type Service = DecodeCloudEvent<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeCloudEvent {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`CloudEventLayer`].
#[derive(Debug, Clone)]
pub struct DecodeCloudEvent<S> {
    inner: S,
    layer: CloudEventLayer,
}

/// Response future of [`DecodeCloudEvent`].
///
/// Boxed: the body has to be read and decoded before the inner service can be called, so the
/// future is a state machine over an `async` block that we cannot name.
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for DecodeCloudEvent<S>
where
    S: Service<Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Use the service that was polled ready and leave its clone for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(handle(inner, self.layer.clone(), req))
    }
}

async fn handle<S, ReqBody, ResBody>(
    mut inner: S,
    layer: CloudEventLayer,
    req: Request<ReqBody>,
) -> Result<Response, S::Error>
where
    S: Service<Request<Body>, Response = http::Response<ResBody>>,
    ReqBody: http_body::Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let bytes = match read_body(&parts.headers, body, layer.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(outcome) => {
            return Ok(reject(&layer, parts.uri.path(), outcome));
        }
    };
    let event = match decode::decode(&parts.headers, &bytes) {
        Ok(event) => event,
        Err(rejected) => {
            return Ok(reject(
                &layer,
                parts.uri.path(),
                (rejected, DaprStatus::Drop),
            ));
        }
    };

    let labels = layer.metrics.as_ref().map(|_| Labels::of(&event));
    // daprd normally sends the trace context as headers; fall back to the event's attribute.
    let trace = if parts.headers.contains_key(TRACEPARENT) {
        None
    } else {
        event.traceparent.as_deref().and_then(|tp| {
            let ctx = TraceContext::parse(tp).ok()?;
            Some(ctx.with_tracestate(event.tracestate.clone()))
        })
    };
    if let Some(ctx) = &trace {
        tracing::Span::current().record("trace_id", ctx.trace_id().as_str());
        parts.extensions.insert(ctx.clone());
    }
    parts.extensions.insert(event);
    let req = Request::from_parts(parts, Body::from(bytes));

    let res = match trace {
        Some(ctx) => {
            let future = ctx.clone().sync_scope(|| inner.call(req));
            ctx.scope(future).await?
        }
        None => inner.call(req).await?,
    };
    if let (Some(metrics), Some(labels)) = (&layer.metrics, labels) {
        let status = res
            .extensions()
            .get::<DaprStatus>()
            .copied()
            .unwrap_or_else(|| DaprStatus::inferred_by_dapr(res.status()));
        metrics.record_consumed(&labels.topic, &labels.ty, status);
    }
    Ok(res.map(Body::new))
}

/// Reads at most `limit` bytes. A body that is too large is a permanent failure (`DROP`); one
/// that breaks off mid-read is a transport problem and worth another delivery (`RETRY`).
async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, (Rejected, DaprStatus)>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        let reason = format!("body exceeds the {limit} byte limit");
        (Rejected::new(reason), DaprStatus::Drop)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err((
            Rejected::new(format!("reading the body failed: {err}")),
            DaprStatus::Retry,
        )),
    }
}

/// Answers a delivery that never reaches the handler, with one log line and one count.
fn reject(
    layer: &CloudEventLayer,
    path: &str,
    (rejected, status): (Rejected, DaprStatus),
) -> Response {
    tracing::warn!(
        reason = %rejected.reason,
        event_id = rejected.id.as_deref().unwrap_or("-"),
        topic = rejected.topic.as_deref().unwrap_or("-"),
        path,
        dapr_status = %status,
        "cloudevent rejected before the handler"
    );
    if let Some(metrics) = &layer.metrics {
        metrics.record_consumed(
            rejected.topic.as_deref().unwrap_or(UNKNOWN),
            rejected.ty.as_deref().unwrap_or(UNKNOWN),
            status,
        );
    }
    status.into_response()
}

/// Metric labels of an event, taken before the event moves into the request.
struct Labels {
    topic: String,
    ty: String,
}

impl Labels {
    fn of(event: &CloudEvent) -> Self {
        Self {
            topic: event.topic.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
            ty: event.ty.clone(),
        }
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
