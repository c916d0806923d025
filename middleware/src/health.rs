//! Liveness and readiness routes, the same in every service.
//!
//! `/healthz` only says the process serves HTTP: restarting a service does not fix its sidecar
//! or its database, so liveness must not depend on them. `/readyz` runs every named check
//! (each bounded by a timeout, all at once) and answers 503 with the failing ones while any
//! fails, so a replica that cannot do its work takes no traffic. The body names every check:
//! `{"status":"ready","checks":{"sidecar":"ok"}}` or `{"status":"not ready","checks":{"sidecar":{"error":"…"}}}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use futures_util::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The readiness checks of one service; [`Health::router`] serves them.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(&'static str, Check)>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Health").field("checks", &names).finish()
    }
}

impl Health {
    /// No checks yet: `/readyz` is ready as soon as the process serves HTTP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; `Err` carries what `/readyz` reports.
    #[must_use]
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Adds the `sidecar` check: the sidecar's outbound API is up.
    #[must_use]
    pub fn sidecar(self, dapr: dapr::DaprClient) -> Self {
        self.check("sidecar", move || {
            let dapr = dapr.clone();
            async move { dapr.healthz_outbound().await.map_err(|e| e.to_string()) }
        })
    }

    /// `GET /healthz` and `GET /readyz`.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let checks = Arc::new(self.checks);
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route(
                "/readyz",
                get(move || {
                    let checks = Arc::clone(&checks);
                    async move { readiness(&checks).await }
                }),
            )
    }
}

async fn readiness(checks: &[(&'static str, Check)]) -> (StatusCode, Json<Value>) {
    let results = join_all(checks.iter().map(|(name, check)| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
            Ok(outcome) => outcome,
            Err(_) => Err("timed out".to_owned()),
        };
        (*name, outcome)
    }))
    .await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let mut report = Map::new();
    for (name, outcome) in results {
        let value = match outcome {
            Ok(()) => json!("ok"),
            Err(error) => json!({ "error": error }),
        };
        report.insert(name.to_owned(), value);
    }
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (status, Json(json!({ "status": word, "checks": report })))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get_json(router: Router, path: &str) -> (StatusCode, Value) {
        let response = router
            .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn ready_when_every_check_passes() {
        let router = Health::new()
            .check("database", || async { Ok(()) })
            .check("sidecar", || async { Ok(()) })
            .router();
        let (status, body) = get_json(router, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ready", "checks": {"database": "ok", "sidecar": "ok"}})
        );
    }

    #[tokio::test]
    async fn one_failing_check_makes_it_not_ready_and_is_named() {
        let router = Health::new()
            .check("database", || async { Ok(()) })
            .check("sidecar", || async { Err("connection refused".to_owned()) })
            .router();
        let (status, body) = get_json(router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["sidecar"]["error"], "connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_times_out() {
        let router = Health::new()
            .check("slow", std::future::pending::<Result<(), String>>)
            .router();
        let (status, body) = get_json(router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["slow"]["error"], "timed out");
    }

    #[tokio::test]
    async fn liveness_needs_no_check() {
        let router = Health::new()
            .check("sidecar", || async { Err("down".to_owned()) })
            .router();
        let (status, body) = get_json(router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ok"}));
    }

    #[tokio::test]
    async fn sidecar_check_reports_an_unreachable_sidecar() {
        let dapr = dapr::DaprClient::new(dapr::ClientConfig {
            // Port 1 on loopback: nothing listens there.
            http_endpoint: "http://127.0.0.1:1".into(),
            ..dapr::ClientConfig::default()
        })
        .unwrap();
        let (status, body) = get_json(Health::new().sidecar(dapr).router(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["checks"]["sidecar"]["error"].is_string(), "{body}");
    }
}
