//! The backend's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine (`cargo xtask up`), and
//! every bad variable is reported at once rather than one per restart. Secrets (database URL,
//! JWT key) may come from the environment for local use; otherwise they are read from the Dapr
//! secret store at start-up (see `main.rs`), so they never have to sit in a manifest.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use middleware::LogFormat;

/// Variables the backend reads, with their meaning, for `--help`.
pub const ENV_HELP: &str = "\
Environment (defaults in brackets):
  BACKEND_HOST           address to listen on [127.0.0.1]
  BACKEND_PORT           port for REST, MCP, internal, health and metrics routes [8000]
  DATABASE_URL           PostgreSQL URL; when unset, read from the secret store
  DATABASE_MAX_CONNECTIONS  pool size [10]
  RUN_MIGRATIONS         apply database migrations at start-up [true]
  JWT_SECRET             HS256 key; when unset and JWT_JWKS_URL is unset, read from the secret store
  JWT_JWKS_URL           JWKS URL for RS256/EdDSA tokens (instead of JWT_SECRET)
  JWT_ISSUER, JWT_AUDIENCE  required `iss` / `aud` claims [not checked]
  SECRET_STORE           Dapr secret store name [secretstore]
  DATABASE_URL_SECRET    secret holding the database URL [backend-database-url]
  JWT_SECRET_SECRET      secret holding the HS256 key [jwt-secret]
  DAPR_HTTP_PORT, DAPR_HTTP_ENDPOINT, DAPR_API_TOKEN  the sidecar (see the dapr crate) [3500]
  APP_API_TOKEN          token daprd must present on internal and Dapr callback routes [none]
  RELAY_BATCH_SIZE       outbox rows read per relay pass [256]
  RELAY_CONCURRENCY      tasks whose events are published in parallel [32]
  SHUTDOWN_GRACE_SECS    time allowed for in-flight requests and the last relay flush [10]
  LOG_FORMAT             json | pretty | auto (json when stdout is not a terminal) [auto]
  RUST_LOG               log filter [info]";

/// Typed configuration of the backend process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Database URL given in the environment (else: secret store).
    pub database_url: Option<String>,
    /// Connection pool size.
    pub database_max_connections: u32,
    /// Apply migrations at start-up.
    pub run_migrations: bool,
    /// HS256 key given in the environment (else: JWKS URL or secret store).
    pub jwt_secret: Option<String>,
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
    /// Grace period for shutdown.
    pub shutdown_grace: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_filter: String,
}

/// Every problem found in the environment, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    /// One line per bad variable.
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut parse = |k: &str, default: &str, check: &dyn Fn(&str) -> Result<(), String>| {
            let value = get(k).unwrap_or_else(|| default.to_owned());
            if let Err(why) = check(&value) {
                problems.push(format!("{k}: `{value}` {why}"));
            }
            value
        };
        let ip = |v: &str| {
            v.parse::<IpAddr>()
                .map(drop)
                .map_err(|_| "is not an IP address".into())
        };
        let port = |v: &str| {
            v.parse::<u16>()
                .map(drop)
                .map_err(|_| "is not a port number".into())
        };
        let positive = |v: &str| match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err("is not a positive integer".to_owned()),
        };
        let boolean = |v: &str| match v {
            "true" | "false" | "1" | "0" => Ok(()),
            _ => Err("is not true/false".to_owned()),
        };
        let format = |v: &str| v.parse::<LogFormat>().map(drop).map_err(|e| e.to_string());

        let host = parse("BACKEND_HOST", "127.0.0.1", &ip);
        let port_value = parse("BACKEND_PORT", "8000", &port);
        let max_conn = parse("DATABASE_MAX_CONNECTIONS", "10", &positive);
        let migrations = parse("RUN_MIGRATIONS", "true", &boolean);
        let batch = parse("RELAY_BATCH_SIZE", "256", &positive);
        let concurrency = parse("RELAY_CONCURRENCY", "32", &positive);
        let grace = parse("SHUTDOWN_GRACE_SECS", "10", &positive);
        let log_format = parse("LOG_FORMAT", "auto", &format);
        let jwt_secret = get("JWT_SECRET");
        let jwt_jwks_url = get("JWT_JWKS_URL");
        if jwt_secret.is_some() && jwt_jwks_url.is_some() {
            problems.push("JWT_SECRET and JWT_JWKS_URL: set one, not both".to_owned());
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        // Every value below was checked above; the fallbacks are unreachable.
        Ok(Self {
            listen: SocketAddr::new(
                host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port_value.parse().unwrap_or(8000),
            ),
            database_url: get("DATABASE_URL"),
            database_max_connections: max_conn.parse().unwrap_or(10),
            run_migrations: matches!(migrations.as_str(), "true" | "1"),
            jwt_secret,
            jwt_jwks_url,
            jwt_issuer: get("JWT_ISSUER"),
            jwt_audience: get("JWT_AUDIENCE"),
            secret_store: get("SECRET_STORE").unwrap_or_else(|| "secretstore".to_owned()),
            database_url_secret: get("DATABASE_URL_SECRET")
                .unwrap_or_else(|| "backend-database-url".to_owned()),
            jwt_secret_secret: get("JWT_SECRET_SECRET").unwrap_or_else(|| "jwt-secret".to_owned()),
            relay_batch_size: batch.parse().unwrap_or(256),
            relay_concurrency: concurrency.parse().unwrap_or(32),
            shutdown_grace: Duration::from_secs(grace.parse().unwrap_or(10)),
            log_format: log_format.parse().unwrap_or(LogFormat::Auto),
            log_filter: get("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_work_locally() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8000".parse().unwrap());
        assert!(c.run_migrations);
        assert_eq!(c.secret_store, "secretstore");
        assert!(c.database_url.is_none() && c.jwt_secret.is_none());
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn reads_overrides() {
        let c = load(&[
            ("BACKEND_HOST", "0.0.0.0"),
            ("BACKEND_PORT", "9000"),
            ("DATABASE_URL", "postgres://x@h/db"),
            ("RUN_MIGRATIONS", "false"),
            ("JWT_SECRET", "k"),
            ("RELAY_BATCH_SIZE", "10"),
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.database_url.as_deref(), Some("postgres://x@h/db"));
        assert!(!c.run_migrations);
        assert_eq!(c.relay_batch_size, 10);
    }

    #[test]
    fn reports_every_bad_variable_at_once() {
        let err = load(&[
            ("BACKEND_PORT", "eighty"),
            ("BACKEND_HOST", "nowhere"),
            ("RELAY_CONCURRENCY", "0"),
            ("LOG_FORMAT", "xml"),
            ("JWT_SECRET", "k"),
            ("JWT_JWKS_URL", "http://x"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
        let text = err.to_string();
        for var in [
            "BACKEND_PORT",
            "BACKEND_HOST",
            "RELAY_CONCURRENCY",
            "LOG_FORMAT",
            "JWT_JWKS_URL",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
    }
}
