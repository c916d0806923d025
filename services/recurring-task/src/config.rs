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
        env.finish()?;
        Ok(Self {
            service,
            backend_app_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_variables_every_service_shares() {
        Config::assert_reads_shared_variables(
            "RECURRING_TASK",
            8003,
            &[("BACKEND_APP_ID", "back/end")],
        );
    }

    #[test]
    fn reads_its_own_variables() {
        assert_eq!(Config::load(&[]).unwrap().backend_app_id, "backend");
        let c = Config::load(&[("BACKEND_APP_ID", "todo-backend")]).unwrap();
        assert_eq!(c.backend_app_id, "todo-backend");
    }
}
