//! The dependency policy check of `cargo xtask test`: `cargo deny` against `deny.toml` for
//! licenses, bans (duplicate versions included) and sources, offline.
//!
//! The advisories check is left out on purpose: it needs the RustSec advisory database, a git
//! repository that these machines cannot fetch (only the package registries are reachable), and
//! a check that passes on a stale copy would only look like one.
//!
//! cargo-deny is no rustup component, so it is built once from crates.io at a pinned version
//! into the user cache (`~/.cache/todo-dapr/cargo-deny-<version>`), outside the checkout, and
//! reused while the pin is unchanged — like the Dapr runtime and the Helm venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::step;

/// The cargo-deny release `cargo xtask test` runs.
pub(crate) const VERSION: &str = "0.20.2";

/// What is checked: everything but `advisories` (see the module docs).
const CHECKS: &[&str] = &["licenses", "bans", "sources"];

/// Runs `cargo deny check licenses bans sources` offline; fails on any denied finding.
pub(crate) fn check() -> anyhow::Result<()> {
    let deny = ensure(&crate::dapr_runtime::cache_root()?)?;
    let root = harness::repo_root();
    // `cargo metadata` resolves the crates of every target platform (windows-sys and the like),
    // which a Linux build never downloads: fetched first, from the crates.io registry, so the
    // offline check finds them on a machine that has only built here.
    let fetched = crate::cargo::command()
        .args(["fetch", "--locked", "--quiet"])
        .status()
        .context("running cargo fetch")?;
    if !fetched.success() {
        bail!("cargo fetch --locked failed ({fetched})");
    }
    // Invoked the way cargo invokes a plugin (`cargo-deny deny …`). `--offline` keeps its
    // `cargo metadata` on the local registry cache; `--locked` refuses a stale Cargo.lock.
    let status = Command::new(&deny)
        .args(["deny", "--offline", "--locked", "--color", "never"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("check")
        // Each duplicate is listed with its versions; its dependency tree would add ~1,800
        // lines to the log. `cargo deny check bans` by hand shows them.
        .arg("--hide-inclusion-graph")
        .args(CHECKS)
        .current_dir(&root)
        .status()
        .with_context(|| format!("running {}", deny.display()))?;
    if !status.success() {
        bail!("cargo deny check {} failed ({status})", CHECKS.join(" "));
    }
    Ok(())
}

/// The pinned cargo-deny under `cache`, built first if it is not there yet.
fn ensure(cache: &Path) -> anyhow::Result<PathBuf> {
    let install_root = cache.join(format!("cargo-deny-{VERSION}"));
    let bin = install_root.join("bin").join("cargo-deny");
    if reports_version(&bin) {
        step::info(&format!(
            "reusing cargo-deny {VERSION} at {}",
            bin.display()
        ));
        return Ok(bin);
    }
    step::info(&format!(
        "building cargo-deny {VERSION} from crates.io into {} (once; a few minutes)",
        install_root.display()
    ));
    let mut install = crate::cargo::command();
    install
        .args([
            "install",
            "--locked",
            "--force",
            "cargo-deny",
            "--version",
            VERSION,
        ])
        .arg("--root")
        .arg(&install_root)
        // A throwaway target directory, not the workspace's: nothing of it is reused.
        .env_remove("CARGO_TARGET_DIR")
        // Its release profile uses fat LTO and one codegen unit, which triples the build on
        // two cores for a check that runs in seconds either way.
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
    let status = install.status().context("running cargo install")?;
    if !status.success() {
        bail!("cargo install cargo-deny {VERSION} failed ({status})");
    }
    if !reports_version(&bin) {
        bail!(
            "{} does not report version {VERSION} after the install",
            bin.display()
        );
    }
    Ok(bin)
}

/// Whether `bin` runs and says it is [`VERSION`] (`cargo-deny 0.20.2`).
fn reports_version(bin: &Path) -> bool {
    bin.is_file()
        && harness::binaries::output_of(bin, &["--version"])
            .is_ok_and(|out| out.split_whitespace().nth(1) == Some(VERSION))
}
