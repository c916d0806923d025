//! Retry policy: a small domain classifier plus a generic [`tower::retry::Policy`].
//!
//! tower ships the retry *mechanism* but leaves the decision to the caller; the obvious shortcut
//! — retry every `Err` — retries a 400 forever-ish and gives up on a `RETRY` answer that came
//! back as `Ok`. Here a [`Classify`] implementation says *done / retry / fail* for one kind of
//! result ([`DaprClassifier`] for the Dapr client, [`HttpClassifier`] for HTTP responses), and
//! [`RetryPolicy`] owns the rest: attempt counting and capped exponential backoff with jitter.
//!
//! The jitter is our own rather than `tower::retry::backoff::ExponentialBackoff`'s, which adds
//! jitter on top of the base and clamps it to the maximum, so once the cap is reached every
//! client retries in lockstep; ours takes a random fraction *off* the capped delay instead.

use std::time::Duration;

use http::StatusCode;
use tower::retry::Policy;

use crate::status::DaprStatus;

/// What to do with the result of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The attempt succeeded; return its result.
    Done,
    /// The attempt failed transiently; try again if attempts remain.
    Retry,
    /// The attempt failed for good; return its result without retrying.
    Fail,
}

/// Decides whether the result of an attempt is a success, a transient or a final failure.
pub trait Classify<Res, E> {
    /// Classifies one attempt's result.
    fn classify(&self, result: &Result<Res, E>) -> Decision;
}

/// Classifies results of [`dapr::DaprClient`] calls.
///
/// Retries what the client marks transient — transport failures (connection refused, reset,
/// timeout), a sidecar that is not ready, 5xx (except daprd's "not found" 500s), 408 and 429;
/// fails on everything else: other 4xx, ETag mismatches (the caller must re-read), decode
/// errors and invalid arguments.
#[derive(Debug, Clone, Copy, Default)]
pub struct DaprClassifier;

impl DaprClassifier {
    /// Classifies one Dapr client error.
    pub fn classify_error(err: &dapr::Error) -> Decision {
        // One definition of "transient" for the whole workspace: the client's own.
        if err.is_transient() {
            Decision::Retry
        } else {
            Decision::Fail
        }
    }
}

impl<Res> Classify<Res, dapr::Error> for DaprClassifier {
    fn classify(&self, result: &Result<Res, dapr::Error>) -> Decision {
        match result {
            Ok(_) => Decision::Done,
            Err(err) => Self::classify_error(err),
        }
    }
}

/// Classifies HTTP responses, e.g. of a call to another app through Dapr service invocation.
///
/// 5xx, 408 and 429 and a [`DaprStatus::Retry`] extension retry; other 4xx and
/// [`DaprStatus::Drop`] fail; other responses are done. Every `Err` is treated as a transport
/// failure (the request never got an answer) and retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClassifier;

impl<B, E> Classify<http::Response<B>, E> for HttpClassifier {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Decision {
        let res = match result {
            Ok(res) => res,
            Err(_) => return Decision::Retry,
        };
        match res.extensions().get::<DaprStatus>() {
            Some(DaprStatus::Retry) => return Decision::Retry,
            Some(DaprStatus::Drop) => return Decision::Fail,
            Some(DaprStatus::Success) | None => {}
        }
        let status = res.status();
        if retriable_status(status) {
            Decision::Retry
        } else if status.is_client_error() || status.is_server_error() {
            Decision::Fail
        } else {
            Decision::Done
        }
    }
}

fn retriable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Attempts and backoff for a [`RetryPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt; `0` disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry; doubles for each further retry.
    pub initial_backoff: Duration,
    /// Upper bound of any single delay.
    pub max_backoff: Duration,
    /// Fraction (0.0–1.0) of each delay that is randomised away; `0.0` is deterministic.
    pub jitter: f64,
}

impl Default for RetryConfig {
    /// 5 retries, 50 ms doubling up to 2 s, half of each delay randomised: about 3 s at most.
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            jitter: 0.5,
        }
    }
}

impl RetryConfig {
    /// The delay before retry number `retry` (0-based): `initial * 2^retry`, capped at
    /// `max_backoff`, then reduced by a random fraction of up to `jitter`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = 2u32
            .checked_pow(retry)
            .and_then(|factor| self.initial_backoff.checked_mul(factor))
            .map_or(self.max_backoff, |d| d.min(self.max_backoff));
        if self.jitter.is_nan() || self.jitter <= 0.0 {
            return base;
        }
        base.mul_f64(1.0 - self.jitter.min(1.0) * rand::random::<f64>())
    }
}

/// A [`tower::retry::Policy`] driven by a [`Classify`] implementation and a [`RetryConfig`].
///
/// tower clones the policy for every request, so the attempt counter is per request.
#[derive(Debug, Clone)]
pub struct RetryPolicy<C> {
    classifier: C,
    config: RetryConfig,
    retries: u32,
}

impl<C> RetryPolicy<C> {
    /// A policy that classifies results with `classifier` and retries per `config`.
    pub fn new(config: RetryConfig, classifier: C) -> Self {
        Self {
            classifier,
            config,
            retries: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }
}

impl<C, Req, Res, E> Policy<Req, Res, E> for RetryPolicy<C>
where
    C: Classify<Res, E>,
    Req: Clone,
{
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match self.classifier.classify(result) {
            Decision::Done | Decision::Fail => None,
            Decision::Retry if self.retries >= self.config.max_retries => {
                tracing::debug!(retries = self.retries, "retries exhausted");
                None
            }
            Decision::Retry => {
                let delay = self.config.backoff(self.retries);
                self.retries += 1;
                tracing::debug!(
                    retry = self.retries,
                    ?delay,
                    "retrying after transient failure"
                );
                Some(tokio::time::sleep(delay))
            }
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        collections::VecDeque,
        convert::Infallible,
        sync::{Arc, Mutex},
        task::{Context, Poll},
    };
    use tokio::time::Instant;
    use tower::{Service, ServiceBuilder, ServiceExt};

    /// One scripted answer of the fake upstream.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Status(u16),
        Refused,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    /// A fake upstream that answers from a script and records when it was called.
    #[derive(Clone, Default)]
    struct Scripted {
        script: Arc<Mutex<VecDeque<Step>>>,
        calls: Arc<Mutex<Vec<Instant>>>,
    }

    impl Scripted {
        fn new(steps: &[Step]) -> Self {
            Self {
                script: Arc::new(Mutex::new(steps.iter().copied().collect())),
                calls: Arc::default(),
            }
        }

        fn calls(&self) -> Vec<Instant> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Service<()> for Scripted {
        type Response = http::Response<()>;
        type Error = Refused;
        type Future = std::future::Ready<Result<Self::Response, Refused>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Refused>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            self.calls.lock().unwrap().push(Instant::now());
            let step = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Step::Status(200));
            std::future::ready(match step {
                Step::Refused => Err(Refused),
                Step::Status(code) => {
                    let mut res = http::Response::new(());
                    *res.status_mut() = StatusCode::from_u16(code).unwrap();
                    Ok(res)
                }
            })
        }
    }

    fn fixed(max_retries: u32, initial_ms: u64, max_ms: u64) -> RetryConfig {
        RetryConfig {
            max_retries,
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            jitter: 0.0,
        }
    }

    async fn run(upstream: &Scripted, config: RetryConfig) -> Result<StatusCode, Refused> {
        let svc = ServiceBuilder::new()
            .retry(RetryPolicy::new(config, HttpClassifier))
            .service(upstream.clone());
        svc.oneshot(()).await.map(|res| res.status())
    }

    fn gaps(calls: &[Instant]) -> Vec<Duration> {
        calls.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_then_succeeds() {
        let upstream = Scripted::new(&[Step::Status(503), Step::Refused, Step::Status(429)]);
        let status = run(&upstream, fixed(5, 100, 10_000)).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(upstream.calls().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_client_errors() {
        let upstream = Scripted::new(&[Step::Status(400), Step::Status(200)]);
        let status = run(&upstream, fixed(5, 100, 1_000)).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(upstream.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_max_retries_with_last_result() {
        let upstream = Scripted::new(&[Step::Status(503); 10]);
        let status = run(&upstream, fixed(3, 10, 1_000)).await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(upstream.calls().len(), 4, "first attempt plus 3 retries");

        let upstream = Scripted::new(&[Step::Refused; 10]);
        assert!(run(&upstream, fixed(2, 10, 1_000)).await.is_err());
        assert_eq!(upstream.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_is_capped() {
        let upstream = Scripted::new(&[Step::Status(500); 5]);
        run(&upstream, fixed(5, 100, 400)).await.unwrap();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            gaps(&upstream.calls()),
            [ms(100), ms(200), ms(400), ms(400), ms(400)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_only_shortens_delays() {
        let config = RetryConfig {
            jitter: 0.5,
            ..fixed(8, 100, 400)
        };
        let upstream = Scripted::new(&[Step::Status(500); 8]);
        run(&upstream, config.clone()).await.unwrap();
        for (i, gap) in gaps(&upstream.calls()).into_iter().enumerate() {
            let base = fixed(8, 100, 400).backoff(i as u32);
            assert!(
                gap <= base && gap >= base / 2,
                "retry {i}: {gap:?} vs {base:?}"
            );
        }
    }

    #[test]
    fn backoff_survives_overflow_and_nan_jitter() {
        let config = RetryConfig {
            jitter: f64::NAN,
            ..fixed(100, 1_000, 30_000)
        };
        assert_eq!(config.backoff(64), Duration::from_secs(30));
        assert_eq!(config.backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn dapr_status_extension_is_honoured() {
        let mut res = http::Response::new(());
        res.extensions_mut().insert(DaprStatus::Retry);
        let result: Result<_, Infallible> = Ok(res);
        assert_eq!(HttpClassifier.classify(&result), Decision::Retry);
    }

    #[test]
    fn dapr_classifier_fails_on_invalid_arguments() {
        let result: Result<(), _> = Err(dapr::Error::InvalidArgument("empty topic".into()));
        assert_eq!(DaprClassifier.classify(&result), Decision::Fail);
        let ok: Result<(), dapr::Error> = Ok(());
        assert_eq!(DaprClassifier.classify(&ok), Decision::Done);
    }

    #[test]
    fn dapr_classifier_retries_connection_refused() {
        let err = crate::test_support::connection_refused();
        assert_eq!(DaprClassifier::classify_error(&err), Decision::Retry);
    }
}
