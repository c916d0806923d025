//! One real `daprd` sidecar on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{ManagedProcess, StopPolicy};
use crate::{Binaries, ports, wait};

/// How to start a sidecar.
#[derive(Clone, Debug, Default)]
pub struct DaprdOptions {
    /// The Dapr app-id.
    pub app_id: String,
    /// The port the app listens on (`None`: no app channel, so no deliveries or job triggers).
    pub app_port: Option<u16>,
    /// `--resources-path` (components, resiliency, subscriptions).
    pub resources: PathBuf,
    /// `--config` (a `Configuration` file).
    pub config: Option<PathBuf>,
    /// Scheduler address for the Jobs API (`None`: Jobs API disabled).
    pub scheduler: Option<String>,
    /// `APP_API_TOKEN`: sent by daprd on every call into the app.
    pub app_api_token: Option<String>,
    /// `DAPR_API_TOKEN`: required from the app on every call into daprd.
    pub dapr_api_token: Option<String>,
    /// `--log-level` (default `info`).
    pub log_level: Option<String>,
    /// Name of the log file (default: the app-id); replicas of one app-id need distinct names.
    pub log_name: Option<String>,
    /// Fixed ports (to restart a sidecar where its app expects it); default: free ports.
    pub ports: Option<DaprdPorts>,
    /// Let daprd probe the app (`None`: no probes, the app is assumed healthy for ever).
    pub app_health: Option<AppHealthCheck>,
}

/// daprd's probes of its app (`--enable-app-health-check` and friends).
///
/// While the app fails them daprd stops its topic subscriptions and leaves the Scheduler's
/// app-job stream, so a sidecar whose app died hands no deliveries or job triggers to a dead
/// port: the other replicas get them, or the Scheduler keeps them until one is back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppHealthCheck {
    /// The HTTP path probed.
    pub path: &'static str,
    /// Seconds between probes (`--app-health-probe-interval`, whole seconds only).
    pub interval_secs: u32,
    /// Milliseconds a probe may take (`--app-health-probe-timeout`).
    pub timeout_ms: u32,
    /// Consecutive failures before the app counts as unhealthy (`--app-health-threshold`).
    pub threshold: u32,
}

impl AppHealthCheck {
    /// What every service sidecar runs with, here, in `dapr/dapr.yaml` and in the Helm chart
    /// (a test keeps the three in step): a dead app is noticed within
    /// `interval × threshold + timeout` ≈ 5 s, while one slow answer on a loaded machine is not
    /// enough to pause deliveries.
    pub const SERVICES: Self = Self {
        path: "/healthz",
        interval_secs: 2,
        timeout_ms: 1000,
        threshold: 2,
    };

    /// The daprd flags that turn the probes on.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--enable-app-health-check".to_owned(),
            format!("--app-health-check-path={}", self.path),
            format!("--app-health-probe-interval={}", self.interval_secs),
            format!("--app-health-probe-timeout={}", self.timeout_ms),
            format!("--app-health-threshold={}", self.threshold),
        ]
    }
}

/// The ports one sidecar listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaprdPorts {
    /// HTTP API (`DAPR_HTTP_PORT` of the app).
    pub http: u16,
    /// gRPC API.
    pub grpc: u16,
    /// Internal gRPC (sidecar to sidecar).
    pub internal_grpc: u16,
    /// Prometheus metrics.
    pub metrics: u16,
    /// Profiling (unused, but given its own port).
    pub profile: u16,
}

impl DaprdPorts {
    /// Five free ports.
    pub fn free() -> std::io::Result<Self> {
        let [http, grpc, internal_grpc, metrics, profile] = ports::free_ports::<5>()?;
        Ok(Self {
            http,
            grpc,
            internal_grpc,
            metrics,
            profile,
        })
    }
}

/// A running sidecar owned by the harness.
#[derive(Debug)]
pub struct Daprd {
    process: ManagedProcess,
    options: DaprdOptions,
    ports: DaprdPorts,
}

/// Variables a caller's environment must not leak into a sidecar: they change its behaviour.
const SCRUBBED_ENV: &[&str] = &[
    "APP_API_TOKEN",
    "DAPR_API_TOKEN",
    "NAMESPACE",
    "DAPR_HOST_IP",
];

impl Daprd {
    /// Starts daprd and returns once its outbound API is ready (`/v1.0/healthz/outbound`).
    ///
    /// Outbound readiness does not wait for the app channel, so the app may start before or
    /// after the sidecar (daprd keeps dialling the app port until it answers).
    pub async fn start(
        bins: &Binaries,
        opts: &DaprdOptions,
        log_dir: &Path,
        detached: bool,
    ) -> anyhow::Result<Self> {
        let ports = match opts.ports {
            Some(ports) => ports,
            None => DaprdPorts::free()?,
        };
        let DaprdPorts {
            http: http_port,
            grpc: grpc_port,
            internal_grpc,
            metrics: metrics_port,
            profile: profile_port,
        } = ports;
        let mut cmd = Command::new(&bins.daprd);
        cmd.args(["--mode", "standalone", "--app-id", &opts.app_id])
            .args(["--dapr-listen-addresses", "127.0.0.1"])
            .args(["--dapr-http-port", &http_port.to_string()])
            .args(["--dapr-grpc-port", &grpc_port.to_string()])
            .args(["--dapr-internal-grpc-port", &internal_grpc.to_string()])
            .args(["--dapr-internal-grpc-listen-address", "127.0.0.1"])
            .args(["--metrics-port", &metrics_port.to_string()])
            .args(["--metrics-listen-address", "127.0.0.1"])
            // Never used without --enable-profiling, but given its own port to rule out clashes.
            .args(["--profile-port", &profile_port.to_string()])
            .args(["--app-channel-address", "127.0.0.1"])
            .args(["--log-level", opts.log_level.as_deref().unwrap_or("info")])
            .arg("--resources-path")
            .arg(&opts.resources);
        if let Some(port) = opts.app_port {
            cmd.args(["--app-port", &port.to_string(), "--app-protocol", "http"]);
            if let Some(check) = &opts.app_health {
                cmd.args(check.args());
            }
        }
        if let Some(config) = &opts.config {
            cmd.arg("--config").arg(config);
        }
        if let Some(scheduler) = &opts.scheduler {
            cmd.args(["--scheduler-host-address", scheduler]);
        }
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        if let Some(token) = &opts.app_api_token {
            cmd.env("APP_API_TOKEN", token);
        }
        if let Some(token) = &opts.dapr_api_token {
            cmd.env("DAPR_API_TOKEN", token);
        }
        let log_name = opts
            .log_name
            .clone()
            .unwrap_or_else(|| format!("daprd-{}", opts.app_id));
        // For the log scan of `cargo xtask test`: neither token may ever show up in a log.
        let tokens = [
            ("APP_API_TOKEN", &opts.app_api_token),
            ("DAPR_API_TOKEN", &opts.dapr_api_token),
        ];
        for (name, token) in tokens {
            if let Some(token) = token {
                crate::secrets::record(log_dir, &format!("{log_name} {name}"), token)?;
            }
        }
        let mut process =
            ManagedProcess::spawn(&log_name, cmd, log_dir, StopPolicy::default(), detached)?;

        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{http_port}/v1.0/healthz/outbound");
        wait::until_running(
            &format!("daprd {} outbound health", opts.app_id),
            Duration::from_secs(60),
            &mut process,
            || {
                let req = client.get(&url).send();
                async move {
                    Ok::<_, anyhow::Error>((req.await?.status().as_u16() == 204).then_some(()))
                }
            },
        )
        .await?;
        Ok(Self {
            process,
            options: opts.clone(),
            ports,
        })
    }

    /// Starts the same sidecar again on the same ports (after [`ManagedProcess::stop`] or
    /// [`ManagedProcess::kill`] on [`Daprd::process_mut`]).
    pub async fn restart(&mut self, bins: &Binaries, log_dir: &Path) -> anyhow::Result<()> {
        self.process.stop();
        let opts = DaprdOptions {
            ports: Some(self.ports),
            ..self.options.clone()
        };
        let again = Self::start(bins, &opts, log_dir, false).await?;
        *self = again;
        Ok(())
    }

    /// The app-id this sidecar serves.
    pub fn app_id(&self) -> &str {
        &self.options.app_id
    }

    /// The HTTP API port (what an app gets as `DAPR_HTTP_PORT`).
    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// The gRPC API port.
    pub fn grpc_port(&self) -> u16 {
        self.ports.grpc
    }

    /// The Prometheus metrics port.
    pub fn metrics_port(&self) -> u16 {
        self.ports.metrics
    }

    /// `http://127.0.0.1:<http port>`.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// Waits until the full health check passes, which includes the app channel.
    pub async fn wait_app_channel(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("{}/v1.0/healthz", self.http_endpoint());
        wait::http_status(&reqwest::Client::new(), &url, 204, timeout).await?;
        Ok(())
    }

    /// The sidecar process (logs, or stopping it in failure tests).
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }

    /// The PID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Leaves the sidecar running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }
}
