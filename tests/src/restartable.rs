//! A server the fault tests stop and start again, on the same ports and data, while the rest of
//! the stack keeps running.
//!
//! The handle is shared (`&self`): a suite's environment owns its servers and hands every test a
//! shared reference, and a fault test must be able to take one of them down through it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::process::{ManagedProcess, StopPolicy};

/// Builds the server's command line; called again for every start.
pub type Recipe = Box<dyn Fn() -> Command + Send + Sync>;

/// A [`ManagedProcess`] that remembers how it was started.
pub struct Restartable {
    name: String,
    recipe: Recipe,
    log_dir: PathBuf,
    stop: StopPolicy,
    detached: bool,
    process: Mutex<ManagedProcess>,
}

impl std::fmt::Debug for Restartable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restartable")
            .field("name", &self.name)
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

impl Restartable {
    /// Starts the command `recipe` builds, as [`ManagedProcess::spawn`] does.
    pub fn spawn(
        name: &str,
        recipe: Recipe,
        log_dir: &Path,
        stop: StopPolicy,
        detached: bool,
    ) -> anyhow::Result<Self> {
        let process = ManagedProcess::spawn(name, recipe(), log_dir, stop, detached)?;
        Ok(Self {
            name: name.to_owned(),
            recipe,
            log_dir: log_dir.to_path_buf(),
            stop,
            detached,
            process: Mutex::new(process),
        })
    }

    /// Stops it as its [`StopPolicy`] says (a clean shutdown). Idempotent.
    pub fn stop(&self) {
        self.lock().stop();
    }

    /// `SIGKILL`, as a crash or the OOM killer would. Idempotent.
    pub fn kill(&self) {
        self.lock().kill();
    }

    /// Starts the same command again (stopping the current process first, if it still runs).
    /// The caller waits for readiness, as after the first start.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let mut process = self.lock();
        process.stop();
        *process = ManagedProcess::spawn(
            &self.name,
            (self.recipe)(),
            &self.log_dir,
            self.stop,
            self.detached,
        )?;
        Ok(())
    }

    /// Fails, with the end of its log, if the process has exited.
    pub fn ensure_running(&self) -> anyhow::Result<()> {
        self.lock().ensure_running()
    }

    /// Where the process's output goes (every start appends to the same file).
    pub fn log_path(&self) -> PathBuf {
        self.lock().log_path().to_path_buf()
    }

    /// The PID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.lock().pid()
    }

    /// The process (logs, stop, kill) through an exclusive handle.
    pub fn get_mut(&mut self) -> &mut ManagedProcess {
        self.process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives up the ability to restart; the process keeps running under the returned handle.
    pub fn into_inner(self) -> ManagedProcess {
        self.process
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    // Never held across an await: every method takes it for one synchronous step.
    fn lock(&self) -> MutexGuard<'_, ManagedProcess> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
