//! The service's configuration, read from the environment in one pass.
//!
//! Every variable has a default that works on a developer machine, and every bad variable —
//! ours and the sidecar's `DAPR_*` ones — is reported at once rather than one per restart.

pub use middleware::env::EnvError as ConfigError;
use middleware::env::{EnvReader, ServiceConfig, ServiceEnv};
use middleware::env_help::EnvDoc;

/// What the variables the service reads mean. `ServiceConfig::env_help` lists them for
/// `--help` in the order [`Config`]'s `read` reads them; the rows every service shares are in
/// `middleware::env_help::SHARED`, and a test checks that every variable read has a row and
/// every row is read.
pub const ENV_DOCS: &[EnvDoc] = &[
    ("RECURRING_TASK_HOST", "address to listen on [127.0.0.1]"),
    (
        "RECURRING_TASK_PORT",
        "port for event deliveries, health and metrics routes [8003]",
    ),
    (
        "BACKEND_APP_ID",
        "Dapr app id of the backend, called for each next occurrence [backend]",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        "time allowed for in-flight deliveries at shutdown [10]",
    ),
];

/// Typed configuration of the recurring-task process. `Debug` is safe to log: the token is a
/// `SecretString`, which prints `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address, metrics port, app token, shutdown and logging, read the same way in
    /// every service.
    pub service: ServiceEnv,
    /// Dapr app id of the backend.
    pub backend_app_id: String,
    /// How to reach our sidecar.
    pub dapr: dapr::ClientConfig,
}

impl ServiceConfig for Config {
    const ENV_DOCS: &'static [EnvDoc] = ENV_DOCS;

    fn service(&self) -> &ServiceEnv {
        &self.service
    }

    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(lookup);
        let service = ServiceEnv::read(&mut env, "RECURRING_TASK", 8003);
        let backend_app_id = env.app_id("BACKEND_APP_ID", "backend");
        let dapr = env.dapr_client();
        env.finish()?;
        Ok(Self {
            service,
            backend_app_id,
            dapr,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use middleware::LogFormat;
    use middleware::env::map_lookup;
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn help_describes_exactly_what_the_config_reads() {
        Config::assert_help_complete();
        assert!(Config::env_help().contains("APP_API_TOKEN"));
    }

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&map_lookup(vars))
    }

    #[test]
    fn defaults_work_locally() {
        let c = load(&[]).unwrap();
        assert_eq!(c.service.listen, "127.0.0.1:8003".parse().unwrap());
        assert_eq!(c.backend_app_id, "backend");
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3500");
        assert!(c.service.app_api_token.is_none());
        assert_eq!(c.service.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.service.log_filter, "info");
    }

    #[test]
    fn reads_overrides() {
        let c = load(&[
            ("RECURRING_TASK_HOST", "0.0.0.0"),
            ("RECURRING_TASK_PORT", "9003"),
            ("BACKEND_APP_ID", "todo-backend"),
            ("DAPR_HTTP_PORT", "3603"),
            ("APP_API_TOKEN", "s3cret"),
            ("SHUTDOWN_GRACE_SECS", "3"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ])
        .unwrap();
        assert_eq!(c.service.listen, "0.0.0.0:9003".parse().unwrap());
        assert_eq!(c.backend_app_id, "todo-backend");
        assert_eq!(c.dapr.http_endpoint, "http://127.0.0.1:3603");
        assert_eq!(
            c.service
                .app_api_token
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some("s3cret")
        );
        assert_eq!(c.service.shutdown_grace, Duration::from_secs(3));
        assert_eq!(c.service.log_format, LogFormat::Json);
        assert_eq!(c.service.log_filter, "debug");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn reports_every_bad_variable_at_once() {
        let err = load(&[
            ("RECURRING_TASK_HOST", "nowhere"),
            ("RECURRING_TASK_PORT", "eighty"),
            ("BACKEND_APP_ID", "back/end"),
            ("SHUTDOWN_GRACE_SECS", "0"),
            ("LOG_FORMAT", "xml"),
            ("DAPR_HTTP_PORT", "abc"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 6, "{err}");
        let text = err.to_string();
        for var in [
            "RECURRING_TASK_HOST",
            "RECURRING_TASK_PORT",
            "BACKEND_APP_ID",
            "SHUTDOWN_GRACE_SECS",
            "LOG_FORMAT",
            "DAPR_HTTP_PORT",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
    }
}
