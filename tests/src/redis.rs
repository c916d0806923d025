//! A throw-away Redis server (the default Dapr pub/sub broker, Redis Streams) on a free port.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{ManagedProcess, StopPolicy};
use crate::restartable::Restartable;
use crate::{Binaries, ports, wait};

/// A running Redis server owned by the harness.
#[derive(Debug)]
pub struct Redis {
    process: Restartable,
    port: u16,
    cli: std::path::PathBuf,
}

impl Redis {
    /// Starts Redis under `root/redis`; returns once it answers `PING`.
    ///
    /// It keeps an append-only file written on every change and synced every second, as a
    /// production broker would: a killed and restarted server still has every stream entry and
    /// every consumer group's pending list it acknowledged (only a machine crash could lose the
    /// last second). No RDB snapshots: the AOF is the one copy.
    pub async fn start(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        detached: bool,
    ) -> anyhow::Result<Self> {
        let dir = root.join("redis");
        std::fs::create_dir_all(&dir)?;
        let port = ports::free_port()?;
        let program = bins.redis_server.clone();
        let recipe = Box::new(move || {
            let mut cmd = Command::new(&program);
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "yes"])
                .args(["--appendfsync", "everysec", "--protected-mode", "yes"])
                .args(["--daemonize", "no"])
                .arg("--dir")
                .arg(&dir);
            cmd
        });
        let process =
            Restartable::spawn("redis", recipe, log_dir, StopPolicy::default(), detached)?;
        let cli = bins.redis_server.with_file_name("redis-cli");
        let redis = Self { process, port, cli };
        redis.wait_ping().await?;
        Ok(redis)
    }

    /// `SIGKILL`: the server dies with whatever it has not written to its append-only file.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts it again on the same port and data; returns once it answers `PING` (Redis
    /// answers only after it has loaded the append-only file).
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.process.start_again()?;
        self.wait_ping().await
    }

    async fn wait_ping(&self) -> anyhow::Result<()> {
        let port = self.port;
        wait::until("redis to answer PING", Duration::from_secs(20), || {
            let running = self.process.ensure_running();
            async move {
                running?;
                Ok::<_, anyhow::Error>(ping(port).await.ok())
            }
        })
        .await?;
        Ok(())
    }

    /// The JSON messages of a Dapr pub/sub stream (a topic), in broker order.
    ///
    /// Dapr's Redis Streams component stores each message in the field `data`; with `--raw`,
    /// redis-cli prints every field and value on its own line, and our CloudEvents are compact
    /// JSON objects, so the lines that parse as JSON objects are the messages.
    pub fn stream_messages(&self, stream: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let out = Command::new(&self.cli)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(["XRANGE", stream, "-", "+"])
            .output()
            .context("running redis-cli")?;
        anyhow::ensure!(
            out.status.success(),
            "redis-cli XRANGE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(serde_json::Value::is_object)
            .collect())
    }

    /// `127.0.0.1:<port>`, as Dapr's `redisHost` wants it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID (for its CPU and memory in the benchmarks), `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The server process.
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        self.process.get_mut()
    }

    /// Leaves the server running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.into_inner().detach()
    }
}

/// Sends an inline `PING` and expects `+PONG`.
async fn ping(port: u16) -> anyhow::Result<()> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
    conn.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf)
        .await
        .context("reading PING reply")?;
    anyhow::ensure!(
        &buf == b"+PONG\r\n",
        "unexpected reply {:?}",
        String::from_utf8_lossy(&buf)
    );
    Ok(())
}
