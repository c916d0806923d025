//! Publisher: the outbound stack that publishes CloudEvents through the Dapr sidecar.
//!
//! Calling `DaprClient::publish_event` directly gives no bound on concurrent requests, no
//! retry of a sidecar restart and no deadline on a wedged connection. [`Publisher`] wraps any
//! `Service<PublishRequest>` (normally [`DaprPublish`]) in, outermost first:
//!
//! 1. **concurrency limit** — bounds publishes in flight across all attempts, so retries during
//!    an outage cannot pile up unbounded load on daprd;
//! 2. **retry** ([`RetryPolicy`] + [`DaprClassifier`]) — re-sends transient failures with
//!    capped, jittered backoff; it sits outside the timeout so each attempt gets a fresh one;
//! 3. **timeout** — bounds one attempt, so a hung sidecar connection costs at most this long
//!    before the retry layer tries again.
//!
//! Retrying is safe because the event keeps its `id` across attempts and consumers dedupe on
//! it. Each publish is measured in `todo_publish_duration_seconds{topic,outcome}`.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use dapr::{CloudEvent, DaprClient, PublishOptions};
use tokio::time::Instant;
use tower::{
    Service, ServiceBuilder, ServiceExt, timeout::error::Elapsed, util::BoxCloneSyncService,
};

use crate::{
    BoxError,
    metrics::Metrics,
    retry::{Classify, DaprClassifier, Decision, RetryConfig, RetryPolicy},
    trace::TraceContext,
};

/// One event to publish: the pub/sub component, the topic, the event and per-request options.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The pub/sub component name (`pubsub` in this project).
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// The event, published in structured mode with its own `id`.
    pub event: CloudEvent,
    /// Publish metadata (`metadata.*` query parameters).
    pub options: PublishOptions,
}

impl PublishRequest {
    /// A request with default options.
    pub fn new(pubsub: impl Into<String>, topic: impl Into<String>, event: CloudEvent) -> Self {
        Self {
            pubsub: pubsub.into(),
            topic: topic.into(),
            event,
            options: PublishOptions::default(),
        }
    }

    /// Replaces the publish options.
    #[must_use]
    pub fn with_options(mut self, options: PublishOptions) -> Self {
        self.options = options;
        self
    }
}

/// The innermost service: one `publish_event` call on a [`DaprClient`], no retry, no timeout.
#[derive(Clone)]
pub struct DaprPublish {
    client: DaprClient,
}

impl fmt::Debug for DaprPublish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaprPublish").finish_non_exhaustive()
    }
}

impl DaprPublish {
    /// Publishes through `client`.
    pub fn new(client: DaprClient) -> Self {
        Self { client }
    }
}

impl Service<PublishRequest> for DaprPublish {
    type Response = ();
    type Error = dapr::Error;
    /// Boxed: `DaprClient::publish_event` is an `async fn`, whose future type cannot be named.
    type Future = Pin<Box<dyn Future<Output = Result<(), dapr::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: PublishRequest) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            client
                .publish_event(&req.pubsub, &req.topic, &req.event, &req.options)
                .await
        })
    }
}

/// Limits and retries of a [`Publisher`].
#[derive(Debug, Clone, PartialEq)]
pub struct PublisherConfig {
    /// Publishes in flight at once (all attempts count); at least 1.
    pub concurrency: usize,
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryConfig,
    /// How long `publish` waits for a free concurrency slot before failing with
    /// [`PublishError::Overloaded`].
    pub queue_timeout: Duration,
}

impl Default for PublisherConfig {
    /// 64 in flight, 2 s per attempt, default retries, 5 s of queueing.
    fn default() -> Self {
        Self {
            concurrency: 64,
            timeout: Duration::from_secs(2),
            retry: RetryConfig::default(),
            queue_timeout: Duration::from_secs(5),
        }
    }
}

impl PublisherConfig {
    /// The same limits with `max_retries` retries of a transient failure (0: the first failure
    /// is the answer).
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.retry.max_retries = max_retries;
        self
    }
}

/// Why a publish failed (after all retries).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The last attempt did not finish within the per-attempt timeout.
    #[error("publish attempt timed out")]
    Timeout,
    /// The sidecar or the client reported an error.
    #[error("dapr publish failed")]
    Dapr(#[source] dapr::Error),
    /// No concurrency slot became free within the queue timeout.
    #[error("publisher overloaded: no slot free within {0:?}")]
    Overloaded(Duration),
    /// An unexpected error from a layer of the stack.
    #[error("publish failed")]
    Other(#[source] BoxError),
}

impl PublishError {
    /// The `outcome` label value of this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dapr(_) => "dapr_error",
            Self::Overloaded(_) => "overloaded",
            Self::Other(_) => "error",
        }
    }

    /// Whether the failure was transient (another publish later may succeed).
    pub fn is_transient(&self) -> bool {
        PublishClassifier::classify_error(self) == Decision::Retry
            || matches!(self, Self::Overloaded(_))
    }

    fn from_box(err: BoxError) -> Self {
        if err.is::<Elapsed>() {
            return Self::Timeout;
        }
        match err.downcast::<dapr::Error>() {
            Ok(err) => Self::Dapr(*err),
            Err(err) => Self::Other(err),
        }
    }
}

/// Classifies publish attempts: timeouts retry, Dapr errors per [`DaprClassifier`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishClassifier;

impl PublishClassifier {
    fn classify_error(err: &PublishError) -> Decision {
        match err {
            PublishError::Timeout => Decision::Retry,
            PublishError::Dapr(err) => DaprClassifier::classify_error(err),
            PublishError::Overloaded(_) | PublishError::Other(_) => Decision::Fail,
        }
    }
}

impl Classify<(), PublishError> for PublishClassifier {
    fn classify(&self, result: &Result<(), PublishError>) -> Decision {
        match result {
            Ok(()) => Decision::Done,
            Err(err) => Self::classify_error(err),
        }
    }
}

/// Publishes events through the concurrency → retry → timeout stack; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    service: BoxCloneSyncService<PublishRequest, (), PublishError>,
    queue_timeout: Duration,
    metrics: Option<Metrics>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("queue_timeout", &self.queue_timeout)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Builds the stack around `inner` (a scripted service in tests, [`DaprPublish`] in
    /// services).
    pub fn new<S>(inner: S, config: &PublisherConfig) -> Self
    where
        S: Service<PublishRequest, Response = (), Error = dapr::Error>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let service = ServiceBuilder::new()
            // Bounds in-flight publishes over all attempts: retries cannot flood the sidecar.
            .concurrency_limit(config.concurrency.max(1))
            // Outside the timeout, so every attempt gets its own deadline.
            .retry(RetryPolicy::new(config.retry.clone(), PublishClassifier))
            // Typed errors for the classifier: `Elapsed` becomes `Timeout`.
            .map_err(PublishError::from_box)
            // Bounds one attempt: a wedged connection is abandoned and retried.
            .timeout(config.timeout)
            .service(inner);
        Self {
            service: BoxCloneSyncService::new(service),
            queue_timeout: config.queue_timeout,
            metrics: None,
        }
    }

    /// Builds the stack around [`DaprPublish`] on `client`.
    pub fn dapr(client: DaprClient, config: &PublisherConfig) -> Self {
        Self::new(DaprPublish::new(client), config)
    }

    /// Records publish latency into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Publishes one event, retrying transient failures.
    ///
    /// If the event has no `traceparent` and a [`TraceContext`] is current, the event gets a
    /// child of it, so the consumer's work joins this trace.
    pub async fn publish(&self, mut req: PublishRequest) -> Result<(), PublishError> {
        if req.event.traceparent.is_none()
            && let Some(ctx) = TraceContext::current()
        {
            let child = ctx.child();
            req.event.traceparent = Some(child.traceparent());
            if req.event.tracestate.is_none() {
                req.event.tracestate = child.tracestate().map(str::to_owned);
            }
        }
        let topic = self.metrics.as_ref().map(|_| req.topic.clone());
        let start = Instant::now();
        let result = self.send(req).await;
        if let (Some(metrics), Some(topic)) = (&self.metrics, topic) {
            let outcome = result
                .as_ref()
                .map_or_else(PublishError::outcome, |()| "success");
            metrics.record_publish(&topic, outcome, start.elapsed());
        }
        result
    }

    async fn send(&self, req: PublishRequest) -> Result<(), PublishError> {
        let mut service = self.service.clone();
        match tokio::time::timeout(self.queue_timeout, service.ready()).await {
            Ok(ready) => ready?.call(req).await,
            Err(_) => Err(PublishError::Overloaded(self.queue_timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PUBLISH_DURATION_SECONDS;
    use std::{
        collections::VecDeque,
        sync::{
            Arc, Mutex,
            atomic::{AtomicUsize, Ordering},
        },
    };

    /// One scripted answer of the fake sidecar.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Ok,
        /// Connection refused (transient).
        Refused,
        /// An invalid-argument error (final).
        Invalid,
        /// Never answers within any sane timeout.
        Hang,
    }

    /// A fake sidecar: answers from a script (then `Ok`), records calls, measures concurrency.
    #[derive(Clone, Default)]
    struct FakeSidecar {
        script: Arc<Mutex<VecDeque<Step>>>,
        calls: Arc<Mutex<Vec<(Instant, PublishRequest)>>>,
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        work: Duration,
    }

    impl FakeSidecar {
        fn new(steps: &[Step]) -> Self {
            Self {
                script: Arc::new(Mutex::new(steps.iter().copied().collect())),
                ..Self::default()
            }
        }

        fn calls(&self) -> Vec<(Instant, PublishRequest)> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl FakeSidecar {
        /// The fake as the publisher's inner service.
        fn service(
            &self,
        ) -> impl Service<
            PublishRequest,
            Response = (),
            Error = dapr::Error,
            Future = impl Future<Output = Result<(), dapr::Error>> + Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static {
            let this = self.clone();
            tower::service_fn(move |req| this.answer(req))
        }

        /// Records the call and takes its step at once, as a sidecar sees calls in the order
        /// they are made; only the answer waits.
        fn answer(
            &self,
            req: PublishRequest,
        ) -> impl Future<Output = Result<(), dapr::Error>> + Send + use<> {
            self.calls.lock().unwrap().push((Instant::now(), req));
            let step = self.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
            let refused =
                matches!(step, Step::Refused).then(crate::test_support::connection_refused);
            let this = self.clone();
            async move {
                let now = this.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                this.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(this.work).await;
                let result = match step {
                    Step::Ok => Ok(()),
                    Step::Refused => Err(refused.unwrap()),
                    Step::Invalid => Err(dapr::Error::InvalidArgument("bad topic".into())),
                    Step::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                };
                this.in_flight.fetch_sub(1, Ordering::SeqCst);
                result
            }
        }
    }

    fn config() -> PublisherConfig {
        PublisherConfig {
            concurrency: 4,
            timeout: Duration::from_millis(500),
            retry: RetryConfig {
                max_retries: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                jitter: 0.0,
            },
            queue_timeout: Duration::from_secs(5),
        }
    }

    fn request(id: &str) -> PublishRequest {
        let event = CloudEvent::new(id, "/todo/test", "com.todo.task.created.v1");
        PublishRequest::new("pubsub", "task-events", event)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_with_the_same_event() {
        let sidecar = FakeSidecar::new(&[Step::Refused, Step::Refused]);
        let publisher = Publisher::new(sidecar.service(), &config());
        publisher.publish(request("evt-1")).await.unwrap();
        let calls = sidecar.calls();
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|(_, req)| req.event.id == "evt-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_final_errors() {
        let sidecar = FakeSidecar::new(&[Step::Invalid]);
        let publisher = Publisher::new(sidecar.service(), &config());
        let err = publisher.publish(request("evt-1")).await.unwrap_err();
        assert!(
            matches!(err, PublishError::Dapr(dapr::Error::InvalidArgument(_))),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(sidecar.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_has_its_own_timeout() {
        let sidecar = FakeSidecar::new(&[Step::Hang, Step::Hang]);
        let publisher = Publisher::new(sidecar.service(), &config());
        let start = Instant::now();
        publisher.publish(request("evt-1")).await.unwrap();
        let calls = sidecar.calls();
        assert_eq!(calls.len(), 3);
        // 500 ms timeout + 100 ms backoff, then 500 ms + 200 ms.
        assert_eq!(calls[1].0 - start, Duration::from_millis(600));
        assert_eq!(calls[2].0 - start, Duration::from_millis(1300));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries_with_timeout_error() {
        let sidecar = FakeSidecar::new(&[Step::Hang; 10]);
        let metrics = Metrics::new("test").unwrap();
        let publisher = Publisher::new(sidecar.service(), &config()).with_metrics(metrics.clone());
        let err = publisher.publish(request("evt-1")).await.unwrap_err();
        assert!(matches!(err, PublishError::Timeout), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(sidecar.calls().len(), 4);
        let text = metrics.render().unwrap();
        let line = format!(r#"{PUBLISH_DURATION_SECONDS}_count{{outcome="timeout""#);
        assert!(text.contains(&line), "{text}");
    }

    #[tokio::test]
    async fn topics_outside_the_contracts_share_one_label() {
        let metrics = Metrics::new("test").unwrap();
        let publisher = Publisher::new(FakeSidecar::new(&[]).service(), &config())
            .with_metrics(metrics.clone());
        for topic in ["task-events", "made-up-1", "made-up-2"] {
            let mut req = request("evt-1");
            req.topic = topic.to_owned();
            publisher.publish(req).await.unwrap();
        }
        let text = metrics.render().unwrap();
        let count = |topic: &str| {
            format!(
                r#"{PUBLISH_DURATION_SECONDS}_count{{outcome="success",service="test",topic="{topic}"}}"#
            )
        };
        assert!(
            text.contains(&format!("{} 1", count("task-events"))),
            "{text}"
        );
        assert!(text.contains(&format!("{} 2", count("other"))), "{text}");
        assert!(!text.contains("made-up"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_bound_is_respected() {
        let sidecar = FakeSidecar {
            work: Duration::from_millis(50),
            ..FakeSidecar::new(&[])
        };
        let publisher = Publisher::new(sidecar.service(), &config());
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let publisher = publisher.clone();
                tokio::spawn(async move { publisher.publish(request(&format!("evt-{i}"))).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(sidecar.calls().len(), 20);
        assert_eq!(sidecar.max_in_flight.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_too_long_for_a_slot_is_overload() {
        let sidecar = FakeSidecar::new(&[Step::Hang]);
        let config = PublisherConfig {
            concurrency: 1,
            timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_millis(100),
            ..config()
        };
        let publisher = Publisher::new(sidecar.service(), &config);
        let blocker = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.publish(request("slow")).await }
        });
        while sidecar.calls().is_empty() {
            tokio::task::yield_now().await;
        }
        let err = publisher.publish(request("queued")).await.unwrap_err();
        assert!(matches!(err, PublishError::Overloaded(_)), "{err:?}");
        blocker.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn current_trace_context_is_propagated_as_a_child() {
        let sidecar = FakeSidecar::new(&[]);
        let publisher = Publisher::new(sidecar.service(), &config());
        let ctx = TraceContext::new_root().with_tracestate(Some("k=v".into()));
        ctx.clone()
            .scope(publisher.publish(request("evt-1")))
            .await
            .unwrap();
        let event = &sidecar.calls()[0].1.event;
        let sent = TraceContext::parse(event.traceparent.as_deref().unwrap()).unwrap();
        assert_eq!(sent.trace_id(), ctx.trace_id());
        assert_ne!(sent.span_id(), ctx.span_id());
        assert_eq!(event.tracestate.as_deref(), Some("k=v"));

        // An explicit traceparent is left alone.
        let preset = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut req = request("evt-2");
        req.event.traceparent = Some(preset.into());
        ctx.scope(publisher.publish(req)).await.unwrap();
        assert_eq!(
            sidecar.calls()[1].1.event.traceparent.as_deref(),
            Some(preset)
        );
    }
}
