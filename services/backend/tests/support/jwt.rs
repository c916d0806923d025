//! Token and JWKS fixtures shared by the authenticator's unit tests (`src/auth.rs` includes
//! this file by path) and the `auth` integration suite, so both sign and publish keys alike.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The private key `pem` as `alg` signs with it (EdDSA, or else RSA).
pub(crate) fn encoding_key(alg: Algorithm, pem: &str) -> EncodingKey {
    match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    }
}

/// `claims` signed with `alg` and the key `pem`, under the key id `kid`.
pub(crate) fn signed(alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &encoding_key(alg, pem)).unwrap()
}

/// The public JWK of the key `pem`, published under `kid`.
pub(crate) fn jwk(alg: Algorithm, kid: &str, pem: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, pem), alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

/// A JWKS endpoint on a loopback port whose document can be swapped, counting fetches.
pub(crate) struct JwksServer {
    pub(crate) url: String,
    doc: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub(crate) async fn start(keys: Vec<Value>) -> Self {
        let doc = Arc::new(RwLock::new(json!({ "keys": keys })));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, f) = (Arc::clone(&doc), Arc::clone(&fetches));
        let app = Router::new().route(
            "/jwks.json",
            get(move || {
                let (d, f) = (Arc::clone(&d), Arc::clone(&f));
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let doc = d.read().unwrap().clone();
                    axum::Json(doc)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/jwks.json"),
            doc,
            fetches,
        }
    }

    /// Replaces the published key set.
    pub(crate) fn publish(&self, keys: &[Value]) {
        *self.doc.write().unwrap() = json!({ "keys": keys });
    }

    /// How often the document has been fetched.
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
