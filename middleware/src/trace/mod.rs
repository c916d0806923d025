//! Tracing: W3C trace context, request ids, the request span and the log subscriber.
//!
//! We propagate the W3C `traceparent` ourselves instead of pulling in the OpenTelemetry SDK:
//! daprd already creates and exports the spans of every hop (publish, delivery, invocation), so
//! the services only need to carry the context along — from the inbound request (or the
//! CloudEvent's `traceparent` attribute) to the events they publish — and put `trace_id` on
//! their log lines so logs and Dapr's traces join up. The current context lives in a tokio
//! task-local ([`TraceContext::current`]), scoped per request by [`TraceContextLayer`].

mod context;
mod init;
mod layer;

pub use self::context::{TraceContext, TraceParentError};
pub use self::init::{
    InitTracingError, LogFormat, ParseLogFormatError, init_tracing, init_tracing_with,
};
pub use self::layer::{
    DAPR_API_TOKEN, ObservabilityLayers, PropagateTraceContext, RequestSpan, ResponseFuture,
    TRACEPARENT, TRACESTATE, TraceContextLayer, X_REQUEST_ID, observability_layers,
};
