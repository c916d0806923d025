//! Pieces shared by the backend's integration suites (each uses a subset).
#![allow(dead_code)]

pub(crate) mod jwt;
pub(crate) mod mcp;

use std::sync::Arc;

use backend::app::AppState;
use backend::auth::{AuthConfig, Authenticator};
use backend::service::TaskService;
use middleware::Metrics;
use sqlx::PgPool;
use tokio::sync::Notify;

/// The backend's state over `pool`, verifying HS256 user tokens signed with `key`. The sidecar
/// client points at daprd's default address, which these suites never reach: they test the
/// routes, not the relay.
pub(crate) async fn app_state(pool: PgPool, key: &str) -> AppState {
    let auth = Authenticator::new(AuthConfig {
        hs256_secret: Some(key.into()),
        ..AuthConfig::default()
    })
    .await
    .unwrap();
    state_with(pool, auth)
}

/// The backend's state over `pool` with the token verification `auth`.
pub(crate) fn state_with(pool: PgPool, auth: Authenticator) -> AppState {
    AppState {
        service: TaskService::new(pool, Arc::new(Notify::new())),
        auth: Arc::new(auth),
        dapr: dapr::DaprClient::new(dapr::ClientConfig::default()).unwrap(),
        metrics: Metrics::new("backend").unwrap(),
    }
}
