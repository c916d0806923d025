//! The Dapr Scheduler (Jobs API back end, embedded etcd) on free loopback ports.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{ManagedProcess, StopPolicy};
use crate::restartable::Restartable;
use crate::{Binaries, ports, wait};

/// A running Dapr Scheduler owned by the harness.
#[derive(Debug)]
pub struct Scheduler {
    process: Restartable,
    port: u16,
    metrics_port: u16,
    healthz: u16,
}

impl Scheduler {
    /// Starts the Scheduler with its etcd data under `root/scheduler`; returns once healthy.
    /// Its gRPC port is `port` when given (`dapr run -f` needs a known address), else a free one.
    pub async fn start(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        detached: bool,
        port: Option<u16>,
    ) -> anyhow::Result<Self> {
        let data = root.join("scheduler");
        std::fs::create_dir_all(&data)?;
        let [free, healthz, metrics, etcd_client, etcd_peer] = ports::free_ports::<5>()?;
        let port = port.unwrap_or(free);
        let program = bins.scheduler.clone();
        let recipe = Box::new(move || {
            let mut cmd = Command::new(&program);
            // Every listener on loopback and on its own port: several stacks may share a machine,
            // and the default ports (50006, 8080, 9090, 2379/2380) clash with daprd and each other.
            cmd.args(["--mode", "standalone", "--listen-address", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--healthz-listen-address", "127.0.0.1"])
                .args(["--healthz-port", &healthz.to_string()])
                .args(["--metrics-listen-address", "127.0.0.1"])
                .args(["--metrics-port", &metrics.to_string()])
                .arg("--etcd-data-dir")
                .arg(&data)
                .args(["--etcd-client-listen-address", "127.0.0.1"])
                .args(["--etcd-client-port", &etcd_client.to_string()])
                .arg(format!(
                    "--etcd-initial-cluster=dapr-scheduler-server-0=http://127.0.0.1:{etcd_peer}"
                ))
                .args(["--log-level", "info"]);
            cmd
        });
        let process = Restartable::spawn(
            "scheduler",
            recipe,
            log_dir,
            StopPolicy::default(),
            detached,
        )?;
        let scheduler = Self {
            process,
            port,
            metrics_port: metrics,
            healthz,
        };
        scheduler.wait_healthy().await?;
        Ok(scheduler)
    }

    /// Stops it (`SIGTERM`), with jobs stored and sidecars connected.
    pub fn stop(&self) {
        self.process.stop();
    }

    /// Starts it again on the same ports and etcd data; returns once healthy.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.process.start_again()?;
        self.wait_healthy().await
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/healthz", self.healthz);
        wait::until(
            "dapr scheduler to report healthy",
            Duration::from_secs(60),
            || {
                let running = self.process.ensure_running();
                let req = client.get(&url).send();
                async move {
                    running?;
                    Ok::<_, anyhow::Error>(req.await?.status().is_success().then_some(()))
                }
            },
        )
        .await?;
        Ok(())
    }

    /// `127.0.0.1:<port>`, for daprd's `--scheduler-host-address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the Scheduler serves Prometheus metrics.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// The Scheduler process.
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        self.process.get_mut()
    }

    /// Leaves the Scheduler running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.into_inner().detach()
    }
}
