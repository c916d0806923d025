//! Bearer-token attacks against the complete router, over HTTP: unsigned (`alg: none`) tokens,
//! algorithm confusion in both directions, the exact `exp`/`nbf` bounds, and a JWKS rotated
//! while the backend runs. `src/auth.rs` checks the same cases on the `Authenticator` and its
//! typed errors; here each must end as the answer a client sees: 401, our JSON error body and
//! `WWW-Authenticate: Bearer`, on REST and on MCP alike.
//!
//! Accepted tokens write their user, so `#[sqlx::test]` gives each test a database (set
//! `DATABASE_URL`).

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use backend::app::{self};
use backend::auth::{AuthConfig, Authenticator, LEEWAY_SECS};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use middleware::AppTokenLayer;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::jwt::{JwksServer, jwk, signed};
use tower::ServiceExt;

/// Test fixture only: the HS256 key of the shared-secret configuration.
const HS_SECRET: &str = "fixture-auth-tests-hs256-key";
/// Test fixtures only: throwaway keys made for the backend's tests (see `fixtures/README.md`).
const RSA_KEY: &str = include_str!("fixtures/rsa-2048.pem");
const RSA_PUBLIC_PEM: &str = include_str!("fixtures/rsa-2048.pub.pem");
const ED_KEY_A: &str = include_str!("fixtures/ed25519-a.pem");
const ED_KEY_B: &str = include_str!("fixtures/ed25519-b.pem");

fn hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// `header.payload` + `sig`, base64url without padding, for tokens no library would sign.
/// Signs claims with one configuration's key.
type Sign = dyn Fn(Value) -> String;

fn raw_token(header: &Value, claims: &Value, sig: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}{sig}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    )
}

/// The complete backend router with `auth`.
fn app_with(pool: &PgPool, auth: Authenticator) -> Router {
    app::router(
        support::state_with(pool.clone(), auth),
        AppTokenLayer::new(None),
    )
}

async fn hs_app(pool: &PgPool) -> Router {
    app::router(
        support::app_state(pool.clone(), HS_SECRET).await,
        AppTokenLayer::new(None),
    )
}

async fn jwks_app(pool: &PgPool, jwks: &JwksServer, refresh: Duration) -> Router {
    let config = AuthConfig {
        jwks_url: Some(jwks.url.clone()),
        ..AuthConfig::default()
    };
    let auth = Authenticator::with_jwks_refresh(config, refresh)
        .await
        .unwrap();
    app_with(pool, auth)
}

/// What a client sees of one answer.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
}

/// The requests every case is tried on: a REST read, a REST write and an MCP call.
fn requests(token: &str) -> Vec<Request<Body>> {
    let bearer = format!("Bearer {token}");
    let list = Request::get("/api/v1/tasks")
        .header(header::AUTHORIZATION, &bearer)
        .body(Body::empty())
        .unwrap();
    let create = Request::post("/api/v1/tasks")
        .header(header::AUTHORIZATION, &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"title": "forged"}).to_string()))
        .unwrap();
    let mcp = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header(header::AUTHORIZATION, &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
        ))
        .unwrap();
    vec![list, create, mcp]
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let www_authenticate = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// Every request with `token` is refused as the code promises: 401, JSON, a challenge.
#[track_caller]
fn assert_refused(answer: &Answer, case: &str) {
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "{case}: {answer:?}"
    );
    assert_eq!(answer.body["code"], "UNAUTHORIZED", "{case}: {answer:?}");
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: {answer:?}"
    );
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some("Bearer"),
        "{case}: {answer:?}"
    );
}

async fn assert_all_refused(app: &Router, token: &str, case: &str) -> Vec<Answer> {
    let mut answers = Vec::new();
    for req in requests(token) {
        let what = format!("{case} on {} {}", req.method(), req.uri());
        let answer = send(app, req).await;
        assert_refused(&answer, &what);
        answers.push(answer);
    }
    answers
}

async fn task_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn user_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn now() -> u64 {
    get_current_timestamp()
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn unsigned_alg_none_tokens_answer_401_with_or_without_a_signature_segment(pool: PgPool) {
    let jwks = JwksServer::start(vec![jwk(Algorithm::EdDSA, "a", ED_KEY_A)]).await;
    let apps = [
        ("hs256", hs_app(&pool).await),
        ("jwks", jwks_app(&pool, &jwks, Duration::ZERO).await),
    ];
    let claims = json!({"sub": "mallory", "exp": now() + 600});
    // A genuine signature over other content, pasted after an unsigned header.
    let real_sig = format!(
        ".{}",
        hs256(&claims, HS_SECRET.as_bytes(), None)
            .rsplit('.')
            .next()
            .unwrap()
    );
    for (name, app) in &apps {
        for alg in ["none", "None", "NONE"] {
            for sig in ["", ".", ".AAAA", real_sig.as_str()] {
                let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims, sig);
                assert_all_refused(app, &token, &format!("{name}: alg {alg}, sig {sig:?}")).await;
            }
        }
    }
    assert_eq!(task_count(&pool).await, 0);
    assert_eq!(user_count(&pool).await, 0, "no refused caller was recorded");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn algorithm_confusion_answers_401_in_both_directions(pool: PgPool) {
    let rsa = jwk(Algorithm::RS256, "rsa-1", RSA_KEY);
    let ed = jwk(Algorithm::EdDSA, "ed-1", ED_KEY_A);
    let jwks = JwksServer::start(vec![rsa.clone(), ed.clone()]).await;
    let hs_only = hs_app(&pool).await;
    let jwks_only = jwks_app(&pool, &jwks, Duration::ZERO).await;
    let claims = json!({"sub": "mallory", "exp": now() + 600});

    // Asymmetric tokens, validly signed by the identity provider's keys, at an HS256-only
    // backend: refused for their algorithm, not tried against the shared secret.
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA_KEY),
        (Algorithm::EdDSA, "ed-1", ED_KEY_A),
    ] {
        let token = signed(alg, Some(kid), pem, &claims);
        let answers = assert_all_refused(&hs_only, &token, &format!("{alg:?} at hs256")).await;
        let message = answers[0].body["message"].as_str().unwrap();
        assert!(message.contains("algorithm"), "{message}");
    }

    // The classic confusion: HS256 with the published public key as the HMAC secret.
    let secrets: [(&str, Vec<u8>); 4] = [
        ("public PEM", RSA_PUBLIC_PEM.as_bytes().to_vec()),
        ("RSA JWK", rsa.to_string().into_bytes()),
        (
            "RSA modulus",
            rsa["n"].as_str().unwrap().as_bytes().to_vec(),
        ),
        ("Ed25519 x", ed["x"].as_str().unwrap().as_bytes().to_vec()),
    ];
    for (what, secret) in &secrets {
        for kid in [None, Some("rsa-1"), Some("ed-1")] {
            let token = hs256(&claims, secret, kid);
            let case = format!("HS256 keyed with the {what}, kid {kid:?}, at jwks");
            let answers = assert_all_refused(&jwks_only, &token, &case).await;
            let message = answers[0].body["message"].as_str().unwrap();
            assert!(message.contains("algorithm"), "{message}");
        }
    }
    // The same tokens the JWKS keys really signed pass, so the refusals above are about the
    // algorithm and nothing else.
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA_KEY),
        (Algorithm::EdDSA, "ed-1", ED_KEY_A),
    ] {
        let token = signed(alg, Some(kid), pem, &claims);
        for req in requests(&token).into_iter().take(1) {
            let answer = send(&jwks_only, req).await;
            assert_eq!(answer.status, StatusCode::OK, "{alg:?}: {answer:?}");
        }
    }
    assert_eq!(task_count(&pool).await, 0);
}

/// Sends `token(t)` with `t` the current second until the clock did not move across the
/// request, so an assertion about an exact second is not blurred by a tick in between.
async fn at_a_steady_second(app: &Router, token: impl Fn(u64) -> String) -> Answer {
    loop {
        let before = now();
        let req = requests(&token(before)).swap_remove(0);
        let answer = send(app, req).await;
        if now() == before {
            return answer;
        }
    }
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn expired_and_not_yet_valid_tokens_answer_401_beyond_the_leeway_only(pool: PgPool) {
    let jwks = JwksServer::start(vec![jwk(Algorithm::EdDSA, "a", ED_KEY_A)]).await;
    let hs_sign = |claims: Value| hs256(&claims, HS_SECRET.as_bytes(), None);
    let ed_sign = |claims: Value| signed(Algorithm::EdDSA, Some("a"), ED_KEY_A, &claims);
    let apps: [(&str, Router, &Sign); 2] = [
        ("hs256", hs_app(&pool).await, &hs_sign),
        (
            "jwks",
            jwks_app(&pool, &jwks, Duration::ZERO).await,
            &ed_sign,
        ),
    ];
    for (name, app, sign) in &apps {
        let edge = at_a_steady_second(app, |t| {
            sign(json!({"sub": "edge", "exp": t - LEEWAY_SECS}))
        })
        .await;
        assert_eq!(edge.status, StatusCode::OK, "{name}: exp at the leeway");
        let expired = at_a_steady_second(app, |t| {
            sign(json!({"sub": "late", "exp": t - LEEWAY_SECS - 1}))
        })
        .await;
        assert_refused(&expired, &format!("{name}: exp beyond the leeway"));
        assert_eq!(expired.body["message"], "token expired");

        let edge = at_a_steady_second(app, |t| {
            sign(json!({"sub": "edge", "exp": t + 600, "nbf": t + LEEWAY_SECS}))
        })
        .await;
        assert_eq!(edge.status, StatusCode::OK, "{name}: nbf at the leeway");
        let early = at_a_steady_second(app, |t| {
            sign(json!({"sub": "early", "exp": t + 600, "nbf": t + LEEWAY_SECS + 1}))
        })
        .await;
        assert_refused(&early, &format!("{name}: nbf beyond the leeway"));
        // Far outside the window, on every route.
        let token = sign(json!({"sub": "early", "exp": now() + 7200, "nbf": now() + 3600}));
        assert_all_refused(app, &token, &format!("{name}: nbf in an hour")).await;
        let token = sign(json!({"sub": "late", "exp": now() - 3600}));
        assert_all_refused(app, &token, &format!("{name}: expired an hour ago")).await;
    }
    let users: Vec<String> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        users,
        ["edge"],
        "only the accepted tokens' user was recorded"
    );
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn jwks_rotation_mid_run_accepts_the_new_key_and_drops_the_removed_one(pool: PgPool) {
    let jwks = JwksServer::start(vec![jwk(Algorithm::EdDSA, "old", ED_KEY_A)]).await;
    let app = jwks_app(&pool, &jwks, Duration::ZERO).await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start-up");
    let claims = json!({"sub": "rotating", "exp": now() + 600});
    let old = signed(Algorithm::EdDSA, Some("old"), ED_KEY_A, &claims);
    let old_without_kid = signed(Algorithm::EdDSA, None, ED_KEY_A, &claims);
    let new = signed(Algorithm::EdDSA, Some("new"), ED_KEY_B, &claims);
    let list = |token: &str| requests(token).swap_remove(0);
    assert_eq!(send(&app, list(&old)).await.status, StatusCode::OK);
    assert_refused(&send(&app, list(&new)).await, "new kid before the rotation");

    // The provider rotates: `old` is withdrawn, `new` published. Many requests with the new key
    // arrive at once; they share one refetch and all pass.
    jwks.publish(&[jwk(Algorithm::EdDSA, "new", ED_KEY_B)]);
    let before = jwks.fetches();
    let concurrent = (0..8).map(|_| send(&app, list(&new)));
    for answer in futures_util::future::join_all(concurrent).await {
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    assert_eq!(
        jwks.fetches(),
        before + 1,
        "one refetch for the whole burst"
    );

    // After that refetch the withdrawn key verifies nothing, by kid or without one.
    for (case, token) in [("old kid", &old), ("old key, no kid", &old_without_kid)] {
        assert_all_refused(&app, token, &format!("{case} after the rotation")).await;
    }
    // A made-up kid signed with the new key proves nothing either.
    let made_up = signed(Algorithm::EdDSA, Some("made-up"), ED_KEY_B, &claims);
    assert_all_refused(&app, &made_up, "unknown kid").await;
}
