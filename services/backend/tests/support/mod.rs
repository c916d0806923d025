//! Pieces shared by the backend's integration suites (each uses a subset).
#![allow(dead_code)]

pub(crate) mod json;
pub(crate) mod jwt;
pub(crate) mod mcp;
pub(crate) mod tool_args;

use std::sync::Arc;

use axum::Router;
use backend::app::{self, AppState};
use backend::auth::{AuthConfig, Authenticator};
use backend::service::TaskService;
use jsonwebtoken::{EncodingKey, Header, encode};
use middleware::{AppTokenLayer, Metrics};
use serde_json::{Value, json};
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

/// `claims` signed with HS256 and `key`.
pub(crate) fn hs256_token(key: &str, claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// The complete router over `pool` for tokens signed with a suite's key, and an hour's token
/// of the one user the property suites act as; each suite adds its own way of calling it.
#[derive(Clone)]
pub(crate) struct AliceApp {
    pub(crate) app: Router,
    pub(crate) token: String,
}

impl AliceApp {
    pub(crate) async fn new(pool: PgPool, key: &str) -> Self {
        let state = app_state(pool, key).await;
        let exp = chrono::Utc::now().timestamp() + 3600;
        let token = hs256_token(
            key,
            &json!({"sub": "alice", "email": "alice@example.test", "exp": exp}),
        );
        Self {
            app: app::router(state, AppTokenLayer::new(None)),
            token,
        }
    }
}
