//! Where the harness finds the programs it starts.
//!
//! `cargo xtask deps` installs all of them; each can be overridden by an environment variable so
//! a developer can point the tests at another build (e.g. a `dapr init` install).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Paths of the external programs the harness runs.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The Dapr sidecar (`DAPRD_PATH`, default `~/.dapr/bin/daprd`).
    pub daprd: PathBuf,
    /// The Dapr Scheduler (`DAPR_SCHEDULER_PATH`, default `~/.dapr/bin/scheduler`).
    pub scheduler: PathBuf,
    /// PostgreSQL's server bin directory with `initdb`, `postgres`, `psql` (`PG_BIN_DIR`).
    pub pg_bin: PathBuf,
    /// `redis-server` (`REDIS_SERVER`, default: found on `PATH`).
    pub redis_server: PathBuf,
}

impl Binaries {
    /// Finds every program, from the process environment, or says which is missing and how to
    /// install it.
    pub fn locate() -> anyhow::Result<Self> {
        Self::locate_with(|k| std::env::var_os(k).map(PathBuf::from))
    }

    /// Like [`Binaries::locate`], reading variables through `lookup`.
    pub fn locate_with(lookup: impl Fn(&str) -> Option<PathBuf>) -> anyhow::Result<Self> {
        let dapr_bin = dapr_bin_dir(&lookup);
        let mut missing = Vec::new();
        let mut pick = |var: &str, default: Option<PathBuf>, what: &str| -> PathBuf {
            let path = lookup(var).or(default).unwrap_or_default();
            if !path.is_file() {
                missing.push(format!(
                    "{what}: not found at `{}` (set {var})",
                    path.display()
                ));
            }
            path
        };
        let daprd = pick(
            "DAPRD_PATH",
            dapr_bin.as_ref().map(|d| d.join("daprd")),
            "daprd",
        );
        let scheduler = pick(
            "DAPR_SCHEDULER_PATH",
            dapr_bin.as_ref().map(|d| d.join("scheduler")),
            "dapr scheduler",
        );
        let redis_server = pick("REDIS_SERVER", find_on_path("redis-server"), "redis-server");
        let pg_bin = lookup("PG_BIN_DIR")
            .or_else(newest_postgres_bin)
            .unwrap_or_default();
        if !pg_bin.join("postgres").is_file() || !pg_bin.join("initdb").is_file() {
            missing.push(format!(
                "postgresql server: no `postgres`/`initdb` in `{}` (set PG_BIN_DIR)",
                pg_bin.display()
            ));
        }
        if !missing.is_empty() {
            bail!(
                "missing prerequisites (run `cargo xtask deps`):\n  {}",
                missing.join("\n  ")
            );
        }
        Ok(Self {
            daprd,
            scheduler,
            pg_bin,
            redis_server,
        })
    }

    /// A program from PostgreSQL's bin directory.
    pub fn pg(&self, program: &str) -> PathBuf {
        self.pg_bin.join(program)
    }
}

/// The directory the dapr CLI runs binaries from: `$DAPR_RUNTIME_PATH/.dapr/bin` or `~/.dapr/bin`.
pub fn dapr_bin_dir(lookup: &impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    lookup("DAPR_RUNTIME_PATH")
        .or_else(|| lookup("HOME"))
        .map(|root| root.join(".dapr").join("bin"))
}

/// Finds `program` in the directories of `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The bin directory of the newest PostgreSQL under Debian's `/usr/lib/postgresql/<major>`.
pub fn newest_postgres_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// Runs `program --version`-style commands and returns trimmed stdout.
pub fn output_of(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {args:?} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
