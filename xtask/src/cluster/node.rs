//! The node's init: the first process of the node's PID, mount and network namespaces.
//!
//! `up` starts `unshare --pid --mount --net --fork --kill-child=SIGTERM` with this program
//! (`cargo xtask cluster node <plan>`) as the namespaces' first process. It prepares the
//! namespaces (loopback, the link the host moves in, the pod bridge, private scratch mounts)
//! and starts the node's programs in the plan's order, each once the previous is ready. It
//! then supervises: if one of them exits, or it receives SIGTERM, it stops them in reverse
//! order and exits. When it exits, the kernel kills whatever is left in the PID namespace
//! (containers, shims), and the namespaces go with their last process — taking every mount,
//! network interface and iptables rule of the node with them. The host end of the link is one
//! half of a veth pair and disappears with its peer.

#![allow(clippy::print_stdout)] // Progress lines go to the node's log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Everything the node's init does, written by `up` as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NodePlan {
    /// The link `up` moves into the namespace, and the address it gets.
    pub(crate) link: String,
    pub(crate) link_cidr: String,
    /// The pod bridge and its address (created here so that the cluster DNS can listen on it
    /// before the first pod exists; the CNI bridge plugin adopts it).
    pub(crate) bridge: String,
    pub(crate) bridge_cidr: String,
    /// Directories that get a private tmpfs in the node's mount namespace: programs that write
    /// to fixed host paths (kubelet's `/var/log/containers`, the shims' `/run/containerd`)
    /// write there, and it vanishes with the namespace.
    pub(crate) private_dirs: Vec<PathBuf>,
    /// Kernel settings the kubelet insists on (it would change them for the whole machine):
    /// shown to it through read-only files bind-mounted over `/proc/sys/...` in this mount
    /// namespace only.
    pub(crate) kernel_view: BTreeMap<String, String>,
    /// The cgroup the kubelet puts pods under (`cgroupRoot`), made in every hierarchy here
    /// because the kubelet requires it to exist; `down` removes it.
    pub(crate) cgroup_root: String,
    /// Where the fake `/proc/sys` files are written.
    pub(crate) scratch: PathBuf,
    /// The services' range: routed to the bridge so that connections from the node's own
    /// programs (the API server calling a webhook) get as far as kube-proxy's DNAT rules.
    pub(crate) service_cidr: String,
    /// Per-namespace network settings (`/proc/sys/net/...` of this namespace).
    pub(crate) net_sysctls: BTreeMap<String, String>,
    /// The steps, in order.
    pub(crate) steps: Vec<Step>,
    /// Written once every step is done.
    pub(crate) ready_file: PathBuf,
}

/// One step of the node's start.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Step {
    /// A long-running program of the node.
    Start {
        name: String,
        argv: Vec<String>,
        log: PathBuf,
        ready: Readiness,
    },
    /// A command that must succeed once (retried until the deadline).
    Run { name: String, argv: Vec<String> },
}

/// How to tell that a program is ready.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Readiness {
    /// Accepts TCP connections.
    Tcp(SocketAddr),
    /// This command exits 0.
    Command(Vec<String>),
}

/// How long one step may take to become ready (the API server's first start on 2 busy cores
/// is the slowest).
const STEP_DEADLINE: Duration = Duration::from_secs(180);
/// How long each program gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Running {
    name: String,
    pid: Pid,
}

/// Runs the node from `plan` until SIGTERM or a program's death.
pub(crate) fn run(plan: &Path) -> anyhow::Result<()> {
    let plan: NodePlan = serde_json::from_slice(
        &std::fs::read(plan).with_context(|| format!("reading {}", plan.display()))?,
    )?;
    if std::process::id() != 1 {
        bail!(
            "the node's init must be the first process of a new PID namespace (see `cluster up`)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut running = Vec::new();
        let started = tokio::select! {
            r = start(&plan, &mut running) => r,
            _ = term.recv() => Err(anyhow::anyhow!("stopped while starting")),
        };
        let outcome = match started {
            Ok(()) => {
                std::fs::write(&plan.ready_file, b"ready\n")?;
                log("node ready");
                supervise(&mut term, &running).await
            }
            Err(e) => Err(e),
        };
        stop_all(&running);
        outcome
    })
}

fn log(msg: &str) {
    println!("[node] {msg}");
}

async fn start(plan: &NodePlan, running: &mut Vec<Running>) -> anyhow::Result<()> {
    prepare_mounts(plan)?;
    prepare_cgroups(plan)?;
    prepare_network(plan).await?;
    for step in &plan.steps {
        match step {
            Step::Start {
                name,
                argv,
                log: log_path,
                ready,
            } => {
                let t0 = Instant::now();
                let pid = spawn(argv, log_path).with_context(|| format!("starting {name}"))?;
                running.push(Running {
                    name: name.clone(),
                    pid,
                });
                wait_ready(name, pid, ready, log_path).await?;
                log(&format!(
                    "{name} ready ({:.1}s)",
                    t0.elapsed().as_secs_f64()
                ));
            }
            Step::Run { name, argv } => {
                let deadline = Instant::now() + STEP_DEADLINE;
                loop {
                    let out = command(argv)?.output()?;
                    if out.status.success() {
                        log(&format!("{name} done"));
                        break;
                    }
                    if Instant::now() > deadline {
                        bail!(
                            "{name} kept failing: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
    Ok(())
}

fn spawn(argv: &[String], log_path: &Path) -> anyhow::Result<Pid> {
    let (program, args) = argv.split_first().context("empty command")?;
    let out = std::fs::File::create(log_path)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    // Reaped by `reap` (waitpid on any child), not through `Child`, because as PID 1 this
    // process also inherits every orphan of the namespace (the containers' shims).
    Ok(Pid::from_raw(i32::try_from(child.id())?))
}

async fn wait_ready(
    name: &str,
    pid: Pid,
    ready: &Readiness,
    log_path: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        if let Some(status) = reap_one(pid) {
            bail!(
                "{name} exited while starting ({status}); last lines of {}:\n{}",
                log_path.display(),
                tail(log_path, 15)
            );
        }
        let ok = match ready {
            Readiness::Tcp(addr) => {
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            Readiness::Command(argv) => command(argv)?
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        };
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{name} was not ready after {}s; last lines of {}:\n{}",
                STEP_DEADLINE.as_secs(),
                log_path.display(),
                tail(log_path, 15)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Reaps `pid` if it has exited; also reaps any other exited child (orphans adopted by PID 1).
fn reap_one(pid: Pid) -> Option<String> {
    let mut found = None;
    for (child, status) in reap() {
        if child == pid {
            found = Some(status);
        }
    }
    found
}

/// Every child that has exited, with how it ended.
fn reap() -> Vec<(Pid, String)> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, format!("exit code {code}"))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push((pid, format!("killed by {sig}"))),
            Ok(WaitStatus::StillAlive) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}

async fn supervise(
    term: &mut tokio::signal::unix::Signal,
    running: &[Running],
) -> anyhow::Result<()> {
    let mut child = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                log("SIGTERM: stopping the node");
                return Ok(());
            }
            _ = child.recv() => {}
            // SIGCHLD can coalesce; look anyway now and then.
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        for (pid, status) in reap() {
            if let Some(r) = running.iter().find(|r| r.pid == pid) {
                bail!("{} exited ({status}): stopping the node", r.name);
            }
        }
    }
}

/// SIGTERM to each program, newest first, then SIGKILL after the grace period.
#[allow(clippy::disallowed_methods)] // The last thing the init does; nothing else runs.
fn stop_all(running: &[Running]) {
    for r in running.iter().rev() {
        if kill(r.pid, Signal::SIGTERM).is_err() {
            continue;
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let _ = reap();
            if kill(r.pid, None).is_err() {
                break;
            }
            if Instant::now() > deadline {
                log(&format!("{} ignored SIGTERM; killing it", r.name));
                let _ = kill(r.pid, Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        log(&format!("stopped {}", r.name));
    }
}

fn prepare_cgroups(plan: &NodePlan) -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, kind, options, ..] = fields[..] else {
            continue;
        };
        if kind != "cgroup" && kind != "cgroup2" {
            continue;
        }
        let root = Path::new(dir).join(&plan.cgroup_root);
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        // A new v1 cpuset starts with no CPUs and no memory nodes; give it the parent's.
        if kind == "cgroup" && options.split(',').any(|o| o == "cpuset") {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let parent = std::fs::read_to_string(Path::new(dir).join(file))?;
                std::fs::write(root.join(file), parent.trim())?;
            }
        }
    }
    Ok(())
}

fn prepare_mounts(plan: &NodePlan) -> anyhow::Result<()> {
    for dir in &plan.private_dirs {
        std::fs::create_dir_all(dir)?;
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "mode=0755",
            "tmpfs",
            &dir.to_string_lossy(),
        ])?;
    }
    std::fs::create_dir_all(&plan.scratch)?;
    for (key, wanted) in &plan.kernel_view {
        let real = Path::new("/proc/sys").join(key.replace('.', "/"));
        let current = std::fs::read_to_string(&real).unwrap_or_default();
        if current.trim() == wanted {
            continue;
        }
        let fake = plan.scratch.join(key);
        std::fs::write(&fake, format!("{wanted}\n"))?;
        sh(&[
            "mount",
            "--bind",
            &fake.to_string_lossy(),
            &real.to_string_lossy(),
        ])?;
        sh(&["mount", "-o", "remount,bind,ro", &real.to_string_lossy()])?;
        log(&format!(
            "{key}: the kubelet sees {wanted} (the machine keeps {})",
            current.trim()
        ));
    }
    Ok(())
}

async fn prepare_network(plan: &NodePlan) -> anyhow::Result<()> {
    sh(&["ip", "link", "set", "lo", "up"])?;
    // The host moves its veth peer in once this process exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    // (`/sys/class/net` still shows the host's interfaces: sysfs is not remounted here.)
    while Command::new("ip")
        .args(["link", "show", &plan.link])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        if Instant::now() > deadline {
            bail!(
                "the host did not move {} into the node's namespace",
                plan.link
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sh(&["ip", "addr", "add", &plan.link_cidr, "dev", &plan.link])?;
    sh(&["ip", "link", "set", &plan.link, "up"])?;
    sh(&["ip", "link", "add", &plan.bridge, "type", "bridge"])?;
    sh(&["ip", "addr", "add", &plan.bridge_cidr, "dev", &plan.bridge])?;
    sh(&["ip", "link", "set", &plan.bridge, "up"])?;
    sh(&[
        "ip",
        "route",
        "add",
        &plan.service_cidr,
        "dev",
        &plan.bridge,
    ])?;
    for (key, value) in &plan.net_sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).with_context(|| format!("setting {key} in the node"))?;
    }
    Ok(())
}

/// `argv` as a command (the plan's commands are never empty; an empty one is an error).
fn command<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> anyhow::Result<Command> {
    let (program, args) = argv
        .split_first()
        .context("an empty command in the node's plan")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    Ok(cmd)
}

fn sh(argv: &[&str]) -> anyhow::Result<()> {
    let out = command(argv)?
        .output()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
