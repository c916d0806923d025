//! Shared Tower layers for todo-dapr services.
//!
//! Every service composes the same few layers around its axum router; they live here so that
//! the behaviour Dapr depends on (delivery statuses, CloudEvents decoding, the app API token)
//! and the signals operators depend on (metric names, trace ids, request ids) are written once.
//!
//! # Recommended stack for a consumer service
//!
//! Outermost first; one line of why for each:
//!
//! 1. [`trace::observability_layers`] (request id, request span, W3C trace context) — outermost,
//!    so every log line below, including rejections, carries `request_id` and `trace_id`.
//! 2. [`AppTokenLayer`] — rejects calls that did not come through our sidecar before any work
//!    is done or any body is read.
//! 3. [`HttpMetricsLayer`] via `Router::route_layer` — RED metrics by route template (the
//!    route layer is what makes `MatchedPath` certain and keeps unmatched paths out); inside the
//!    token check so probes by strangers do not create series.
//! 4. [`CloudEventLayer`] — reads the body under a size limit, decodes and validates the event,
//!    answers `DROP` for garbage, and counts the final outcome of each event it let through.
//! 5. [`DaprStatusLayer`] — innermost, so whatever the handler (or an extractor rejection)
//!    answers becomes a `200` with a Dapr status before the CloudEvent layer records it.
//! 6. the handler, taking [`Event<T>`](Event) and returning [`DaprStatus`] or
//!    `Result<(), ConsumeError>`.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use middleware::{
//!     AppTokenLayer, CloudEventLayer, ConsumeError, DaprStatusLayer, Event, HttpMetricsLayer,
//!     Metrics, metrics_router, trace::observability_layers,
//! };
//! use tower::ServiceBuilder;
//!
//! async fn on_task_event(event: Event<serde_json::Value>) -> Result<(), ConsumeError> {
//!     let _ = event.data;
//!     Ok(())
//! }
//!
//! # fn build() -> Result<Router, middleware::MetricsError> {
//! let metrics = Metrics::new("notification")?;
//! let subscriptions = Router::new()
//!     .route("/events/tasks", post(on_task_event))
//!     .route_layer(
//!         ServiceBuilder::new()
//!             .layer(CloudEventLayer::new().metrics(metrics.clone()))
//!             .layer(DaprStatusLayer::new()),
//!     );
//! let app = Router::new()
//!     .merge(subscriptions)
//!     .route_layer(HttpMetricsLayer::new(metrics.clone()))
//!     .merge(metrics_router(metrics))
//!     .layer(AppTokenLayer::from_env())
//!     .layer(observability_layers());
//! # Ok(app)
//! # }
//! ```
//!
//! [`consumer_router`] and [`event_route_layers`] build exactly this stack (with health,
//! `/dapr/subscribe` and `/metrics`); every consumer service uses them.
//!
//! The outbound side is [`Publisher`]: concurrency → retry → timeout around the Dapr client.

pub mod app_token;
pub mod cloudevents;
pub mod consumer;
pub mod env;
pub mod env_checks;
pub mod env_help;
pub mod error;
pub mod health;
pub mod metrics;
pub mod publisher;
pub mod retry;
pub mod server;
pub mod status;
pub mod trace;

pub use app_token::AppTokenLayer;
pub use cloudevents::{CloudEventLayer, Event, EventRejection};
pub use consumer::{consumer_router, event_route_layers};
pub use error::ErrorBody;
pub use metrics::{HttpMetricsLayer, Metrics, MetricsError, metrics_router};
pub use publisher::{DaprPublish, PublishError, PublishRequest, Publisher, PublisherConfig};
pub use retry::{Classify, DaprClassifier, Decision, HttpClassifier, RetryConfig, RetryPolicy};
pub use status::{ConsumeError, DaprStatus, DaprStatusLayer};
pub use trace::{LogFormat, TraceContext, TraceContextLayer, init_tracing};

/// The boxed error type used where layers erase error types (same as tower's and axum's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(test)]
mod test_support {
    /// A real transport error: connection refused by a loopback port nobody listens on.
    ///
    /// Made on a separate thread with its own (unpaused) runtime, so tests running on paused
    /// time do not see the clock jump while the connect is pending.
    pub(crate) fn connection_refused() -> dapr::Error {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                drop(listener);
                let err = reqwest::Client::new()
                    .get(format!("http://{addr}/"))
                    .send()
                    .await
                    .unwrap_err();
                dapr::Error::Transport(err)
            })
        })
        .join()
        .unwrap()
    }
}
