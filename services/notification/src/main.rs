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
use middleware::server::ServiceServer;
use middleware::{Publisher, PublisherConfig};
use notification::app::{self, AppState};
use notification::cli::Cli;
use notification::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let manifests = Cli::parse()
        .print_subscriptions
        .then(notification::subscriptions_yaml);
    middleware::server::consumer_main(notification::SERVICE, manifests, run).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = ServiceServer::bind(notification::SERVICE, &config.service).await?;
    let metrics = server.metrics().clone();
    let dapr = dapr::DaprClient::new(config.service.dapr.clone())
        .context("configuring the Dapr client")?;
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
    let app = app::router(state, server.app_token());
    tracing::info!(backend = %config.backend_app_id, "asking the backend about fired reminders");
    server.serve(app).await.context("HTTP server")?;
    tracing::info!("notification stopped");
    Ok(())
}
