//! App API token check: only our own sidecar may call the app.
//!
//! When daprd runs with `APP_API_TOKEN`, it sends that token in the `dapr-api-token` header of
//! every call into the app (deliveries, job triggers, service invocation). This layer rejects
//! calls without it. Unlike tower-http's `ValidateRequestHeaderLayer::bearer`, the comparison is
//! constant-time, health and metrics endpoints stay open for probes and Prometheus, the 401 has
//! our JSON error body, and no configured token means pass-through (local runs without one).

use secrecy::{ExposeSecret, SecretString};
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum::{body::Body, extract::OriginalUri, response::Response};
use bytes::Bytes;
use http::{Request, StatusCode};
use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::{BoxError, error::ErrorBody, trace::DAPR_API_TOKEN};

/// The environment variable holding the token daprd sends to the app.
pub const APP_API_TOKEN_ENV: &str = "APP_API_TOKEN";

/// Paths that never require the token: liveness, readiness and metrics.
pub const DEFAULT_EXEMPT_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Requires `dapr-api-token` to match the configured token, except on exempt paths.
#[derive(Clone, Debug)]
pub struct AppTokenLayer {
    token: Option<Arc<SecretString>>,
    exempt: Arc<[String]>,
}

impl AppTokenLayer {
    /// Checks against `token`; `None` or an empty token disables the check.
    pub fn new(token: Option<SecretString>) -> Self {
        Self {
            token: token
                .filter(|t| !t.expose_secret().is_empty())
                .map(Arc::new),
            exempt: DEFAULT_EXEMPT_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }

    /// Reads the token from `APP_API_TOKEN` through `lookup` (a map in tests, the environment
    /// in [`AppTokenLayer::from_env`]).
    pub fn from_lookup<F>(lookup: F) -> Self
    where
        F: FnOnce(&str) -> Option<String>,
    {
        Self::new(lookup(APP_API_TOKEN_ENV).map(SecretString::from))
    }

    /// Reads the token from the process environment's `APP_API_TOKEN`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Replaces the exempt paths (exact matches; the default is [`DEFAULT_EXEMPT_PATHS`]).
    #[must_use]
    pub fn exempt_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.exempt = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a token is configured (otherwise the layer passes everything through).
    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }
}

impl<S> Layer<S> for AppTokenLayer {
    type Service = AppToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AppToken {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`AppTokenLayer`].
#[derive(Clone, Debug)]
pub struct AppToken<S> {
    inner: S,
    layer: AppTokenLayer,
}

impl<S> AppToken<S> {
    fn authorised<B>(&self, req: &Request<B>) -> bool {
        let Some(expected) = &self.layer.token else {
            return true;
        };
        // Exempt paths name paths of the whole app. Under `Router::nest` a layered inner router
        // sees its path with the prefix stripped (`/internal/healthz` arrives as `/healthz`), so
        // match the path as received, which axum keeps in `OriginalUri`.
        let path = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().path(), |original| original.0.path());
        if self.layer.exempt.iter().any(|p| p == path) {
            return true;
        }
        // Compared as SHA-256 digests: `ct_eq` on the raw bytes answers at once when the lengths
        // differ, which tells a caller timing it how long the token is; digests are always 32
        // bytes.
        req.headers().get(DAPR_API_TOKEN).is_some_and(|got| {
            let got = Sha256::digest(got.as_bytes());
            let expected = Sha256::digest(expected.expose_secret().as_bytes());
            bool::from(got.ct_eq(&expected))
        })
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AppToken<S>
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
        if self.authorised(&req) {
            ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            }
        } else {
            tracing::debug!(
                path = req.uri().path(),
                "rejected call without a valid dapr-api-token"
            );
            ResponseFuture {
                kind: Kind::Unauthorised,
            }
        }
    }
}

pin_project! {
    /// Response future of [`AppToken`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Unauthorised,
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
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(res.map(Body::new)))
            }
            KindProj::Unauthorised => Poll::Ready(Ok(ErrorBody::new(
                "UNAUTHORIZED",
                "missing or invalid dapr-api-token header",
            )
            .into_response_with(StatusCode::UNAUTHORIZED))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, routing::get};
    use http_body_util::BodyExt;
    use std::collections::HashMap;
    use tower::ServiceExt;

    fn app(layer: AppTokenLayer) -> Router {
        Router::new()
            .route("/internal/x", get(|| async { "ok" }))
            .route("/healthz", get(|| async { "alive" }))
            .route("/custom", get(|| async { "open" }))
            .layer(layer)
    }

    async fn call(app: Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::get(path);
        if let Some(token) = token {
            req = req.header(DAPR_API_TOKEN, token);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn rejects_missing_and_wrong_tokens_with_json() {
        let layer = AppTokenLayer::new(Some("s3cret".into()));
        for token in [None, Some("wrong"), Some("s3cret2"), Some("")] {
            let (status, body) = call(app(layer.clone()), "/internal/x", token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            let body: ErrorBody = serde_json::from_str(&body).unwrap();
            assert_eq!(body.code, "UNAUTHORIZED");
        }
        let (status, body) = call(app(layer), "/internal/x", Some("s3cret")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }

    #[tokio::test]
    async fn health_endpoints_are_exempt_and_configurable() {
        let layer = AppTokenLayer::new(Some("s3cret".into()));
        assert_eq!(
            call(app(layer.clone()), "/healthz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app(layer.clone()), "/custom", None).await.0,
            StatusCode::UNAUTHORIZED
        );

        let layer = layer.exempt_paths(["/custom"]);
        assert_eq!(
            call(app(layer.clone()), "/custom", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app(layer), "/healthz", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_nested_router_exempts_only_the_paths_of_the_whole_app() {
        // Regression: nested under `/internal`, the layer saw `/internal/healthz` as `/healthz`
        // and let it through without the token.
        let layer = AppTokenLayer::new(Some("s3cret".into()));
        let inner = Router::new()
            .route("/healthz", get(|| async { "internal, not a probe" }))
            .route("/metrics", get(|| async { "internal, not metrics" }))
            .layer(layer.clone());
        let app = Router::new()
            .nest("/internal", inner)
            .route("/healthz", get(|| async { "alive" }));
        for path in ["/internal/healthz", "/internal/metrics"] {
            let (status, body) = call(app.clone(), path, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
            let (status, _) = call(app.clone(), path, Some("s3cret")).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        assert_eq!(
            call(app, "/healthz", None).await,
            (StatusCode::OK, "alive".to_owned())
        );
    }

    #[tokio::test]
    async fn no_token_configured_passes_through() {
        let env = HashMap::from([("OTHER", "x")]);
        let layer = AppTokenLayer::from_lookup(|k| env.get(k).map(|v| (*v).to_owned()));
        assert!(!layer.is_enabled());
        assert_eq!(
            call(app(layer), "/internal/x", None).await.0,
            StatusCode::OK
        );
        assert!(!AppTokenLayer::new(Some(SecretString::from(""))).is_enabled());
    }

    #[test]
    fn lookup_reads_app_api_token_and_debug_redacts_it() {
        let env = HashMap::from([(APP_API_TOKEN_ENV, "s3cret")]);
        let layer = AppTokenLayer::from_lookup(|k| env.get(k).map(|v| (*v).to_owned()));
        assert!(layer.is_enabled());
        assert!(!format!("{layer:?}").contains("s3cret"));
    }
}
