//! Serving a router with a bounded graceful shutdown, the same way in every service.
//!
//! `axum::serve(..).with_graceful_shutdown(..)` waits for every open connection to finish,
//! which a long-lived stream (MCP, SSE) can delay forever. [`serve`] stops accepting on the
//! signal, gives in-flight requests `grace` to finish, and then returns regardless, so the
//! caller can flush its own work (an outbox relay, a publisher) within a known budget.
//!
//! Before that, a [`Shutdown::drain`] period: the app keeps serving everything, but `/healthz`
//! and `/readyz` answer 503 and every response closes its connection. The sidecar's app health
//! probe sees the app go, so daprd stops delivering events and leaves the Scheduler's job stream
//! while the app can still take what is already on its way (a job triggered at that moment would
//! otherwise meet a closed port and wait for the Scheduler's retry); clients on kept-alive
//! connections reconnect, to another replica once the Service has dropped this one.
//!
//! [`run_main`] is the start-up every service binary shares around its own `run`: a bad
//! environment exits with code 2 before logging exists, then logging, then `run`.
//! [`print_output`] is the other way a binary ends: a flag that prints a generated document.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::env::ServiceConfig;

/// Resolves on SIGTERM (Kubernetes, `cargo xtask down`) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a handler only Ctrl-C stops us; never resolve this branch.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// How [`serve`] stops once its signal arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shutdown {
    /// First, how long to go on serving while health probes fail and connections close after
    /// each response (`SHUTDOWN_DRAIN_SECS`, see the module docs); zero skips it.
    pub drain: Duration,
    /// Then, how long in-flight requests get once no new connection is accepted.
    pub grace: Duration,
}

impl From<Duration> for Shutdown {
    /// A grace period and no drain.
    fn from(grace: Duration) -> Self {
        Self {
            drain: Duration::ZERO,
            grace,
        }
    }
}

/// How [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished within the grace period.
    Drained,
    /// The grace period ran out; remaining connections were dropped.
    GraceExpired,
}

/// Serves `app` on `listener` until `signal` resolves, then drains for `shutdown.drain` and
/// lets in-flight requests finish for at most `shutdown.grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    shutdown: impl Into<Shutdown>,
) -> std::io::Result<Stopped> {
    let Shutdown { drain, grace } = shutdown.into();
    let draining = Arc::new(AtomicBool::new(false));
    let app = app.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&draining),
        while_draining,
    ));
    let (stop, stopped) = watch::channel(false);
    let mut server = tokio::spawn(async move {
        let mut stopped = stopped;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let ended_on_its_own = |result: Result<std::io::Result<()>, tokio::task::JoinError>| {
        // An accept error, or a panic in the task.
        match result {
            Ok(result) => result.map(|()| Stopped::Drained),
            Err(e) => Err(std::io::Error::other(e)),
        }
    };
    tokio::select! {
        () = signal => tracing::info!("shutting down"),
        result = &mut server => return ended_on_its_own(result),
    }
    if !drain.is_zero() {
        draining.store(true, Ordering::Relaxed);
        tracing::info!(
            ?drain,
            "draining: health probes fail, connections close after their response"
        );
        tokio::select! {
            () = tokio::time::sleep(drain) => {}
            result = &mut server => return ended_on_its_own(result),
        }
    }
    let _ = stop.send(true);
    match tokio::time::timeout(grace, &mut server).await {
        Ok(Ok(result)) => result.map(|()| Stopped::Drained),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "in-flight requests did not finish within the grace period"
            );
            server.abort();
            Ok(Stopped::GraceExpired)
        }
    }
}

/// Like [`serve`], with `/metrics` moved to a listener of its own when `metrics` is given
/// (`METRICS_PORT`, [`crate::env::ServiceEnv::metrics_listen`]): the app's router keeps its
/// `/metrics` route for local runs and tests, and on the app listener that path now answers 404,
/// so a Service or load balancer in front of the app port cannot serve it. The metrics listener
/// stops after the app's, so scrapes see the drain. Without `metrics`, exactly [`serve`].
pub async fn serve_with_metrics(
    listener: TcpListener,
    app: Router,
    metrics: Option<(TcpListener, crate::Metrics)>,
    signal: impl Future<Output = ()> + Send + 'static,
    shutdown: impl Into<Shutdown>,
) -> std::io::Result<Stopped> {
    let shutdown = shutdown.into();
    let Some((metrics_listener, registry)) = metrics else {
        return serve(listener, app, signal, shutdown).await;
    };
    let app = app.layer(axum::middleware::from_fn(not_on_the_app_port));
    let (stop, stopped) = watch::channel(false);
    let metrics_server = tokio::spawn(serve(
        metrics_listener,
        crate::metrics_router(registry),
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
        shutdown.grace,
    ));
    let result = serve(listener, app, signal, shutdown).await;
    let _ = stop.send(true);
    match metrics_server.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics server failed"),
        Err(e) => tracing::warn!(error = %e, "metrics server task failed"),
    }
    result
}

/// What every service's `run` sets up the same way around its own state: the metrics registry,
/// the metrics listener when `METRICS_PORT` is set, the app-token check, and at the end the HTTP
/// server from bind to stop.
///
/// [`ServiceServer::bind`] comes first, so a taken metrics port fails start-up before any
/// state is built; [`ServiceServer::serve`] binds the app's address, logs `<service> listening`
/// and serves until SIGTERM or Ctrl-C ([`shutdown_signal`]), then drains and waits per
/// [`crate::env::ServiceEnv::shutdown`]. The caller logs `<service> stopped` once its own
/// clean-up (a relay, a pool) is done.
pub struct ServiceServer {
    service: &'static str,
    env: crate::env::ServiceEnv,
    metrics: crate::Metrics,
    metrics_listener: Option<TcpListener>,
}

/// Why [`ServiceServer::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metrics collectors could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] crate::MetricsError),
    /// `METRICS_PORT` could not be bound.
    #[error("METRICS_PORT: {0}")]
    MetricsPort(#[source] std::io::Error),
}

impl ServiceServer {
    /// Creates the service's [`crate::Metrics`] and binds the metrics listener of `env`
    /// (`METRICS_PORT`; unset keeps `/metrics` on the app listener).
    pub async fn bind(
        service: &'static str,
        env: &crate::env::ServiceEnv,
    ) -> Result<Self, StartError> {
        let metrics = crate::Metrics::new(service)?;
        let metrics_listener = bind_metrics(env.metrics_listen)
            .await
            .map_err(StartError::MetricsPort)?;
        Ok(Self {
            service,
            env: env.clone(),
            metrics,
            metrics_listener,
        })
    }

    /// The registry the service adds its own collectors to; `/metrics` serves it.
    pub fn metrics(&self) -> &crate::Metrics {
        &self.metrics
    }

    /// The app-token check of `APP_API_TOKEN` for the service's router.
    pub fn app_token(&self) -> crate::AppTokenLayer {
        crate::AppTokenLayer::new(self.env.app_api_token.clone())
    }

    /// Serves `app` from bind to stop ([`serve_with_metrics`]).
    pub async fn serve(self, app: Router) -> std::io::Result<Stopped> {
        let listen = self.env.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding {listen}: {e}")))?;
        tracing::info!(address = %listen, "{} listening", self.service);
        let metrics = self
            .metrics_listener
            .map(|listener| (listener, self.metrics.clone()));
        serve_with_metrics(
            listener,
            app,
            metrics,
            shutdown_signal(),
            self.env.shutdown(),
        )
        .await
    }
}

/// Binds the metrics listener of [`serve_with_metrics`] when `address` is set
/// (`METRICS_PORT`); `None` keeps `/metrics` on the app listener.
async fn bind_metrics(
    address: Option<std::net::SocketAddr>,
) -> std::io::Result<Option<TcpListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding the metrics port {address}: {e}"))
    })?;
    tracing::info!(address = %address, "metrics listening");
    Ok(Some(listener))
}

/// During the drain: 503 for the health probes, and `Connection: close` on every other response
/// so that hyper closes the connection once it is written.
async fn while_draining(
    axum::extract::State(draining): axum::extract::State<Arc<AtomicBool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !draining.load(Ordering::Relaxed) {
        return next.run(request).await;
    }
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return (
            http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining"})),
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// 404 for `/metrics` on the app listener once metrics have a port of their own.
async fn not_on_the_app_port(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.uri().path() == "/metrics" {
        return http::StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

/// A service's `main` once its flags are handled: checks `config`, sets up logging, awaits `run`.
///
/// - `config` is an error: prints `<service>: <error>` to stderr (logging needs the config) and
///   exits with code 2, so a supervisor can tell a bad environment from a crash.
/// - Logging cannot be set up with the config's `RUST_LOG` and `LOG_FORMAT`
///   ([`crate::env::ServiceEnv`]): prints `<service>: cannot set up logging: <error>` and exits
///   with code 1.
/// - Otherwise awaits `run(config)`: code 0 when it returns `Ok`, else the error (with its
///   causes, `{:#}`) is logged as `<service> stopped` and the code is 1.
pub async fn run_main<C, E, R, Fut>(
    service: &str,
    config: Result<C, E>,
    run: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    C: ServiceConfig,
    E: Display,
    R: Display,
    Fut: Future<Output = Result<(), R>>,
{
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            #[allow(clippy::print_stderr)] // Logging is not set up without a valid config.
            {
                eprintln!("{service}: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let env = config.service();
    if let Err(e) = crate::trace::init_tracing_with(service, &env.log_filter, env.log_format) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{service}: cannot set up logging: {e}");
        }
        return ExitCode::FAILURE;
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{service} stopped");
            ExitCode::FAILURE
        }
    }
}

/// An event consumer's `main` once its flags are parsed: with `--print-subscriptions`
/// (`manifests` is `Some`, e.g. `cli.print_subscriptions.then(subscriptions_yaml)`) prints the
/// manifests ([`print_output`]); otherwise [`run_main`] with the config read from the
/// environment.
pub async fn consumer_main<C, E, R, Fut>(
    service: &str,
    manifests: Option<Result<String, E>>,
    run: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    C: ServiceConfig,
    E: Display,
    R: Display,
    Fut: Future<Output = Result<(), R>>,
{
    match manifests {
        Some(output) => print_output(service, output),
        None => run_main(service, C::from_env(), run).await,
    }
}

/// Ends a `--print-…` flag: writes `output` to stdout, or `<service>: <error>` to stderr.
/// Written with `write_all`, so a closed stdout (`| head`) is a failure exit, not a panic.
pub fn print_output<E: Display>(service: &str, output: Result<String, E>) -> ExitCode {
    use std::io::Write;
    match output {
        Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err(e) => {
            #[allow(clippy::print_stderr)] // This command's only way to say why.
            {
                eprintln!("{service}: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    #[tokio::test]
    async fn run_main_exits_2_on_bad_config_without_running() {
        use crate::env::ServiceEnv;

        struct Config(ServiceEnv);
        impl ServiceConfig for Config {
            const ENV_DOCS: &'static [crate::env_help::EnvDoc] = &[];
            fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, crate::env::EnvError> {
                let mut env = crate::env::EnvReader::new(lookup);
                let service = ServiceEnv::read(&mut env, "SVC", 0);
                env.finish().map(|()| Self(service))
            }
            fn service(&self) -> &ServiceEnv {
                &self.0
            }
        }
        let mut ran = false;
        let code = run_main("svc", Err::<Config, _>("invalid configuration"), |_| {
            ran = true;
            std::future::ready(Ok::<(), String>(()))
        })
        .await;
        assert_eq!(code, ExitCode::from(2));
        assert!(!ran);
    }

    #[tokio::test]
    async fn metrics_move_to_their_own_listener() {
        let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_addr = app_listener.local_addr().unwrap();
        let metrics_addr = metrics_listener.local_addr().unwrap();
        let metrics = crate::Metrics::new("svc").unwrap();
        // The app's router serves /metrics itself, as every service's does.
        let app = Router::new()
            .route("/hello", get(|| async { "hi" }))
            .merge(crate::metrics_router(metrics.clone()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_metrics(
            app_listener,
            app,
            Some((metrics_listener, metrics)),
            async {
                let _ = rx.await;
            },
            Duration::from_secs(1),
        ));
        let client = reqwest::Client::new();
        let get = |addr: std::net::SocketAddr, path: &str| {
            let request = client.get(format!("http://{addr}{path}"));
            async move { request.send().await.unwrap() }
        };
        assert_eq!(get(app_addr, "/hello").await.text().await.unwrap(), "hi");
        assert_eq!(get(app_addr, "/metrics").await.status(), 404);
        let scraped = get(metrics_addr, "/metrics").await;
        assert_eq!(scraped.status(), 200);
        assert!(
            scraped.text().await.unwrap().contains("# TYPE"),
            "the registry in the Prometheus text format"
        );
        assert_eq!(get(metrics_addr, "/hello").await.status(), 404);

        tx.send(()).unwrap();
        let stopped = server.await.unwrap().unwrap();
        assert_eq!(stopped, Stopped::Drained);
        assert!(
            tokio::net::TcpStream::connect(metrics_addr).await.is_err(),
            "the metrics listener stops with the app"
        );
    }

    #[tokio::test]
    async fn the_drain_fails_health_probes_and_closes_connections_but_serves() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/hello", get(|| async { "hi" }))
            .merge(crate::health::Health::new().router());
        let server = tokio::spawn(serve(
            listener,
            app,
            async {
                let _ = rx.await;
            },
            Shutdown {
                drain: Duration::from_secs(1),
                grace: Duration::from_secs(1),
            },
        ));
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
        let before = get("/hello").await.unwrap();
        assert_eq!(before.headers().get("connection"), None, "kept alive");
        assert_eq!(get("/healthz").await.unwrap().status(), 200);

        tx.send(()).unwrap();
        // The signal reaches the server task asynchronously: poll for the drain.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let health = loop {
            let health = get("/healthz").await.unwrap();
            if health.status() == 503 || tokio::time::Instant::now() > deadline {
                break health;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(health.status(), 503);
        assert_eq!(
            health.json::<serde_json::Value>().await.unwrap()["status"],
            "draining"
        );
        assert_eq!(get("/readyz").await.unwrap().status(), 503);
        let during = get("/hello").await.unwrap();
        assert_eq!(during.headers().get("connection").unwrap(), "close");
        assert_eq!(during.text().await.unwrap(), "hi", "still served");

        assert_eq!(server.await.unwrap().unwrap(), Stopped::Drained);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn drains_in_flight_requests_then_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let in_handler = std::sync::Arc::clone(&entered);
        let app = Router::new().route(
            "/slow",
            get(move || async move {
                in_handler.notify_one();
                // Work that is still running when shutdown starts.
                tokio::time::sleep(Duration::from_millis(200)).await;
                "done"
            }),
        );
        let server = tokio::spawn(serve(
            listener,
            app,
            async {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        let request = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            out
        });
        // Stop only once the request is inside the handler.
        entered.notified().await;
        tx.send(()).unwrap();
        let response = request.await.unwrap();
        assert!(response.ends_with("done"), "{response}");
        assert_eq!(server.await.unwrap().unwrap(), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_grace_period() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let entered = std::sync::Arc::new(tokio::sync::Notify::new());
        let in_handler = std::sync::Arc::clone(&entered);
        let app = Router::new().route(
            "/forever",
            get(move || async move {
                in_handler.notify_one();
                std::future::pending::<&'static str>().await
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app,
            async {
                let _ = rx.await;
            },
            Duration::from_secs(3),
        ));
        let _client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /forever HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            std::future::pending::<()>().await;
        });
        entered.notified().await;
        tx.send(()).unwrap();
        assert_eq!(server.await.unwrap().unwrap(), Stopped::GraceExpired);
    }
}
