//! `cargo xtask`: the project's task runner.
//!
//! `deps` installs or reuses every prerequisite (Debian packages, the Dapr runtime built from its
//! Go modules), `up` runs the local stack, `down` stops a detached one, `test` runs the whole
//! suite, `images` writes the services' OCI images without Nix. Each command does its own set-up,
//! so a fresh machine needs nothing else.

mod bench;
mod cargo;
mod cluster;
mod cluster_images;
mod dapr_fixes;
mod dapr_runtime;
mod deny;
mod deps;
mod helm_check;
mod images;
mod kube_build;
mod nix_check;
mod observability;
mod secret_scan;
mod smtp_sink;
mod soak;
mod step;
mod test;
mod tools;
mod up;

use clap::{Parser, Subcommand};

/// todo-dapr's task runner.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install or verify every prerequisite: Debian packages (PostgreSQL, Redis) and the Dapr
    /// runtime (daprd, Scheduler, dapr CLI) built from Dapr's Go modules. Idempotent.
    Deps(deps::DepsArgs),
    /// Run the local stack in the foreground (Ctrl-C stops everything), or detached.
    Up(up::UpArgs),
    /// Stop a stack started with `cargo xtask up --detach`.
    Down,
    /// Run `deps`, the lints (fmt, clippy, doc, deny) and every test (unit, integration, e2e).
    Test(test::TestArgs),
    /// Benchmark a service against its own local stack and write BENCHMARKS.md (not a test).
    Bench(bench::BenchArgs),
    /// Soak the local stack: a mixed workload with seeded faults for N minutes, then the
    /// invariants (nothing lost, nothing twice, no runaway memory). `test` runs 2 minutes.
    Soak(soak::SoakArgs),
    /// Build one reproducible OCI image layout per service (no Nix), or prove them (`--check`).
    Images(images::ImagesArgs),
    /// A real single-node Kubernetes cluster on this machine (programs, images, up/down).
    Cluster(cluster::ClusterArgs),
    /// Run an SMTP sink that prints and keeps every mail it receives (`up` starts one).
    SmtpSink(smtp_sink::SmtpSinkArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Deps(args) => deps::run(&args).map(|_| ()),
        Command::Up(args) => up::run(&args),
        Command::Down => up::down(),
        Command::Test(args) => test::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::Images(args) => images::run(&args),
        Command::SmtpSink(args) => smtp_sink::run(&args),
        Command::Cluster(args) => cluster::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            step::error(&format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
