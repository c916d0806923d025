//! Who is calling: bearer-token (JWT) verification for REST and MCP.
//!
//! Two key sources, at least one configured: an HS256 shared secret, and a JWKS URL for
//! asymmetric tokens (RS256, EdDSA). The key decides which algorithm a token may use, never the
//! token alone: an HS256 token is checked only against the shared secret, an RS256/EdDSA token
//! only against JWKS keys of exactly that algorithm, so a public key can never be replayed as an
//! HMAC secret.
//!
//! The JWKS is fetched at start-up and fetched again when a token names a key id we do not know
//! (the identity provider rotated its keys), at most once per [`JWKS_MIN_REFRESH`]: a flood of
//! tokens with made-up `kid`s cannot become a flood of requests to the identity provider. It is
//! also fetched again once it is older than [`JWKS_MAX_AGE`], so a key the provider withdrew (a
//! leaked one) stops verifying within that time even if no new key id ever shows up.
//!
//! [`require_user`] is the axum middleware in front of REST and MCP. It also records the user
//! (the reminder recipient) through the service layer, but only on first sight and then at most
//! once per [`LAST_SEEN_REFRESH`] per user, instead of writing on every request.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::AuthUser;
use crate::rest::ApiError;
use crate::validation;

/// Clock skew tolerated on `exp` and `nbf`: a token is accepted while `exp >= now - LEEWAY_SECS`
/// and once `nbf <= now + LEEWAY_SECS` (whole seconds, as the claims are).
pub const LEEWAY_SECS: u64 = 30;
/// Shortest interval between two JWKS fetches triggered by unknown key ids.
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);
/// Oldest key set used before it is fetched again on the next asymmetric token.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Longest a JWKS fetch may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a known user's last-seen time (and email/name) is written at most.
pub const LAST_SEEN_REFRESH: Duration = Duration::from_secs(60);
/// Users remembered by the upsert cache before it starts over (bounds memory).
const SEEN_CAPACITY: usize = 10_000;
/// Longest accepted `sub` (the `users.id` column's limit).
const MAX_SUBJECT_LEN: usize = 255;

/// Where verification keys come from. At least one of `hs256_secret` and `jwks_url` is needed.
/// `Debug` prints the key as `[REDACTED]`.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Shared key for HS256 tokens.
    pub hs256_secret: Option<SecretString>,
    /// JWKS URL for RS256 and EdDSA tokens.
    pub jwks_url: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
}

/// Why a token was refused, or why the authenticator could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither an HS256 secret nor a JWKS URL was given.
    #[error("no token verification configured: set an HS256 secret or a JWKS URL")]
    NotConfigured,
    /// The JWKS could not be fetched.
    #[error("cannot fetch the JWKS from {url}")]
    JwksFetch {
        /// The JWKS URL.
        url: String,
        /// The transport or status error.
        #[source]
        source: reqwest::Error,
    },
    /// The JWKS document is not a key set with at least one usable key.
    #[error("unusable JWKS from {url}: {reason}")]
    JwksInvalid {
        /// The JWKS URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The token uses an algorithm no configured key accepts.
    #[error("token algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// The token names a key we do not have (even after refreshing the JWKS).
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// The token has no usable `sub` claim.
    #[error("token has no valid subject")]
    InvalidSubject,
    /// The token is malformed, badly signed or has wrong claims.
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Self::Expired,
            _ => Self::Invalid(err),
        }
    }
}

/// The claims we read; everything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Verifies bearer tokens and remembers which users were recently recorded.
pub struct Authenticator {
    hs256: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Users upserted recently, so most requests skip the database write. A std mutex: it is
    /// held only for a map lookup or insert, never across an `.await`.
    seen: Mutex<HashMap<String, Seen>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.hs256.is_some())
            .field("jwks_url", &self.jwks.as_ref().map(|j| &j.url))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// What was last written for a user.
struct Seen {
    at: Instant,
    email: Option<String>,
    name: Option<String>,
}

/// A JWKS endpoint and the keys last fetched from it.
struct Jwks {
    url: String,
    client: reqwest::Client,
    /// The current key set, swapped whole on refresh so readers never wait for a fetch.
    keys: RwLock<Arc<Vec<Arc<VerifyKey>>>>,
    /// Time of the last fetch. An async mutex: holding it across the fetch makes concurrent
    /// refreshes single-flight (the others wait, then find the new key without fetching).
    last_fetch: tokio::sync::Mutex<Instant>,
    min_refresh: Duration,
    max_age: Duration,
}

/// One usable key of the JWKS.
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl Authenticator {
    /// Sets up verification; with a JWKS URL, fetches the key set once (failing if it cannot).
    pub async fn new(config: AuthConfig) -> Result<Self, AuthError> {
        Self::with_jwks_refresh(config, JWKS_MIN_REFRESH).await
    }

    /// Like [`Authenticator::new`] with a custom minimum interval between JWKS refreshes.
    pub async fn with_jwks_refresh(
        config: AuthConfig,
        min_refresh: Duration,
    ) -> Result<Self, AuthError> {
        Self::with_jwks_timing(config, min_refresh, JWKS_MAX_AGE).await
    }

    /// Like [`Authenticator::new`] with custom JWKS timing: `min_refresh` between fetches for
    /// unknown key ids, `max_age` before the key set is fetched again regardless.
    pub async fn with_jwks_timing(
        config: AuthConfig,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Result<Self, AuthError> {
        let hs256 = config
            .hs256_secret
            .filter(|s| !s.expose_secret().is_empty())
            .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()));
        let jwks = match config.jwks_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Some(Jwks::load(url, min_refresh, max_age).await?),
            None => None,
        };
        if hs256.is_none() && jwks.is_none() {
            return Err(AuthError::NotConfigured);
        }
        Ok(Self {
            hs256,
            jwks,
            issuer: config.issuer.filter(|s| !s.is_empty()),
            audience: config.audience.filter(|s| !s.is_empty()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies `bearer_token` (without the `Bearer ` prefix) and returns its user.
    pub async fn authenticate(&self, bearer_token: &str) -> Result<AuthUser, AuthError> {
        let header = decode_header(bearer_token)?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or(AuthError::Algorithm(header.alg))?;
                decode::<Claims>(bearer_token, key, &self.validation(header.alg))?.claims
            }
            Algorithm::RS256 | Algorithm::EdDSA => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::Algorithm(header.alg))?;
                jwks.refresh_if_old().await;
                let validation = self.validation(header.alg);
                let mut keys = jwks.candidates(header.kid.as_deref(), header.alg);
                if keys.is_empty() && header.kid.is_some() {
                    jwks.refresh_for(header.kid.as_deref(), header.alg).await;
                    keys = jwks.candidates(header.kid.as_deref(), header.alg);
                }
                verify_with_any(bearer_token, &keys, &validation)?
            }
            other => return Err(AuthError::Algorithm(other)),
        };
        // The subject is the key of every row the user owns: one that PostgreSQL would refuse
        // (NUL) or that no identity provider issues (control characters) is no user.
        if claims.sub.trim().is_empty()
            || claims.sub.len() > MAX_SUBJECT_LEN
            || validation::has_control(&claims.sub)
        {
            return Err(AuthError::InvalidSubject);
        }
        Ok(AuthUser {
            id: claims.sub,
            email: contact_claim("email", claims.email),
            name: contact_claim("name", claims.name),
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Whether `user` must be written to the database now (first sight, changed claims, or
    /// last written more than [`LAST_SEEN_REFRESH`] ago).
    fn needs_upsert(&self, user: &AuthUser) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(&user.id).is_none_or(|s| {
            s.at.elapsed() >= LAST_SEEN_REFRESH || s.email != user.email || s.name != user.name
        })
    }

    /// Records that `user` was just written.
    fn mark_upserted(&self, user: &AuthUser) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= SEEN_CAPACITY && !seen.contains_key(&user.id) {
            // Forgetting everyone only costs one extra upsert per active user.
            seen.clear();
        }
        seen.insert(
            user.id.clone(),
            Seen {
                at: Instant::now(),
                email: user.email.clone(),
                name: user.name.clone(),
            },
        );
    }
}

/// A contact claim (`email`, `name`) fit to store, or `None`: blank ones carry nothing, and one
/// with control characters would fail the user's upsert (PostgreSQL refuses NUL) — and with it
/// every request of a validly signed token — so it is dropped with a warning instead. The value
/// is not logged: it is personal data, and its bytes are the problem.
fn contact_claim(claim: &'static str, value: Option<String>) -> Option<String> {
    let value = value.filter(|v| !v.trim().is_empty())?;
    if validation::has_control(&value) {
        tracing::warn!(
            claim,
            "token claim holds control characters; treated as absent"
        );
        return None;
    }
    Some(value)
}

/// Tries each candidate key; a wrong key only means "try the next one".
fn verify_with_any(
    token: &str,
    keys: &[Arc<VerifyKey>],
    validation: &Validation,
) -> Result<Claims, AuthError> {
    let mut last_err = None;
    for key in keys {
        match decode::<Claims>(token, &key.key, validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                last_err = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err.map_or(AuthError::UnknownKey, AuthError::from))
}

impl Jwks {
    async fn load(
        url: String,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Result<Self, AuthError> {
        let client = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .build()
            .map_err(|source| AuthError::JwksFetch {
                url: url.clone(),
                source,
            })?;
        let keys = fetch_keys(&client, &url).await?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Arc::new(keys.into_iter().map(Arc::new).collect())),
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
            min_refresh,
            max_age,
        })
    }

    /// Fetches the key set again when it is older than `max_age`. Callers that find another
    /// one fetching go on with the current keys rather than queue behind it.
    async fn refresh_if_old(&self) {
        let Ok(mut last) = self.last_fetch.try_lock() else {
            return;
        };
        if last.elapsed() < self.max_age {
            return;
        }
        *last = Instant::now();
        self.fetch_into_place().await;
    }

    fn current(&self) -> Arc<Vec<Arc<VerifyKey>>> {
        Arc::clone(&*self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keys that may verify a token with this `kid` and `alg`: the key with that id, or every
    /// key of the algorithm when the token names none.
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<VerifyKey>> {
        self.current()
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .cloned()
            .collect()
    }

    /// Fetches the key set again unless another caller just did, or the last fetch was less
    /// than `min_refresh` ago. Failures are logged; the old keys stay in use.
    async fn refresh_for(&self, kid: Option<&str>, alg: Algorithm) {
        let mut last = self.last_fetch.lock().await;
        if !self.candidates(kid, alg).is_empty() || last.elapsed() < self.min_refresh {
            return;
        }
        *last = Instant::now();
        self.fetch_into_place().await;
    }

    /// One fetch; the new set replaces the old whole. A failure keeps the old keys.
    async fn fetch_into_place(&self) {
        match fetch_keys(&self.client, &self.url).await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS refreshed");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) =
                    Arc::new(keys.into_iter().map(Arc::new).collect());
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "JWKS refresh failed; keeping the old keys");
            }
        }
    }
}

/// Downloads the JWKS and keeps the keys we can use (signature keys for RS256 or EdDSA).
///
/// Keys of other types or uses are skipped rather than failing the whole set: identity
/// providers often publish encryption keys beside signing keys.
async fn fetch_keys(client: &reqwest::Client, url: &str) -> Result<Vec<VerifyKey>, AuthError> {
    let fetch_err = |source| AuthError::JwksFetch {
        url: url.to_owned(),
        source,
    };
    let doc: JwksDocument = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(fetch_err)?
        .json()
        .await
        .map_err(fetch_err)?;
    let keys: Vec<VerifyKey> = doc.keys.into_iter().filter_map(usable_key).collect();
    if keys.is_empty() {
        return Err(AuthError::JwksInvalid {
            url: url.to_owned(),
            reason: "no RS256 or EdDSA signing key".to_owned(),
        });
    }
    Ok(keys)
}

/// The JWKS document, with each key still raw so one odd key cannot spoil the set.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

fn usable_key(raw: serde_json::Value) -> Option<VerifyKey> {
    let jwk: Jwk = serde_json::from_value(raw).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    // A declared `alg` must agree with the key type (e.g. an RSA key meant for RS512 is not
    // used for RS256).
    if let Some(declared) = jwk.common.key_algorithm
        && declared.to_string() != format!("{alg:?}")
    {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id,
        alg,
        key,
    })
}

/// An error and its sources on one line, for logs.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// axum middleware: verifies `Authorization: Bearer <jwt>`, records the user (at most once a
/// minute) and puts the [`AuthUser`] into the request extensions; answers 401 otherwise.
pub async fn require_user(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = match bearer_token(&req) {
        Ok(token) => token,
        Err(message) => return ApiError::Unauthorized(message.to_owned()).into_response(),
    };
    let user = match state.auth.authenticate(token).await {
        Ok(user) => user,
        Err(e) => {
            tracing::debug!(error = %error_chain(&e), "bearer token refused");
            return ApiError::Unauthorized(e.to_string()).into_response();
        }
    };
    if state.auth.needs_upsert(&user) {
        // Tasks reference their owner's row, so a failed upsert must fail the request.
        if let Err(e) = state.service.upsert_user(&user).await {
            return ApiError::from(e).into_response();
        }
        state.auth.mark_upserted(&user);
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// The token of an `Authorization: Bearer …` header, or why there is none.
fn bearer_token(req: &Request) -> Result<&str, &'static str> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or("missing bearer token")?
        .to_str()
        .map_err(|_| "malformed authorization header")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("malformed authorization header")?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("malformed authorization header");
    }
    Ok(token)
}

/// Extractor for the user that [`require_user`] authenticated.
///
/// Rejects with a 500 when the middleware was not applied to the route (a wiring bug, not a
/// client error).
#[derive(Clone, Debug)]
pub struct CurrentUser(pub AuthUser);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthUser>()
            .cloned()
            .map(CurrentUser)
            .ok_or_else(|| {
                ApiError::Internal("route is missing the authentication middleware".to_owned())
            })
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
#[path = "../tests/support/jwt.rs"]
mod jwt_fixtures;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::jwt_fixtures::{JwksServer, jwk, signed};
    use super::*;

    // Test fixtures only: throwaway keys generated for these tests, never used anywhere else.
    const HS_SECRET: &str = "fixture-hs256-secret-for-unit-tests";
    const ED_KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICcGqJlWVxmUxcHTKTlTiXbWR/8gcua3KO4RMSZK9b61
-----END PRIVATE KEY-----
";
    const ED_KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOMu5S3Zi++DroQ2HXzQlice3d8iU4EXnYTthY8NXeYZ
-----END PRIVATE KEY-----
";
    const RSA_KEY: &str = include_str!("../tests/fixtures/rsa-2048.pem");
    /// The public half of [`RSA_KEY`], as an identity provider would publish it.
    const RSA_PUBLIC_PEM: &str = include_str!("../tests/fixtures/rsa-2048.pub.pem");

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs_config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(HS_SECRET.into()),
            ..AuthConfig::default()
        }
    }

    fn hs_token(claims: &serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hs256_valid_token_gives_the_user() {
        let auth = Authenticator::new(hs_config()).await.unwrap();
        let token = hs_token(
            &json!({"sub": "user-1", "email": "a@example.com", "name": "Ada", "exp": now() + 600}),
            HS_SECRET,
        );
        let user = auth.authenticate(&token).await.unwrap();
        assert_eq!(user.id, "user-1");
        assert_eq!(user.email.as_deref(), Some("a@example.com"));
        assert_eq!(user.name.as_deref(), Some("Ada"));
    }

    #[tokio::test]
    async fn hs256_rejects_expired_wrong_key_missing_sub_and_missing_exp() {
        let auth = Authenticator::new(hs_config()).await.unwrap();
        let expired = hs_token(&json!({"sub": "u", "exp": now() - 3600}), HS_SECRET);
        assert!(matches!(
            auth.authenticate(&expired).await,
            Err(AuthError::Expired)
        ));
        // Inside the leeway still passes.
        let just_expired = hs_token(&json!({"sub": "u", "exp": now() - 5}), HS_SECRET);
        assert!(auth.authenticate(&just_expired).await.is_ok());
        let wrong_key = hs_token(&json!({"sub": "u", "exp": now() + 600}), "another-secret");
        assert!(matches!(
            auth.authenticate(&wrong_key).await,
            Err(AuthError::Invalid(_))
        ));
        let no_sub = hs_token(&json!({"exp": now() + 600}), HS_SECRET);
        assert!(auth.authenticate(&no_sub).await.is_err());
        let empty_sub = hs_token(&json!({"sub": " ", "exp": now() + 600}), HS_SECRET);
        assert!(matches!(
            auth.authenticate(&empty_sub).await,
            Err(AuthError::InvalidSubject)
        ));
        let long_sub = hs_token(
            &json!({"sub": "x".repeat(256), "exp": now() + 600}),
            HS_SECRET,
        );
        assert!(matches!(
            auth.authenticate(&long_sub).await,
            Err(AuthError::InvalidSubject)
        ));
        for bad in ["a\u{0}b", "line\nbreak", "tab\tbed", "\u{7f}"] {
            let token = hs_token(&json!({"sub": bad, "exp": now() + 600}), HS_SECRET);
            assert!(
                matches!(
                    auth.authenticate(&token).await,
                    Err(AuthError::InvalidSubject)
                ),
                "{bad:?}"
            );
        }
        let no_exp = hs_token(&json!({"sub": "u"}), HS_SECRET);
        assert!(auth.authenticate(&no_exp).await.is_err());
        let not_yet = hs_token(
            &json!({"sub": "u", "exp": now() + 7200, "nbf": now() + 3600}),
            HS_SECRET,
        );
        assert!(auth.authenticate(&not_yet).await.is_err());
        assert!(auth.authenticate("not.a.jwt").await.is_err());
        assert!(auth.authenticate("").await.is_err());
    }

    #[tokio::test]
    async fn contact_claims_with_control_characters_are_dropped() {
        let auth = Authenticator::new(hs_config()).await.unwrap();
        let token = hs_token(
            &json!({"sub": "u", "email": "a\u{0}@example.com", "name": "Ada\u{1b}[2J",
                    "exp": now() + 600}),
            HS_SECRET,
        );
        let user = auth.authenticate(&token).await.unwrap();
        assert_eq!((user.id.as_str(), user.email, user.name), ("u", None, None));
        let token = hs_token(
            &json!({"sub": "u", "email": " ", "name": "Ada Lovelace", "exp": now() + 600}),
            HS_SECRET,
        );
        let user = auth.authenticate(&token).await.unwrap();
        assert_eq!(user.email, None);
        assert_eq!(user.name.as_deref(), Some("Ada Lovelace"));
    }

    #[tokio::test]
    async fn issuer_and_audience_are_enforced_when_configured() {
        let auth = Authenticator::new(AuthConfig {
            issuer: Some("https://idp.example".to_owned()),
            audience: Some("todo".to_owned()),
            ..hs_config()
        })
        .await
        .unwrap();
        let exp = now() + 600;
        let good = hs_token(
            &json!({"sub": "u", "exp": exp, "iss": "https://idp.example", "aud": "todo"}),
            HS_SECRET,
        );
        assert!(auth.authenticate(&good).await.is_ok());
        for claims in [
            json!({"sub": "u", "exp": exp, "iss": "https://evil.example", "aud": "todo"}),
            json!({"sub": "u", "exp": exp, "iss": "https://idp.example", "aud": "other"}),
            json!({"sub": "u", "exp": exp, "aud": "todo"}),
            json!({"sub": "u", "exp": exp, "iss": "https://idp.example"}),
        ] {
            let token = hs_token(&claims, HS_SECRET);
            assert!(auth.authenticate(&token).await.is_err(), "{claims}");
        }
        // Without configuration an `aud` claim is simply not checked.
        let plain = Authenticator::new(hs_config()).await.unwrap();
        let with_aud = hs_token(
            &json!({"sub": "u", "exp": exp, "aud": "anything"}),
            HS_SECRET,
        );
        assert!(plain.authenticate(&with_aud).await.is_ok());
    }

    #[tokio::test]
    async fn not_configured_is_an_error() {
        assert!(matches!(
            Authenticator::new(AuthConfig::default()).await,
            Err(AuthError::NotConfigured)
        ));
        assert!(matches!(
            Authenticator::new(AuthConfig {
                hs256_secret: Some("".into()),
                ..AuthConfig::default()
            })
            .await,
            Err(AuthError::NotConfigured)
        ));
    }

    #[tokio::test]
    async fn hs256_only_refuses_asymmetric_tokens_and_jwks_only_refuses_hs256() {
        let claims = json!({"sub": "u", "exp": now() + 600});
        let hs_only = Authenticator::new(hs_config()).await.unwrap();
        let ed = signed(Algorithm::EdDSA, Some("a"), ED_KEY_A, &claims);
        assert!(matches!(
            hs_only.authenticate(&ed).await,
            Err(AuthError::Algorithm(Algorithm::EdDSA))
        ));
        let server = JwksServer::start(vec![jwk(Algorithm::EdDSA, "a", ED_KEY_A)]).await;
        let jwks_only = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        let hs = hs_token(&claims, HS_SECRET);
        assert!(matches!(
            jwks_only.authenticate(&hs).await,
            Err(AuthError::Algorithm(Algorithm::HS256))
        ));
        // HS384 is never accepted, even with a shared secret configured.
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &claims,
            &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            hs_only.authenticate(&hs384).await,
            Err(AuthError::Algorithm(Algorithm::HS384))
        ));
    }

    #[tokio::test]
    async fn jwks_eddsa_and_rs256_tokens_verify() {
        let server = JwksServer::start(vec![
            jwk(Algorithm::EdDSA, "ed-1", ED_KEY_A),
            jwk(Algorithm::RS256, "rsa-1", RSA_KEY),
            // Keys we cannot use are skipped, not fatal.
            json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA", "use": "sig"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "weird"}),
        ])
        .await;
        let auth = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        let claims = json!({"sub": "jwks-user", "exp": now() + 600});
        let ed = signed(Algorithm::EdDSA, Some("ed-1"), ED_KEY_A, &claims);
        assert_eq!(auth.authenticate(&ed).await.unwrap().id, "jwks-user");
        let rs = signed(Algorithm::RS256, Some("rsa-1"), RSA_KEY, &claims);
        assert_eq!(auth.authenticate(&rs).await.unwrap().id, "jwks-user");
        // No kid: every key of the algorithm is tried.
        let no_kid = signed(Algorithm::EdDSA, None, ED_KEY_A, &claims);
        assert!(auth.authenticate(&no_kid).await.is_ok());
        // Right kid, wrong private key: a bad signature, not a key lookup.
        let forged = signed(Algorithm::EdDSA, Some("ed-1"), ED_KEY_B, &claims);
        assert!(matches!(
            auth.authenticate(&forged).await,
            Err(AuthError::Invalid(_))
        ));
        // A kid that names an RSA key cannot carry an EdDSA token.
        let confused = signed(Algorithm::EdDSA, Some("rsa-1"), ED_KEY_A, &claims);
        assert!(auth.authenticate(&confused).await.is_err());
        let expired = signed(
            Algorithm::RS256,
            Some("rsa-1"),
            RSA_KEY,
            &json!({"sub": "u", "exp": now() - 3600}),
        );
        assert!(matches!(
            auth.authenticate(&expired).await,
            Err(AuthError::Expired)
        ));
    }

    #[tokio::test]
    async fn jwks_rotation_refetches_on_unknown_kid_rate_limited() {
        let server = JwksServer::start(vec![jwk(Algorithm::EdDSA, "old", ED_KEY_A)]).await;
        let auth = Authenticator::with_jwks_refresh(
            AuthConfig {
                jwks_url: Some(server.url.clone()),
                ..AuthConfig::default()
            },
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(server.fetches(), 1);
        let claims = json!({"sub": "u", "exp": now() + 600});

        // The provider rotates: the old key is gone, a new one appears.
        server.publish(&[jwk(Algorithm::EdDSA, "new", ED_KEY_B)]);
        let fresh = signed(Algorithm::EdDSA, Some("new"), ED_KEY_B, &claims);
        assert!(auth.authenticate(&fresh).await.is_ok());
        assert_eq!(server.fetches(), 2);
        // Known kid: no fetch.
        assert!(auth.authenticate(&fresh).await.is_ok());
        assert_eq!(server.fetches(), 2);
        // The rotated-out key no longer verifies (after its refetch).
        let stale = signed(Algorithm::EdDSA, Some("old"), ED_KEY_A, &claims);
        assert!(matches!(
            auth.authenticate(&stale).await,
            Err(AuthError::UnknownKey)
        ));

        // With the default interval, unknown kids right after a fetch do not refetch.
        let limited = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        let before = server.fetches();
        for i in 0..5 {
            let made_up = signed(
                Algorithm::EdDSA,
                Some(&format!("made-up-{i}")),
                ED_KEY_B,
                &claims,
            );
            assert!(matches!(
                limited.authenticate(&made_up).await,
                Err(AuthError::UnknownKey)
            ));
        }
        assert_eq!(server.fetches(), before);
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_verifying_once_the_key_set_is_too_old() {
        let server = JwksServer::start(vec![
            jwk(Algorithm::EdDSA, "kept", ED_KEY_A),
            jwk(Algorithm::EdDSA, "leaked", ED_KEY_B),
        ])
        .await;
        let config = AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        };
        let claims = json!({"sub": "u", "exp": now() + 600});
        let leaked = signed(Algorithm::EdDSA, Some("leaked"), ED_KEY_B, &claims);
        let kept = signed(Algorithm::EdDSA, Some("kept"), ED_KEY_A, &claims);
        // Key sets of any age are fetched again (max age zero), with the usual rate limit for
        // unknown key ids: nothing but the age can cause the refetch below.
        let auth =
            Authenticator::with_jwks_timing(config.clone(), JWKS_MIN_REFRESH, Duration::ZERO)
                .await
                .unwrap();
        assert!(auth.authenticate(&leaked).await.is_ok());

        // The provider withdraws the leaked key; no new key id appears.
        server.publish(&[jwk(Algorithm::EdDSA, "kept", ED_KEY_A)]);
        let before = server.fetches();
        assert!(matches!(
            auth.authenticate(&leaked).await,
            Err(AuthError::UnknownKey)
        ));
        assert_eq!(server.fetches(), before + 1);
        assert!(auth.authenticate(&kept).await.is_ok());

        // With the default age the set is not fetched again on every token.
        let steady = Authenticator::new(config).await.unwrap();
        let before = server.fetches();
        for _ in 0..3 {
            assert!(steady.authenticate(&kept).await.is_ok());
        }
        assert_eq!(server.fetches(), before);
    }

    #[tokio::test]
    async fn jwks_start_up_fails_when_unreachable_or_empty() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let unreachable = Authenticator::new(AuthConfig {
            jwks_url: Some(format!("http://{addr}/jwks.json")),
            ..AuthConfig::default()
        })
        .await;
        assert!(matches!(unreachable, Err(AuthError::JwksFetch { .. })));
        let server = JwksServer::start(vec![json!({"kty": "oct", "k": "c2VjcmV0"})]).await;
        let empty = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await;
        assert!(matches!(empty, Err(AuthError::JwksInvalid { .. })));
    }

    #[tokio::test]
    async fn upsert_cache_skips_recent_users_and_notices_changes() {
        let auth = Authenticator::new(hs_config()).await.unwrap();
        let mut user = AuthUser::new("u1");
        assert!(auth.needs_upsert(&user));
        auth.mark_upserted(&user);
        assert!(!auth.needs_upsert(&user));
        user.email = Some("new@example.com".to_owned());
        assert!(auth.needs_upsert(&user));
        auth.mark_upserted(&user);
        assert!(!auth.needs_upsert(&user));
        assert!(auth.needs_upsert(&AuthUser::new("u2")));
    }

    #[test]
    fn bearer_header_parsing() {
        let req = |value: Option<&str>| {
            let mut b = http::Request::builder();
            if let Some(v) = value {
                b = b.header(http::header::AUTHORIZATION, v);
            }
            b.body(axum::body::Body::empty()).unwrap()
        };
        assert_eq!(bearer_token(&req(Some("Bearer abc"))), Ok("abc"));
        assert_eq!(bearer_token(&req(Some("bearer abc"))), Ok("abc"));
        assert!(bearer_token(&req(None)).is_err());
        assert!(bearer_token(&req(Some("Basic abc"))).is_err());
        assert!(bearer_token(&req(Some("Bearer"))).is_err());
        assert!(bearer_token(&req(Some("Bearer  "))).is_err());
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let shown = format!("{:?}", hs_config());
        assert!(!shown.contains(HS_SECRET));
        assert!(shown.contains("REDACTED"));
    }

    /// `header.payload.signature` with the given JSON, base64url without padding.
    fn raw_token(header: &serde_json::Value, claims: &serde_json::Value, sig: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}{sig}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        )
    }

    #[tokio::test]
    async fn unsigned_alg_none_tokens_are_refused_with_or_without_a_signature_segment() {
        let server = JwksServer::start(vec![jwk(Algorithm::EdDSA, "a", ED_KEY_A)]).await;
        let both = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..hs_config()
        })
        .await
        .unwrap();
        let claims = json!({"sub": "mallory", "exp": now() + 600});
        // A real signature of the same header and payload, to paste after an `alg: none` header.
        let real_sig = hs_token(&claims, HS_SECRET)
            .rsplit_once('.')
            .map(|(_, s)| format!(".{s}"))
            .unwrap();
        for alg in ["none", "None", "NONE", "nOnE", ""] {
            for kid in [None, Some("a")] {
                let mut header = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                for sig in ["", ".", ".AAAA", real_sig.as_str()] {
                    let token = raw_token(&header, &claims, sig);
                    let refused = both.authenticate(&token).await;
                    assert!(
                        matches!(refused, Err(AuthError::Invalid(_))),
                        "alg {alg:?} kid {kid:?} sig {sig:?}: {refused:?}"
                    );
                }
            }
        }
        // A header without any `alg` is no better.
        let token = raw_token(&json!({"typ": "JWT"}), &claims, ".");
        assert!(matches!(
            both.authenticate(&token).await,
            Err(AuthError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn hs256_signed_with_the_public_key_is_refused_by_a_jwks_configuration() {
        let rsa = jwk(Algorithm::RS256, "rsa-1", RSA_KEY);
        let ed = jwk(Algorithm::EdDSA, "ed-1", ED_KEY_A);
        let server = JwksServer::start(vec![rsa.clone(), ed.clone()]).await;
        let jwks_only = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        // With a shared secret too, an HS256 token is checked against that secret only.
        let both = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..hs_config()
        })
        .await
        .unwrap();
        let claims = json!({"sub": "mallory", "exp": now() + 600});
        // Every public form of the keys an attacker could use as the HMAC secret.
        let secrets: Vec<Vec<u8>> = vec![
            RSA_PUBLIC_PEM.as_bytes().to_vec(),
            RSA_PUBLIC_PEM.trim_end().as_bytes().to_vec(),
            rsa.to_string().into_bytes(),
            rsa["n"].as_str().unwrap().as_bytes().to_vec(),
            ed.to_string().into_bytes(),
            ed["x"].as_str().unwrap().as_bytes().to_vec(),
        ];
        for (i, secret) in secrets.iter().enumerate() {
            for kid in [None, Some("rsa-1"), Some("ed-1")] {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = kid.map(str::to_owned);
                let token = encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
                let refused = jwks_only.authenticate(&token).await;
                assert!(
                    matches!(refused, Err(AuthError::Algorithm(Algorithm::HS256))),
                    "secret {i}, kid {kid:?}: {refused:?}"
                );
                let refused = both.authenticate(&token).await;
                assert!(
                    matches!(refused, Err(AuthError::Invalid(_))),
                    "secret {i}, kid {kid:?}: {refused:?}"
                );
            }
        }
        // And the reverse: RS256 and EdDSA tokens never reach an HS256-only configuration.
        let hs_only = Authenticator::new(hs_config()).await.unwrap();
        for (alg, pem) in [(Algorithm::RS256, RSA_KEY), (Algorithm::EdDSA, ED_KEY_A)] {
            let token = signed(alg, Some("rsa-1"), pem, &claims);
            assert!(matches!(
                hs_only.authenticate(&token).await,
                Err(AuthError::Algorithm(a)) if a == alg
            ));
        }
    }

    /// Signs claims with one configuration's key.
    type Sign = dyn Fn(serde_json::Value) -> String;

    /// Authenticates `token(t)`, with `t` the current second, until the clock did not move
    /// across the check, so an assertion about an exact second is not blurred by a tick.
    async fn at_a_steady_second(
        auth: &Authenticator,
        token: impl Fn(u64) -> String,
    ) -> Result<AuthUser, AuthError> {
        loop {
            let before = now();
            let result = auth.authenticate(&token(before)).await;
            if now() == before {
                return result;
            }
        }
    }

    #[tokio::test]
    async fn exp_and_nbf_are_enforced_to_the_second_of_the_leeway() {
        let server = JwksServer::start(vec![jwk(Algorithm::EdDSA, "a", ED_KEY_A)]).await;
        let hs = Authenticator::new(hs_config()).await.unwrap();
        let jwks = Authenticator::new(AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .await
        .unwrap();
        let hs_sign = |claims: serde_json::Value| hs_token(&claims, HS_SECRET);
        let ed_sign =
            |claims: serde_json::Value| signed(Algorithm::EdDSA, Some("a"), ED_KEY_A, &claims);
        let configs: [(&str, &Authenticator, &Sign); 2] =
            [("hs256", &hs, &hs_sign), ("jwks", &jwks, &ed_sign)];
        for (name, auth, sign) in configs {
            // `exp` exactly LEEWAY_SECS ago: still accepted; one second more: expired.
            let edge =
                at_a_steady_second(auth, |t| sign(json!({"sub": "u", "exp": t - LEEWAY_SECS})))
                    .await;
            assert!(edge.is_ok(), "{name}: {edge:?}");
            let past = at_a_steady_second(auth, |t| {
                sign(json!({"sub": "u", "exp": t - LEEWAY_SECS - 1}))
            })
            .await;
            assert!(matches!(past, Err(AuthError::Expired)), "{name}: {past:?}");
            // `nbf` exactly LEEWAY_SECS ahead: accepted; one second more: not yet valid.
            let edge = at_a_steady_second(auth, |t| {
                sign(json!({"sub": "u", "exp": t + 600, "nbf": t + LEEWAY_SECS}))
            })
            .await;
            assert!(edge.is_ok(), "{name}: {edge:?}");
            let early = at_a_steady_second(auth, |t| {
                sign(json!({"sub": "u", "exp": t + 600, "nbf": t + LEEWAY_SECS + 1}))
            })
            .await;
            assert!(
                matches!(&early, Err(AuthError::Invalid(e))
                    if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ImmatureSignature)),
                "{name}: {early:?}"
            );
        }
    }
}
