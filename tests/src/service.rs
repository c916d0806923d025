//! Our own service binaries (backend, notification, …) as child processes.
//!
//! The binaries are built by cargo before the tests run (`cargo xtask test` builds every
//! workspace binary first); the harness only finds and starts them, and waits for `/healthz`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::{ManagedProcess, StopPolicy};
use crate::{repo_root, wait};

/// How to start one service process.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Binary (package) name, e.g. `backend`.
    pub binary: String,
    /// Name of the log file (replicas need distinct names).
    pub log_name: String,
    /// The port it listens on (also passed in `env` by the caller, under the service's name).
    pub port: u16,
    /// Environment for the process, on top of `PATH` and `HOME`.
    pub env: Vec<(String, String)>,
    /// Run this file instead of the workspace's debug build (e.g. a release build).
    pub binary_path: Option<PathBuf>,
}

/// A running service owned by the harness.
#[derive(Debug)]
pub struct Service {
    process: ManagedProcess,
    options: ServiceOptions,
}

impl Service {
    /// Starts the service and waits until `GET /healthz` answers 200.
    pub async fn start(
        opts: &ServiceOptions,
        log_dir: &Path,
        detached: bool,
    ) -> anyhow::Result<Self> {
        let binary = match &opts.binary_path {
            Some(path) => path.clone(),
            None => service_binary(&opts.binary)?,
        };
        let mut cmd = Command::new(&binary);
        // A clean environment: the tests decide every variable the service sees.
        cmd.env_clear();
        for var in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.env("LOG_FORMAT", "json").env("RUST_LOG", "info");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        // For the log scan of `cargo xtask test`: the secrets among the environment.
        let env = opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        crate::secrets::record_env(log_dir, &opts.log_name, env)?;
        let mut process = ManagedProcess::spawn(
            &opts.log_name,
            cmd,
            log_dir,
            StopPolicy::default(),
            detached,
        )?;
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/healthz", opts.port);
        wait::until_running(
            &format!("{} /healthz", opts.log_name),
            Duration::from_secs(60),
            &mut process,
            || {
                let req = client.get(&url).send();
                async move {
                    Ok::<_, anyhow::Error>(req.await.ok().filter(|r| r.status() == 200).map(drop))
                }
            },
        )
        .await?;
        Ok(Self {
            process,
            options: opts.clone(),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.options.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// Stops (gracefully) and starts the same service again with the same options.
    pub async fn restart(&mut self, log_dir: &Path) -> anyhow::Result<()> {
        self.process.stop();
        *self = Self::start(&self.options, log_dir, false).await?;
        Ok(())
    }

    /// The process (logs, stop, kill).
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }

    /// The PID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Leaves the service running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }
}

/// Path of a workspace binary: `TODO_<NAME>_BIN` (e.g. `TODO_BACKEND_BIN`), else
/// `<target>/debug/<name>`.
pub fn service_binary(name: &str) -> anyhow::Result<PathBuf> {
    let var = format!("TODO_{}_BIN", name.to_uppercase().replace('-', "_"));
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"))
                .join("debug")
                .join(name)
        });
    path.is_file().then_some(path.clone()).with_context(|| {
        format!(
            "{} not found: build it with `cargo build -p {name}` (or set {var})",
            path.display()
        )
    })
}
