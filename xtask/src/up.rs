//! `cargo xtask up` / `down`: the local stack.
//!
//! Until the services land, the stack is the infrastructure they run on: PostgreSQL, Redis
//! (pub/sub), the Dapr Scheduler and the rendered Dapr resources. The output format is final:
//! one line per process with its address, PID and log file.

#![allow(clippy::print_stdout)] // The stack table is the command's output.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use harness::process::{RecordedProcess, StopPolicy, stop_recorded};
use harness::{Infra, InfraOptions};

use crate::deps::{self, DepsArgs};
use crate::step;

/// Options of `cargo xtask up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Start the stack in the background and return; stop it with `cargo xtask down`.
    #[arg(long)]
    detach: bool,
    #[command(flatten)]
    deps: DepsArgs,
}

/// What `up --detach` leaves for `down`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct UpState {
    processes: Vec<RecordedProcess>,
    data_dir: PathBuf,
    log_dir: PathBuf,
}

fn state_file() -> PathBuf {
    harness::repo_root().join("target").join("xtask-up.json")
}

pub(crate) fn run(args: &UpArgs) -> anyhow::Result<()> {
    if state_file().exists() {
        bail!(
            "a detached stack is already running ({}): run `cargo xtask down` first",
            state_file().display()
        );
    }
    let install = deps::run(&args.deps)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let infra = Infra::start(InfraOptions {
            detached: args.detach,
            // Exactly the Dapr binaries `deps` vouched for (maybe the build cache).
            binaries: Some(install.binaries()?),
            ..InfraOptions::default()
        })
        .await?;
        print_table(&infra);
        if args.detach {
            let state = UpState {
                data_dir: infra.data_dir().to_path_buf(),
                log_dir: infra.log_dir().to_path_buf(),
                processes: infra.detach(),
            };
            std::fs::write(state_file(), serde_json::to_vec_pretty(&state)?)?;
            println!("Detached. Stop with `cargo xtask down`.");
            return Ok(());
        }
        println!("Running. Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        println!("Stopping…");
        drop(infra);
        println!("Stopped.");
        Ok(())
    })
}

fn print_table(infra: &Infra) {
    let pg = &infra.postgres;
    println!();
    println!("todo-dapr local stack");
    row(
        "postgres",
        &format!("127.0.0.1:{}", pg.port()),
        &pg.url("postgres"),
    );
    row(
        "redis",
        &infra.redis.address(),
        "pub/sub broker (Redis Streams)",
    );
    row(
        "scheduler",
        &infra.scheduler.address(),
        "Dapr Jobs API back end",
    );
    row(
        "resources",
        "",
        &infra.resources_dir().display().to_string(),
    );
    row("logs", "", &infra.log_dir().display().to_string());
    println!();
}

fn row(name: &str, address: &str, detail: &str) {
    println!("  {name:<10} {address:<21} {detail}");
}

pub(crate) fn down() -> anyhow::Result<()> {
    let path = state_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            step::info("no detached stack is running");
            return Ok(());
        }
        Err(e) => return Err(e).context(format!("reading {}", path.display())),
    };
    let state: UpState = serde_json::from_str(&text).context("parsing the stack state file")?;
    for p in state.processes.iter().rev() {
        let stopped = stop_recorded(p.pid, &p.exe, stop_policy(&p.name))?;
        let what = if stopped { "stopped" } else { "already gone" };
        step::info(&format!("{:<10} pid {:<8} {what}", p.name, p.pid));
    }
    remove_data(&state.data_dir)?;
    std::fs::remove_file(&path)?;
    step::info(&format!("logs kept in {}", state.log_dir.display()));
    Ok(())
}

fn stop_policy(name: &str) -> StopPolicy {
    if name == "postgres" {
        // PostgreSQL's fast shutdown.
        StopPolicy {
            signal: nix::sys::signal::Signal::SIGINT,
            ..StopPolicy::default()
        }
    } else {
        StopPolicy::default()
    }
}

fn remove_data(dir: &Path) -> anyhow::Result<()> {
    // Only ever delete what `up` created: a `todo-dapr-*` directory in the temp dir.
    let ours = dir.starts_with(std::env::temp_dir())
        && dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("todo-dapr-"));
    if ours && dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}
