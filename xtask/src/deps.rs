//! `cargo xtask deps`: make this machine able to build, run and test the project.
//!
//! Debian packages are installed only when their programs are missing; the Dapr runtime is
//! reused from `~/.dapr/bin` or the build cache when the pinned version is already there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use harness::binaries::{find_on_path, newest_postgres_bin};

use crate::dapr_runtime::{self, DaprInstall};
use crate::step;

/// Options of `cargo xtask deps` (also taken by `up` and `test`).
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct DepsArgs {
    /// Dapr runtime version (daprd and Scheduler) to build from Dapr's Go modules.
    #[arg(long, env = "TODO_DAPR_RUNTIME_VERSION", default_value = dapr_runtime::RUNTIME_VERSION)]
    pub(crate) runtime_version: String,
    /// dapr CLI version to build (used by `dapr run -f dapr/dapr.yaml`; the tests do not need it).
    #[arg(long, env = "TODO_DAPR_CLI_VERSION", default_value = dapr_runtime::CLI_VERSION)]
    pub(crate) cli_version: String,
    /// Do not build the dapr CLI.
    #[arg(long)]
    pub(crate) no_cli: bool,
}

/// A Debian package and how to tell that its program is already here.
struct Package {
    name: &'static str,
    present: fn() -> bool,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "postgresql",
        present: || newest_postgres_bin().is_some(),
    },
    Package {
        name: "redis-server",
        present: || find_on_path("redis-server").is_some(),
    },
];

/// Installs what is missing and returns where the Dapr binaries are.
pub(crate) fn run(args: &DepsArgs) -> anyhow::Result<DaprInstall> {
    step::run("Debian packages", install_packages)?;
    step::run("Go toolchain", check_go)?;
    let install = step::run(&format!("Dapr runtime {}", args.runtime_version), || {
        dapr_runtime::ensure_runtime(&args.runtime_version)
    })?;
    if !args.no_cli {
        step::run(&format!("dapr CLI {}", args.cli_version), || {
            dapr_runtime::ensure_cli(&args.cli_version)
        })?;
    }
    Ok(install)
}

fn install_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| !(p.present)())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        let names: Vec<_> = PACKAGES.iter().map(|p| p.name).collect();
        step::info(&format!("already installed: {}", names.join(", ")));
        return Ok(());
    }
    step::info(&format!("installing: {}", missing.join(", ")));
    let root = nix::unistd::Uid::effective().is_root();
    if !root && find_on_path("sudo").is_none() {
        bail!(
            "missing packages {missing:?} and not root: run `apt-get install -y {}` as root",
            missing.join(" ")
        );
    }
    // Packages like redis-server start a system service from their install script; the
    // project runs its own servers on free ports, so service starts are refused during the
    // install with Debian's policy-rc.d mechanism (exit 101 = "action forbidden").
    let policy = PathBuf::from("/usr/sbin/policy-rc.d");
    let wrote_policy = if root && !policy.exists() {
        std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755))?;
        true
    } else {
        false
    };
    let result = (|| {
        apt(root, &["update", "-q"])?;
        let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
        install.extend(&missing);
        apt(root, &install)
    })();
    if wrote_policy {
        let _ = std::fs::remove_file(&policy);
    }
    result?;
    let still: Vec<_> = PACKAGES
        .iter()
        .filter(|p| !(p.present)())
        .map(|p| p.name)
        .collect();
    if !still.is_empty() {
        bail!("installed, but still missing the programs of: {still:?}");
    }
    Ok(())
}

fn apt(root: bool, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    let status = cmd.status().context("running apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn check_go() -> anyhow::Result<()> {
    let go = find_on_path("go").context(
        "`go` is not on PATH: the Dapr runtime is built from its Go modules and needs Go >= 1.26",
    )?;
    let version = harness::binaries::output_of(&go, &["env", "GOVERSION"])?;
    let minor = version
        .strip_prefix("go1.")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .with_context(|| format!("unrecognised Go version `{version}`"))?;
    if minor < 26 {
        bail!("{version} is too old: Dapr 1.18 needs Go >= 1.26");
    }
    step::info(&format!("{version} at {}", go.display()));
    Ok(())
}
