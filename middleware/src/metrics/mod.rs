//! Prometheus metrics: HTTP RED by route template, publish latency, consumed events.
//!
//! Labels are bounded on purpose: HTTP metrics use the *matched route template*
//! (`/api/v1/tasks/{id}`, never `/api/v1/tasks/42`), methods outside the standard set collapse
//! to `OTHER`, topics and event types outside the contracts to `other` ([`labels`]), and
//! histograms have explicit buckets sized for our latency targets (a publish to
//! the local sidecar is expected in single-digit milliseconds). Unlike the `metrics` facade with
//! a global recorder, a [`Metrics`] handle owns its own [`Registry`] and is passed explicitly,
//! so tests can create as many as they like and read them back.
//!
//! The metric names are the `pub const`s below; dashboards and alert rules use exactly these.

pub mod labels;
mod layer;

use std::{fmt, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, Method, StatusCode, header};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

pub use self::layer::{HttpMetrics, HttpMetricsLayer, ResponseFuture};
use crate::status::DaprStatus;

/// Counter of HTTP requests served: labels `service`, `method`, `route`, `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "todo_http_requests_total";
/// Histogram of HTTP request latency in seconds: labels `service`, `method`, `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "todo_http_request_duration_seconds";
/// Histogram of publish latency in seconds (all attempts included): labels `service`, `topic`
/// (bounded by [`labels::topic`]), `outcome`.
pub const PUBLISH_DURATION_SECONDS: &str = "todo_publish_duration_seconds";
/// Counter of events delivered to this service: labels `service`, `topic`, `type` (bounded by
/// [`labels`]), `status` (`SUCCESS`, `RETRY`, `DROP`).
pub const EVENTS_CONSUMED_TOTAL: &str = "todo_events_consumed_total";

/// `route` label value for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// `topic`/`type` label value when a dropped event did not say.
pub const UNKNOWN: &str = "unknown";

/// Buckets (seconds) for HTTP request latency: 0.5 ms to 10 s.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (seconds) for publish latency: 0.25 ms to 10 s (retries make the tail long).
pub const PUBLISH_DURATION_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Errors creating or rendering metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A collector could not be created or registered.
    #[error("failed to register metrics")]
    Register(#[source] prometheus::Error),
    /// The registry could not be encoded in the text format.
    #[error("failed to encode metrics")]
    Encode(#[source] prometheus::Error),
}

/// A handle to one service's metrics; cheap to clone (shared registry and collectors).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    publish_duration: HistogramVec,
    events_consumed: IntCounterVec,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the collectors, labelled with `service`, in a new registry that also holds the
    /// process collector (CPU, RSS, open fds) on Linux.
    pub fn new(service: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                HTTP_REQUESTS_TOTAL,
                "HTTP requests served, by route template.",
            )
            .const_label("service", service),
            &["method", "route", "status"],
        )
        .map_err(MetricsError::Register)?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                HTTP_REQUEST_DURATION_SECONDS,
                "HTTP request latency in seconds.",
            )
            .const_label("service", service)
            .buckets(HTTP_DURATION_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .map_err(MetricsError::Register)?;
        let publish_duration = HistogramVec::new(
            HistogramOpts::new(
                PUBLISH_DURATION_SECONDS,
                "Latency of publishing one event through the sidecar, retries included.",
            )
            .const_label("service", service)
            .buckets(PUBLISH_DURATION_BUCKETS.to_vec()),
            &["topic", "outcome"],
        )
        .map_err(MetricsError::Register)?;
        let events_consumed = IntCounterVec::new(
            Opts::new(
                EVENTS_CONSUMED_TOTAL,
                "Events delivered by Dapr, by final status.",
            )
            .const_label("service", service),
            &["topic", "type", "status"],
        )
        .map_err(MetricsError::Register)?;

        registry
            .register(Box::new(http_requests.clone()))
            .and_then(|()| registry.register(Box::new(http_duration.clone())))
            .and_then(|()| registry.register(Box::new(publish_duration.clone())))
            .and_then(|()| registry.register(Box::new(events_consumed.clone())))
            .map_err(MetricsError::Register)?;
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(MetricsError::Register)?;

        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                http_requests,
                http_duration,
                publish_duration,
                events_consumed,
            }),
        })
    }

    /// The registry, to register service-specific collectors next to ours.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Renders every collector in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, MetricsError> {
        TextEncoder::new()
            .encode_to_string(&self.inner.registry.gather())
            .map_err(MetricsError::Encode)
    }

    /// Records one served HTTP request.
    pub fn record_http(&self, method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        self.inner
            .http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.inner
            .http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one publish (all its attempts) with its outcome (`success`, `timeout`, …).
    pub fn record_publish(&self, topic: &str, outcome: &str, elapsed: Duration) {
        self.inner
            .publish_duration
            .with_label_values(&[labels::topic(topic), outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one delivered event with the status Dapr received for it; the topic and type
    /// are taken from the delivery, so they are bounded here ([`labels`]).
    pub fn record_consumed(&self, topic: &str, event_type: &str, status: DaprStatus) {
        self.inner
            .events_consumed
            .with_label_values(&[
                labels::topic(topic),
                labels::event_type(event_type),
                status.as_str(),
            ])
            .inc();
    }
}

/// Standard methods keep their name; extension methods share one label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// A router serving `GET /metrics` from `metrics`, to merge into a service's router.
pub fn metrics_router<S>(metrics: Metrics) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(metrics)
}

/// Serves the registry in the Prometheus text format (`text/plain; version=0.0.4`).
pub async fn metrics_handler(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %crate::error::DisplayChain(&err), "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn metrics_endpoint_serves_all_names() {
        let metrics = Metrics::new("test").unwrap();
        metrics.record_http(&Method::GET, "/x", StatusCode::OK, Duration::from_millis(3));
        metrics.record_publish("task-events", "success", Duration::from_millis(1));
        metrics.record_consumed(
            "task-events",
            "com.todo.task.created.v1",
            DaprStatus::Success,
        );

        let res = metrics_router::<()>(metrics)
            .oneshot(http::Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        for name in [
            HTTP_REQUESTS_TOTAL,
            HTTP_REQUEST_DURATION_SECONDS,
            PUBLISH_DURATION_SECONDS,
            EVENTS_CONSUMED_TOTAL,
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains(r#"service="test""#));
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn unknown_methods_share_a_label() {
        let method = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(&method), "OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
