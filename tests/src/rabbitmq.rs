//! A throw-away RabbitMQ node (the `rabbitmq` pub/sub profile): Debian's `rabbitmq-server` run
//! as our own process, not as the system service, on free 127.0.0.1 ports, with its database,
//! configuration and Erlang cookie under the run's directory.
//!
//! Three processes make a node, and the harness owns each by PID:
//! - `epmd`, the Erlang port mapper, started by us in the foreground on a free port. Left to
//!   itself the VM would start a *daemonised* epmd that outlives every run; the node is told not
//!   to (`-start_epmd false`).
//! - the `rabbitmq-server` script, our direct child. In the foreground it starts the Erlang VM
//!   as its own child and forwards `SIGTERM` to it.
//! - the Erlang VM (`beam.smp`), the script's child. Stopping goes to the VM directly, by the
//!   PID found under the script, so that a VM that is slow to stop is never orphaned by the
//!   script being killed first; the VM's helpers (`erl_child_setup`, `inet_gethost`, the disk
//!   monitor shell) exit with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::binaries::find_on_path;
use crate::process::{ManagedProcess, StopPolicy, alive, children_of};
use crate::restartable::Restartable;
use crate::{ports, wait};

/// Debian's server script (the one `/usr/sbin/rabbitmq-server` wraps with `su rabbitmq`).
const DEBIAN_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// How long a cold Erlang VM on a loaded 2-core machine may take to boot the broker.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Time the VM gets to stop gracefully (close queues, flush message stores).
const VM_GRACE: Duration = Duration::from_secs(30);

/// A running RabbitMQ node owned by the harness.
#[derive(Debug)]
pub struct RabbitMq {
    // Field order is drop order: the VM stops first, then its script, then epmd.
    vm: std::sync::Mutex<Vm>,
    server: Restartable,
    epmd: ManagedProcess,
    port: u16,
    node: String,
    /// What `rabbitmqctl` needs to reach the node: its `HOME` (the Erlang cookie), epmd's
    /// port and the empty env file.
    home: PathBuf,
    epmd_port: u16,
    env_file: PathBuf,
}

/// Where the programs are: `RABBITMQ_SERVER` or Debian's script, and `epmd` from `PATH`.
fn programs() -> anyhow::Result<(PathBuf, PathBuf)> {
    let server = std::env::var_os("RABBITMQ_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBIAN_SERVER));
    anyhow::ensure!(
        server.is_file(),
        "no RabbitMQ server script at {} (set RABBITMQ_SERVER, or run `cargo xtask deps --broker rabbitmq`)",
        server.display()
    );
    let epmd = find_on_path("epmd")
        .or_else(|| Some(PathBuf::from("/usr/lib/erlang/bin/epmd")).filter(|p| p.is_file()))
        .context("no `epmd` (Erlang) on PATH: run `cargo xtask deps --broker rabbitmq`")?;
    Ok((server, epmd))
}

impl RabbitMq {
    /// Starts a node under `root/rabbitmq`; returns once it completes an AMQP handshake.
    pub async fn start(root: &Path, log_dir: &Path, detached: bool) -> anyhow::Result<Self> {
        let (server_bin, epmd_bin) = programs()?;
        let dir = root.join("rabbitmq");
        let home = dir.join("home");
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let [port, dist_port, epmd_port] = ports::free_ports::<3>()?;
        let node = format!("todo{port}@localhost");

        let config = dir.join("rabbitmq.conf");
        std::fs::write(&config, rabbitmq_conf(port))?;
        // Empty env file and no plugins: nothing from /etc/rabbitmq applies to our node.
        let env_file = dir.join("rabbitmq-env.conf");
        std::fs::write(&env_file, "")?;
        let plugins = dir.join("enabled_plugins");
        std::fs::write(&plugins, "[].\n")?;

        let mut epmd_cmd = Command::new(&epmd_bin);
        epmd_cmd
            .args(["-port", &epmd_port.to_string()])
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        let mut epmd =
            ManagedProcess::spawn("epmd", epmd_cmd, log_dir, StopPolicy::default(), detached)?;
        wait::until_running(
            "epmd to listen",
            Duration::from_secs(10),
            &mut epmd,
            || async move {
                TcpStream::connect(("127.0.0.1", epmd_port)).await?;
                Ok::<_, anyhow::Error>(Some(()))
            },
        )
        .await?;

        let recipe = {
            let dir = dir.clone();
            let node = node.clone();
            let home = home.clone();
            let env_file = env_file.clone();
            Box::new(move || {
                let mut cmd = Command::new(&server_bin);
                cmd.env("HOME", &home)
                    .env("RABBITMQ_NODENAME", &node)
                    .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                    .env("RABBITMQ_NODE_PORT", port.to_string())
                    .env("RABBITMQ_DIST_PORT", dist_port.to_string())
                    .env("ERL_EPMD_PORT", epmd_port.to_string())
                    .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                    .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                    .env("RABBITMQ_LOG_BASE", dir.join("log"))
                    .env("RABBITMQ_CONFIG_FILE", &config)
                    .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
                    .env("RABBITMQ_CONF_ENV_FILE", &env_file)
                    .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
                    .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
                    // Log to stdout, i.e. into the harness's rabbitmq.log.
                    .env("RABBITMQ_LOGS", "-")
                    // Use our epmd, and keep Erlang distribution on loopback like everything
                    // else.
                    .env(
                        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                        "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
                    )
                    .current_dir(&dir);
                cmd
            })
        };
        // Only a fallback (the VM is normally stopped first, by its own PID): the script
        // forwards SIGTERM to the VM and waits for it.
        let stop = StopPolicy {
            signal: Signal::SIGTERM,
            grace: VM_GRACE,
        };
        let mut server = Restartable::spawn("rabbitmq", recipe, log_dir, stop, detached)?;
        let vm = boot(server.get_mut(), port).await?;
        Ok(Self {
            vm: std::sync::Mutex::new(vm),
            server,
            epmd,
            port,
            node,
            home,
            epmd_port,
            env_file,
        })
    }

    /// `SIGKILL` to the Erlang VM, as a crash would; its script exits with it, epmd stays.
    /// RabbitMQ recovers durable queues and persistent messages from disk at the next start.
    pub fn kill(&self) {
        self.lock_vm().kill();
        self.server.stop();
    }

    /// Starts the node again on the same ports, name and database; returns once it serves
    /// AMQP.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.server.start_again()?;
        let script = self.server.pid().context("rabbitmq-server did not start")?;
        let port = self.port;
        let mut vm = Vm::default();
        let ready = wait::until("rabbitmq to accept AMQP again", START_TIMEOUT, || {
            if vm.pid.is_none() {
                vm = Vm::find(script);
            }
            let running = self.server.ensure_running();
            async move {
                running?;
                amqp_handshake(port).await?;
                Ok::<_, anyhow::Error>(Some(()))
            }
        })
        .await;
        if vm.pid.is_none() {
            vm = Vm::find(script);
        }
        // Owned (and so stopped) even if the start failed half-way.
        *self.lock_vm() = vm;
        ready?;
        anyhow::ensure!(
            self.lock_vm().pid.is_some(),
            "rabbitmq answers AMQP but no Erlang VM was found under the script (pid {script})"
        );
        Ok(())
    }

    fn lock_vm(&self) -> std::sync::MutexGuard<'_, Vm> {
        self.vm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>`, as Dapr's `connectionString` wants it. `guest`
    /// is RabbitMQ's default user, allowed from loopback only — which is where we are.
    pub fn connection_string(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>` (AMQP).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang node name (`todo<port>@localhost`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Every queue with its depth and consumers, from `rabbitmqctl list_queues`: where a test
    /// finds messages missing, were they still in a queue, and held by whom?
    pub fn queues(&self) -> anyhow::Result<Vec<QueueDepth>> {
        let ctl = programs()?.0.with_file_name("rabbitmqctl");
        let out = Command::new(&ctl)
            .args([
                "-n",
                &self.node,
                "-q",
                "list_queues",
                "--no-table-headers",
                "name",
                "messages_ready",
                "messages_unacknowledged",
                "consumers",
            ])
            .env("HOME", &self.home)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_CONF_ENV_FILE", &self.env_file)
            .output()
            .with_context(|| format!("running {}", ctl.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl list_queues failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(QueueDepth::parse)
            .collect()
    }

    /// The PID of the Erlang VM.
    pub fn vm_pid(&self) -> Option<u32> {
        self.lock_vm().pid
    }

    /// Every process of the node: epmd, the script, and the script's descendants (the VM and
    /// its helpers) — for checking that a stop leaves nothing behind.
    pub fn pids(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.epmd.pid().into_iter().collect();
        let mut queue: Vec<u32> = self.server.pid().into_iter().collect();
        while let Some(pid) = queue.pop() {
            out.push(pid);
            queue.extend(children_of(pid));
        }
        out
    }

    /// Stops the node (VM, script, epmd) now; dropping the handle does the same.
    pub fn stop(&mut self) {
        self.lock_vm().stop();
        self.server.stop();
        self.epmd.stop();
    }

    /// Leaves the node running; returns `(name, pid, exe)` of the VM and of epmd, in start
    /// order, for `cargo xtask down` (which stops in reverse: VM first). The script exits by
    /// itself once its VM has.
    pub fn detach(self) -> Vec<(&'static str, u32, PathBuf)> {
        let Self {
            vm, server, epmd, ..
        } = self;
        let mut vm = vm
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        let epmd_exe = epmd
            .pid()
            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
        if let (Some(pid), Some(exe)) = (epmd.detach(), epmd_exe) {
            out.push(("epmd", pid, exe));
        }
        let vm_exe = vm.exe.clone();
        if let (Some(pid), Some(exe)) = (vm.pid.take(), vm_exe) {
            out.push(("rabbitmq", pid, exe));
        }
        let _ = server.into_inner().detach();
        out
    }
}

/// One queue as `rabbitmqctl list_queues name messages_ready messages_unacknowledged
/// consumers` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue's name (`<consumer id>-<topic>` for a Dapr subscription).
    pub name: String,
    /// Messages waiting for a consumer.
    pub ready: u64,
    /// Messages delivered to a consumer and not yet acknowledged.
    pub unacked: u64,
    /// Consumers registered on the queue.
    pub consumers: u64,
}

impl QueueDepth {
    /// Parses one tab-separated line.
    fn parse(line: &str) -> anyhow::Result<Self> {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [name, ready, unacked, consumers] = fields[..] else {
            anyhow::bail!("unexpected list_queues line {line:?}");
        };
        let number = |field: &str| {
            field
                .parse::<u64>()
                .with_context(|| format!("in list_queues line {line:?}"))
        };
        Ok(Self {
            name: name.to_owned(),
            ready: number(ready)?,
            unacked: number(unacked)?,
            consumers: number(consumers)?,
        })
    }
}

impl std::fmt::Display for QueueDepth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ready, {} unacknowledged, {} consumers",
            self.name, self.ready, self.unacked, self.consumers
        )
    }
}

/// Waits until the node under `server` (the script) answers AMQP on `port`; returns its VM. A
/// failure drops (and so stops) a VM found on the way.
async fn boot(server: &mut ManagedProcess, port: u16) -> anyhow::Result<Vm> {
    let script_pid = server.pid().context("rabbitmq-server did not start")?;
    let mut vm = Vm::default();
    let ready = wait::until_running("rabbitmq to accept AMQP", START_TIMEOUT, server, || {
        if vm.pid.is_none() {
            vm = Vm::find(script_pid);
        }
        async move {
            amqp_handshake(port).await?;
            Ok::<_, anyhow::Error>(Some(()))
        }
    })
    .await;
    if vm.pid.is_none() {
        vm = Vm::find(script_pid);
    }
    ready?;
    anyhow::ensure!(
        vm.pid.is_some(),
        "rabbitmq answers AMQP but no Erlang VM was found under the script (pid {script_pid})"
    );
    Ok(vm)
}

fn rabbitmq_conf(port: u16) -> String {
    format!(
        "# Written by the todo-dapr test harness.
# AMQP on loopback only (RABBITMQ_NODE_IP_ADDRESS/PORT say the same; this wins).
listeners.tcp.default = 127.0.0.1:{port}
# The default user `guest` may connect from loopback only (RabbitMQ's default, stated).
loopback_users.guest = true
# Everything to the console, i.e. the harness's log file; no log files of its own.
log.console = true
log.console.level = info
log.file = false
"
    )
}

/// Sends the AMQP 0-9-1 protocol header and expects the server's `Connection.Start` method
/// frame (type 1 on channel 0): the broker is booted and its listener serves clients.
async fn amqp_handshake(port: u16) -> anyhow::Result<()> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
    conn.write_all(b"AMQP\x00\x00\x09\x01").await?;
    let mut header = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut header))
        .await
        .context("no AMQP greeting within 5 s")?
        .context("reading the AMQP greeting")?;
    anyhow::ensure!(
        header[0] == 1 && header[1..3] == [0, 0],
        "unexpected AMQP greeting {header:?}"
    );
    Ok(())
}

/// The Erlang VM under the server script, stopped by its PID when dropped.
#[derive(Debug, Default)]
struct Vm {
    pid: Option<u32>,
    exe: Option<PathBuf>,
}

impl Vm {
    /// The `beam*` child of `script` (or `script` itself if it exec'ed the VM), if there yet.
    fn find(script: u32) -> Self {
        let is_beam = |pid: u32| {
            exe_of(pid).filter(|exe| {
                exe.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("beam"))
            })
        };
        if let Some(exe) = is_beam(script) {
            return Self {
                pid: Some(script),
                exe: Some(exe),
            };
        }
        children_of(script)
            .into_iter()
            .find_map(|pid| {
                is_beam(pid).map(|exe| Self {
                    pid: Some(pid),
                    exe: Some(exe),
                })
            })
            .unwrap_or_default()
    }

    /// `SIGTERM` (RabbitMQ's graceful stop), then `SIGKILL` after [`VM_GRACE`]. Only signals
    /// the PID while it still runs the VM executable we found, never a recycled PID.
    #[allow(clippy::disallowed_methods)] // A teardown poll with a deadline, outside any async task.
    fn stop(&mut self) {
        let (Some(pid), Some(exe)) = (self.pid.take(), self.exe.take()) else {
            return;
        };
        let ours = || alive(pid) && exe_of(pid).as_ref() == Some(&exe);
        if !ours() {
            return;
        }
        let target = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        let _ = kill(target, Signal::SIGTERM);
        let deadline = Instant::now() + VM_GRACE;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if ours() {
            tracing::warn!(pid, "rabbitmq VM did not stop within {VM_GRACE:?}; killing");
            let _ = kill(target, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Vm {
    /// `SIGKILL` at once (only while the PID still runs the VM we found), and wait for it.
    #[allow(clippy::disallowed_methods)] // A short poll with a deadline, outside any async task.
    fn kill(&mut self) {
        let (Some(pid), Some(exe)) = (self.pid.take(), self.exe.take()) else {
            return;
        };
        if !(alive(pid) && exe_of(pid).as_ref() == Some(&exe)) {
            return;
        }
        let _ = kill(
            Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
            Signal::SIGKILL,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/proc/<pid>/exe`, without a " (deleted)" suffix.
fn exe_of(pid: u32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(
        exe.to_str()
            .and_then(|e| e.strip_suffix(" (deleted)"))
            .map_or(exe.clone(), PathBuf::from),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_on_loopback_only() {
        let conf = rabbitmq_conf(5999);
        assert!(conf.contains("listeners.tcp.default = 127.0.0.1:5999"));
        assert!(conf.contains("loopback_users.guest = true"));
    }

    #[test]
    fn reads_a_list_queues_line() {
        let q = QueueDepth::parse("app-task-events\t0\t32\t2").unwrap();
        assert_eq!(
            q,
            QueueDepth {
                name: "app-task-events".into(),
                ready: 0,
                unacked: 32,
                consumers: 2
            }
        );
        assert!(QueueDepth::parse("app-task-events\t0\t32").is_err());
        assert!(QueueDepth::parse("name\tmessages_ready\tx\ty").is_err());
    }

    #[test]
    fn proc_helpers_see_this_process() {
        let me = std::process::id();
        assert!(alive(me));
        let parent = std::os::unix::process::parent_id();
        assert!(children_of(parent).contains(&me));
        assert!(
            Vm::find(me).pid.is_none(),
            "the test binary is no Erlang VM"
        );
    }
}
