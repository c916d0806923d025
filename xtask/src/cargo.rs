//! Nested `cargo` invocations.

use std::process::Command;

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
