//! `cargo xtask soak`: the consumers suite's soak scenario (a steady mixed workload through the
//! whole local stack, one fault at a time on a seeded schedule, then the invariants over all of
//! it) for as long as asked. `cargo xtask test` runs two minutes of it; the figures of a long
//! run go into RELIABILITY.md.

use crate::deps::{self, DepsArgs};
use crate::step;
use crate::test::cargo;

/// Options of `cargo xtask soak`.
#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// Minutes of workload (at least 1); the checks afterwards take a minute or two more.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seed of the workload's choices and of the fault schedule: the same seed, the same faults
    /// in the same order at the same times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    deps: DepsArgs,
}

pub(crate) fn run(args: &SoakArgs) -> anyhow::Result<()> {
    crate::up::ensure_no_detached_stack()?;
    anyhow::ensure!(
        args.minutes.is_finite() && args.minutes >= 1.0,
        "--minutes must be at least 1 (the fault schedule needs the time)"
    );
    let install = deps::run(&DepsArgs {
        no_cli: true,
        ..args.deps.clone()
    })?;
    step::run(
        "cargo build (service binaries)",
        crate::cargo::build_binaries,
    )?;
    let minutes = args.minutes.to_string();
    let seed = args.seed.to_string();
    let broker = args.deps.broker.profile();
    let mut env: Vec<(&str, &std::ffi::OsStr)> = install
        .env()
        .iter()
        .map(|(k, v)| (*k, v.as_os_str()))
        .collect();
    env.push((harness::resources::BROKER_ENV, std::ffi::OsStr::new(broker)));
    env.push((
        harness::suite::SOAK_MINUTES_ENV,
        std::ffi::OsStr::new(&minutes),
    ));
    env.push((harness::suite::SOAK_SEED_ENV, std::ffi::OsStr::new(&seed)));
    step::run(
        &format!("soak: {minutes} min, seed {seed}, broker {broker}"),
        || {
            cargo(
                &[
                    "test",
                    "--locked",
                    "-p",
                    "todo-dapr-tests",
                    "--test",
                    "consumers_e2e",
                    "--",
                    "--exact",
                    "soak_mixed_workload_with_seeded_faults",
                ],
                &env,
            )
        },
    )
}
