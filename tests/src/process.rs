//! A child process the harness started, stopped by its PID when the handle is dropped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How a child is started and stopped.
#[derive(Clone, Copy, Debug)]
pub struct StopPolicy {
    /// First signal sent; the process gets `grace` to exit before `SIGKILL`.
    pub signal: Signal,
    /// Time allowed for a graceful exit.
    pub grace: Duration,
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self {
            signal: Signal::SIGTERM,
            grace: Duration::from_secs(10),
        }
    }
}

/// A running child process with its output captured in a log file.
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    // `None` once stopped or detached: a handle stops its process at most once.
    child: Option<Child>,
    log_path: PathBuf,
    stop: StopPolicy,
}

impl ManagedProcess {
    /// Starts `cmd` with stdout and stderr appended to `<log_dir>/<name>.log`.
    ///
    /// With `detached`, the child gets its own process group so that it outlives a Ctrl-C sent to
    /// the terminal that started it (`cargo xtask up --detach`).
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log_dir: &Path,
        stop: StopPolicy,
        detached: bool,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating log directory {}", log_dir.display()))?;
        let log_path = log_dir.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_err = log.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        if detached {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log_path,
            stop,
        })
    }

    /// The process's name in logs and errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID, or `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the process's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fails, with the end of the log, if the process has already exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited early ({status}); last lines of {}:\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(30)
            );
        }
        Ok(())
    }

    /// Sends the stop signal, waits up to the grace period, then kills. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = pid_of(&child);
        let _ = kill(pid, self.stop.signal);
        if !wait_for_exit(&mut child, self.stop.grace) {
            tracing::warn!(process = %self.name, "did not stop within {:?}; killing", self.stop.grace);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `SIGKILL` at once, as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Leaves the process running after this handle is gone and returns its PID.
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pid_of(child: &Child) -> Pid {
    // PIDs fit in i32 on Linux; `Child::id` is u32 only for portability.
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}

/// Polls `try_wait` until the child exits or `grace` passes; returns whether it exited.
#[allow(clippy::disallowed_methods)] // A teardown poll with a deadline, outside any async task.
fn wait_for_exit(child: &mut Child, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A detached process, as written down by `cargo xtask up --detach` for `cargo xtask down`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecordedProcess {
    /// Name in logs.
    pub name: String,
    /// The PID we started.
    pub pid: u32,
    /// The executable, checked against `/proc/<pid>/exe` before signalling.
    pub exe: PathBuf,
}

/// Stops a process that an earlier run started and recorded by PID (`cargo xtask down`).
///
/// The PID is only signalled while `/proc/<pid>/exe` still names `expected_exe`, so a PID that
/// the kernel has since given to an unrelated process is left alone.
#[allow(clippy::disallowed_methods)] // A teardown poll with a deadline, outside any async task.
pub fn stop_recorded(pid: u32, expected_exe: &Path, stop: StopPolicy) -> anyhow::Result<bool> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => exe,
        Err(_) => return Ok(false),
    };
    // A binary rebuilt while it runs shows as "<path> (deleted)": still the process we started.
    let exe = exe
        .to_str()
        .and_then(|e| e.strip_suffix(" (deleted)"))
        .map_or(exe.clone(), PathBuf::from);
    let expected =
        std::fs::canonicalize(expected_exe).unwrap_or_else(|_| expected_exe.to_path_buf());
    if expected != exe {
        return Ok(false);
    }
    let pid = Pid::from_raw(raw);
    kill(pid, stop.signal).with_context(|| format!("signalling {pid}"))?;
    let deadline = Instant::now() + stop.grace;
    while Instant::now() < deadline {
        if kill(pid, None).is_err() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(pid, Signal::SIGKILL);
    Ok(true)
}

/// `/proc/<pid>/stat` split after the command name: `[state, ppid, …]`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether `pid` exists and is not a zombie (an exited child its parent has not reaped yet).
pub fn alive(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.first().cloned())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// The PIDs whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| ppid == parent)
        })
        .collect()
}
