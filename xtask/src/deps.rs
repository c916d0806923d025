//! `cargo xtask deps`: make this machine able to build, run and test the project.
//!
//! Debian packages are installed only when their programs are missing; the Dapr runtime is
//! reused from `~/.dapr/bin` or the build cache when the pinned version is already there.
//! `--broker kafka` adds Java 17 and Maven (Debian) and the Kafka broker's jars (Maven Central,
//! cached per version); `--broker rabbitmq` adds Debian's RabbitMQ.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use harness::Broker;
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
    /// Pub/sub broker profile (`dapr/components/<broker>`): redis, kafka or rabbitmq.
    #[arg(long, env = harness::resources::BROKER_ENV, default_value = "redis")]
    pub(crate) broker: Broker,
    /// Also the OCI image tools; set by `test` when it runs the shipping checks, never a flag.
    #[arg(skip)]
    pub(crate) image_tools: bool,
}

impl DepsArgs {
    /// What `cluster up` needs besides the node: the Dapr runtime's build (its module holds
    /// Dapr's chart and the control plane's sources), PostgreSQL, and Kafka's jars and JVM.
    pub(crate) fn for_cluster() -> Self {
        Self {
            runtime_version: dapr_runtime::RUNTIME_VERSION.into(),
            cli_version: dapr_runtime::CLI_VERSION.into(),
            no_cli: true,
            broker: Broker::Kafka,
            image_tools: false,
        }
    }
}

/// A Debian package and how to tell that its program is already here.
struct Package {
    name: &'static str,
    present: fn() -> bool,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "postgresql",
        // PG_BIN_DIR: the harness' override, which the Nix dev shell sets.
        present: || {
            std::env::var_os("PG_BIN_DIR")
                .is_some_and(|dir| PathBuf::from(dir).join("postgres").is_file())
                || newest_postgres_bin().is_some()
        },
    },
    Package {
        name: "redis-server",
        present: || find_on_path("redis-server").is_some(),
    },
    // promtool: checks and unit-tests the Prometheus rules (`grafana/rules`).
    Package {
        name: "prometheus",
        present: || find_on_path("promtool").is_some(),
    },
    // nix-instantiate / nix: evaluates the flake offline against stub inputs.
    Package {
        name: "nix-bin",
        present: || find_on_path("nix-instantiate").is_some(),
    },
];

/// What the Kafka profile adds: a JVM for the broker, Maven to fetch its jars.
const KAFKA_PACKAGES: &[Package] = &[
    Package {
        name: "openjdk-17-jre-headless",
        present: || harness::kafka::java().is_ok(),
    },
    Package {
        name: "maven",
        present: || find_on_path("mvn").is_some(),
    },
];

/// What the RabbitMQ profile adds (the package pulls in Erlang and epmd).
const RABBITMQ_PACKAGES: &[Package] = &[Package {
    name: "rabbitmq-server",
    present: || {
        std::env::var_os("RABBITMQ_SERVER")
            .map_or_else(
                || PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server"),
                PathBuf::from,
            )
            .is_file()
            && find_on_path("epmd").is_some()
    },
}];

/// What the image checks add (`cargo xtask images --check`, and `test` unless `--no-lint`):
/// the OCI tools that read, validate and unpack the layouts.
const IMAGE_TOOL_PACKAGES: &[Package] = &[
    Package {
        name: "skopeo",
        present: || find_on_path("skopeo").is_some(),
    },
    Package {
        name: "umoci",
        present: || find_on_path("umoci").is_some(),
    },
    Package {
        name: "oci-image-tool",
        present: || find_on_path("oci-image-tool").is_some(),
    },
];

/// What the local Kubernetes node adds (`cargo xtask cluster`): the container runtime and the
/// tools kube-proxy and kubelet call. containerd's service start is refused like the others';
/// the cluster runs its own containerd.
const CLUSTER_PACKAGES: &[Package] = &[
    Package {
        name: "containerd",
        present: || find_on_path("containerd").is_some() && find_on_path("ctr").is_some(),
    },
    Package {
        name: "runc",
        present: || find_on_path("runc").is_some(),
    },
    Package {
        name: "conntrack",
        present: || find_on_path("conntrack").is_some(),
    },
    Package {
        name: "containernetworking-plugins",
        present: || {
            crate::cluster::config::cni_bin_dir()
                .join("bridge")
                .is_file()
        },
    },
];

/// Installs (or reuses) the packages of the local Kubernetes node.
pub(crate) fn install_cluster_packages() -> anyhow::Result<()> {
    step::run("Debian packages (Kubernetes node)", || {
        install_packages(&CLUSTER_PACKAGES.iter().collect::<Vec<_>>())
    })
}

/// The Debian packages a run with `broker` (and the image tools, if asked) needs.
fn packages(broker: Broker, image_tools: bool) -> Vec<&'static Package> {
    let extra = match broker {
        Broker::Redis => &[][..],
        Broker::Kafka => KAFKA_PACKAGES,
        Broker::RabbitMq => RABBITMQ_PACKAGES,
    };
    let images = if image_tools {
        IMAGE_TOOL_PACKAGES
    } else {
        &[][..]
    };
    PACKAGES.iter().chain(extra).chain(images).collect()
}

/// Installs (or reuses) only the OCI image tools, for `cargo xtask images --check`, which needs
/// nothing else of `deps`.
pub(crate) fn install_image_tools() -> anyhow::Result<()> {
    step::run("Debian packages (OCI image tools)", || {
        install_packages(&IMAGE_TOOL_PACKAGES.iter().collect::<Vec<_>>())
    })
}

/// Installs what is missing and returns where the Dapr binaries are.
pub(crate) fn run(args: &DepsArgs) -> anyhow::Result<DaprInstall> {
    step::run("Debian packages", || {
        install_packages(&packages(args.broker, args.image_tools))
    })?;
    if args.broker == Broker::Kafka {
        step::run("Java and the Kafka broker jars", ensure_kafka)?;
    }
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

fn install_packages(packages: &[&Package]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|p| !(p.present)())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        let names: Vec<_> = packages.iter().map(|p| p.name).collect();
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
    // Packages like redis-server and rabbitmq-server start a system service from their install
    // script; the project runs its own servers on free ports, so service starts are refused
    // during the install with Debian's policy-rc.d mechanism (exit 101 = "action forbidden").
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
    let still: Vec<_> = packages
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

/// Checks the JVM (the broker needs Java >= 17) and resolves the broker's jars with Maven into
/// the cache, or reuses them (`harness::kafka::ensure_jars`).
fn ensure_kafka() -> anyhow::Result<()> {
    let java = harness::kafka::java()?;
    // `java -version` prints to stderr, e.g. `openjdk version "17.0.15" 2025-04-15`.
    let out = Command::new(&java)
        .arg("-version")
        .output()
        .context("running java -version")?;
    let text = String::from_utf8_lossy(&out.stderr);
    let major = text
        .split('"')
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .with_context(|| format!("unrecognised `java -version` output: {text}"))?;
    if major < 17 {
        bail!(
            "Java {major} at {} is too old: Kafka 4 needs Java >= 17",
            java.display()
        );
    }
    step::info(&format!("Java {major} at {}", java.display()));
    let lib = harness::kafka::ensure_jars()?;
    step::info(&format!("Kafka jars in {}", lib.display()));
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
