//! Nested `cargo` invocations.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};
use serde_json::Value;

/// `cargo` in the repository, without the variables `cargo run` set for xtask itself: build
/// scripts such as ring's track `CARGO_MANIFEST_DIR`, so inheriting xtask's would rebuild them
/// (and all that depends on them) every time a build by hand ran in between.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(harness::repo_root());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&name.as_ref())
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// Builds every binary of the workspace (debug), the one way `test`, `soak` and `up` build
/// them: the same command line means the same feature unification and the same artifacts, so
/// whichever command ran first, the others rebuild nothing. (`up` once built only the four
/// services with `-p`, which unified features differently and recompiled 58 crates after a
/// `cargo xtask test`.)
pub(crate) fn build_binaries() -> anyhow::Result<()> {
    let status = command()
        .args(["build", "--workspace", "--bins", "--locked"])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build failed ({status})");
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
pub(crate) fn target_dir() -> anyhow::Result<PathBuf> {
    let out = command()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed ({})",
        out.status
    );
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")
}
