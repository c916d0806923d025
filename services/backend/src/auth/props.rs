//! Property tests of bearer-token handling (issue 12, generated bad input): any string as a
//! token — random text, three random segments, a valid header over a garbage payload, a signed
//! token with one character changed — is refused with an [`AuthError`], never accepted and
//! never a panic; any `Authorization` header the REST router receives without a valid token
//! answers `401` with a JSON `UNAUTHORIZED` body. Valid tokens are accepted with their subject.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, Header, encode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::json_fixtures::json_leaf;
use crate::service::TaskService;

/// Test fixture only: the HS256 key of these properties.
const SECRET: &str = "fixture-auth-props-hs256-key";

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn authenticator() -> Authenticator {
    Authenticator::new(AuthConfig {
        hs256_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    })
    .await
    .unwrap()
}

/// What [`Authenticator::authenticate`] answers for `token`.
fn verify(token: &str) -> Result<AuthUser, AuthError> {
    runtime().block_on(async { authenticator().await.authenticate(token).await })
}

fn sign(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn valid_claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": jsonwebtoken::get_current_timestamp() + 600})
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = json_leaf(false, vec![any::<String>().prop_map(Value::from).boxed()]);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sub".to_owned()),
                    Just("exp".to_owned()),
                    Just("alg".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Token-shaped strings: dot-separated segments of base64url over random bytes, random JSON,
/// or a real header.
fn token_shaped() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(b64(br#"{"alg":"HS256","typ":"JWT"}"#)),
        prop::sample::select(vec![
            "HS256", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "none", "", "hs256",
        ])
        .prop_map(|alg| b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes())),
        any_json().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64(&b)),
        "[ -~]{0,20}",
    ];
    let segment = prop_oneof![
        any_json().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| b64(&b)),
        "[A-Za-z0-9_=+/-]{0,48}",
        "[ -~]{0,20}",
    ];
    (header, prop::collection::vec(segment, 0..4)).prop_map(|(header, rest)| {
        std::iter::once(header)
            .chain(rest)
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// One edit of a valid token: in its header, payload or signature a character is replaced,
/// deleted or inserted, or the token is cut short or extended.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, char),
    Delete(usize),
    Insert(usize, char),
    Truncate(usize),
    Append(String),
    SwapSegments(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        prop::sample::select(B64URL.chars().collect::<Vec<_>>()),
        Just('.'),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
        "[ -~]{1,10}".prop_map(Edit::Append),
        (0usize..3, 1usize..3).prop_map(|(a, by)| Edit::SwapSegments(a, (a + by) % 3)),
    ]
}

fn apply(token: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let len = chars.len();
    match edit {
        Edit::Replace(i, c) => chars[i % len] = *c,
        Edit::Delete(i) => {
            chars.remove(i % len);
        }
        Edit::Insert(i, c) => chars.insert(i % (len + 1), *c),
        Edit::Truncate(i) => chars.truncate(i % len),
        Edit::Append(tail) => chars.extend(tail.chars()),
        Edit::SwapSegments(a, b) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            parts.swap(*a, *b);
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

/// The REST router with a database pool that never connects: every request here is refused
/// before the service layer is reached (a request that got further would fail to connect,
/// answering 503, and fail the property).
fn rest_app() -> axum::Router {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(100))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let auth = futures_util::FutureExt::now_or_never(authenticator()).unwrap();
    let state = AppState {
        service: TaskService::new(pool, Arc::new(tokio::sync::Notify::new())),
        auth: Arc::new(auth),
        dapr: dapr::DaprClient::new(dapr::ClientConfig::default()).unwrap(),
        metrics: middleware::Metrics::new("test").unwrap(),
    };
    axum::Router::new()
        .nest("/api/v1", crate::rest::router(state.clone()))
        .with_state(state)
}

/// Sends `GET /api/v1/tasks` with `authorization` and returns the status, the challenge
/// header and the JSON body.
fn get_tasks(authorization: Option<HeaderValue>) -> (StatusCode, Option<HeaderValue>, Value) {
    runtime().block_on(async {
        let mut req = http::Request::get("/api/v1/tasks")
            .body(Body::empty())
            .unwrap();
        if let Some(value) = authorization {
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let res = rest_app().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{} answered non-JSON {bytes:?}", parts.status));
        (
            parts.status,
            parts.headers.get(header::WWW_AUTHENTICATE).cloned(),
            body,
        )
    })
}

fn assert_unauthorized(
    answer: &(StatusCode, Option<HeaderValue>, Value),
) -> Result<(), TestCaseError> {
    let (status, challenge, body) = answer;
    prop_assert_eq!(*status, StatusCode::UNAUTHORIZED, "body: {}", body);
    prop_assert_eq!(
        challenge.as_ref().map(HeaderValue::as_bytes),
        Some(&b"Bearer"[..])
    );
    prop_assert_eq!(body["code"].as_str(), Some("UNAUTHORIZED"));
    prop_assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any text is refused as a token.
    #[test]
    fn any_text_is_refused(token in any::<String>()) {
        prop_assert!(verify(&token).is_err());
    }

    /// Token-shaped garbage — random segments, real headers over garbage payloads, JSON of
    /// any shape, every algorithm name — is refused.
    #[test]
    fn token_shaped_garbage_is_refused(token in token_shaped()) {
        prop_assert!(verify(&token).is_err());
    }

    /// A valid header and signature do not rescue a payload of any other JSON: only a token
    /// signed over exactly these bytes passes, and a forged payload under a real signature
    /// is refused.
    #[test]
    fn garbage_payload_under_a_real_signature_is_refused(payload in any_json()) {
        let real = sign(&valid_claims("alice"));
        let parts: Vec<&str> = real.split('.').collect();
        let payload = b64(payload.to_string().as_bytes());
        let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
        prop_assume!(forged != real);
        prop_assert!(verify(&forged).is_err());
    }

    /// A signed token with one edit anywhere is refused (or, where the edit left the token's
    /// bytes as they were, accepted as the same user).
    #[test]
    fn edited_tokens_are_refused(sub in "[a-z]{1,12}", edit in edit()) {
        let token = sign(&valid_claims(&sub));
        let edited = apply(&token, &edit);
        prop_assume!(edited != token);
        prop_assert!(verify(&edited).is_err(), "accepted {:?} of {}", edit, token);
    }

    /// Valid tokens are accepted, whatever printable subject they carry.
    #[test]
    fn valid_tokens_are_accepted(sub in "[!-~][ -~]{0,40}[!-~]") {
        let user = verify(&sign(&valid_claims(&sub))).unwrap();
        prop_assert_eq!(user.id, sub);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any `Authorization` header value (any bytes a header can carry) is a JSON 401.
    #[test]
    fn any_authorization_header_is_a_json_401(
        value in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let value = HeaderValue::from_bytes(&value).ok();
        assert_unauthorized(&get_tasks(value))?;
    }

    /// A bearer scheme (any case) with garbage or an edited token is a JSON 401.
    #[test]
    fn bearer_garbage_is_a_json_401(
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
        token in prop_oneof![token_shaped(), any::<String>()],
        edit in prop::option::of(edit()),
    ) {
        let token = match edit {
            Some(edit) => {
                let real = sign(&valid_claims("alice"));
                let edited = apply(&real, &edit);
                // The header's surrounding whitespace is no part of the token.
                prop_assume!(edited.trim() != real);
                edited
            }
            None => token,
        };
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).ok();
        assert_unauthorized(&get_tasks(value))?;
    }
}
