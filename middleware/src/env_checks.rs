//! What every service's configuration test checks alike: that the service reads the shared
//! variables ([`crate::env::ServiceEnv`] and the Dapr client's) under its own prefix and port,
//! documents them in `--help`, reports every bad one at once and never prints the app token.
//!
//! [`ServiceEnv`](crate::env::ServiceEnv) itself is tested in [`crate::env`]; these checks prove
//! the wiring of each service's `Config`, through
//! [`ServiceConfig::assert_reads_shared_variables`].

use std::fmt::Debug;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::LogFormat;
use crate::env::ServiceConfig;

/// A token value that must never appear in `Debug` output. Test fixture only.
const FIXTURE_TOKEN: &str = "fixture-shared-app-token";

/// Panics with the failing check's message unless `C` reads the shared variables as documented.
pub fn assert_reads_shared_variables<C>(prefix: &str, default_port: u16, own_bad: &[(&str, &str)])
where
    C: ServiceConfig + Debug,
{
    C::assert_help_complete();
    let help = C::env_help();
    for var in [
        "APP_API_TOKEN",
        "DAPR_HTTP_PORT",
        "SHUTDOWN_GRACE_SECS",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(var),
            "--help does not describe {var}:\n{help}"
        );
    }
    let host = format!("{prefix}_HOST");
    let port = format!("{prefix}_PORT");

    let defaults = C::load(&[]).unwrap_or_else(|e| panic!("defaults do not load: {e}"));
    let service = defaults.service();
    assert_eq!(
        service.listen,
        std::net::SocketAddr::from(([127, 0, 0, 1], default_port))
    );
    assert!(service.app_api_token.is_none());
    assert_eq!(service.shutdown_grace, Duration::from_secs(10));
    assert_eq!(service.log_format, LogFormat::Auto);
    assert_eq!(service.log_filter, "info");
    assert_eq!(
        defaults.service().dapr.http_endpoint,
        "http://127.0.0.1:3500"
    );

    let set = C::load(&[
        (&host, "0.0.0.0"),
        (&port, "9009"),
        ("DAPR_HTTP_PORT", "3609"),
        ("APP_API_TOKEN", FIXTURE_TOKEN),
        ("SHUTDOWN_GRACE_SECS", "3"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ])
    .unwrap_or_else(|e| panic!("overrides do not load: {e}"));
    let service = set.service();
    assert_eq!(service.listen, "0.0.0.0:9009".parse().expect("literal"));
    assert_eq!(
        service
            .app_api_token
            .as_ref()
            .map(ExposeSecret::expose_secret),
        Some(FIXTURE_TOKEN)
    );
    assert_eq!(service.shutdown_grace, Duration::from_secs(3));
    assert_eq!(service.log_format, LogFormat::Json);
    assert_eq!(service.log_filter, "debug");
    assert_eq!(set.service().dapr.http_endpoint, "http://127.0.0.1:3609");
    let shown = format!("{set:?}");
    assert!(
        !shown.contains(FIXTURE_TOKEN),
        "Debug shows the token: {shown}"
    );
    assert!(shown.contains("REDACTED"), "{shown}");

    let shared_bad = [
        (host.as_str(), "nowhere"),
        (port.as_str(), "eighty"),
        ("SHUTDOWN_GRACE_SECS", "0"),
        ("LOG_FORMAT", "xml"),
        ("DAPR_HTTP_PORT", "abc"),
    ];
    let bad: Vec<(&str, &str)> = shared_bad.iter().chain(own_bad).copied().collect();
    let err = match C::load(&bad) {
        Ok(config) => panic!("bad values were accepted: {config:?}"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert_eq!(err.problems.len(), bad.len(), "{text}");
    for (var, _) in &bad {
        assert!(text.contains(var), "{var} missing from: {text}");
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use crate::env::{EnvError, EnvReader, ServiceEnv};
    use crate::env_help::EnvDoc;

    use super::*;

    /// A config that reads the shared variables under `SVC`, plus `OWN` (a positive integer).
    #[derive(Debug)]
    struct Wired {
        service: ServiceEnv,
    }

    impl ServiceConfig for Wired {
        const ENV_DOCS: &'static [EnvDoc] = &[
            ("SVC_HOST, SVC_PORT", "where to listen"),
            ("OWN", "a positive integer, default 1"),
        ];
        fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
            let mut env = EnvReader::new(lookup);
            let service = ServiceEnv::read(&mut env, "SVC", 8100);
            let _own: u32 = env.parse_with("OWN", 1, crate::env::positive_integer);
            env.finish().map(|()| Self { service })
        }
        fn service(&self) -> &ServiceEnv {
            &self.service
        }
    }

    #[test]
    fn a_config_wired_like_every_service_passes() {
        Wired::assert_reads_shared_variables("SVC", 8100, &[("OWN", "0")]);
    }

    #[test]
    #[should_panic(expected = "left: 127.0.0.1:8100")]
    fn another_default_port_fails() {
        Wired::assert_reads_shared_variables("SVC", 8101, &[]);
    }

    #[test]
    #[should_panic(expected = "right: 0.0.0.0:9009")]
    fn another_prefix_fails() {
        Wired::assert_reads_shared_variables("OTHER", 8100, &[]);
    }

    /// The same config with a `Debug` that shows the token.
    struct Leaky(Wired);

    impl fmt::Debug for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let token = self.0.service.app_api_token.as_ref();
            write!(f, "{:?}", token.map(ExposeSecret::expose_secret))
        }
    }

    impl ServiceConfig for Leaky {
        const ENV_DOCS: &'static [EnvDoc] = Wired::ENV_DOCS;
        fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
            Wired::read(lookup).map(Leaky)
        }
        fn service(&self) -> &ServiceEnv {
            &self.0.service
        }
    }

    #[test]
    #[should_panic(expected = "Debug shows the token")]
    fn a_debug_that_prints_the_token_fails() {
        Leaky::assert_reads_shared_variables("SVC", 8100, &[]);
    }
}
