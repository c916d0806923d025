//! The Helm chart check of `cargo xtask test`: render, lint, schema validation and template
//! tests of `helm/todo-dapr`, all offline.
//!
//! No registry offers a `helm` binary, but PyPI offers Helm's Go library wrapped for Python
//! (`helm-python-sdk`), next to `kubernetes-validate` and `check-jsonschema`. So the checks live
//! in `helm/tests/render_check.py`, and this step gives the script a venv with the pins of
//! `helm/tests/requirements.txt`: created once in the user cache (outside the checkout) and
//! reused while the pins are unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

use crate::step;

/// The script, relative to the repository root.
const SCRIPT: &str = "helm/tests/render_check.py";
/// The pins, relative to the repository root.
const REQUIREMENTS: &str = "helm/tests/requirements.txt";
/// Written into the venv after a successful install: the requirements it was built from.
const STAMP: &str = "todo-dapr-requirements.txt";
/// `python -m pip …` arguments before the requirements file.
const PIP_INSTALL: &[&str] = &["-m", "pip", "install", "-q", "--disable-pip-version-check"];

/// Runs every chart check; fails when any of them fails.
pub(crate) fn check() -> anyhow::Result<()> {
    let root = repo_root();
    let venv = crate::dapr_runtime::cache_root()?.join("helm-venv");
    let python = ensure_venv(&root, &venv)?;
    let script = root.join(SCRIPT);
    let output = Command::new(&python)
        .arg(&script)
        .current_dir(&root)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    echo(&output);
    if !output.status.success() {
        bail!(
            "the Helm chart checks failed (above); rerun them alone with\n  {} {SCRIPT}",
            python.display()
        );
    }
    Ok(())
}

/// The venv's interpreter, after creating the venv or updating its packages when needed.
fn ensure_venv(root: &Path, venv: &Path) -> anyhow::Result<PathBuf> {
    let requirements_path = root.join(REQUIREMENTS);
    let requirements = std::fs::read_to_string(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let python = venv.join("bin").join("python");
    let stamp = venv.join(STAMP);
    let installed = std::fs::read_to_string(&stamp).ok();
    if python.is_file() && installed.as_deref() == Some(requirements.as_str()) {
        step::info(&format!("reusing {}", venv.display()));
        return Ok(python);
    }
    if !python.is_file() {
        step::info(&format!("creating a Python venv in {}", venv.display()));
        let parent = venv.parent().context("the venv path has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        run(
            Command::new("python3").args(["-m", "venv"]).arg(venv),
            "python3 -m venv (Python >= 3.10 with the venv module is needed)",
        )?;
    }
    step::info(&format!("installing the pins of {REQUIREMENTS} (PyPI)"));
    run(
        Command::new(&python)
            .args(PIP_INSTALL)
            .arg("-r")
            .arg(&requirements_path),
        "pip install",
    )?;
    std::fs::write(&stamp, &requirements)
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

/// Runs `cmd` quietly; its output is shown only when it fails.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = cmd.output().with_context(|| format!("starting {what}"))?;
    if !output.status.success() {
        echo(&output);
        bail!("{what} failed ({})", output.status);
    }
    Ok(())
}

/// Shows a child's stdout and stderr as indented detail lines of the current step.
fn echo(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            step::info(line);
        }
    }
}

/// The repository root: the parent of the xtask crate.
pub(crate) fn repo_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
