//! The notification binary: configuration, start-up order and graceful shutdown.
//!
//! Start-up: config → logs → router → listen. Nothing waits for the sidecar first: daprd
//! only opens its app channel (and asks `/dapr/subscribe`) once our port accepts, so the
//! port must open first; calls to Dapr happen per event and answer `RETRY`/500 until the
//! sidecar is up. Shutdown on SIGTERM or Ctrl-C: stop accepting and let in-flight deliveries
//! and triggers finish within the grace period.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use middleware::env::ServiceConfig;
use middleware::{AppTokenLayer, Metrics, Publisher, PublisherConfig};
use notification::app::{self, AppState};
use notification::cli::Cli;
use notification::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_subscriptions {
        return middleware::server::print_output(
            notification::SERVICE,
            notification::subscriptions_yaml(),
        );
    }
    middleware::server::run_main(notification::SERVICE, Config::from_env(), run).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let dapr = dapr::DaprClient::new(config.dapr.clone()).context("configuring the Dapr client")?;
    let metrics = Metrics::new(notification::SERVICE)?;
    let metrics_listener =
        middleware::server::bind_metrics(config.service.metrics_listen, &metrics)
            .await
            .context("METRICS_PORT")?;
    let publisher =
        Publisher::dapr(dapr.clone(), &PublisherConfig::default()).with_metrics(metrics.clone());
    let state = AppState::new(
        dapr,
        publisher,
        metrics,
        &config.backend_app_id,
        &config.state_store,
    )
    .context("registering metrics")?
    .with_job_failure_policy(config.job_failure_policy);
    // In the background: the sidecar may start after us, and nothing else waits for it.
    tokio::spawn(notification::sweep::keep_registered(state.dapr.clone()));
    let app = app::router(
        state,
        AppTokenLayer::new(config.service.app_api_token.clone()),
    );
    tracing::info!(backend = %config.backend_app_id, "asking the backend about fired reminders");
    middleware::server::serve_service(
        notification::SERVICE,
        config.service.listen,
        app,
        metrics_listener,
        config.service.shutdown(),
    )
    .await
    .context("HTTP server")?;
    tracing::info!("notification stopped");
    Ok(())
}
