//! User tokens for end-to-end tests (HS256 with a fixture key).

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

/// Marked as a test fixture: the HS256 key the backend is started with in tests.
pub(crate) const JWT_FIXTURE_KEY: &str = "test-fixture-jwt-key-not-a-secret";

/// A bearer token for `sub` with an email, valid for an hour.
pub(crate) fn token_for(sub: &str) -> String {
    token_signed_with(sub, JWT_FIXTURE_KEY)
}

/// The same, signed with `key` (a cluster's generated key instead of the fixture).
pub(crate) fn token_signed_with(sub: &str, key: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": sub,
        "email": format!("{sub}@example.test"),
        "name": sub,
        "iat": now,
        "exp": now + 3600,
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("encoding a fixture token")
}
