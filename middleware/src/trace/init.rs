//! [`init_tracing`]: the process-wide subscriber, JSON for machines and pretty for people.

use std::{fmt, io::IsTerminal, str::FromStr};

use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, with the current span's fields (`request_id`, `trace_id`).
    Json,
    /// Multi-line output for people; coloured only when stdout is a terminal.
    Pretty,
    /// [`LogFormat::Pretty`] when stdout is a terminal, [`LogFormat::Json`] otherwise.
    #[default]
    Auto,
}

impl LogFormat {
    /// Resolves [`LogFormat::Auto`] against the actual stdout.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stdout().is_terminal() => Self::Pretty,
            Self::Auto => Self::Json,
            other => other,
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
            Self::Auto => "auto",
        })
    }
}

/// A log format name other than `json`, `pretty` or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}, expected json, pretty or auto")]
pub struct ParseLogFormatError(String);

impl FromStr for LogFormat {
    type Err = ParseLogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            "auto" | "" => Ok(Self::Auto),
            _ => Err(ParseLogFormatError(s.to_owned())),
        }
    }
}

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InitTracingError {
    /// The filter is not valid `RUST_LOG` syntax.
    #[error("invalid log filter {filter:?}")]
    Filter {
        /// The rejected filter.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber with [`LogFormat::Auto`]; see [`init_tracing_with`].
pub fn init_tracing(service: &str, filter: &str) -> Result<(), InitTracingError> {
    init_tracing_with(service, filter, LogFormat::Auto)
}

/// Installs the global subscriber: `filter` in `RUST_LOG` syntax (e.g. `info,sqlx=warn`),
/// lines in `format`, and one `info!` line announcing `service` and the format.
///
/// The filter is passed in rather than read from the environment so that the service's config
/// loader stays the only place that reads variables.
pub fn init_tracing_with(
    service: &str,
    filter: &str,
    format: LogFormat,
) -> Result<(), InitTracingError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| InitTracingError::Filter {
        filter: filter.to_owned(),
        source,
    })?;
    let format = format.resolve();
    let registry = tracing_subscriber::registry().with(env_filter);
    let installed = match format {
        LogFormat::Pretty => registry
            .with(pretty_layer(
                std::io::stdout,
                std::io::stdout().is_terminal(),
            ))
            .try_init(),
        LogFormat::Json | LogFormat::Auto => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    installed.map_err(InitTracingError::AlreadyInstalled)?;
    tracing::info!(service, log_format = %format, "tracing initialised");
    Ok(())
}

/// The pretty layer writing to `writer`. tracing-subscriber colours by default whatever the
/// output is (unless `NO_COLOR` is set), so a log file — `cargo xtask up` asks for pretty logs in
/// `target/harness-logs/` — would fill with escape codes; off a terminal they are switched off.
fn pretty_layer<S, W>(writer: W, terminal: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .pretty()
        .with_writer(writer);
    // On a terminal the library's default stays, which honours NO_COLOR.
    if terminal {
        layer
    } else {
        layer.with_ansi(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn parses_formats() {
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("pretty".parse::<LogFormat>().unwrap(), LogFormat::Pretty);
        assert_eq!("auto".parse::<LogFormat>().unwrap(), LogFormat::Auto);
        assert!("xml".parse::<LogFormat>().is_err());
        assert_ne!(LogFormat::Auto.resolve(), LogFormat::Auto);
    }

    /// A writer into a shared buffer, for reading back what a layer wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pretty_lines_off_a_terminal_carry_no_colour_codes() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            tracing_subscriber::registry().with(pretty_layer(move || writer.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(event_id = "e-1", "reminder not sent yet");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("reminder not sent yet"), "{text}");
        assert!(text.contains("event_id"), "{text}");
        assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
    }

    #[test]
    fn rejects_bad_filters_before_installing() {
        let err = init_tracing("test", "info,[").unwrap_err();
        assert!(matches!(err, InitTracingError::Filter { .. }), "{err}");
    }
}
