//! The recurring-task binary: configuration, start-up and graceful shutdown.
//!
//! Start-up: config → logs → router → listen (daprd only opens its app channel once the app
//! listens, so the sidecar is not awaited first; a background task logs when it is ready).
//! Shutdown on SIGTERM or Ctrl-C: stop accepting and let in-flight deliveries finish within
//! the grace period; an event cut off mid-way is redelivered and de-duplicated by its id.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use middleware::env::ServiceConfig;
use middleware::server::ServiceServer;
use recurring_task::app::{self, AppState};
use recurring_task::config::Config;

/// How long the background check waits for the sidecar before warning.
const SIDECAR_WAIT: Duration = Duration::from_secs(60);

/// todo-dapr recurring-task: consumes completions of recurring tasks from `task-recurrence`,
/// computes the next due date from the previous one (RRULE) and asks the backend, through Dapr
/// service invocation, to create the next occurrence.
#[derive(Debug, Parser)]
#[command(name = "recurring-task", version, about, after_long_help = <Config as ServiceConfig>::env_help())]
struct Cli {
    /// Print the declarative Dapr Subscription manifest
    /// (dapr/subscriptions/recurring-task.yaml) and exit.
    #[arg(long)]
    print_subscriptions: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let manifests = Cli::parse()
        .print_subscriptions
        .then(recurring_task::declarative_subscriptions);
    middleware::server::consumer_main(recurring_task::APP_ID, manifests, run).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = ServiceServer::bind(recurring_task::APP_ID, &config.service).await?;
    let dapr = dapr::DaprClient::new(config.service.dapr.clone())
        .context("configuring the Dapr client")?;
    let state = AppState::new(
        dapr.clone(),
        config.backend_app_id.as_str(),
        server.metrics().clone(),
    )
    .context("registering metrics")?;
    let app = app::router(state, server.app_token());
    tracing::info!(
        backend_app_id = %config.backend_app_id,
        "creating next occurrences through the backend"
    );
    // Only informative: deliveries come through the sidecar anyway, and /readyz reports it.
    tokio::spawn(async move {
        match dapr.wait_ready(SIDECAR_WAIT).await {
            Ok(()) => tracing::info!("dapr sidecar ready"),
            Err(e) => tracing::warn!(error = %e, "dapr sidecar not ready yet"),
        }
    });
    server.serve(app).await.context("HTTP server")?;
    tracing::info!("recurring-task stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_environment() {
        let help = Cli::command().render_long_help().to_string();
        for var in ["RECURRING_TASK_PORT", "BACKEND_APP_ID", "APP_API_TOKEN"] {
            assert!(help.contains(var), "{var} missing from --help");
        }
        assert!(help.contains("--print-subscriptions"));
    }
}
