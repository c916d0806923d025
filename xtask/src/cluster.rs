//! `cargo xtask cluster`: a real single-node Kubernetes on this machine.
//!
//! The node's programs are built from their upstream Go modules (`kube_build`), its images
//! from Dapr's module and this repository (`cluster_images`). `up` starts the node in
//! namespaces of its own (see `cluster/node.rs`), linked to the host by a veth pair, imports
//! the images into its containerd, then runs the sequence a user runs on Minikube or OKE:
//! Dapr's control plane with Dapr's chart (`cluster/dapr.rs`), the Secrets and our chart with
//! OKE-shaped values (`cluster/release.rs`), watched by a Prometheus the Prometheus Operator runs
//! (`cluster/monitoring.rs`). `down` stops everything by the PIDs it recorded
//! and checks that nothing of it is left on the machine (`cluster/leaks.rs`).

#![allow(clippy::print_stdout)] // Addresses and paths are the command's output.

mod addresses;
pub(crate) mod config;
mod dapr;
mod host;
mod kube;
mod leaks;
mod monitoring;
mod node;
mod pki;
mod release;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::{cluster_images, deps, kube_build, step};

/// Options of `cargo xtask cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Build (or reuse) the node's programs (and its monitoring's) and print where they are.
    Tools,
    /// Build (or reuse) the images the node runs and print their references.
    Images,
    /// Start the node, install Dapr's control plane (Dapr's chart) and todo-dapr (our chart, with
    /// PostgreSQL, Kafka and an SMTP sink on the host), and leave it running; `cluster down`
    /// stops it.
    Up,
    /// Stop what `cluster up` started (by its recorded PIDs) and check that the machine's
    /// interfaces, iptables rules, mounts and cgroups are as before.
    Down,
    /// The node's init (run by `up` inside the node's namespaces; not for direct use).
    #[command(hide = true)]
    Node { plan: PathBuf },
}

/// Where `up` records the running node for `down`.
pub(crate) fn state_file() -> PathBuf {
    crate::helm_check::repo_root().join("target/xtask-cluster.json")
}

pub(crate) fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    match &args.command {
        ClusterCommand::Tools => {
            deps::install_cluster_packages()?;
            let tools = step::run("Kubernetes programs", kube_build::ensure_kubernetes)?;
            println!("{tools:#?}");
            let monitoring = step::run("monitoring programs", kube_build::ensure_monitoring)?;
            println!("{monitoring:#?}");
        }
        ClusterCommand::Images => {
            let images = step::run("node images", cluster_images::ensure_images)?;
            for image in images {
                println!("{}  {}", image.reference, image.archive.display());
            }
        }
        ClusterCommand::Up => {
            let state = up()?;
            println!("KUBECONFIG={}", state.node.kubeconfig.display());
            println!("kubectl: {}", state.kubectl.display());
            println!("node data and logs: {}", state.node.data_dir.display());
        }
        ClusterCommand::Down => down()?,
        ClusterCommand::Node { plan } => node::run(plan)?,
    }
    Ok(())
}

/// Everything `up` started, for `down` and the cluster tests (`TODO_CLUSTER_STATE`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ClusterState {
    pub(crate) node: host::NodeRecord,
    /// Present once the servers of the release were started.
    pub(crate) release: Option<release::ReleaseRecord>,
    pub(crate) kubectl: PathBuf,
    pub(crate) helm: PathBuf,
}

impl ClusterState {
    fn save(&self) -> anyhow::Result<()> {
        std::fs::write(state_file(), serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", state_file().display()))
    }

    pub(crate) fn load() -> anyhow::Result<Self> {
        let path = state_file();
        Ok(serde_json::from_slice(
            &std::fs::read(&path)
                .with_context(|| format!("no cluster recorded in {}", path.display()))?,
        )?)
    }
}

/// Starts the node, Dapr's control plane and our release (building what they need first),
/// recording each part for `down` as soon as it exists.
pub(crate) fn up() -> anyhow::Result<ClusterState> {
    if state_file().exists() {
        bail!(
            "a cluster is recorded in {}: stop it first with `cargo xtask cluster down`",
            state_file().display()
        );
    }
    deps::install_cluster_packages()?;
    let install = deps::run(&deps::DepsArgs::for_cluster())?;
    let bins = install.binaries()?;
    let tools = step::run("Kubernetes programs", kube_build::ensure_kubernetes)?;
    let monitoring_tools = step::run("monitoring programs", kube_build::ensure_monitoring)?;
    let images = step::run("node images", || {
        cluster_images::ensure_node_images(&monitoring_tools)
    })?;
    let data_dir = tempfile::Builder::new()
        .prefix("todo-dapr-cluster-")
        .tempdir()?
        .keep();
    // Taken before anything of the node exists; `down` compares the host with it.
    leaks::HostSnapshot::take()?.save(&data_dir.join("host-before.json"))?;
    let node = step::run("node", || {
        host::start(&tools, cluster_images::PAUSE_IMAGE, &data_dir)
    })
    .inspect_err(|_| {
        // Nothing of the node runs (start stops what it started): drop its files too.
        let _ = remove_data(&data_dir);
    })?;
    let mut state = ClusterState {
        node,
        release: None,
        kubectl: tools.kubectl.clone(),
        helm: tools.helm.clone(),
    };
    state.save()?;
    let result = (|| {
        step::run("images into the node", || {
            cluster_images::import(&images.archives(), &state.node.containerd_socket)
        })?;
        let kube = kube::Kube {
            kubectl: tools.kubectl.clone(),
            helm: tools.helm.clone(),
            kubeconfig: state.node.kubeconfig.clone(),
        };
        step::run("node Ready", || {
            kube.kubectl(&[
                "wait",
                "--for=condition=Ready",
                "node",
                "--all",
                "--timeout=180s",
            ])
        })?;
        let repo = crate::helm_check::repo_root();
        step::run("Dapr control plane (Dapr's Helm chart)", || {
            dapr::install(&kube, &repo, &state.node.data_dir)
        })?;
        // Before our chart, whose monitors and rules are resources of the operator's CRDs.
        step::run(
            "Prometheus Operator and Prometheus (the operator's manifests)",
            || monitoring::install(&kube, &monitoring_tools),
        )?;
        let servers = step::run(
            "PostgreSQL (TLS), Kafka (SASL_SSL), SMTP sink on the host end of the link",
            || release::start_servers(&state.node.data_dir, &bins),
        )?;
        state.release = Some(servers.record.clone());
        state.save()?;
        step::run("todo-dapr (our chart, OKE-shaped values)", || {
            release::install_chart(&kube, &servers, &images.services, &images.drills)
        })
    })();
    match result {
        Ok(()) => Ok(state),
        // The node stays up for a look at what failed; `down` stops it.
        Err(e) => Err(e.context(format!(
            "the cluster is left running for inspection (KUBECONFIG={}); stop it with `cargo xtask cluster down`",
            state.node.kubeconfig.display()
        ))),
    }
}

/// Stops what `up` recorded and checks that the machine is as before.
pub(crate) fn down() -> anyhow::Result<()> {
    let state = ClusterState::load()?;
    if let Some(release) = &state.release {
        for p in release.processes.iter().rev() {
            harness::process::stop_recorded(p.pid, &p.exe, harness::process::StopPolicy::default())
                .with_context(|| format!("stopping {}", p.name))?;
        }
    }
    let node = &state.node;
    step::run("stopping the node", || host::stop(node))?;
    let before = leaks::HostSnapshot::load(&node.data_dir.join("host-before.json"))?;
    remove_data(&node.data_dir)?;
    std::fs::remove_file(state_file())?;
    step::run("nothing of the node left on the machine", || {
        leaks::check(&before)
    })
}

fn remove_data(dir: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}
