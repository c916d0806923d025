//! `cargo xtask test`: prerequisites, lints, then every test in the workspace.
//!
//! The integration and end-to-end suites start real PostgreSQL, Redis, Scheduler and daprd
//! processes through the harness; `deps` makes sure those programs exist first.

use std::process::Command;

use anyhow::bail;

use crate::deps::{self, DepsArgs};
use crate::step;

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Skip `cargo fmt --check` and `cargo clippy` (CI never skips them).
    #[arg(long)]
    no_lint: bool,
    #[command(flatten)]
    deps: DepsArgs,
    /// Extra arguments for `cargo test` (e.g. `-- --nocapture`, or a test name filter).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

pub(crate) fn run(args: &TestArgs) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    // The tests never need the CLI; `up` builds it for `dapr run -f`.
    let deps_args = DepsArgs {
        no_cli: true,
        ..args.deps.clone()
    };
    let install = deps::run(&deps_args)?;
    if !args.no_lint {
        step::run("cargo fmt --check", || {
            cargo(&["fmt", "--all", "--check"], &[])
        })?;
        step::run("cargo clippy", || {
            cargo(
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
                &[],
            )
        })?;
    }
    // The end-to-end suites start the service binaries as processes: build them first, so a
    // filtered run (`cargo xtask test -- backend_e2e`) never picks up a stale binary.
    step::run("cargo build (service binaries)", || {
        cargo(&["build", "--workspace", "--bins", "--locked"], &[])
    })?;
    let mut test_args = vec!["test", "--workspace", "--locked"];
    test_args.extend(args.cargo_test_args.iter().map(String::as_str));

    // `#[sqlx::test]` creates a fresh database per test on the server in DATABASE_URL; this
    // server lives exactly as long as `cargo test` (the suites that need the whole stack start
    // their own through the harness).
    let bins = install.binaries()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let pg_root = tempfile::Builder::new()
        .prefix("todo-dapr-sqlx-")
        .tempdir()?;
    let log_dir = harness::stack::default_log_dir();
    let postgres = step::run("PostgreSQL for #[sqlx::test]", || {
        runtime.block_on(harness::Postgres::start(
            &bins,
            pg_root.path(),
            &log_dir,
            false,
        ))
    })?;
    let database_url = postgres.url("postgres");
    let mut env: Vec<(&str, &std::ffi::OsStr)> = install
        .env()
        .iter()
        .map(|(k, v)| (*k, v.as_os_str()))
        .collect();
    env.push(("DATABASE_URL", std::ffi::OsStr::new(&database_url)));
    let result = step::run("cargo test (unit, integration, end-to-end)", || {
        cargo(&test_args, &env)
    });
    drop(postgres);
    result?;
    step::info(&format!(
        "all green in {}",
        step::format_duration(start.elapsed())
    ));
    Ok(())
}

fn cargo(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(harness::repo_root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status()?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
