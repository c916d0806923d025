//! Serving a router with a bounded graceful shutdown, the same way in every service.
//!
//! `axum::serve(..).with_graceful_shutdown(..)` waits for every open connection to finish,
//! which a long-lived stream (MCP, SSE) can delay forever. [`serve`] stops accepting on the
//! signal, gives in-flight requests `grace` to finish, and then returns regardless, so the
//! caller can flush its own work (an outbox relay, a publisher) within a known budget.
//!
//! [`run_main`] is the start-up every service binary shares around its own `run`: a bad
//! environment exits with code 2 before logging exists, then logging, then `run`.
//! [`print_output`] is the other way a binary ends: a flag that prints a generated document.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::LogFormat;

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

/// How [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished within the grace period.
    Drained,
    /// The grace period ran out; remaining connections were dropped.
    GraceExpired,
}

/// Serves `app` on `listener` until `signal` resolves, then drains for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<Stopped> {
    let (stop, stopped) = watch::channel(false);
    let mut server = tokio::spawn(async move {
        let mut stopped = stopped;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    tokio::select! {
        () = signal => tracing::info!("shutting down"),
        result = &mut server => {
            // The server ended on its own: an accept error, or a panic in the task.
            return match result {
                Ok(result) => result.map(|()| Stopped::Drained),
                Err(e) => Err(std::io::Error::other(e)),
            };
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
    grace: Duration,
) -> std::io::Result<Stopped> {
    let Some((metrics_listener, registry)) = metrics else {
        return serve(listener, app, signal, grace).await;
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
        grace,
    ));
    let result = serve(listener, app, signal, grace).await;
    let _ = stop.send(true);
    match metrics_server.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics server failed"),
        Err(e) => tracing::warn!(error = %e, "metrics server task failed"),
    }
    result
}

/// Binds the metrics listener of [`serve_with_metrics`] when `address` is set
/// (`METRICS_PORT`); `None` keeps `/metrics` on the app listener.
pub async fn bind_metrics(
    address: Option<std::net::SocketAddr>,
    metrics: &crate::Metrics,
) -> std::io::Result<Option<(TcpListener, crate::Metrics)>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding the metrics port {address}: {e}"))
    })?;
    tracing::info!(address = %address, "metrics listening");
    Ok(Some((listener, metrics.clone())))
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
/// - Logging cannot be set up with the filter and format `logging` picks from the config:
///   prints `<service>: cannot set up logging: <error>` and exits with code 1.
/// - Otherwise awaits `run(config)`: code 0 when it returns `Ok`, else the error (with its
///   causes, `{:#}`) is logged as `<service> stopped` and the code is 1.
pub async fn run_main<C, E, R, Fut>(
    service: &str,
    config: Result<C, E>,
    logging: impl FnOnce(&C) -> (&str, LogFormat),
    run: impl FnOnce(C) -> Fut,
) -> ExitCode
where
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
    let (filter, format) = logging(&config);
    if let Err(e) = crate::trace::init_tracing_with(service, filter, format) {
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
        let mut ran = false;
        let code = run_main(
            "svc",
            Err::<(), _>("invalid configuration"),
            |()| ("info", LogFormat::Auto),
            |()| {
                ran = true;
                std::future::ready(Ok::<(), String>(()))
            },
        )
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
