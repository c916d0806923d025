//! kubectl and helm against the node, with the administrator's kubeconfig.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The cluster's command-line clients.
#[derive(Clone, Debug)]
pub(crate) struct Kube {
    pub(crate) kubectl: PathBuf,
    pub(crate) helm: PathBuf,
    pub(crate) kubeconfig: PathBuf,
}

impl Kube {
    /// `kubectl <args>`; its standard output.
    pub(crate) fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        run(self.command(&self.kubectl).args(args), None)
    }

    /// `kubectl apply -f -` of `yaml`.
    pub(crate) fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        run(
            self.command(&self.kubectl).args(["apply", "-f", "-"]),
            Some(yaml),
        )
        .map(|_| ())
    }

    /// `helm <args>`; its standard output.
    pub(crate) fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        run(self.command(&self.helm).args(args), None)
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            // Helm keeps its caches and repository list under these; keep them out of $HOME.
            .env("HELM_CACHE_HOME", self.state_dir().join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.state_dir().join("helm/config"))
            .env("HELM_DATA_HOME", self.state_dir().join("helm/data"));
        cmd
    }

    fn state_dir(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> anyhow::Result<String> {
    let described = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {described}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .context("no stdin pipe")?
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            described,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
