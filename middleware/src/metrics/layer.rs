//! [`HttpMetricsLayer`]: records RED metrics for each request by matched route template.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{Metrics, UNMATCHED_ROUTE};

/// Records `todo_http_requests_total` and `todo_http_request_duration_seconds` per request.
///
/// Apply it with `Router::route_layer`: it then only sees requests that matched a route, so
/// [`MatchedPath`] is always present and paths probed by scanners cannot create label values.
/// Requests without a matched path are labelled `route="unmatched"`. The duration is measured
/// until the response head is ready (streamed bodies are not waited for).
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
}

impl HttpMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service made by [`HttpMetricsLayer`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            start: Instant::now(),
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
            metrics: self.metrics.clone(),
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`HttpMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        method: Method,
        route: Option<MatchedPath>,
        metrics: Metrics,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let route = this
            .route
            .as_ref()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        // A service error means no response was sent; count it as a 500 like hyper would.
        let status = result
            .as_ref()
            .map_or(http::StatusCode::INTERNAL_SERVER_ERROR, Response::status);
        this.metrics
            .record_http(this.method, route, status, this.start.elapsed());
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};
    use axum::{Router, body::Body, routing::get};
    use http::StatusCode;
    use prometheus::proto::MetricFamily;
    use tower::ServiceExt;

    fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> &'a str {
        m.get_label()
            .iter()
            .find(|l| l.name() == name)
            .map_or("", |l| l.value())
    }

    fn family(metrics: &Metrics, name: &str) -> MetricFamily {
        metrics
            .registry()
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap()
    }

    #[tokio::test]
    async fn counts_by_route_template_not_raw_path() {
        let metrics = Metrics::new("backend").unwrap();
        let app = Router::new()
            .route("/tasks/{id}", get(|| async { "ok" }))
            .route_layer(HttpMetricsLayer::new(metrics.clone()));
        for id in ["1", "2", "3"] {
            let req = Request::get(format!("/tasks/{id}"))
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
        // Unmatched paths never reach a route layer and create no series.
        let req = Request::get("/nope/42").body(Body::empty()).unwrap();
        assert_eq!(
            app.oneshot(req).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );

        let requests = family(&metrics, HTTP_REQUESTS_TOTAL);
        let series = requests.get_metric();
        assert_eq!(series.len(), 1);
        assert_eq!(label(&series[0], "route"), "/tasks/{id}");
        assert_eq!(label(&series[0], "method"), "GET");
        assert_eq!(label(&series[0], "status"), "200");
        assert_eq!(label(&series[0], "service"), "backend");
        assert_eq!(series[0].get_counter().get_value(), 3.0);

        let durations = family(&metrics, HTTP_REQUEST_DURATION_SECONDS);
        assert_eq!(
            durations.get_metric()[0].get_histogram().get_sample_count(),
            3
        );
    }

    #[tokio::test]
    async fn requests_without_matched_path_are_labelled_unmatched() {
        let metrics = Metrics::new("backend").unwrap();
        let svc = HttpMetricsLayer::new(metrics.clone()).layer(tower::service_fn(
            |_req: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::empty())
                        .unwrap(),
                )
            },
        ));
        svc.oneshot(Request::get("/random").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let requests = family(&metrics, HTTP_REQUESTS_TOTAL);
        assert_eq!(label(&requests.get_metric()[0], "route"), UNMATCHED_ROUTE);
        assert_eq!(label(&requests.get_metric()[0], "status"), "404");
    }
}
