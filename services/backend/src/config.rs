//! The backend's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine (`cargo xtask up`), and
//! every bad variable is reported at once rather than one per restart. Secrets (database URL,
//! JWT key) may come from the environment for local use; otherwise they are read from the Dapr
//! secret store at start-up (see `main.rs`), so they never have to sit in a manifest.

use secrecy::SecretString;
use std::time::Duration;

pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceConfig, ServiceEnv};
use middleware::env_help::EnvDoc;

/// What the variables the service reads mean. `ServiceConfig::env_help` lists them for
/// `--help` in the order [`Config`]'s `read` reads them; the rows every service shares are in
/// `middleware::env_help::SHARED`, and a test checks that every variable read has a row and
/// every row is read.
pub const ENV_DOCS: &[EnvDoc] = &[
    ("BACKEND_HOST", "address to listen on [127.0.0.1]"),
    (
        "BACKEND_PORT",
        "port for REST, MCP, internal, health and metrics routes [8000]",
    ),
    (
        "DATABASE_URL",
        "PostgreSQL URL; when unset, read from the secret store. TLS (rustls):\nadd ?sslmode=verify-full&sslrootcert=<CA file> to verify the server",
    ),
    (
        "DATABASE_MAX_CONNECTIONS",
        "pool size of the API's requests [10]",
    ),
    (
        "RUN_MIGRATIONS",
        "apply database migrations at start-up [true]",
    ),
    (
        "JWT_SECRET",
        "HS256 key; when unset and JWT_JWKS_URL is unset, read from the secret store",
    ),
    (
        "JWT_JWKS_URL",
        "JWKS URL for RS256/EdDSA tokens (instead of JWT_SECRET)",
    ),
    (
        "JWT_ISSUER, JWT_AUDIENCE",
        "required `iss` / `aud` claims [not checked]",
    ),
    ("SECRET_STORE", "Dapr secret store name [secretstore]"),
    (
        "DATABASE_URL_SECRET",
        "secret holding the database URL [backend-database-url]",
    ),
    (
        "JWT_SECRET_SECRET",
        "secret holding the HS256 key [jwt-secret]",
    ),
    (
        "APP_API_TOKEN",
        "token daprd must present on internal and Dapr callback routes [none]",
    ),
    ("RELAY_BATCH_SIZE", "outbox rows read per relay pass [256]"),
    (
        "RELAY_DATABASE_CONNECTIONS",
        "the outbox relay's own pool, beside the API's (one holds its lock; the active relay \
         opens one more to listen for other replicas' commits) [3]",
    ),
    (
        "RELAY_CONCURRENCY",
        "tasks whose events are published in parallel [32]",
    ),
    (
        "RELAY_PUBLISH_TIMEOUT_SECS",
        "longest wait for daprd to answer one publish [30]",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        "time allowed for in-flight requests and the last relay flush [10]",
    ),
];

/// Typed configuration of the backend process. `Debug` is safe to log: the database URL (which
/// may carry a password) and the HS256 key are `SecretString`s, which print `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address, metrics port, app token, shutdown and logging, read the same way in
    /// every service.
    pub service: ServiceEnv,
    /// Database URL given in the environment (else: secret store).
    pub database_url: Option<SecretString>,
    /// Size of the pool the API's requests use.
    pub database_max_connections: u32,
    /// Size of the outbox relay's own pool: requests queueing for the API's pool under load
    /// must not delay the relay's reads and marks (and so every event) behind them.
    pub relay_database_connections: u32,
    /// Apply migrations at start-up.
    pub run_migrations: bool,
    /// HS256 key given in the environment (else: JWKS URL or secret store).
    pub jwt_secret: Option<SecretString>,
    /// JWKS URL for asymmetric tokens.
    pub jwt_jwks_url: Option<String>,
    /// Required issuer.
    pub jwt_issuer: Option<String>,
    /// Required audience.
    pub jwt_audience: Option<String>,
    /// Dapr secret store name.
    pub secret_store: String,
    /// Secret name of the database URL.
    pub database_url_secret: String,
    /// Secret name of the HS256 key.
    pub jwt_secret_secret: String,
    /// Outbox rows read per relay pass.
    pub relay_batch_size: i64,
    /// Tasks whose events are published in parallel.
    pub relay_concurrency: usize,
    /// Longest wait for daprd's answer to one publish. Long on purpose: a publish the relay
    /// gives up on may still reach the broker (daprd's producer keeps trying), and the relay
    /// then publishes it again; waiting for daprd's own verdict avoids that duplicate.
    pub relay_publish_timeout: Duration,
}

impl ServiceConfig for Config {
    const ENV_DOCS: &'static [EnvDoc] = ENV_DOCS;

    fn service(&self) -> &ServiceEnv {
        &self.service
    }

    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(lookup);
        let service = ServiceEnv::read(&mut env, "BACKEND", 8000);
        let database_max_connections = env.positive::<u32>("DATABASE_MAX_CONNECTIONS", 10);
        let run_migrations = env.flag("RUN_MIGRATIONS", true);
        let relay_batch_size = env.positive::<u32>("RELAY_BATCH_SIZE", 256);
        // The lock's connection, a read, and an update marking rows published, at once.
        let relay_database_connections = env.positive::<u32>("RELAY_DATABASE_CONNECTIONS", 3);
        if relay_database_connections == 1 {
            env.problem("RELAY_DATABASE_CONNECTIONS: at least 2 (the relay's lock holds one)");
        }
        let relay_concurrency = env.positive::<u32>("RELAY_CONCURRENCY", 32);
        let relay_publish_timeout = env.secs("RELAY_PUBLISH_TIMEOUT_SECS", 30);
        let jwt_secret = env.optional("JWT_SECRET").map(SecretString::from);
        let jwt_jwks_url = env.optional("JWT_JWKS_URL");
        if jwt_secret.is_some() && jwt_jwks_url.is_some() {
            env.problem("JWT_SECRET and JWT_JWKS_URL: set one, not both");
        }
        let config = Self {
            service,
            database_url: env.optional("DATABASE_URL").map(SecretString::from),
            database_max_connections,
            relay_database_connections,
            run_migrations,
            jwt_secret,
            jwt_jwks_url,
            jwt_issuer: env.optional("JWT_ISSUER"),
            jwt_audience: env.optional("JWT_AUDIENCE"),
            secret_store: env.string("SECRET_STORE", "secretstore"),
            database_url_secret: env.string("DATABASE_URL_SECRET", "backend-database-url"),
            jwt_secret_secret: env.string("JWT_SECRET_SECRET", "jwt-secret"),
            relay_batch_size: relay_batch_size.into(),
            // Lossless: `usize` is at least 32 bits on every target we build for.
            relay_concurrency: relay_concurrency as usize,
            relay_publish_timeout,
        };
        env.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn reads_the_variables_every_service_shares() {
        Config::assert_reads_shared_variables(
            "BACKEND",
            8000,
            &[
                ("RELAY_CONCURRENCY", "0"),
                ("RELAY_BATCH_SIZE", "0"),
                ("RELAY_DATABASE_CONNECTIONS", "0"),
            ],
        );
    }

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(vars)
    }

    #[test]
    fn defaults_work_locally() {
        let c = load(&[]).unwrap();
        assert!(c.run_migrations);
        assert_eq!(c.secret_store, "secretstore");
        assert!(c.database_url.is_none() && c.jwt_secret.is_none());
        assert_eq!(c.relay_publish_timeout, Duration::from_secs(30));
        assert_eq!(
            (c.database_max_connections, c.relay_database_connections),
            (10, 3)
        );
    }

    #[test]
    fn reads_overrides() {
        let c = load(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("RUN_MIGRATIONS", "false"),
            ("JWT_SECRET", "k"),
            ("RELAY_BATCH_SIZE", "10"),
            ("RELAY_PUBLISH_TIMEOUT_SECS", "5"),
            ("RELAY_DATABASE_CONNECTIONS", "2"),
        ])
        .unwrap();
        assert_eq!(c.relay_database_connections, 2);
        assert_eq!(c.relay_publish_timeout, Duration::from_secs(5));
        assert_eq!(
            c.database_url.as_ref().map(ExposeSecret::expose_secret),
            Some("postgres://x@h/db")
        );
        assert!(!c.run_migrations);
        assert_eq!(c.relay_batch_size, 10);
    }

    #[test]
    fn the_relay_needs_a_connection_beside_its_lock() {
        let err = load(&[("RELAY_DATABASE_CONNECTIONS", "1")]).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
        assert!(load(&[("RELAY_DATABASE_CONNECTIONS", "2")]).is_ok());
    }

    #[test]
    fn two_jwt_key_sources_are_one_problem() {
        let err = load(&[
            ("RELAY_CONCURRENCY", "0"),
            ("JWT_SECRET", "k"),
            ("JWT_JWKS_URL", "http://x"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("RELAY_CONCURRENCY") && text.contains("JWT_JWKS_URL"),
            "{text}"
        );
    }

    #[test]
    fn debug_hides_the_database_url_and_the_hs256_key() {
        // Test fixtures only.
        let c = load(&[
            ("DATABASE_URL", "postgres://app:fixture-db-pw@db/todo"),
            ("JWT_SECRET", "fixture-hs256-key"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("fixture-db-pw") && !shown.contains("fixture-hs256-key"));
        assert!(shown.contains("REDACTED") && shown.contains("log_filter"));
    }
}
