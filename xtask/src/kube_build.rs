//! Builds the local Kubernetes node's programs from their upstream Go modules.
//!
//! Like [`crate::dapr_runtime`], every program comes from an unmodified upstream module fetched
//! through the Go module proxy (no other download site is reachable here, and no release
//! binaries are): the module is copied out of the module cache into
//! `~/.cache/todo-dapr/<name>-<version>/src`, so that it builds as the main module, and built
//! there into `bin/`. Each `bin/` holds a marker written only after every program in it was
//! built and reported the expected version; a later run that finds the marker reuses the
//! programs in seconds. The build goes to `bin.tmp/` and is renamed, so an interrupted build is
//! never reused.
//!
//! Two modules do not build as published: `k8s.io/kubernetes` and `go.etcd.io/etcd/server/v3`
//! point `replace` directives at sibling directories of their repositories (`./staging/…`,
//! `../api`, …) that their module zips lack. Our copy swaps each such replacement for the
//! published module of the same release ([`local_replacements`]); those are built from the same
//! sources, so the programs are the released ones.
//!
//! All programs are static (`CGO_ENABLED=0`, from [`go_command`]) like Kubernetes' release
//! builds, except that upstream links kubelet dynamically.
//!
//! Measured here (2 cores, Go 1.26.8, an empty Go build cache, the modules mostly downloaded
//! during the build), in the order built, each reusing what the previous ones compiled: etcd
//! 1m35s, CoreDNS 3m31s, Helm 2m45s, the six Kubernetes programs (one `go build`) 7m08s; about
//! 15 minutes cold in all. Reuse takes well under a second.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::dapr_runtime::{
    cache_root, fetch_module_source, go_command, run_quiet, run_with_progress,
};
use crate::step;

/// The Kubernetes release the local node runs.
pub(crate) const KUBERNETES_VERSION: &str = "1.34.4";

/// The etcd server: the newest 3.6 patch release served. Kubernetes 1.34 is built against the
/// 3.6 client and kubeadm 1.34 deploys 3.6.5; later 3.6 patches only fix bugs.
const ETCD_VERSION: &str = "3.6.16";

/// CoreDNS: kubeadm 1.34 deploys v1.12.1; v1.12.4 is the newest patch of that minor release
/// (the proxy serves both).
const COREDNS_VERSION: &str = "1.12.4";

/// The Helm CLI: Helm 3, which most users have, in its newest approved release (v3.22.0 is
/// served but not approved for use here). Built against Kubernetes 1.36's client libraries; Helm
/// supports clusters up to three minor releases older, so 1.34 is covered.
const HELM_VERSION: &str = "3.21.4";

/// The Prometheus Operator that runs the cluster's monitoring: the release whose CRDs and
/// example manifests `cluster up` applies, and whose config reloader runs beside Prometheus.
pub(crate) const PROMETHEUS_OPERATOR_VERSION: &str = "0.85.0";

/// Prometheus 3.5.0, the newest release that operator lists as supported
/// (`PrometheusCompatibilityMatrix`). Prometheus publishes 3.x.y as module version v0.3xy.z.
pub(crate) const PROMETHEUS_VERSION: &str = "3.5.0";
const PROMETHEUS_MODULE_VERSION: &str = "0.305.0";

/// The cluster's monitoring: the operator's two programs, Prometheus, and the operator's
/// module source (its CRDs and example manifests).
#[derive(Clone, Debug)]
pub(crate) struct MonitoringTools {
    pub(crate) operator: PathBuf,
    pub(crate) config_reloader: PathBuf,
    pub(crate) prometheus: PathBuf,
    pub(crate) operator_source: PathBuf,
}

/// Builds (or reuses) the Prometheus Operator and Prometheus.
pub(crate) fn ensure_monitoring() -> anyhow::Result<MonitoringTools> {
    let operator = ensure_built(&prometheus_operator_build())?;
    let prometheus = ensure_built(&prometheus_build())?;
    Ok(MonitoringTools {
        config_reloader: operator.join("prometheus-config-reloader"),
        operator_source: operator
            .parent()
            .context("a build directory has a parent")?
            .join("src"),
        operator: operator.join("operator"),
        prometheus: prometheus.join("prometheus"),
    })
}

/// Where each program of the node is.
#[derive(Clone, Debug)]
pub(crate) struct KubeTools {
    pub(crate) apiserver: PathBuf,
    pub(crate) controller_manager: PathBuf,
    pub(crate) scheduler: PathBuf,
    pub(crate) kubelet: PathBuf,
    pub(crate) proxy: PathBuf,
    pub(crate) kubectl: PathBuf,
    pub(crate) etcd: PathBuf,
    pub(crate) coredns: PathBuf,
    pub(crate) helm: PathBuf,
}

/// Builds (or reuses) every program of the node.
///
/// The small modules go first, so that a failure there shows in minutes, not after Kubernetes.
pub(crate) fn ensure_kubernetes() -> anyhow::Result<KubeTools> {
    let etcd = ensure_built(&etcd_build())?;
    let coredns = ensure_built(&coredns_build())?;
    let helm = ensure_built(&helm_build())?;
    let kube = ensure_built(&kubernetes_build()?)?;
    Ok(KubeTools {
        apiserver: kube.join("kube-apiserver"),
        controller_manager: kube.join("kube-controller-manager"),
        scheduler: kube.join("kube-scheduler"),
        kubelet: kube.join("kubelet"),
        proxy: kube.join("kube-proxy"),
        kubectl: kube.join("kubectl"),
        etcd: etcd.join("etcd"),
        coredns: coredns.join("coredns"),
        helm: helm.join("helm"),
    })
}

/// One program a module build produces.
struct Program {
    /// The binary's file name; for a multi-program build, the last element of `package`.
    name: &'static str,
    /// The main package, relative to the module root.
    package: &'static str,
    /// The arguments that make it print its version.
    version_args: &'static [&'static str],
}

/// How to build the programs of one upstream module.
struct GoBuild {
    /// Names the cache directory (`<name>-<version>`) and the progress lines.
    name: &'static str,
    module: &'static str,
    /// Without the leading `v`.
    version: &'static str,
    programs: &'static [Program],
    /// Text that every program's version output contains once built right.
    expected_version: String,
    /// Build tags, comma-separated (may be empty).
    tags: &'static str,
    /// `-X` flags (beyond `-s -w`), computed from the module's source.
    ldflags: fn(&Path) -> anyhow::Result<String>,
    /// Version of the published modules that replace the ones its `replace` directives take
    /// from sibling directories the module zip lacks (`None`: it has no such directives).
    published_siblings: Option<String>,
    /// A change to the copied source before the build, the way the project documents it (e.g.
    /// Prometheus' plugin list), and what it does for the marker (`""`: none).
    prepare: (fn(&Path) -> anyhow::Result<()>, &'static str),
    /// What a cold build took here, for the progress line.
    cold_time: &'static str,
}

/// The file in a finished `bin/` that says what was built there.
const MARKER: &str = ".todo-dapr-built";

/// Returns the `bin/` directory holding the programs of `build`, building them unless a
/// finished build of the same recipe is there.
fn ensure_built(build: &GoBuild) -> anyhow::Result<PathBuf> {
    let dir = cache_root()?.join(format!("{}-{}", build.name, build.version));
    let bin = dir.join("bin");
    let marker = marker_text(build);
    let finished = std::fs::read_to_string(bin.join(MARKER)).is_ok_and(|text| text == marker)
        && build.programs.iter().all(|p| bin.join(p.name).is_file());
    if finished {
        step::info(&format!(
            "reusing {} {} in {}",
            build.name,
            build.version,
            bin.display()
        ));
        return Ok(bin);
    }

    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("build.log");
    step::info(&format!(
        "building {} from {}@v{} (cold: about {} on 2 cores); log: {}",
        program_names(build),
        build.module,
        build.version,
        build.cold_time,
        log.display()
    ));
    let src = dir.join("src");
    fetch_module_source(build.module, build.version, &src)?;
    if let Some(published) = &build.published_siblings {
        use_published_siblings(&src, published)?;
    }
    (build.prepare.0)(&src)?;

    let tmp = dir.join("bin.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp)?;
    let ldflags = format!("-s -w {}", (build.ldflags)(&src)?);
    let mut cmd = go_command();
    // GOWORK=off: Kubernetes ships a go.work naming its (absent) staging directories.
    // -mod=mod: the published siblings' checksums are not in go.sum yet, and it keeps Go from
    // using a `vendor/` directory the module zip holds only a stub of.
    cmd.current_dir(&src)
        .env("GOWORK", "off")
        .env("GOFLAGS", "-trimpath -mod=mod")
        .args(["build", "-v", "-tags", build.tags])
        .args(["-ldflags", &ldflags, "-o"]);
    // With several packages `-o` takes a directory; a single one is named explicitly, since a
    // module path ending in `/v3` would otherwise name the binary after its parent directory.
    match build.programs {
        [only] => cmd.arg(tmp.join(only.name)).arg(only.package),
        programs => cmd
            .arg(format!("{}/", tmp.display()))
            .args(programs.iter().map(|p| p.package)),
    };
    run_with_progress(build.name, cmd, &log)?;

    for program in build.programs {
        check_version(&tmp.join(program.name), program, &build.expected_version)?;
    }
    std::fs::write(tmp.join(MARKER), marker)?;
    if bin.exists() {
        std::fs::remove_dir_all(&bin).with_context(|| format!("removing {}", bin.display()))?;
    }
    std::fs::rename(&tmp, &bin)
        .with_context(|| format!("renaming {} to {}", tmp.display(), bin.display()))?;
    Ok(bin)
}

/// What the marker of a finished build says: a change of module, version, programs or tags
/// makes the next run rebuild.
fn marker_text(build: &GoBuild) -> String {
    let prepared = match build.prepare.1 {
        "" => String::new(),
        change => format!(" prepared={change}"),
    };
    format!(
        "{}@v{} tags={} programs={}{prepared}\n",
        build.module,
        build.version,
        build.tags,
        program_names(build)
    )
}

fn program_names(build: &GoBuild) -> String {
    build
        .programs
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails unless `path` runs and prints `expected` when asked for its version. This catches
/// ldflags that no longer match the source: Kubernetes then reports `v0.0.0-master` (to the
/// API server's clients too) and Helm a bare `v3.21`.
fn check_version(path: &Path, program: &Program, expected: &str) -> anyhow::Result<()> {
    let out = harness::binaries::output_of(path, program.version_args)?;
    if !out.contains(expected) {
        bail!(
            "{} {} printed `{out}`, expected it to name {expected}",
            path.display(),
            program.version_args.join(" ")
        );
    }
    step::info(&format!("{}: {}", program.name, first_line(&out)));
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Kubernetes' server programs (`--version` prints `Kubernetes v1.34.4`) and kubectl.
const KUBERNETES_PROGRAMS: &[Program] = &[
    kube_server("kube-apiserver", "./cmd/kube-apiserver"),
    kube_server("kube-controller-manager", "./cmd/kube-controller-manager"),
    kube_server("kube-scheduler", "./cmd/kube-scheduler"),
    kube_server("kubelet", "./cmd/kubelet"),
    kube_server("kube-proxy", "./cmd/kube-proxy"),
    Program {
        name: "kubectl",
        package: "./cmd/kubectl",
        version_args: &["version", "--client"],
    },
];

const fn kube_server(name: &'static str, package: &'static str) -> Program {
    Program {
        name,
        package,
        version_args: &["--version"],
    }
}

/// Kubernetes' programs, built in one `go build`: they share most packages, so one invocation
/// compiles each once and keeps both cores busy.
fn kubernetes_build() -> anyhow::Result<GoBuild> {
    Ok(GoBuild {
        name: "kubernetes",
        module: "k8s.io/kubernetes",
        version: KUBERNETES_VERSION,
        programs: KUBERNETES_PROGRAMS,
        expected_version: format!("v{KUBERNETES_VERSION}"),
        // The tags of Kubernetes' own release builds (hack/lib/golang.sh).
        tags: "selinux,notest,grpcnotrace",
        ldflags: |_| kubernetes_ldflags(KUBERNETES_VERSION),
        published_siblings: Some(staging_version(KUBERNETES_VERSION)?),
        prepare: AS_PUBLISHED,
        cold_time: "7 minutes",
    })
}

/// The `-X` flags of Kubernetes' release builds (hack/lib/version.sh): the version is set in
/// both packages that report it (servers use component-base, clients client-go). The build date
/// is fixed, for reproducible binaries.
fn kubernetes_ldflags(version: &str) -> anyhow::Result<String> {
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        bail!("Kubernetes version `{version}` is not x.y.z");
    };
    let vars = [
        ("gitVersion", format!("v{version}")),
        ("gitMajor", major.to_owned()),
        ("gitMinor", minor.to_owned()),
        ("gitTreeState", "clean".to_owned()),
        ("buildDate", "1970-01-01T00:00:00Z".to_owned()),
    ];
    let mut flags = Vec::new();
    for package in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        for (var, value) in &vars {
            flags.push(format!("-X {package}.{var}={value}"));
        }
    }
    Ok(flags.join(" "))
}

/// Kubernetes `1.x.y` publishes its staging modules (`k8s.io/api`, …) as `v0.x.y`.
fn staging_version(kubernetes: &str) -> anyhow::Result<String> {
    match kubernetes.split_once('.') {
        Some(("1", rest)) => Ok(format!("v0.{rest}")),
        _ => bail!("Kubernetes version `{kubernetes}` is not 1.x.y"),
    }
}

/// The etcd server, whose `main` package is the root of its server module.
fn etcd_build() -> GoBuild {
    GoBuild {
        name: "etcd",
        module: "go.etcd.io/etcd/server/v3",
        version: ETCD_VERSION,
        programs: &[Program {
            name: "etcd",
            package: ".",
            version_args: &["--version"],
        }],
        expected_version: format!("etcd Version: {ETCD_VERSION}"),
        tags: "",
        ldflags: |_| Ok(String::new()),
        // Its api, client and pkg modules are released with the same version.
        published_siblings: Some(format!("v{ETCD_VERSION}")),
        prepare: AS_PUBLISHED,
        cold_time: "2 minutes",
    }
}

/// CoreDNS with its default plugin set (plugin.cfg), which includes `kubernetes`.
fn coredns_build() -> GoBuild {
    GoBuild {
        name: "coredns",
        module: "github.com/coredns/coredns",
        version: COREDNS_VERSION,
        programs: &[Program {
            name: "coredns",
            package: ".",
            version_args: &["-version"],
        }],
        expected_version: format!("CoreDNS-{COREDNS_VERSION}"),
        tags: "",
        ldflags: |_| Ok(String::new()),
        published_siblings: None,
        prepare: AS_PUBLISHED,
        cold_time: "3.5 minutes",
    }
}

/// The Helm CLI.
fn helm_build() -> GoBuild {
    GoBuild {
        name: "helm",
        module: "helm.sh/helm/v3",
        version: HELM_VERSION,
        programs: &[Program {
            name: "helm",
            package: "./cmd/helm",
            version_args: &["version", "--short"],
        }],
        expected_version: format!("v{HELM_VERSION}"),
        tags: "",
        ldflags: helm_ldflags,
        published_siblings: None,
        prepare: AS_PUBLISHED,
        cold_time: "3 minutes",
    }
}

/// The operator and its config reloader, from one module: `pkg/apis/monitoring` and
/// `pkg/client` are released with it under the same version.
fn prometheus_operator_build() -> GoBuild {
    GoBuild {
        name: "prometheus-operator",
        module: "github.com/prometheus-operator/prometheus-operator",
        version: PROMETHEUS_OPERATOR_VERSION,
        programs: &[
            Program {
                name: "operator",
                package: "./cmd/operator",
                version_args: &["--version"],
            },
            Program {
                name: "prometheus-config-reloader",
                package: "./cmd/prometheus-config-reloader",
                version_args: &["--version"],
            },
        ],
        expected_version: format!("version {PROMETHEUS_OPERATOR_VERSION}"),
        tags: "",
        ldflags: |_| Ok(prometheus_common_ldflags(PROMETHEUS_OPERATOR_VERSION)),
        published_siblings: Some(format!("v{PROMETHEUS_OPERATOR_VERSION}")),
        prepare: AS_PUBLISHED,
        cold_time: "3 minutes",
    }
}

/// The Prometheus server with the service discovery the operator configures (see
/// [`kubernetes_discovery_only`]).
fn prometheus_build() -> GoBuild {
    GoBuild {
        name: "prometheus",
        module: "github.com/prometheus/prometheus",
        version: PROMETHEUS_MODULE_VERSION,
        programs: &[Program {
            name: "prometheus",
            package: "./cmd/prometheus",
            version_args: &["--version"],
        }],
        expected_version: format!("version {PROMETHEUS_VERSION}"),
        tags: "",
        ldflags: |_| Ok(prometheus_common_ldflags(PROMETHEUS_VERSION)),
        published_siblings: None,
        prepare: (
            kubernetes_discovery_only,
            "service discovery: kubernetes (file, http)",
        ),
        cold_time: "2.5 minutes",
    }
}

/// No change to the module's source.
const AS_PUBLISHED: (fn(&Path) -> anyhow::Result<()>, &str) = (|_| Ok(()), "");

/// Prometheus registers its service discoveries by importing them in `plugins/plugins.go`, which
/// its Makefile generates from `plugins.yml`; the project's way to a smaller build is a shorter
/// list. The operator configures only `kubernetes_sd_configs` (`file` and `http` are always in,
/// `plugins/minimum.go`), and the cloud SDKs of the others are most of a cold build.
fn kubernetes_discovery_only(src: &Path) -> anyhow::Result<()> {
    let plugins = src.join("plugins/plugins.go");
    let listed = std::fs::read_to_string(&plugins)
        .with_context(|| format!("reading {}", plugins.display()))?;
    let kubernetes = "\"github.com/prometheus/prometheus/discovery/kubernetes\"";
    ensure!(
        listed.contains(kubernetes),
        "{} no longer imports {kubernetes}: the plugin list changed shape",
        plugins.display()
    );
    let only = format!(
        "// Written by cargo xtask (kube_build.rs) in place of the generated list: only the\n\
         // discovery the Prometheus Operator configures.\n\n\
         package plugins\n\nimport (\n\t_ {kubernetes}\n)\n"
    );
    std::fs::write(&plugins, only).with_context(|| format!("writing {}", plugins.display()))
}

/// The `-X` flags of the Prometheus projects' release builds (promu): the version every
/// program prints and exports as `*_build_info`. The build user and date are fixed, for
/// reproducible binaries.
fn prometheus_common_ldflags(version: &str) -> String {
    let package = "github.com/prometheus/common/version";
    [
        ("Version", version),
        ("Branch", "HEAD"),
        ("BuildUser", "todo-dapr"),
        ("BuildDate", "19700101-00:00:00"),
    ]
    .iter()
    .map(|(var, value)| format!("-X {package}.{var}={value}"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// The `-X` flags of Helm's release builds (its Makefile). Besides the version, Helm takes the
/// Kubernetes version it assumes for `.Capabilities.KubeVersion` (in `helm template` and lint)
/// from the client-go it is built with; without these flags it would assume Kubernetes 1.20 and
/// reject charts that require a newer one.
fn helm_ldflags(src: &Path) -> anyhow::Result<String> {
    let go_mod = go_mod_json(src)?;
    let client_go = go_mod
        .requires()
        .find(|r| r.path == "k8s.io/client-go")
        .context("Helm's go.mod requires no k8s.io/client-go")?;
    let (major, minor) = kubernetes_release_of(&client_go.version)?;
    let mut flags = vec![
        format!("-X helm.sh/helm/v3/internal/version.version=v{HELM_VERSION}"),
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean".to_owned(),
    ];
    for package in [
        "helm.sh/helm/v3/pkg/lint/rules",
        "helm.sh/helm/v3/pkg/chartutil",
    ] {
        flags.push(format!("-X {package}.k8sVersionMajor={major}"));
        flags.push(format!("-X {package}.k8sVersionMinor={minor}"));
    }
    Ok(flags.join(" "))
}

/// The Kubernetes release (`major`, `minor`) of a client library version: `v0.36.2` → `(1, 36)`.
fn kubernetes_release_of(library_version: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || format!("`{library_version}` is not a Kubernetes library version (v0.x.y)");
    let mut parts = library_version
        .strip_prefix('v')
        .with_context(bad)?
        .split('.');
    let major: u32 = parts.next().with_context(bad)?.parse().with_context(bad)?;
    let minor: u32 = parts.next().with_context(bad)?.parse().with_context(bad)?;
    Ok((major + 1, minor))
}

/// The parts of `go mod edit -json` used here. A list it has none of is `null`, not `[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoMod {
    #[serde(default)]
    require: Option<Vec<Require>>,
    #[serde(default)]
    replace: Option<Vec<Replace>>,
}

impl GoMod {
    fn requires(&self) -> impl Iterator<Item = &Require> {
        self.require.iter().flatten()
    }

    fn replaces(&self) -> impl Iterator<Item = &Replace> {
        self.replace.iter().flatten()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Require {
    path: String,
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Replace {
    old: ModuleVersion,
    new: ModuleVersion,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModuleVersion {
    path: String,
    #[serde(default)]
    version: Option<String>,
}

fn go_mod_json(src: &Path) -> anyhow::Result<GoMod> {
    let out = go_command()
        .current_dir(src)
        .env("GOWORK", "off")
        .args(["mod", "edit", "-json"])
        .output()
        .context("running go mod edit -json")?;
    if !out.status.success() {
        bail!(
            "go mod edit -json in {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing go mod edit -json")
}

/// A `replace` directive to drop, and what to require instead.
#[derive(Debug, PartialEq, Eq)]
struct Swap {
    /// The argument of `go mod edit -dropreplace` (`path` or `path@version`).
    dropped: String,
    /// The argument of `go mod edit -require` (`path@version`).
    required: String,
}

/// Every replacement of a required module by a directory inside the module's repository
/// (`./staging/src/k8s.io/api`, `../api`), which the module zip does not contain, swapped for
/// the published module at `published`. Replacements of modules the build does not require
/// (etcd's `./FORBIDDEN_DEPENDENCY` guards) are left as they are: they never take effect.
fn local_replacements(go_mod: &GoMod, published: &str) -> Vec<Swap> {
    go_mod
        .replaces()
        .filter(|r| r.new.version.is_none() && is_relative_dir(&r.new.path))
        .filter(|r| go_mod.requires().any(|req| req.path == r.old.path))
        .map(|r| Swap {
            dropped: match &r.old.version {
                Some(version) => format!("{}@{version}", r.old.path),
                None => r.old.path.clone(),
            },
            required: format!("{}@{published}", r.old.path),
        })
        .collect()
}

/// `go.mod` only takes paths starting with `./` or `../` as directories relative to the module.
fn is_relative_dir(path: &str) -> bool {
    path.starts_with("./") || path.starts_with("../")
}

/// Applies [`local_replacements`] to the go.mod in `src`, in one `go mod edit`.
fn use_published_siblings(src: &Path, published: &str) -> anyhow::Result<()> {
    let swaps = local_replacements(&go_mod_json(src)?, published);
    if swaps.is_empty() {
        return Ok(());
    }
    step::info(&format!(
        "using the published {published} of {} modules its go.mod takes from directories the \
         module zip lacks",
        swaps.len()
    ));
    let mut cmd = go_command();
    cmd.current_dir(src)
        .env("GOWORK", "off")
        .args(["mod", "edit"]);
    for swap in &swaps {
        cmd.arg(format!("-dropreplace={}", swap.dropped))
            .arg(format!("-require={}", swap.required));
    }
    run_quiet(&mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> GoMod {
        serde_json::from_str(json).unwrap()
    }

    /// Shaped like `go mod edit -json` of k8s.io/kubernetes v1.34.4 (abridged).
    const KUBERNETES_GO_MOD: &str = r#"{
        "Module": {"Path": "k8s.io/kubernetes"},
        "Go": "1.24.0",
        "Require": [
            {"Path": "github.com/spf13/cobra", "Version": "v1.9.1"},
            {"Path": "k8s.io/api", "Version": "v0.0.0"},
            {"Path": "k8s.io/client-go", "Version": "v0.0.0"},
            {"Path": "k8s.io/kubelet", "Version": "v0.0.0", "Indirect": true}
        ],
        "Replace": [
            {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
            {"Old": {"Path": "k8s.io/client-go"}, "New": {"Path": "./staging/src/k8s.io/client-go"}},
            {"Old": {"Path": "k8s.io/kubelet"}, "New": {"Path": "./staging/src/k8s.io/kubelet"}},
            {"Old": {"Path": "k8s.io/sample-controller"},
             "New": {"Path": "./staging/src/k8s.io/sample-controller"}},
            {"Old": {"Path": "github.com/spf13/cobra", "Version": "v1.9.0"},
             "New": {"Path": "github.com/spf13/cobra", "Version": "v1.9.1"}}
        ]
    }"#;

    #[test]
    fn kubernetes_staging_replaces_become_published_requirements() {
        let swaps = local_replacements(&parse(KUBERNETES_GO_MOD), "v0.34.4");
        let swap = |module: &str| Swap {
            dropped: module.to_owned(),
            required: format!("{module}@v0.34.4"),
        };
        assert_eq!(
            swaps,
            [
                swap("k8s.io/api"),
                swap("k8s.io/client-go"),
                swap("k8s.io/kubelet")
            ],
            "the unrequired sample-controller and the module-to-module replace stay"
        );
    }

    #[test]
    fn etcd_sibling_replaces_are_swapped_and_its_guards_kept() {
        let go_mod = parse(
            r#"{
                "Require": [
                    {"Path": "go.etcd.io/etcd/api/v3", "Version": "v3.6.16"},
                    {"Path": "go.etcd.io/etcd/client/pkg/v3", "Version": "v3.6.16"}
                ],
                "Replace": [
                    {"Old": {"Path": "go.etcd.io/etcd/api/v3"}, "New": {"Path": "../api"}},
                    {"Old": {"Path": "go.etcd.io/etcd/client/pkg/v3", "Version": "v3.6.16"},
                     "New": {"Path": "../client/pkg"}},
                    {"Old": {"Path": "go.etcd.io/etcd"}, "New": {"Path": "./FORBIDDEN_DEPENDENCY"}}
                ]
            }"#,
        );
        assert_eq!(
            local_replacements(&go_mod, "v3.6.16"),
            [
                Swap {
                    dropped: "go.etcd.io/etcd/api/v3".into(),
                    required: "go.etcd.io/etcd/api/v3@v3.6.16".into(),
                },
                Swap {
                    dropped: "go.etcd.io/etcd/client/pkg/v3@v3.6.16".into(),
                    required: "go.etcd.io/etcd/client/pkg/v3@v3.6.16".into(),
                },
            ]
        );
    }

    #[test]
    fn a_go_mod_without_replaces_needs_no_swaps() {
        let go_mod = parse(r#"{"Module": {"Path": "github.com/coredns/coredns"}}"#);
        assert!(local_replacements(&go_mod, "v1.0.0").is_empty());
        let go_mod = parse(r#"{"Require": null, "Replace": null}"#);
        assert!(local_replacements(&go_mod, "v1.0.0").is_empty());
    }

    #[test]
    fn only_dot_paths_are_directories() {
        assert!(is_relative_dir("./staging/src/k8s.io/api"));
        assert!(is_relative_dir("../api"));
        assert!(!is_relative_dir("k8s.io/api"));
        assert!(
            !is_relative_dir("/abs/path"),
            "absolute directories exist outside the zip"
        );
    }

    #[test]
    fn staging_modules_are_published_as_v0() {
        assert_eq!(staging_version("1.34.4").unwrap(), "v0.34.4");
        assert!(staging_version("2.0.0").is_err());
    }

    #[test]
    fn kubernetes_ldflags_set_both_version_packages() {
        let flags = kubernetes_ldflags("1.34.4").unwrap();
        for package in [
            "k8s.io/component-base/version",
            "k8s.io/client-go/pkg/version",
        ] {
            for expected in [".gitVersion=v1.34.4", ".gitMajor=1", ".gitMinor=34"] {
                assert!(
                    flags.contains(&format!("-X {package}{expected}")),
                    "{flags} lacks {package}{expected}"
                );
            }
        }
    }

    #[test]
    fn client_library_versions_map_to_kubernetes_releases() {
        assert_eq!(kubernetes_release_of("v0.36.2").unwrap(), (1, 36));
        assert_eq!(kubernetes_release_of("v0.34.0-rc.1").unwrap(), (1, 34));
        assert!(kubernetes_release_of("0.36.2").is_err());
        assert!(kubernetes_release_of("v0").is_err());
    }

    #[test]
    fn the_marker_changes_with_the_recipe() {
        let build = coredns_build();
        let mut other = coredns_build();
        other.tags = "noasm";
        assert_ne!(marker_text(&build), marker_text(&other));
        assert!(marker_text(&build).contains("github.com/coredns/coredns@v1.12.4"));
    }
}
