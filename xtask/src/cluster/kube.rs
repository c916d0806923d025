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

    /// `kubectl apply --namespace <namespace> -f -` of `yaml`.
    pub(crate) fn apply_in(&self, namespace: &str, yaml: &str) -> anyhow::Result<()> {
        run(
            self.command(&self.kubectl)
                .args(["apply", "--namespace", namespace, "-f", "-"]),
            Some(yaml),
        )
        .map(|_| ())
    }

    /// `helm <args>`; its standard output.
    pub(crate) fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        run(self.command(&self.helm).args(args), None)
    }

    /// `helm upgrade --install` of `chart` as `release` with the `values` files, then waits
    /// until every pod of the namespace is Ready: helm's own `--wait` can return while a pod
    /// of a ready Deployment restarts (Dapr's sentry does once while its trust bundle is made).
    pub(crate) fn install(
        &self,
        release: &str,
        chart: &Path,
        namespace: &str,
        values: &[&Path],
    ) -> anyhow::Result<()> {
        let chart = chart.display().to_string();
        let values: Vec<String> = values.iter().map(|v| v.display().to_string()).collect();
        let mut args = vec![
            "upgrade",
            "--install",
            release,
            &chart,
            "--namespace",
            namespace,
            "--create-namespace",
        ];
        for file in &values {
            args.extend(["-f", file.as_str()]);
        }
        args.extend(["--wait", "--timeout", "10m"]);
        self.helm(&args)?;
        self.kubectl(&[
            "wait",
            "--namespace",
            namespace,
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=300s",
        ])?;
        Ok(())
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
