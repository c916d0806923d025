//! The email-delivery binary: configuration, start-up order and graceful shutdown.
//!
//! Start-up: flags → config → logs → SMTP credentials (environment first, else the Dapr
//! secret store) → mailer, ledger, publisher → HTTP. Shutdown on SIGTERM or Ctrl-C: stop
//! accepting, let in-flight deliveries finish within the grace period. A delivery cut off by
//! the grace period is safe: its claim expires and Dapr delivers the event again.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use email_delivery::app::{self, AppState};
use email_delivery::cli::Cli;
use email_delivery::config::{Config, SmtpTls};
use email_delivery::delivery::Delivery;
use email_delivery::ledger::Ledger;
use email_delivery::mail::Mailer;
use email_delivery::metrics::EmailMetrics;
use email_delivery::{SERVICE, credentials};
use middleware::server::ServiceServer;
use middleware::{Publisher, PublisherConfig};

/// How long start-up waits for the sidecar when credentials must come from it.
const SIDECAR_WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    let manifests = Cli::parse()
        .print_subscriptions
        .then(email_delivery::declarative_subscriptions);
    middleware::server::consumer_main(SERVICE, manifests, run).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let dapr = dapr::DaprClient::new(config.service.dapr.clone())
        .context("configuring the Dapr client")?;
    let credentials = match &config.smtp.credentials {
        Some(credentials) => Some(credentials.clone()),
        None => {
            dapr.wait_ready(SIDECAR_WAIT)
                .await
                .context("waiting for the Dapr sidecar to read SMTP credentials")?;
            credentials::from_secret_store(
                &dapr,
                &config.secret_store,
                &config.smtp_credentials_secret,
            )
            .await
            .context("reading SMTP credentials")?
        }
    };
    tracing::info!(
        smtp_host = %config.smtp.host,
        smtp_port = config.smtp.port,
        smtp_tls = ?config.smtp.tls,
        smtp_auth = credentials.is_some(),
        "mail server configured"
    );
    if credentials.is_some() && config.smtp.tls == SmtpTls::None && !is_loopback(&config.smtp.host)
    {
        tracing::warn!(
            smtp_host = %config.smtp.host,
            "SMTP credentials will cross the network unencrypted; set SMTP_TLS=starttls or tls"
        );
    }
    let mailer =
        Mailer::new(&config.smtp, credentials.as_ref()).context("setting up the SMTP client")?;

    let server = ServiceServer::bind(SERVICE, &config.service).await?;
    let metrics = server.metrics().clone();
    let email_metrics = EmailMetrics::register(&metrics)?;
    // Few, quick retries: a delivery waiting on a publish holds its Dapr delivery slot, and a
    // failed publish is retried through the event's redelivery anyway.
    let publisher = Publisher::dapr(
        dapr.clone(),
        &PublisherConfig::default().with_max_retries(2),
    )
    .with_metrics(metrics.clone());
    let ledger = Ledger::new(
        dapr.clone(),
        config.state_store.clone(),
        config.claim_ttl,
        config.record_ttl,
    );
    let state = AppState {
        delivery: Delivery::new(ledger, mailer, publisher, email_metrics),
        dapr,
        metrics,
    };
    let app = app::router(state, server.app_token());
    server.serve(app).await.context("HTTP server")?;
    tracing::info!("{SERVICE} stopped");
    Ok(())
}

/// Whether `host` is this machine (a local relay), where plain-text SMTP is acceptable.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
