//! The backend binary: configuration, start-up order and graceful shutdown.
//!
//! Start-up: config → logs → secrets (environment first, else the Dapr secret store) →
//! database and migrations → relay → HTTP. Shutdown on SIGTERM or Ctrl-C: stop accepting,
//! finish in-flight requests (bounded by the grace period), then let the relay publish what is
//! still pending within the same budget.

use secrecy::{ExposeSecret, SecretString};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backend::app::{self, AppState};
use backend::auth::{AuthConfig, Authenticator};
use backend::config::Config;
use backend::relay::{Relay, RelayConfig, RelayMetrics};
use backend::{db, handoff, service::TaskService};
use clap::{Parser, Subcommand};
use middleware::env::ServiceConfig;
use middleware::server::ServiceServer;
use middleware::{Publisher, PublisherConfig};
use tokio::sync::{Notify, watch};

/// How long start-up waits for the sidecar when secrets must come from it.
const SIDECAR_WAIT: Duration = Duration::from_secs(60);

/// todo-dapr backend: tasks over REST (/api/v1) and MCP (/mcp), stored in PostgreSQL, with
/// every change published as a CloudEvent through the Dapr sidecar (transactional outbox).
/// Without a subcommand it serves; `import-legacy` imports the original system instead.
#[derive(Debug, Parser)]
#[command(name = "backend", version, about, after_long_help = <Config as ServiceConfig>::env_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
enum Command {
    ImportLegacy(backend::import::ImportArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(Command::ImportLegacy(args)) = Cli::parse().command {
        return backend::import::main(args).await;
    }
    middleware::server::run_main("backend", Config::from_env(), run).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let dapr = dapr::DaprClient::new(config.service.dapr.clone())
        .context("configuring the Dapr client")?;
    let database_url = match &config.database_url {
        Some(url) => url.clone(),
        None => read_secret(&dapr, &config.secret_store, &config.database_url_secret).await?,
    };
    let hs256_secret = match (&config.jwt_secret, &config.jwt_jwks_url) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(_)) => None,
        (None, None) => {
            Some(read_secret(&dapr, &config.secret_store, &config.jwt_secret_secret).await?)
        }
    };
    let auth = Authenticator::new(AuthConfig {
        hs256_secret,
        jwks_url: config.jwt_jwks_url.clone(),
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
    })
    .await
    .context("setting up token verification")?;

    let pool = db::connect(
        database_url.expose_secret(),
        config.database_max_connections,
    )
    .await
    .context("connecting to PostgreSQL")?;
    if config.run_migrations {
        db::MIGRATOR
            .run(&pool)
            .await
            .context("applying migrations")?;
    }

    let server = ServiceServer::bind("backend", &config.service).await?;
    let metrics = server.metrics().clone();
    let relay_metrics = RelayMetrics::register(metrics.registry())?;
    let waker = Arc::new(Notify::new());
    let (handoff, inbox) = handoff::channel(handoff::HANDOFF_CAPACITY);
    let service = TaskService::new(pool.clone(), Arc::clone(&waker)).with_handoff(handoff);
    // The relay retries on its own schedule; the publisher's retries only smooth blips.
    let publisher_config = PublisherConfig {
        timeout: config.relay_publish_timeout,
        ..PublisherConfig::default()
    };
    let publisher = Publisher::dapr(dapr.clone(), &publisher_config.with_max_retries(2))
        .with_metrics(metrics.clone());
    // Its own pool: under load, requests queue for the API's connections, and the relay's
    // reads and marks behind them would hold back every event.
    let relay_pool = db::connect(
        database_url.expose_secret(),
        config.relay_database_connections,
    )
    .await
    .context("connecting the outbox relay to PostgreSQL")?;
    let relay = Relay::new(
        relay_pool,
        publisher,
        waker,
        RelayConfig {
            batch_size: config.relay_batch_size,
            concurrency: config.relay_concurrency,
            ..RelayConfig::default()
        },
        Some(relay_metrics),
    )
    .with_handoff(inbox);
    let (stop_relay, relay_stopped) = watch::channel(false);
    let relay_task = tokio::spawn(relay.run(relay_stopped, config.service.shutdown_grace));

    let state = AppState {
        service,
        auth: Arc::new(auth),
        dapr,
        metrics,
    };
    let app = app::router(state, server.app_token());
    server.serve(app).await.context("HTTP server")?;
    let _ = stop_relay.send(true);
    if tokio::time::timeout(
        config.service.shutdown_grace + Duration::from_secs(1),
        relay_task,
    )
    .await
    .is_err()
    {
        tracing::warn!("outbox relay did not stop in time");
    }
    pool.close().await;
    tracing::info!("backend stopped");
    Ok(())
}

/// Reads one value from the Dapr secret store, waiting for the sidecar first.
async fn read_secret(
    dapr: &dapr::DaprClient,
    store: &str,
    name: &str,
) -> anyhow::Result<SecretString> {
    dapr.wait_ready(SIDECAR_WAIT)
        .await
        .context("waiting for the Dapr sidecar to read secrets")?;
    let secret = dapr
        .get_secret(store, name)
        .await
        .with_context(|| format!("reading secret `{name}` from `{store}`"))?;
    // Single-value stores answer {name: value}; multi-key ones use the first key.
    secret
        .get(name)
        .or_else(|| secret.values().next())
        .map(|value| SecretString::from(value.as_str()))
        .with_context(|| format!("secret `{name}` in `{store}` is empty"))
}
