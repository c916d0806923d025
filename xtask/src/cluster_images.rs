//! The images the local node runs, as archives for `ctr images import`.
//!
//! The node's containerd cannot pull: every image it runs is imported from a tar file of an OCI
//! image layout, written by the layer and layout code of `images` (the same rules: numeric
//! non-root user 65532, fixed timestamps, deterministic tar and gzip, no shell). They are:
//!
//! - Dapr's control plane, the images its Helm chart names when installed with
//!   `global.registry=`[`DAPR_REGISTRY`] and `global.tag=`[`DAPR_TAG`]: `operator`, `injector`,
//!   `sentry`, `placement`, `scheduler`, and `daprd` (the sidecar image the injector adds to
//!   pods). Each holds one static Go binary at `/<name>`, the path the chart's `command` (and the
//!   injector's sidecar `command`) runs, built from the copy of Dapr's module that
//!   `dapr_runtime` builds daprd from.
//! - The pod sandbox image [`PAUSE_IMAGE`] for containerd's CRI `sandbox_image`: our own
//!   program, `xtask/assets/pause`.
//! - The cluster's monitoring: the Prometheus Operator, its config reloader and Prometheus, built
//!   by `kube_build`, named like their upstream images with our registry for `quay.io`.
//! - Our four services, `todo-dapr.local/todo-dapr/<service>:<tag>` — the chart's default
//!   repository `todo-dapr/<service>` behind `image.registry`, as on OCIR — with the tag of
//!   `cargo xtask images`.
//!
//! The registry `todo-dapr.local` resolves nowhere on purpose: a reference that was not imported
//! makes the kubelet's pull fail at once instead of fetching something from the internet.
//!
//! The Dapr and pause archives depend on no code of this repository but the image recipe, so they
//! live in the build cache; the services' archives are in `target/cluster-images/`. Each archive
//! has a `.key` file beside it naming its inputs, and is rebuilt only when they change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use anyhow::{Context, bail, ensure};
use oci_spec::image::ANNOTATION_REF_NAME;

use crate::dapr_runtime::{self, RUNTIME_VERSION};
use crate::images::{self, ImageConfig, Layer, OciImage, Tree};
use crate::{kube_build, step};

/// The registry part of every reference we import. Unresolvable (see the module docs); the
/// default of `cargo xtask images` and the flake too.
pub(crate) const REGISTRY: &str = images::DEFAULT_REGISTRY;
/// Dapr's `global.registry`: the chart makes `<registry>/<image.name>:<global.tag>` of it.
pub(crate) const DAPR_REGISTRY: &str = "todo-dapr.local/dapr";
/// Dapr's `global.tag`: the version of the control plane we build.
pub(crate) const DAPR_TAG: &str = RUNTIME_VERSION;
/// Where the monitoring images are: the upstream registry `quay.io` swapped for ours, so the
/// operator's example manifests name our images once that one word is replaced.
pub(crate) const MONITORING_REGISTRY: &str = REGISTRY;
/// The upstream registry of the Prometheus projects' images.
pub(crate) const UPSTREAM_MONITORING_REGISTRY: &str = "quay.io";
/// containerd's CRI `sandbox_image`.
pub(crate) const PAUSE_IMAGE: &str = "todo-dapr.local/pause:1";

/// The programs of Dapr's control plane and the image each is in. In Dapr's chart every
/// subchart's `image.name` (the injector's `injectorImage.name`, and its `image.name` for the
/// sidecar) is the name of the program, which its `command` runs as `/<name>`; [`check_chart`]
/// holds the chart to that before anything is built.
const DAPR_PROGRAMS: [&str; 6] = [
    "operator",
    "injector",
    "sentry",
    "placement",
    "scheduler",
    "daprd",
];
/// The programs `dapr_runtime` does not build (it builds daprd and the Scheduler).
const CONTROL_PLANE_BUILDS: [&str; 4] = ["operator", "injector", "sentry", "placement"];

/// The manifest annotation `ctr images import` names an image by: the full reference. Without
/// it ctr would take `org.opencontainers.image.ref.name`, prefixed by `import-<date>` when that is
/// only a tag.
pub(crate) const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// The containerd namespace of the CRI plugin, where the kubelet's images are.
const CTR_NAMESPACE: &str = "k8s.io";
/// The CRI plugin's (and containerd's) default snapshotter: images must be unpacked for it.
const SNAPSHOTTER: &str = "overlayfs";
/// Part of every archive's key: change it whenever the image recipe here or in `images` changes,
/// so that archives in the cache are rebuilt.
const RECIPE: &str = "cluster-images v1";

/// One image archive ready for `ctr images import`, and the reference it carries.
#[derive(Clone, Debug)]
pub(crate) struct ImageArchive {
    pub(crate) reference: String,
    pub(crate) archive: PathBuf,
}

/// A service's image archive and the repository and tag the Helm chart is given for it.
#[derive(Clone, Debug)]
pub(crate) struct ServiceImageArchive {
    pub(crate) service: &'static str,
    /// `todo-dapr.local/todo-dapr/<service>`.
    pub(crate) repository: String,
    /// The content-derived tag `cargo xtask images` computes.
    pub(crate) tag: String,
    pub(crate) image: ImageArchive,
}

/// Every image of the node, by role.
#[derive(Clone, Debug)]
pub(crate) struct NodeImages {
    pub(crate) dapr: Vec<ImageArchive>,
    pub(crate) pause: ImageArchive,
    pub(crate) services: Vec<ServiceImageArchive>,
    /// The releases of the upgrade and rollback drills.
    pub(crate) drills: DrillImages,
    /// The Prometheus Operator, its config reloader and Prometheus.
    pub(crate) monitoring: Vec<ImageArchive>,
}

impl NodeImages {
    /// All archives: Dapr's, the pause image, the services' (and their drills'), monitoring's.
    pub(crate) fn archives(&self) -> Vec<ImageArchive> {
        let mut all = self.dapr.clone();
        all.push(self.pause.clone());
        all.extend(self.services.iter().map(|s| s.image.clone()));
        all.extend(self.drills.archives());
        all.extend(self.monitoring.iter().cloned());
        all
    }
}

/// Builds (or reuses) the Dapr control plane images, the pause image and our services' images.
pub(crate) fn ensure_images() -> anyhow::Result<Vec<ImageArchive>> {
    let monitoring = kube_build::ensure_monitoring()?;
    Ok(ensure_node_images(&monitoring)?.archives())
}

/// [`ensure_images`], keeping which archive is which (and the services' tags).
/// The monitoring images are made of `monitoring`'s programs, which `cluster up` also installs
/// from, so they are built (or found) once.
pub(crate) fn ensure_node_images(
    monitoring: &kube_build::MonitoringTools,
) -> anyhow::Result<NodeImages> {
    let dapr = dapr_images()?;
    let pause = pause_image()?;
    let binaries = images::build_binaries()?;
    let services = service_image_archives(&binaries, images::RELEASE, "")?;
    let drills = drill_images(&binaries)?;
    let monitoring = monitoring_images(monitoring)?;
    Ok(NodeImages {
        dapr,
        pause,
        services,
        drills,
        monitoring,
    })
}

/// Our services' images of `variant` as archives `target/cluster-images/<service><suffix>.tar`,
/// named `todo-dapr.local/todo-dapr/<service>:<tag>`, from the binaries of
/// [`images::build_binaries`] (the tag derives from them).
fn service_image_archives(
    binaries: &BTreeMap<&'static str, PathBuf>,
    variant: images::Variant<'_>,
    suffix: &str,
) -> anyhow::Result<Vec<ServiceImageArchive>> {
    let (built, _runtime) = images::build_service_images(binaries, variant)?;
    let dir = crate::cargo::target_dir()?.join("cluster-images");
    let mut out = Vec::new();
    for images::ServiceImage { service, image, .. } in built {
        // The chart's default repository, behind `image.registry` (values-local.yaml). The tag
        // is the content's, not the version, so every rebuild is a new reference the run's
        // values name and the node never keeps serving a stale image under a reused tag.
        let repository = images::repository(REGISTRY, service);
        let tag = image.tag();
        let reference = format!("{repository}:{tag}");
        let archive = dir.join(format!("{service}{suffix}.tar"));
        // The tag is the manifest digest: equal tags, equal archives.
        let key = format!("{RECIPE}\n{reference}\n{}\n", image.manifest_digest);
        let reused = write_archive_unless_current(&archive, &key, || Ok(image), &reference)?;
        let built = ServiceImageArchive {
            service,
            repository,
            tag,
            image: ImageArchive { reference, archive },
        };
        step::info(&format!(
            "{}{suffix}: repository {}, tag {} ({})",
            built.service,
            built.repository,
            built.tag,
            if reused { "reused" } else { "written" }
        ));
        out.push(built);
    }
    Ok(out)
}

/// The version label of the drills' "next release".
const NEXT_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+next");
/// What the drills' crashing release passes its service: an option no service has, so it exits
/// (status 2, clap's usage error) as soon as it starts.
const CRASH_ARGS: &[&str] = &["--no-such-option"];

/// The releases the upgrade and rollback drills (`tests/tests/cluster_upgrade.rs`) install, one
/// image per service each, all imported by `cluster up`:
/// - `next`: a second build of each image from the same binaries with another version label —
///   a new digest and tag, so `helm upgrade` replaces every pod, as a new release does;
/// - `crash`: that image with an argument the service refuses: it exits as soon as it starts;
/// - `unready`: the pause program where the service should be: it runs, never listens, and so
///   never passes a probe.
#[derive(Clone, Debug)]
pub(crate) struct DrillImages {
    pub(crate) next: Vec<ServiceImageArchive>,
    pub(crate) crash: Vec<ServiceImageArchive>,
    pub(crate) unready: Vec<ServiceImageArchive>,
}

impl DrillImages {
    fn archives(&self) -> impl Iterator<Item = ImageArchive> + '_ {
        self.next
            .iter()
            .chain(&self.crash)
            .chain(&self.unready)
            .map(|s| s.image.clone())
    }
}

fn drill_images(binaries: &BTreeMap<&'static str, PathBuf>) -> anyhow::Result<DrillImages> {
    let next = images::Variant {
        version: NEXT_VERSION,
        args: &[],
    };
    let crash = images::Variant {
        version: NEXT_VERSION,
        args: CRASH_ARGS,
    };
    let pause = pause_binary()?;
    let dir = crate::cargo::target_dir()?.join("cluster-images");
    let unready_tag = "unready";
    let jobs: Vec<ArchiveJob> = images::SERVICES
        .iter()
        .map(|service| ArchiveJob {
            reference: format!("{}:{unready_tag}", images::repository(REGISTRY, service)),
            archive: dir.join(format!("{service}-{unready_tag}.tar")),
            program: service,
            path: "pause".to_owned(),
            version: unready_tag,
            binary: pause.clone(),
            history: "cargo xtask cluster images: the pause program in place of the service"
                .to_owned(),
        })
        .collect();
    let unready = images::SERVICES
        .iter()
        .zip(run_jobs(jobs)?)
        .map(|(service, image)| ServiceImageArchive {
            service,
            repository: images::repository(REGISTRY, service),
            tag: unready_tag.to_owned(),
            image,
        })
        .collect();
    Ok(DrillImages {
        next: service_image_archives(binaries, next, "-next")?,
        crash: service_image_archives(binaries, crash, "-crash")?,
        unready,
    })
}

/// Dapr's control-plane images, built from the binaries of [`control_plane_binaries`].
fn dapr_images() -> anyhow::Result<Vec<ImageArchive>> {
    let binaries = control_plane_binaries()?;
    let dir = dapr_runtime::cache_root()?
        .join("cluster-images")
        .join(format!("dapr-{DAPR_TAG}"));
    let jobs = DAPR_PROGRAMS
        .iter()
        .map(|program| {
            let binary = binaries
                .get(program)
                .with_context(|| format!("no {program} binary"))?;
            Ok(ArchiveJob {
                reference: format!("{DAPR_REGISTRY}/{program}:{DAPR_TAG}"),
                archive: dir.join(format!("{program}.tar")),
                program,
                path: (*program).to_owned(),
                version: DAPR_TAG,
                binary: binary.clone(),
                history: format!(
                    "cargo xtask cluster images: Dapr {program} {DAPR_TAG} and nonroot user"
                ),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    run_jobs(jobs)
}

/// The reference of a monitoring image: `<registry>/<project>/<name>:v<version>`, the shape of
/// the upstream `quay.io` references.
pub(crate) fn monitoring_reference(project: &str, name: &str, version: &str) -> String {
    format!("{MONITORING_REGISTRY}/{project}/{name}:v{version}")
}

/// The Prometheus Operator, its config reloader and Prometheus, from `kube_build`'s builds. The
/// operator runs the reloader as `/bin/prometheus-config-reloader`; the other two run by
/// entrypoint.
fn monitoring_images(tools: &kube_build::MonitoringTools) -> anyhow::Result<Vec<ImageArchive>> {
    let dir = dapr_runtime::cache_root()?.join("cluster-images");
    let operator = kube_build::PROMETHEUS_OPERATOR_VERSION;
    let prometheus = kube_build::PROMETHEUS_VERSION;
    let job =
        |project: &str, program: &'static str, path: &str, version: &'static str, binary: &Path| {
            ArchiveJob {
                reference: monitoring_reference(project, program, version),
                archive: dir.join(format!("{program}-{version}.tar")),
                program,
                path: path.to_owned(),
                version,
                binary: binary.to_owned(),
                history: format!(
                    "cargo xtask cluster images: {project} {program} {version} and nonroot user"
                ),
            }
        };
    run_jobs(vec![
        job(
            "prometheus-operator",
            "prometheus-operator",
            "operator",
            operator,
            &tools.operator,
        ),
        job(
            "prometheus-operator",
            "prometheus-config-reloader",
            "bin/prometheus-config-reloader",
            operator,
            &tools.config_reloader,
        ),
        job(
            "prometheus",
            "prometheus",
            "bin/prometheus",
            prometheus,
            &tools.prometheus,
        ),
    ])
}

/// The pause image: the program of `xtask/assets/pause` at `/pause`.
fn pause_image() -> anyhow::Result<ImageArchive> {
    let binary = pause_binary()?;
    let (repository, tag) = split_reference(PAUSE_IMAGE)?;
    let job = ArchiveJob {
        reference: PAUSE_IMAGE.to_owned(),
        archive: dapr_runtime::cache_root()?
            .join("cluster-images")
            .join(format!("pause-{tag}.tar")),
        program: "pause",
        path: "pause".to_owned(),
        version: tag,
        binary,
        history: format!("cargo xtask cluster images: {repository} and nonroot user"),
    };
    let mut archives = run_jobs(vec![job])?;
    archives.pop().context("the pause image was not built")
}

/// An image of one static program at `/<program>`, to be written as an archive.
#[derive(Debug)]
struct ArchiveJob {
    reference: String,
    archive: PathBuf,
    program: &'static str,
    /// Where the program is in the image (and the entrypoint): `/<program>` unless whoever
    /// starts the container names another path.
    path: String,
    version: &'static str,
    binary: PathBuf,
    history: String,
}

impl ArchiveJob {
    /// What the archive is made of. The binary is named by path, size and modification time:
    /// reading and hashing a 130 MB daprd on every run would cost more than the check is worth,
    /// and a rebuilt or replaced binary changes at least its modification time.
    fn key(&self) -> anyhow::Result<String> {
        let meta = std::fs::metadata(&self.binary)
            .with_context(|| format!("reading {}", self.binary.display()))?;
        let mtime = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .context("a modification time before 1970")?
            .as_nanos();
        Ok(format!(
            "{RECIPE}\n{}\nentrypoint /{}\nuser {}\n{}{}binary {} {} {mtime}\n",
            self.reference,
            self.path,
            images::USER,
            images::PASSWD,
            images::GROUP,
            self.binary.display(),
            meta.len(),
        ))
    }

    /// The image in memory: one layer with the binary, `/etc/passwd` and `/etc/group`. A static
    /// binary needs no libraries, and nothing in Dapr's chart runs a shell or any other program.
    fn build(&self) -> anyhow::Result<OciImage> {
        let mut binary = images::host_file(&self.binary)?;
        binary.mode = 0o755;
        let files = Tree::from([
            (self.path.clone(), binary),
            ("etc/passwd".to_owned(), images::text_file(images::PASSWD)),
            ("etc/group".to_owned(), images::text_file(images::GROUP)),
        ]);
        let layer = Arc::new(Layer::build(&files)?);
        let entrypoint = format!("/{}", self.path);
        let config = ImageConfig {
            title: self.program,
            version: self.version,
            entrypoint: &entrypoint,
            args: &[],
            history: &[&self.history],
        };
        OciImage::build(&config, vec![layer])
    }
}

/// Writes (or reuses) every job's archive, on up to four threads (one per CPU): deflating and
/// hashing a Dapr binary takes seconds per 10 MB in xtask's debug build, and the images are
/// independent. Returns the archives in the order of `jobs`.
fn run_jobs(jobs: Vec<ArchiveJob>) -> anyhow::Result<Vec<ImageArchive>> {
    let order: Vec<ImageArchive> = jobs
        .iter()
        .map(|j| ImageArchive {
            reference: j.reference.clone(),
            archive: j.archive.clone(),
        })
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
        .min(jobs.len().max(1));
    let queue = Mutex::new(jobs.into_iter());
    let next = || queue.lock().ok().and_then(|mut q| q.next());
    // Each worker returns the references whose archives were current.
    let results: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<String>> {
                    let mut reused = Vec::new();
                    while let Some(job) = next() {
                        let key = job.key()?;
                        if write_archive_unless_current(
                            &job.archive,
                            &key,
                            || job.build(),
                            &job.reference,
                        )
                        .with_context(|| format!("the image {}", job.reference))?
                        {
                            reused.push(job.reference);
                        }
                    }
                    Ok(reused)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an image worker panicked")))
            })
            .collect()
    });
    let mut reused = Vec::new();
    for result in results {
        reused.extend(result?);
    }
    if !reused.is_empty() {
        reused.sort();
        step::info(&format!("reusing the archives of {}", reused.join(", ")));
    }
    Ok(order)
}

/// Writes `image()` as an archive at `archive` named `reference`, unless the archive is there
/// with `key` in its `.key` file. Returns whether it was reused. The key is written after the
/// archive is complete, so an interrupted write is never taken for a finished one.
fn write_archive_unless_current(
    archive: &Path,
    key: &str,
    image: impl FnOnce() -> anyhow::Result<OciImage>,
    reference: &str,
) -> anyhow::Result<bool> {
    let key_file = key_path(archive);
    if archive.is_file() && std::fs::read_to_string(&key_file).ok().as_deref() == Some(key) {
        return Ok(true);
    }
    // Without a key while it is rewritten: an interrupted rewrite must not leave the old key
    // vouching for new bytes.
    if key_file.exists() {
        std::fs::remove_file(&key_file)
            .with_context(|| format!("removing {}", key_file.display()))?;
    }
    let image = image()?;
    let (_, tag) = split_reference(reference)?;
    // `ctr` names the image by the full reference; other tools reading the layout (skopeo,
    // umoci) find it by the tag, as in the layouts of `cargo xtask images`.
    image.write_archive(
        archive,
        &[
            (CONTAINERD_IMAGE_NAME, reference),
            (ANNOTATION_REF_NAME, tag),
        ],
    )?;
    step::info(&format!(
        "{reference}: {} compressed, {} uncompressed, in {}",
        images::megabytes(image.compressed()),
        images::megabytes(image.uncompressed()),
        archive.display()
    ));
    std::fs::write(&key_file, key).with_context(|| format!("writing {}", key_file.display()))?;
    Ok(false)
}

/// `<archive>.key`.
fn key_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// `repository:tag` split at the tag's colon (a registry's port colon comes before a `/`).
/// References by digest or without a tag are refused: the kubelet is given tags.
fn split_reference(reference: &str) -> anyhow::Result<(&str, &str)> {
    ensure!(
        !reference.contains('@'),
        "`{reference}`: a reference by digest"
    );
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    let colon = reference[slash..]
        .rfind(':')
        .map(|i| slash + i)
        .with_context(|| format!("`{reference}` has no tag"))?;
    let (repository, tag) = (&reference[..colon], &reference[colon + 1..]);
    ensure!(
        !repository.is_empty() && !tag.is_empty(),
        "`{reference}` is not `repository:tag`"
    );
    Ok((repository, tag))
}

/// Every Dapr program by name: daprd and the Scheduler from `dapr_runtime::ensure_runtime` (which
/// builds them, or reuses them in `~/.dapr/bin` or the cache, as `cargo xtask deps` does), the
/// other four built here from the same source copy, with the same Go settings and version flags.
fn control_plane_binaries() -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    let runtime = dapr_runtime::ensure_runtime(RUNTIME_VERSION)?;
    let cache = dapr_runtime::cache_root()?.join(format!("dapr-{RUNTIME_VERSION}"));
    let src = cache.join("src");
    let go_mod = std::fs::read_to_string(src.join("go.mod")).with_context(|| {
        format!(
            "the copy of Dapr's module that daprd is built from is not in {}: `cargo xtask deps` \
             makes it when it builds daprd",
            src.display()
        )
    })?;
    ensure!(
        go_mod.lines().next() == Some("module github.com/dapr/dapr"),
        "{} is not Dapr's module",
        src.display()
    );
    check_chart(&src)?;

    let bin = cache.join("bin");
    let mut missing = Vec::new();
    let mut binaries = BTreeMap::from([("daprd", runtime.daprd), ("scheduler", runtime.scheduler)]);
    for program in CONTROL_PLANE_BUILDS {
        let path = bin.join(program);
        if built_by_us(&path, program, RUNTIME_VERSION) {
            binaries.insert(program, path);
        } else {
            missing.push(program);
        }
    }
    if missing.is_empty() {
        step::info(&format!(
            "reusing Dapr {} {RUNTIME_VERSION} in {}",
            CONTROL_PLANE_BUILDS.join(", "),
            bin.display()
        ));
    } else {
        build_control_plane(&cache, &missing)?;
        for program in missing {
            binaries.insert(program, bin.join(program));
        }
    }
    Ok(binaries)
}

/// Builds `programs` (`./cmd/<program>`) in one `go build`, so that the packages they share are
/// compiled once, into `<cache>/bin`, each with a stamp naming the version it was built from.
/// The flags are those `dapr_runtime` builds daprd with: static, `-trimpath`, stripped, and the
/// version in `buildinfo.version` and the logger, which the programs report at start.
fn build_control_plane(cache: &Path, programs: &[&'static str]) -> anyhow::Result<()> {
    let bin = cache.join("bin");
    let tmp = tempfile::Builder::new()
        .prefix(".control-plane-")
        .tempdir_in(&bin)
        .with_context(|| format!("creating a directory in {}", bin.display()))?;
    step::info(&format!(
        "building Dapr {} {RUNTIME_VERSION} (about a minute on 2 cores after daprd's build has \
         filled Go's build cache, far longer without it); log: {}",
        programs.join(", "),
        cache.join("build.log").display()
    ));
    let ldflags = format!(
        "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={RUNTIME_VERSION} \
         -X github.com/dapr/kit/logger.DaprVersion={RUNTIME_VERSION}"
    );
    let mut cmd = dapr_runtime::go_command();
    cmd.current_dir(cache.join("src"))
        .args(["build", "-v", "-ldflags", &ldflags, "-o"])
        // A directory ending in `/`: go writes each main package there under its own name.
        .arg(format!("{}/", tmp.path().display()))
        .args(programs.iter().map(|p| format!("./cmd/{p}")));
    dapr_runtime::run_with_progress(&programs.join(", "), cmd, &cache.join("build.log"))?;
    for program in programs {
        let built = tmp.path().join(program);
        let target = bin.join(program);
        std::fs::rename(&built, &target)
            .with_context(|| format!("moving {} to {}", built.display(), target.display()))?;
        std::fs::write(stamp_path(&target), stamp(&target, RUNTIME_VERSION)?)?;
        ensure!(
            built_by_us(&target, program, RUNTIME_VERSION),
            "{} does not look like the Dapr {program} just built",
            target.display()
        );
    }
    Ok(())
}

/// Whether `path` is the `program` of Dapr `version` that [`build_control_plane`] built. Only
/// daprd has `--version`, and `-trimpath` keeps the version flags out of the Go build info; so
/// the build info must name the program's package and a static build, and the stamp written
/// after the build must name the version and still describe this very file.
fn built_by_us(path: &Path, program: &str, version: &str) -> bool {
    let (Ok(written), Ok(expected)) = (
        std::fs::read_to_string(stamp_path(path)),
        stamp(path, version),
    ) else {
        return false;
    };
    if written != expected {
        return false;
    }
    let Ok(out) = dapr_runtime::go_command()
        .args(["version", "-m"])
        .arg(path)
        .output()
    else {
        return false;
    };
    out.status.success() && is_static_dapr_command(&String::from_utf8_lossy(&out.stdout), program)
}

/// `<binary>.version`.
fn stamp_path(binary: &Path) -> PathBuf {
    let mut name = binary.as_os_str().to_owned();
    name.push(".version");
    PathBuf::from(name)
}

/// The stamp of a build: the version, and the file's size and modification time, so that a
/// binary replaced since is not taken for ours.
fn stamp(binary: &Path, version: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(binary)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .context("a modification time before 1970")?
        .as_nanos();
    Ok(format!("{version}\n{} {mtime}\n", meta.len()))
}

/// Whether `go version -m` output describes `github.com/dapr/dapr/cmd/<program>` built without
/// cgo (a static binary, which the images rely on: they hold no libraries).
fn is_static_dapr_command(build_info: &str, program: &str) -> bool {
    let fields: BTreeSet<Vec<&str>> = build_info
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let path = format!("github.com/dapr/dapr/cmd/{program}");
    fields.contains(&vec!["path", path.as_str()])
        && fields.contains(&vec!["build", "CGO_ENABLED=0"])
}

/// Holds Dapr's chart (in the module copy) to what the images provide: every image name it uses
/// is one of [`DAPR_PROGRAMS`], and every `command` it runs is `/<program>` of the same set. A
/// Dapr upgrade that renames an image or moves a binary fails here, not in a crash-looping pod.
fn check_chart(src: &Path) -> anyhow::Result<()> {
    let charts = src.join("charts/dapr/charts");
    let mut names = BTreeSet::new();
    let mut commands = BTreeSet::new();
    let entries =
        std::fs::read_dir(&charts).with_context(|| format!("reading {}", charts.display()))?;
    for entry in entries {
        let dir = entry?.path();
        if let Ok(values) = std::fs::read_to_string(dir.join("values.yaml")) {
            names.extend(chart_image_names(&values));
        }
        let Ok(templates) = std::fs::read_dir(dir.join("templates")) else {
            continue;
        };
        for template in templates {
            let path = template?.path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            commands.extend(chart_commands(&text));
        }
    }
    let programs: BTreeSet<String> = DAPR_PROGRAMS.iter().map(|p| (*p).to_owned()).collect();
    ensure!(
        names == programs,
        "Dapr's chart uses the images {names:?}, the images built are {programs:?}"
    );
    // daprd is started by the injector, whose sidecar container runs `/daprd`, not by a command
    // in the chart.
    let patcher = src.join("pkg/injector/patcher/sidecar_container.go");
    let sidecar = std::fs::read_to_string(&patcher)
        .with_context(|| format!("reading {}", patcher.display()))?;
    ensure!(
        sidecar.contains(r#"[]string{"/daprd"}"#),
        "{} no longer runs the sidecar as `/daprd`",
        patcher.display()
    );
    let started: BTreeSet<String> = DAPR_PROGRAMS
        .iter()
        .filter(|p| **p != "daprd")
        .map(|p| format!("/{p}"))
        .collect();
    ensure!(
        commands == started,
        "Dapr's chart runs {commands:?}, the images hold {started:?}"
    );
    Ok(())
}

/// The `name` of every top-level `image:` and `injectorImage:` block of a subchart's values.
fn chart_image_names(values: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_image = false;
    for line in values.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_image = matches!(line.trim_end(), "image:" | "injectorImage:");
        } else if in_image && let Some(name) = line.trim().strip_prefix("name:") {
            names.push(
                name.trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_owned(),
            );
        }
    }
    names
}

/// The programs a template's containers run: the quoted absolute paths listed right under a
/// `command:` key (template directives in between skipped), except the debugger `/dlv`, which
/// the chart runs only with `debug.enabled`.
fn chart_commands(template: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_command = false;
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed == "command:" {
            in_command = true;
        } else if in_command && trimmed.starts_with("{{") {
            continue;
        } else if in_command && let Some(item) = trimmed.strip_prefix("- ") {
            let program = item.trim().trim_matches('"');
            if program.starts_with('/') && program != "/dlv" {
                commands.push(program.to_owned());
            }
        } else {
            in_command = false;
        }
    }
    commands
}

/// The pause program, built from `xtask/assets/pause` into the cache under a hash of its source,
/// the Go version and the flags, and reused while none of them changes.
fn pause_binary() -> anyhow::Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join("pause");
    let go_version = dapr_runtime::go_command()
        .arg("version")
        .output()
        .context("running `go version`")?;
    ensure!(go_version.status.success(), "`go version` failed");
    // VCS stamping would put this repository's commit into the binary: every commit would
    // change it. The rest is `go_command`'s static, -trimpath build.
    let flags = ["-buildvcs=false", "-ldflags=-s -w"];
    let mut inputs = Vec::new();
    for file in ["go.mod", "main.go"] {
        let path = src.join(file);
        inputs.extend(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    inputs.extend(&go_version.stdout);
    inputs.extend(flags.join(" ").bytes());
    let hash = images::sha256(&inputs)?;
    let key: String = hash.digest().chars().take(16).collect();

    let cache = dapr_runtime::cache_root()?.join("pause");
    let out_dir = cache.join(&key);
    let binary = out_dir.join("pause");
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".pause-")
        .tempdir_in(&cache)
        .with_context(|| format!("creating a directory in {}", cache.display()))?;
    let mut cmd = dapr_runtime::go_command();
    cmd.current_dir(&src)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(tmp.path().join("pause"))
        .arg(".");
    dapr_runtime::run_with_progress("pause", cmd, &cache.join("build.log"))?;
    // Older builds of the program are of no further use (temporary directories, which start
    // with a dot, may be another run's).
    for entry in std::fs::read_dir(&cache)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() && !entry.file_name().to_string_lossy().starts_with('.') {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    std::fs::rename(tmp.keep(), &out_dir)
        .with_context(|| format!("moving the pause build to {}", out_dir.display()))?;
    Ok(binary)
}

/// Imports every archive into the containerd at `ctr_address`, in the CRI's namespace and
/// unpacked for its snapshotter, then checks that each reference is there, complete, unpacked,
/// and names the manifest of its archive (an older image of the same name would not).
pub(crate) fn import(images: &[ImageArchive], ctr_address: &Path) -> anyhow::Result<()> {
    let ctr = || {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(ctr_address).args([
            "--namespace",
            CTR_NAMESPACE,
            "--connect-timeout",
            "30s",
        ]);
        cmd
    };
    for image in images {
        images::stdout_of(
            ctr()
                .args(["images", "import", "--snapshotter", SNAPSHOTTER])
                .arg(&image.archive),
        )
        .with_context(|| format!("importing {}", image.reference))?;
    }
    let listed = parse_image_list(&images::stdout_of(ctr().args(["images", "ls"]))?)?;
    let ready: BTreeSet<String> =
        images::stdout_of(ctr().args(["images", "check", "-q", "--snapshotter", SNAPSHOTTER]))?
            .lines()
            .map(|l| l.trim().to_owned())
            .collect();
    for image in images {
        let digest = listed
            .get(&image.reference)
            .with_context(|| format!("{} is not listed after the import", image.reference))?;
        let expected = archive_manifest_digest(&image.archive)?;
        ensure!(
            *digest == expected,
            "{} names {digest}, its archive {expected}",
            image.reference
        );
        ensure!(
            ready.contains(&image.reference),
            "{} is imported but not complete and unpacked for {SNAPSHOTTER}",
            image.reference
        );
    }
    step::info(&format!(
        "{} images in containerd's {CTR_NAMESPACE} namespace, unpacked for {SNAPSHOTTER}",
        images.len()
    ));
    Ok(())
}

/// `ctr images ls` output as reference → manifest digest. Its columns are REF, TYPE, DIGEST,
/// SIZE (`12.3 MiB`, with a space), PLATFORMS and LABELS; the first three have no spaces.
fn parse_image_list(output: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    ensure!(
        header
            .split_whitespace()
            .take(3)
            .eq(["REF", "TYPE", "DIGEST"]),
        "unexpected `ctr images ls` header `{header}`"
    );
    let mut images = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [reference, _, digest, ..] = fields.as_slice() else {
            bail!("unexpected `ctr images ls` line `{line}`");
        };
        images.insert((*reference).to_owned(), (*digest).to_owned());
    }
    Ok(images)
}

/// The manifest digest an archive's `index.json` names (the only manifest in it).
fn archive_manifest_digest(archive: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    for entry in tar.entries()? {
        let entry = entry?;
        if entry.path()?.as_os_str() == "index.json" {
            let index: serde_json::Value = serde_json::from_reader(entry)
                .with_context(|| format!("parsing index.json of {}", archive.display()))?;
            return index_manifest_digest(&index)
                .with_context(|| format!("index.json of {}", archive.display()));
        }
    }
    bail!("{} has no index.json", archive.display())
}

fn index_manifest_digest(index: &serde_json::Value) -> anyhow::Result<String> {
    let manifests = index["manifests"]
        .as_array()
        .context("no manifests array")?;
    let [manifest] = manifests.as_slice() else {
        bail!("{} manifests, expected one", manifests.len());
    };
    manifest["digest"]
        .as_str()
        .map(str::to_owned)
        .context("the manifest has no digest")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::FileEntry;

    fn file(data: &[u8], mode: u32) -> FileEntry {
        FileEntry {
            data: data.to_vec(),
            mode,
        }
    }

    /// Builds every image and imports it into the containerd whose socket
    /// `$CLUSTER_IMAGES_CONTAINERD` names: a manual check of [`import`] against a real containerd,
    /// which needs root, a containerd started for the purpose, and minutes of building.
    #[test]
    #[ignore = "needs root, a containerd at $CLUSTER_IMAGES_CONTAINERD and the Dapr build"]
    fn imports_every_image_into_a_running_containerd() {
        let address = std::env::var_os("CLUSTER_IMAGES_CONTAINERD")
            .expect("CLUSTER_IMAGES_CONTAINERD: the socket of a running containerd");
        let images = ensure_images().unwrap();
        import(&images, Path::new(&address)).unwrap();
    }

    #[test]
    fn references_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(
            split_reference("todo-dapr.local/dapr/daprd:1.18.2").unwrap(),
            ("todo-dapr.local/dapr/daprd", "1.18.2")
        );
        assert_eq!(
            split_reference("localhost:5000/pause:1").unwrap(),
            ("localhost:5000/pause", "1")
        );
        assert!(split_reference("localhost:5000/pause").is_err());
        assert!(split_reference("todo-dapr.local/pause").is_err());
        assert!(split_reference("todo-dapr.local/pause:").is_err());
        assert!(split_reference("todo-dapr.local/pause@sha256:00").is_err());
    }

    #[test]
    fn our_references_are_in_our_registry() {
        assert!(DAPR_REGISTRY.starts_with(&format!("{REGISTRY}/")));
        assert!(PAUSE_IMAGE.starts_with(&format!("{REGISTRY}/")));
        assert_eq!(split_reference(PAUSE_IMAGE).unwrap().1, "1");
    }

    #[test]
    fn image_names_come_from_top_level_image_blocks_only() {
        let values = "enabled: true\n\
            # image:\n\
            image:\n  name: \"daprd\"\n\n\
            # Override this to use a custom injector service image.\n\
            injectorImage:\n  name: 'injector'\n\
            service:\n  name: not-an-image\n\
            other:\n  image:\n    name: nested\n";
        assert_eq!(chart_image_names(values), ["daprd", "injector"]);
    }

    #[test]
    fn commands_are_the_paths_under_command_without_the_debugger() {
        let template = "        command:\n\
            {{- if eq .Values.debug.enabled false }}\n\
            \x20       - \"/operator\"\n\
            {{- else }}\n\
            \x20       - \"/dlv\"\n\
            {{- end }}\n\
            \x20       args:\n\
            \x20       - \"--log-level\"\n\
            \x20       - \"/not-a-command\"\n";
        assert_eq!(chart_commands(template), ["/operator"]);
    }

    #[test]
    fn build_info_must_name_the_command_and_a_static_build() {
        let info = "operator: go1.26.8\n\
            \tpath\tgithub.com/dapr/dapr/cmd/operator\n\
            \tmod\tgithub.com/dapr/dapr\t(devel)\t\n\
            \tbuild\t-trimpath=true\n\
            \tbuild\tCGO_ENABLED=0\n";
        assert!(is_static_dapr_command(info, "operator"));
        assert!(!is_static_dapr_command(info, "sentry"));
        assert!(!is_static_dapr_command(
            &info.replace("CGO_ENABLED=0", "CGO_ENABLED=1"),
            "operator"
        ));
        assert!(!is_static_dapr_command(
            &info.replace("cmd/operator", "cmd/operator/sub"),
            "operator"
        ));
    }

    #[test]
    fn a_stamp_no_longer_matches_a_replaced_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let binary = tmp.path().join("sentry");
        std::fs::write(&binary, b"first build").unwrap();
        let first = stamp(&binary, "1.18.2").unwrap();
        assert!(first.starts_with("1.18.2\n11 "));
        std::fs::write(&binary, b"another, longer build").unwrap();
        assert_ne!(stamp(&binary, "1.18.2").unwrap(), first);
        assert_eq!(stamp_path(&binary), tmp.path().join("sentry.version"));
    }

    #[test]
    fn image_list_maps_references_to_digests() {
        let out = "REF                              TYPE                                    DIGEST                                                                  SIZE     PLATFORMS   LABELS \n\
            todo-dapr.local/pause:1          application/vnd.oci.image.manifest.v1+json sha256:aaaa 773.5 KiB linux/amd64 -      \n\
            todo-dapr.local/dapr/daprd:1.18.2 application/vnd.oci.image.manifest.v1+json sha256:bbbb 40.1 MiB linux/amd64 -\n";
        let images = parse_image_list(out).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images["todo-dapr.local/pause:1"], "sha256:aaaa");
        assert_eq!(images["todo-dapr.local/dapr/daprd:1.18.2"], "sha256:bbbb");
        assert!(parse_image_list("").is_err());
        assert!(parse_image_list("REF TYPE DIGEST\nonly-a-ref\n").is_err());
    }

    /// The archive is what `ctr images import` reads: a layout whose index names the image by
    /// its full reference (containerd) and by its tag (the OCI annotation), with every blob the
    /// manifest refers to, and the same bytes when written twice.
    #[test]
    fn archive_is_a_reproducible_layout_naming_the_reference() {
        let tmp = tempfile::tempdir().unwrap();
        let files = Tree::from([
            ("pause".to_owned(), file(b"\x7fELF static", 0o755)),
            ("etc/passwd".to_owned(), images::text_file(images::PASSWD)),
        ]);
        let layer = Arc::new(Layer::build(&files).unwrap());
        let config = ImageConfig {
            title: "pause",
            version: "1",
            entrypoint: "/pause",
            args: &[],
            history: &["test"],
        };
        let image = OciImage::build(&config, vec![layer]).unwrap();
        let archive = tmp.path().join("out/pause.tar");
        let reference = "todo-dapr.local/pause:1";
        let annotations = [
            (CONTAINERD_IMAGE_NAME, reference),
            (ANNOTATION_REF_NAME, "1"),
        ];
        image.write_archive(&archive, &annotations).unwrap();
        let first = std::fs::read(&archive).unwrap();
        image.write_archive(&archive, &annotations).unwrap();
        assert_eq!(std::fs::read(&archive).unwrap(), first);

        let mut entries = BTreeMap::new();
        let mut tar = tar::Archive::new(first.as_slice());
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            entries.insert(path, data);
        }
        let index: serde_json::Value = serde_json::from_slice(&entries["index.json"]).unwrap();
        let annotations = &index["manifests"][0]["annotations"];
        assert_eq!(annotations[CONTAINERD_IMAGE_NAME], reference);
        assert_eq!(annotations[ANNOTATION_REF_NAME], "1");
        let digest = index_manifest_digest(&index).unwrap();
        assert_eq!(digest, image.manifest_digest.to_string());
        assert_eq!(archive_manifest_digest(&archive).unwrap(), digest);
        assert!(entries.contains_key("oci-layout"));
        // Every blob is stored under its own digest.
        let blobs: Vec<_> = entries
            .iter()
            .filter(|(p, _)| p.starts_with("blobs/sha256/") && !p.ends_with('/'))
            .collect();
        assert_eq!(blobs.len(), 3, "layer, config, manifest");
        for (path, data) in blobs {
            let digest = images::sha256(data).unwrap();
            assert_eq!(path.strip_prefix("blobs/sha256/"), Some(digest.digest()));
        }
        let manifest_path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let manifest: serde_json::Value = serde_json::from_slice(&entries[&manifest_path]).unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_archive_is_reused_only_with_the_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("x.tar");
        let image = || {
            let layer = Layer::build(&Tree::from([("x".to_owned(), file(b"x", 0o755))]))?;
            OciImage::build(
                &ImageConfig {
                    title: "x",
                    version: "1",
                    entrypoint: "/x",
                    args: &[],
                    history: &["test"],
                },
                vec![Arc::new(layer)],
            )
        };
        let reference = "todo-dapr.local/x:1";
        assert!(!write_archive_unless_current(&archive, "a", image, reference).unwrap());
        assert_eq!(std::fs::read_to_string(key_path(&archive)).unwrap(), "a");
        let untouched = || -> anyhow::Result<OciImage> { panic!("rebuilt a current archive") };
        assert!(write_archive_unless_current(&archive, "a", untouched, reference).unwrap());
        assert!(!write_archive_unless_current(&archive, "b", image, reference).unwrap());
        std::fs::remove_file(&archive).unwrap();
        assert!(!write_archive_unless_current(&archive, "b", image, reference).unwrap());
    }
}
