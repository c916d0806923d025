//! `cargo xtask images`: one OCI image layout per service, written by Rust code instead of Nix.
//!
//! The layout rules are those of `nix/images.nix`: only what the binary needs at run time, a
//! non-root numeric user (65532, named `nonroot` in `/etc/passwd`), a fixed creation time, the
//! binary as the entrypoint, a content-derived tag, and the shared libraries in a layer of their
//! own that is byte-identical in all four images. No shell, no package manager.
//!
//! Where it differs from the Nix route: the binaries come from `cargo build --profile image` on
//! this host, so the runtime layer holds *this host's* glibc and libgcc_s, found with `ldd` and
//! stored at the paths the loader searches (`/lib/<multiarch>/…`, the dynamic loader at the path
//! the binary's `PT_INTERP` names) rather than a `/nix/store` closure. The images are reproducible
//! for a given host, toolchain and `Cargo.lock`; another glibc build gives another runtime layer.
//!
//! Written with `oci-spec` (the types), `tar`, `flate2` and `sha2`, not the `ocidir` crate: ocidir
//! hashes with `openssl`, whose `-sys` crate needs `libssl-dev` and `pkg-config` to compile, and
//! xtask is the program that installs Debian packages on a fresh machine, so it must build without
//! any. Every blob is built in memory (the largest is one binary), hashed, then written once.
//!
//! `--check` (also a step of `cargo xtask test`) builds the images twice from the same binaries
//! and requires identical digests, checks the size limit, and has skopeo, umoci and
//! oci-image-tool read each layout; the binary unpacked by umoci then runs through the image's
//! own dynamic loader and libraries.
//!
//! The layer, config and layout writing ([`Layer`], [`OciImage`]) is shared with
//! `cluster_images`, which packs Dapr's control plane and the pause program by the same rules and
//! writes every image as an archive for `ctr images import` as well.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_REF_NAME, ANNOTATION_TITLE, ANNOTATION_VERSION, Arch, ConfigBuilder, Descriptor,
    DescriptorBuilder, Digest, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde_json::Value;
use sha2::Sha256;

use crate::cluster_images::CONTAINERD_IMAGE_NAME;
use crate::step;

/// The services that get an image; each is the package and binary of the same name.
pub(crate) const SERVICES: [&str; 4] = [
    "backend",
    "notification",
    "email-delivery",
    "recurring-task",
];
/// The registry the images are named for unless told otherwise (`--registry`, and the flake's
/// TODO_DAPR_REGISTRY): the name the local cluster imports under, which resolves nowhere, so an
/// image is never pushed to a public registry by accident.
pub(crate) const DEFAULT_REGISTRY: &str = "todo-dapr.local";

/// A service's repository: `<registry>/todo-dapr/<service>`, the chart's `image.registry` plus
/// `services.<service>.image.repository`; the same in Nix (`nix/images.nix`) and the cluster.
pub(crate) fn repository(registry: &str, service: &str) -> String {
    format!("{}/todo-dapr/{service}", registry.trim_end_matches('/'))
}

/// The tag every service image gets: the workspace version, which is the chart's appVersion and
/// so its default tag (`nix_check` holds the two together).
pub(crate) const VERSION_TAG: &str = env!("CARGO_PKG_VERSION");

/// The cargo profile of the image binaries (root `Cargo.toml`).
const PROFILE: &str = "image";
/// Fixed, so the config (and with it the digest) depends on the contents only; the same value as
/// `nix/images.nix`.
const CREATED: &str = "1970-01-01T00:00:01Z";
/// The mtime of every tar entry: the same second as [`CREATED`].
const MTIME: u64 = 1;
/// The entrypoint's user, as in `nix/images.nix`: numeric, so runAsNonRoot can verify it.
pub(crate) const USER: &str = "65532:65532";
pub(crate) const PASSWD: &str = "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n";
pub(crate) const GROUP: &str = "nonroot:x:65532:\n";
/// Where the binary lives in the image (and so the entrypoint).
const BIN_DIR: &str = "usr/local/bin";
/// Part of the digest: changing it changes every layer blob, so it is fixed here, not defaulted.
const GZIP_LEVEL: u32 = 9;
/// The limit per image, in bytes (decimal megabytes), applied to the uncompressed layers: the
/// stricter of the two sizes, and the one a node's disk pays.
const SIZE_LIMIT: u64 = 25_000_000;
/// How many hex digits of the manifest digest make the tag.
const TAG_LEN: usize = 16;

/// Options of `cargo xtask images`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImagesArgs {
    /// Directory for the layouts, one `<service>/` each (default: `images/` in cargo's target
    /// directory). An existing `<service>/` is replaced only if it is an OCI layout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Prove the images instead of keeping them: two builds give identical digests, each is under
    /// 25 MB, skopeo, umoci and oci-image-tool accept it, and the unpacked binary runs.
    #[arg(long, conflicts_with = "out")]
    check: bool,
    /// Registry the images are named for: `<registry>/todo-dapr/<service>:<version>` (OCIR:
    /// `<region-key>.ocir.io/<tenancy-namespace>`). Only the name in each layout's annotations
    /// and the push commands printed; the layout itself holds the version tag.
    #[arg(long, env = "TODO_DAPR_REGISTRY", default_value = DEFAULT_REGISTRY)]
    registry: String,
}

/// `cargo xtask images [--out DIR] [--check]`.
pub(crate) fn run(args: &ImagesArgs) -> anyhow::Result<()> {
    if args.check {
        crate::deps::install_image_tools()?;
        return step::run("OCI images: reproducible, < 25 MB, valid, runnable", check);
    }
    let out = match &args.out {
        Some(out) => out.clone(),
        None => crate::cargo::target_dir()?.join("images"),
    };
    let binaries = step::run(
        &format!("cargo build --profile {PROFILE} (service binaries)"),
        build_binaries,
    )?;
    let (images, runtime) = step::run(&format!("OCI layouts in {}", out.display()), || {
        write_images(&binaries, &out, &args.registry)
    })?;
    for image in &images {
        step::info(&image.summary());
    }
    step::info(&runtime);
    step::info("push each to its registry (after `skopeo login <registry host>`):");
    for image in &images {
        step::info(&format!(
            "  skopeo copy oci:{}:{} docker://{}",
            image.dir.display(),
            image.tag,
            image.name
        ));
    }
    Ok(())
}

/// The check of `cargo xtask test` and `images --check`; needs skopeo, umoci and oci-image-tool.
pub(crate) fn check() -> anyhow::Result<()> {
    for program in ["skopeo", "umoci", "oci-image-tool"] {
        ensure!(
            harness::binaries::find_on_path(program).is_some(),
            "`{program}` is not on PATH: `cargo xtask images --check` installs it (Debian package)"
        );
    }
    let binaries = build_binaries()?;
    let scratch = tempfile::Builder::new()
        .prefix("todo-dapr-images-")
        .tempdir()?;
    let (first, runtime) =
        write_images(&binaries, &scratch.path().join("first"), DEFAULT_REGISTRY)?;
    let (second, _) = write_images(&binaries, &scratch.path().join("second"), DEFAULT_REGISTRY)?;
    check_reproducible(&first, &second)?;
    step::info("two builds from the same binaries: identical manifests and index.json");
    for image in &first {
        check_size(image.uncompressed, SIZE_LIMIT)
            .with_context(|| format!("image {}", image.service))?;
        validate(image, &scratch.path().join("bundles"))
            .with_context(|| format!("image {} ({})", image.service, image.dir.display()))?;
        step::info(&image.summary());
    }
    step::info(&runtime);
    Ok(())
}

/// Builds the service binaries for the host in the image profile; returns service → executable
/// as cargo reports it (so `CARGO_TARGET_DIR` and the profile directory need no guessing).
pub(crate) fn build_binaries() -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    // xtask runs on the host it was built for: the runtime layer is this host's glibc.
    ensure!(
        cfg!(all(target_os = "linux", target_env = "gnu")),
        "the images pack the host's glibc: build them on a Linux gnu host"
    );
    let mut cmd = crate::cargo::command();
    cmd.args(["build", "--locked", "--profile", PROFILE, "--bins"])
        .args(["--message-format", "json-render-diagnostics"]);
    for service in SERVICES {
        cmd.args(["-p", service]);
    }
    // Diagnostics and progress go to the terminal; stdout carries the JSON messages.
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    ensure!(
        out.status.success(),
        "cargo build --profile {PROFILE} failed ({})",
        out.status
    );
    let mut binaries = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str();
        let executable = message["executable"].as_str();
        if let (Some(name), Some(executable)) = (name, executable)
            && let Some(service) = SERVICES.iter().find(|s| **s == name)
        {
            binaries.insert(*service, PathBuf::from(executable));
        }
    }
    for service in SERVICES {
        ensure!(
            binaries.contains_key(service),
            "cargo build did not report the `{service}` binary"
        );
    }
    Ok(binaries)
}

/// A regular file of a layer: its bytes and permission bits (owner root, group root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileEntry {
    pub(crate) data: Vec<u8>,
    pub(crate) mode: u32,
}

/// A layer's files by path, relative to `/` (`etc/passwd`); directories are implied.
pub(crate) type Tree = BTreeMap<String, FileEntry>;

/// A finished layer: the gzip blob and what the manifest and config say about it.
#[derive(Debug)]
pub(crate) struct Layer {
    blob: Vec<u8>,
    digest: Digest,
    /// The sha256 of the uncompressed tar, as the config's `rootfs.diff_ids` wants it.
    diff_id: Digest,
    uncompressed: u64,
}

impl Layer {
    pub(crate) fn build(files: &Tree) -> anyhow::Result<Self> {
        let tar = tar_layer(files)?;
        let blob = gzip(&tar)?;
        Ok(Self {
            digest: sha256(&blob)?,
            diff_id: sha256(&tar)?,
            uncompressed: tar.len() as u64,
            blob,
        })
    }

    fn descriptor(&self) -> anyhow::Result<Descriptor> {
        Ok(DescriptorBuilder::default()
            .media_type(MediaType::ImageLayerGzip)
            .digest(self.digest.clone())
            .size(self.blob.len() as u64)
            .build()?)
    }
}

/// A layer's tar stream: see [`write_tar`].
fn tar_layer(files: &Tree) -> anyhow::Result<Vec<u8>> {
    let entries = files
        .iter()
        .map(|(path, file)| (path.as_str(), (file.data.as_slice(), file.mode)))
        .collect();
    write_tar(Vec::new(), &entries)
}

/// Writes a deterministic tar stream of `files` (path → bytes and mode) to `out`: entries in byte
/// order of their paths, each parent directory (0755) before its contents, uid/gid 0, mtime
/// [`MTIME`], no user names, xattrs or device numbers, and nothing read from the file system's
/// metadata. Used for layers and for whole layouts (`ctr images import` archives) alike.
fn write_tar<W: Write>(out: W, files: &BTreeMap<&str, (&[u8], u32)>) -> anyhow::Result<W> {
    let mut dirs = BTreeSet::new();
    for path in files.keys() {
        ensure!(
            !path.is_empty() && !path.starts_with('/') && !path.ends_with('/'),
            "bad layer path `{path}`"
        );
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_string_lossy().into_owned());
            parent = dir.parent();
        }
    }
    // One ordering over files and directories, so `lib/x/libc.so.6` never precedes `lib/x`.
    let mut entries: BTreeMap<&str, Option<(&[u8], u32)>> =
        dirs.iter().map(|d| (d.as_str(), None)).collect();
    for (path, file) in files {
        ensure!(
            entries.insert(path, Some(*file)).is_none(),
            "`{path}` is both a file and a directory"
        );
    }
    let mut builder = tar::Builder::new(out);
    for (path, file) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Some((data, mode)) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, data)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// gzip at [`GZIP_LEVEL`] with a header that carries no mtime and no file name.
fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

pub(crate) fn sha256(data: &[u8]) -> anyhow::Result<Digest> {
    use sha2::Digest as _;
    let hex = format!("{:x}", Sha256::digest(data));
    Ok(Digest::try_from(format!("sha256:{hex}"))?)
}

/// JSON with object keys sorted at every level and no whitespace. oci-spec keeps labels and
/// annotations in `HashMap`s, whose order changes from one map to the next even within a process;
/// serialising them directly would make the digests random.
fn canonical_json(value: &impl serde::Serialize) -> anyhow::Result<Vec<u8>> {
    fn sorted(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let entries: BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sorted(serde_json::to_value(value)?))?)
}

/// A shared object the binary loads, as `ldd` (or `ld.so --list`) resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SharedObject {
    /// Where the image holds it: a library's resolved path; for the loader, the path the ELF's
    /// `PT_INTERP` names, since the kernel opens exactly that.
    path: String,
    /// The file actually loaded: the same as `path`, except for a loader that `ld.so --list`
    /// shows as `PT_INTERP => file`.
    resolved: String,
    /// Whether this is the dynamic loader itself.
    interpreter: bool,
}

/// Parses `ldd` output. The virtual DSO has no file and is skipped; an unresolved library is an
/// error, since the image would not run.
fn parse_ldd(output: &str) -> anyhow::Result<Vec<SharedObject>> {
    let mut objects = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // Drop the load address, `(0x…)`, when there is one.
        let line = match line.rsplit_once(" (0x") {
            Some((rest, _)) => rest.trim(),
            None => line,
        };
        if let Some((name, target)) = line.split_once(" => ") {
            let target = target.trim();
            ensure!(
                target.starts_with('/'),
                "the library {name} is not found ({target})"
            );
            // Only the loader is listed by a path rather than a soname.
            let interpreter = name.starts_with('/');
            objects.push(SharedObject {
                path: if interpreter { name } else { target }.to_owned(),
                resolved: target.to_owned(),
                interpreter,
            });
        } else if line.starts_with('/') {
            objects.push(SharedObject {
                path: line.to_owned(),
                resolved: line.to_owned(),
                interpreter: true,
            });
        } else if !line.starts_with("linux-vdso") && !line.starts_with("linux-gate") {
            bail!("unexpected ldd line `{line}`");
        }
    }
    ensure!(
        objects.iter().filter(|o| o.interpreter).count() == 1,
        "no dynamic loader in the ldd output: expected a dynamically linked binary for the host \
         gnu target"
    );
    Ok(objects)
}

/// The binary's shared objects, resolved on this host.
fn shared_objects(binary: &Path) -> anyhow::Result<Vec<SharedObject>> {
    // `cargo run` points LD_LIBRARY_PATH at the toolchain; the image's loader will not look there.
    let out = Command::new("ldd")
        .env_remove("LD_LIBRARY_PATH")
        .arg(binary)
        .output()
        .context("running ldd (Debian's libc-bin)")?;
    ensure!(
        out.status.success(),
        "ldd {} failed ({}): {}",
        binary.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    parse_ldd(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("ldd {}", binary.display()))
}

/// A host file as a layer entry: its bytes (symbolic links followed, so the image holds regular
/// files) and 0755 if the host file is executable at all, else 0644.
pub(crate) fn host_file(path: &Path) -> anyhow::Result<FileEntry> {
    use std::os::unix::fs::PermissionsExt;
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let host_mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    let mode = if host_mode & 0o111 != 0 { 0o755 } else { 0o644 };
    Ok(FileEntry { data, mode })
}

/// One image as written.
#[derive(Debug)]
struct BuiltImage {
    service: &'static str,
    dir: PathBuf,
    tag: String,
    /// `<registry>/todo-dapr/<service>:<tag>`.
    name: String,
    manifest_digest: Digest,
    index_json: Vec<u8>,
    /// Layer blobs as stored (gzip), plus config and manifest.
    compressed: u64,
    /// The layers' tar streams.
    uncompressed: u64,
    /// Image paths of the loader and the libraries, for the run check.
    interpreter: String,
    library_dirs: Vec<String>,
}

impl BuiltImage {
    fn summary(&self) -> String {
        format!(
            "{}: {} ({}), {} compressed, {} uncompressed",
            self.service,
            self.manifest_digest,
            self.name,
            megabytes(self.compressed),
            megabytes(self.uncompressed)
        )
    }

    fn binary_path(&self) -> String {
        format!("/{BIN_DIR}/{}", self.service)
    }
}

pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// A service's image, built in memory: the image and what the run check needs to know about it.
#[derive(Debug)]
pub(crate) struct ServiceImage {
    pub(crate) service: &'static str,
    pub(crate) image: OciImage,
    /// Image paths of the loader and the libraries, for the run check.
    interpreter: String,
    library_dirs: Vec<String>,
}

/// What sets one build of the service images apart from another made of the same binaries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Variant<'a> {
    /// The `org.opencontainers.image.version` label.
    pub(crate) version: &'a str,
    /// Arguments after the entrypoint (the config's `Cmd`); none for a release.
    pub(crate) args: &'a [&'a str],
}

/// The images a release ships: the workspace version, no arguments.
pub(crate) const RELEASE: Variant<'static> = Variant {
    version: env!("CARGO_PKG_VERSION"),
    args: &[],
};

/// Builds every service's image in memory; the shared libraries every binary needs form one
/// runtime layer, the same bytes in every image. Returns the images and a line on that layer.
pub(crate) fn build_service_images(
    binaries: &BTreeMap<&'static str, PathBuf>,
    variant: Variant<'_>,
) -> anyhow::Result<(Vec<ServiceImage>, String)> {
    let mut needs = BTreeMap::new();
    for (service, binary) in binaries {
        needs.insert(*service, shared_objects(binary)?);
    }
    let mut common: Vec<SharedObject> = needs.values().next().cloned().unwrap_or_default();
    common.retain(|object| needs.values().all(|n| n.contains(object)));
    let interpreter = common
        .iter()
        .find(|o| o.interpreter)
        .map(|o| o.path.clone())
        .context("the binaries do not share one dynamic loader")?;
    let runtime_tree = objects_tree(&common)?;
    let runtime = Arc::new(Layer::build(&runtime_tree)?);

    let mut images = Vec::new();
    for (service, binary) in binaries {
        let mut files = objects_tree(
            &needs[service]
                .iter()
                .filter(|o| !common.contains(o))
                .cloned()
                .collect::<Vec<_>>(),
        )?;
        let mut executable = host_file(binary)?;
        executable.mode = 0o755;
        files.insert(format!("{BIN_DIR}/{service}"), executable);
        files.insert("etc/passwd".into(), text_file(PASSWD));
        files.insert("etc/group".into(), text_file(GROUP));
        let own = Arc::new(Layer::build(&files)?);
        let library_dirs: BTreeSet<String> = needs[service]
            .iter()
            .filter(|o| !o.interpreter)
            .filter_map(|o| Path::new(&o.path).parent())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let config = ImageConfig {
            title: service,
            version: variant.version,
            entrypoint: &format!("/{BIN_DIR}/{service}"),
            args: variant.args,
            history: &[
                "cargo xtask images: shared libraries (ldd)",
                "cargo xtask images: service binary and nonroot user",
            ],
        };
        let image = OciImage::build(&config, vec![Arc::clone(&runtime), own])
            .with_context(|| format!("building the image of {service}"))?;
        images.push(ServiceImage {
            service,
            image,
            interpreter: interpreter.clone(),
            library_dirs: library_dirs.into_iter().collect(),
        });
    }
    let runtime_line = format!(
        "runtime layer of every image: {}, {} uncompressed: /{}",
        runtime.digest,
        megabytes(runtime.uncompressed),
        runtime_tree.keys().cloned().collect::<Vec<_>>().join(", /")
    );
    Ok((images, runtime_line))
}

/// Writes `out/<service>/` for every service (see [`build_service_images`]), each layout holding
/// its image under the version tag (the chart's default tag) and, as containerd's image-name
/// annotation, its full name `<registry>/todo-dapr/<service>:<version>`. Returns the images and
/// a line on the runtime layer.
fn write_images(
    binaries: &BTreeMap<&'static str, PathBuf>,
    out: &Path,
    registry: &str,
) -> anyhow::Result<(Vec<BuiltImage>, String)> {
    let (images, runtime_line) = build_service_images(binaries, RELEASE)?;
    let mut built = Vec::new();
    for ServiceImage {
        service,
        image,
        interpreter,
        library_dirs,
    } in images
    {
        let dir = out.join(service);
        let tag = VERSION_TAG.to_owned();
        let name = format!("{}:{tag}", repository(registry, service));
        let index_json = image
            .write_layout(
                &dir,
                &[(ANNOTATION_REF_NAME, &tag), (CONTAINERD_IMAGE_NAME, &name)],
            )
            .with_context(|| format!("writing the image of {service}"))?;
        built.push(BuiltImage {
            service,
            dir,
            tag,
            name,
            manifest_digest: image.manifest_digest.clone(),
            index_json,
            compressed: image.compressed(),
            uncompressed: image.uncompressed(),
            interpreter,
            library_dirs,
        });
    }
    Ok((built, runtime_line))
}

pub(crate) fn text_file(text: &str) -> FileEntry {
    FileEntry {
        data: text.as_bytes().to_vec(),
        mode: 0o644,
    }
}

/// Layer entries for shared objects, each at the path the loader looks for it.
fn objects_tree(objects: &[SharedObject]) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    for object in objects {
        let path = object.path.trim_start_matches('/').to_owned();
        tree.insert(path, host_file(Path::new(&object.resolved))?);
    }
    Ok(tree)
}

/// What an image's config says besides its layers. Every image of ours runs as [`USER`] in `/`,
/// was created at [`CREATED`] and has its one program as the entrypoint.
#[derive(Debug)]
pub(crate) struct ImageConfig<'a> {
    /// The `org.opencontainers.image.title` label: what the image packs (a service, a program).
    pub(crate) title: &'a str,
    /// The `org.opencontainers.image.version` label: the version of what it packs.
    pub(crate) version: &'a str,
    /// The absolute path of the program in the image.
    pub(crate) entrypoint: &'a str,
    /// Arguments after the entrypoint (`Cmd`); usually none.
    pub(crate) args: &'a [&'a str],
    /// The `created_by` of each layer's history entry, in layer order.
    pub(crate) history: &'a [&'a str],
}

/// One image built in memory: its layers and the config and manifest blobs that name them, ready
/// to be written as an OCI image layout ([`OciImage::write_layout`]) or as a tar of one
/// ([`OciImage::write_archive`]). Layers are shared, so images with a common layer hold it once.
#[derive(Debug)]
pub(crate) struct OciImage {
    layers: Vec<Arc<Layer>>,
    config_json: Vec<u8>,
    manifest_json: Vec<u8>,
    pub(crate) manifest_digest: Digest,
}

impl OciImage {
    pub(crate) fn build(config: &ImageConfig<'_>, layers: Vec<Arc<Layer>>) -> anyhow::Result<Self> {
        ensure!(
            config.history.len() == layers.len(),
            "{} history entries for {} layers",
            config.history.len(),
            layers.len()
        );
        let labels = HashMap::from([
            (ANNOTATION_TITLE.to_owned(), config.title.to_owned()),
            (ANNOTATION_VERSION.to_owned(), config.version.to_owned()),
        ]);
        let history = config
            .history
            .iter()
            .map(|created_by| {
                HistoryBuilder::default()
                    .created(CREATED)
                    .created_by(*created_by)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut runtime = ConfigBuilder::default()
            .user(USER)
            .entrypoint(vec![config.entrypoint.to_owned()])
            .working_dir("/")
            .labels(labels);
        if !config.args.is_empty() {
            runtime = runtime.cmd(
                config
                    .args
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        let image_config = ImageConfigurationBuilder::default()
            .created(CREATED)
            .architecture(Arch::default())
            .os(Os::Linux)
            .config(runtime.build()?)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(
                        layers
                            .iter()
                            .map(|l| l.diff_id.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .build()?,
            )
            .history(history)
            .build()?;
        let config_json = canonical_json(&image_config)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageConfig)
                    .digest(sha256(&config_json)?)
                    .size(config_json.len() as u64)
                    .build()?,
            )
            .layers(
                layers
                    .iter()
                    .map(|l| l.descriptor())
                    .collect::<anyhow::Result<Vec<_>>>()?,
            )
            .build()?;
        let manifest_json = canonical_json(&manifest)?;
        Ok(Self {
            manifest_digest: sha256(&manifest_json)?,
            layers,
            config_json,
            manifest_json,
        })
    }

    /// The content-derived tag: the first [`TAG_LEN`] hex digits of the manifest digest.
    ///
    /// The tag lives only in `index.json` (`org.opencontainers.image.ref.name`), outside the
    /// manifest it names, so there is no cycle: like nix2container's store-path hash, it changes
    /// exactly when the config or a layer does, and two different images never share a tag. The
    /// workspace version is in the config's labels instead, where it cannot pretend two different
    /// builds are the same image.
    pub(crate) fn tag(&self) -> String {
        self.manifest_digest
            .digest()
            .chars()
            .take(TAG_LEN)
            .collect()
    }

    /// Layer blobs as stored (gzip), plus config and manifest.
    pub(crate) fn compressed(&self) -> u64 {
        self.blobs().iter().map(|b| b.len() as u64).sum()
    }

    /// The layers' tar streams: what a node's disk holds once the image is unpacked.
    pub(crate) fn uncompressed(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed).sum()
    }

    fn blobs(&self) -> Vec<&[u8]> {
        let mut blobs: Vec<&[u8]> = self.layers.iter().map(|l| l.blob.as_slice()).collect();
        blobs.push(&self.config_json);
        blobs.push(&self.manifest_json);
        blobs
    }

    /// `index.json` of a layout holding this image alone; `annotations` go on the manifest's
    /// descriptor (the tag as `org.opencontainers.image.ref.name`, for instance).
    fn index_json(&self, annotations: &[(&str, &str)]) -> anyhow::Result<Vec<u8>> {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageManifest)
                    .digest(self.manifest_digest.clone())
                    .size(self.manifest_json.len() as u64)
                    .platform(
                        PlatformBuilder::default()
                            .architecture(Arch::default())
                            .os(Os::Linux)
                            .build()?,
                    )
                    .annotations(
                        annotations
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect::<HashMap<_, _>>(),
                    )
                    .build()?,
            ])
            .build()?;
        canonical_json(&index)
    }

    /// Writes the image as an OCI image layout in `dir` (replacing one already there, see
    /// [`replace_dir`]): blobs, `oci-layout`, and `index.json` with `annotations` on the
    /// manifest's descriptor. Returns the `index.json` written.
    pub(crate) fn write_layout(
        &self,
        dir: &Path,
        annotations: &[(&str, &str)],
    ) -> anyhow::Result<Vec<u8>> {
        let index_json = self.index_json(annotations)?;
        replace_dir(dir)?;
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        for blob in self.blobs() {
            let path = blobs.join(sha256(blob)?.digest());
            std::fs::write(&path, blob).with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::write(dir.join("oci-layout"), OCI_LAYOUT)?;
        std::fs::write(dir.join("index.json"), &index_json)?;
        Ok(index_json)
    }

    /// Writes the same layout as [`OciImage::write_layout`] as one deterministic tar file at
    /// `path`: the form `ctr images import` reads. Written to a temporary file in the same
    /// directory and renamed, so `path` is either the old archive or the complete new one.
    pub(crate) fn write_archive(
        &self,
        path: &Path,
        annotations: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let index_json = self.index_json(annotations)?;
        let mut names = Vec::new();
        for blob in self.blobs() {
            names.push((format!("blobs/sha256/{}", sha256(blob)?.digest()), blob));
        }
        let mut files: BTreeMap<&str, (&[u8], u32)> = names
            .iter()
            .map(|(name, blob)| (name.as_str(), (*blob, 0o644)))
            .collect();
        files.insert("oci-layout", (OCI_LAYOUT, 0o644));
        files.insert("index.json", (&index_json, 0o644));

        let dir = path
            .parent()
            .with_context(|| format!("{} has no parent directory", path.display()))?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let out = write_tar(std::io::BufWriter::new(tmp), &files)
            .with_context(|| format!("writing {}", path.display()))?;
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        let mut permissions = tmp.as_file().metadata()?.permissions();
        // A temporary file is private (0600); the archive is build output like the layouts.
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o644);
        tmp.as_file()
            .set_permissions(permissions)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        tmp.persist(path)
            .with_context(|| format!("renaming the new archive to {}", path.display()))?;
        Ok(())
    }
}

/// The `oci-layout` file of every layout: the layout version.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Empties `dir` for a new layout. An existing directory is removed only if it is empty or an
/// OCI layout: `--out` may point anywhere, and stale blobs must not survive a rebuild.
fn replace_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        ensure!(
            empty || dir.join("oci-layout").is_file(),
            "refusing to replace {}: it is neither empty nor an OCI layout",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Two builds of the same binaries must agree byte for byte on what names the images.
fn check_reproducible(first: &[BuiltImage], second: &[BuiltImage]) -> anyhow::Result<()> {
    ensure!(
        first.len() == second.len(),
        "the two builds made {} and {} images",
        first.len(),
        second.len()
    );
    for (a, b) in first.iter().zip(second) {
        ensure!(
            a.service == b.service,
            "image order differs: {} vs {}",
            a.service,
            b.service
        );
        ensure!(
            a.manifest_digest == b.manifest_digest,
            "{} is not reproducible: manifest {} then {}",
            a.service,
            a.manifest_digest,
            b.manifest_digest
        );
        ensure!(
            a.index_json == b.index_json,
            "{} is not reproducible: index.json differs between two builds",
            a.service
        );
    }
    Ok(())
}

fn check_size(uncompressed: u64, limit: u64) -> anyhow::Result<()> {
    ensure!(
        uncompressed < limit,
        "{} uncompressed, over the limit of {}",
        megabytes(uncompressed),
        megabytes(limit)
    );
    Ok(())
}

/// oci-image-tool, skopeo and umoci on one layout, then the unpacked binary's `--help`.
fn validate(image: &BuiltImage, bundles: &Path) -> anyhow::Result<()> {
    let reference = format!("{}:{}", image.dir.display(), image.tag);
    // Debian's oci-image-tool (1.0.0-rc1 inside) has no `--type imageLayout`: `image`
    // detects the layout, then checks the index, manifest and config schemas and every digest.
    stdout_of(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref"])
            .arg(format!("name={}", image.tag))
            .arg(&image.dir),
    )?;

    // No signature policy is involved in reading a local layout; `--insecure-policy` keeps
    // skopeo from looking for /etc/containers/policy.json, which a bare machine lacks.
    let skopeo = |extra: &[&str]| -> anyhow::Result<Value> {
        let out = stdout_of(
            Command::new("skopeo")
                .args(["--insecure-policy", "inspect"])
                .args(extra)
                .arg(format!("oci:{reference}")),
        )?;
        serde_json::from_str(&out).context("parsing skopeo inspect")
    };
    let inspected = skopeo(&[])?;
    ensure!(
        inspected["Digest"].as_str() == Some(image.manifest_digest.as_ref()),
        "skopeo reads digest {} for tag {}, expected {}",
        inspected["Digest"],
        image.tag,
        image.manifest_digest
    );
    let config = skopeo(&["--config"])?;
    let expect = |field: &str, want: Value| {
        let got = &config["config"][field];
        ensure!(
            *got == want,
            "skopeo reads config.{field} = {got}, expected {want}"
        );
        Ok(())
    };
    expect("User", Value::from(USER))?;
    expect("Entrypoint", Value::from(vec![image.binary_path()]))?;
    expect("WorkingDir", Value::from("/"))?;
    ensure!(
        config["created"].as_str() == Some(CREATED),
        "skopeo reads created = {}",
        config["created"]
    );

    let bundle = bundles.join(image.service);
    stdout_of(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &reference])
            .arg(&bundle),
    )?;
    run_unpacked(image, &bundle.join("rootfs"))
}

/// Runs the unpacked binary through the image's own loader, with the image's library directories
/// only and no host `ld.so.cache`. `ld.so --list` first shows where every library came from, and
/// any that resolve outside the rootfs fail the check: the host's libraries could otherwise hide
/// a missing one.
fn run_unpacked(image: &BuiltImage, rootfs: &Path) -> anyhow::Result<()> {
    let under = |path: &str| rootfs.join(path.trim_start_matches('/'));
    let loader = under(&image.interpreter);
    let binary = under(&image.binary_path());
    let library_path = image
        .library_dirs
        .iter()
        .map(|d| under(d).to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let loader_cmd = || {
        let mut cmd = Command::new(&loader);
        cmd.env_remove("LD_LIBRARY_PATH").args([
            "--inhibit-cache",
            "--library-path",
            &library_path,
        ]);
        cmd
    };
    let listing = stdout_of(loader_cmd().arg("--list").arg(&binary))?;
    let outside: Vec<String> = parse_ldd(&listing)?
        .into_iter()
        .filter(|o| !Path::new(&o.resolved).starts_with(rootfs))
        .map(|o| o.resolved)
        .collect();
    ensure!(
        outside.is_empty(),
        "libraries resolved outside the image: {outside:?}"
    );
    let help = stdout_of(loader_cmd().arg(&binary).arg("--help"))?;
    ensure!(
        help.contains(&format!("Usage: {}", image.service)),
        "`{} --help` from the image printed no usage line:\n{help}",
        image.service
    );
    Ok(())
}

/// Runs `cmd`, returns its stdout; on failure the error carries the command and its stderr.
pub(crate) fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).context("non-UTF-8 output")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &[u8], mode: u32) -> FileEntry {
        FileEntry {
            data: data.to_vec(),
            mode,
        }
    }

    fn sample() -> Tree {
        Tree::from([
            (
                "usr/local/bin/svc".to_owned(),
                file(b"\x7fELF binary", 0o755),
            ),
            ("etc/passwd".to_owned(), text_file(PASSWD)),
            (
                "lib/x86_64-linux-gnu/libc.so.6".to_owned(),
                file(b"libc", 0o755),
            ),
        ])
    }

    fn entries(tar: &[u8]) -> Vec<(String, u32, u64, u64, u64, u64)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn tar_is_sorted_with_parents_first_root_owned_and_fixed_mtime() {
        let tar = tar_layer(&sample()).unwrap();
        let paths: Vec<_> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/passwd",
                "lib/",
                "lib/x86_64-linux-gnu/",
                "lib/x86_64-linux-gnu/libc.so.6",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/svc",
            ]
        );
        for (path, mode, uid, gid, mtime, _) in entries(&tar) {
            assert_eq!((uid, gid, mtime), (0, 0, MTIME), "{path}");
            let want = if path.ends_with('/') || path.ends_with("svc") || path.ends_with(".6") {
                0o755
            } else {
                0o644
            };
            assert_eq!(mode, want, "{path}");
        }
    }

    #[test]
    fn same_files_give_the_same_layer_in_any_insertion_order() {
        let forward = sample();
        let reversed: Tree = sample().into_iter().rev().collect();
        let a = Layer::build(&forward).unwrap();
        let b = Layer::build(&reversed).unwrap();
        assert_eq!(a.blob, b.blob);
        assert_eq!((a.digest, a.diff_id), (b.digest, b.diff_id));
    }

    #[test]
    fn a_changed_byte_or_mode_changes_the_digest() {
        let base = Layer::build(&sample()).unwrap();
        let mut tampered = sample();
        tampered.insert("etc/passwd".into(), file(b"root:x:0:0::/:/bin/sh\n", 0o644));
        let mut chmod = sample();
        chmod.insert("usr/local/bin/svc".into(), file(b"\x7fELF binary", 0o775));
        for other in [tampered, chmod] {
            let layer = Layer::build(&other).unwrap();
            assert_ne!(layer.digest, base.digest);
            assert_ne!(layer.diff_id, base.diff_id);
        }
    }

    #[test]
    fn digest_is_sha256_of_the_bytes() {
        // sha256("") is a well-known constant.
        assert_eq!(
            sha256(b"").unwrap().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn gzip_header_has_no_timestamp_and_round_trips() {
        let blob = gzip(b"hello").unwrap();
        assert_eq!(&blob[4..8], &[0, 0, 0, 0], "gzip MTIME field");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut out).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn canonical_json_sorts_keys_whatever_the_map_order() {
        let many: HashMap<String, String> =
            (0..50).map(|i| (format!("k{i}"), i.to_string())).collect();
        let mut items: Vec<_> = many.clone().into_iter().collect();
        items.reverse();
        let rebuilt: HashMap<String, String> = items.into_iter().collect();
        let a = canonical_json(&many).unwrap();
        assert_eq!(a, canonical_json(&rebuilt).unwrap());
        let text = String::from_utf8(a).unwrap();
        assert!(
            text.starts_with(r#"{"k0":"0","k1":"1","k10":"10""#),
            "{text}"
        );
    }

    /// `ctr images import` reads the archive as the layout `cargo xtask images` writes: the same
    /// files with the same bytes, only `index.json` carrying the annotations each is given.
    #[test]
    fn archive_holds_the_files_of_the_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let config = ImageConfig {
            title: "svc",
            version: "0.1.0",
            entrypoint: "/usr/local/bin/svc",
            args: &[],
            history: &["runtime", "binary"],
        };
        let shared = Arc::new(Layer::build(&sample()).unwrap());
        let own =
            Arc::new(Layer::build(&Tree::from([("svc".to_owned(), text_file("x"))])).unwrap());
        let image = OciImage::build(&config, vec![shared, own]).unwrap();
        let annotations = [(ANNOTATION_REF_NAME, "tag")];
        let index_json = image
            .write_layout(&tmp.path().join("layout"), &annotations)
            .unwrap();
        image
            .write_archive(&tmp.path().join("image.tar"), &annotations)
            .unwrap();

        let mut from_layout = BTreeMap::new();
        let layout = tmp.path().join("layout");
        for rel in ["oci-layout", "index.json"] {
            from_layout.insert(rel.to_owned(), std::fs::read(layout.join(rel)).unwrap());
        }
        for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            let name = format!("blobs/sha256/{}", blob.file_name().to_string_lossy());
            from_layout.insert(name, std::fs::read(blob.path()).unwrap());
        }
        let mut from_archive = BTreeMap::new();
        let bytes = std::fs::read(tmp.path().join("image.tar")).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            from_archive.insert(path, data);
        }
        assert_eq!(from_archive, from_layout);
        assert_eq!(from_layout["index.json"], index_json);
        // Layer, layer, config, manifest, oci-layout, index.json.
        assert_eq!(from_layout.len(), 6);
        assert_eq!(image.tag().len(), TAG_LEN);
        assert!(image.manifest_digest.digest().starts_with(&image.tag()));
    }

    #[test]
    fn an_image_needs_one_history_entry_per_layer() {
        let layer = Arc::new(Layer::build(&sample()).unwrap());
        let config = ImageConfig {
            title: "svc",
            version: "0.1.0",
            entrypoint: "/svc",
            args: &[],
            history: &[],
        };
        assert!(OciImage::build(&config, vec![layer]).is_err());
    }

    #[test]
    fn tar_rejects_absolute_and_conflicting_paths() {
        let absolute = Tree::from([("/etc/passwd".to_owned(), text_file(PASSWD))]);
        assert!(tar_layer(&absolute).is_err());
        let conflict = Tree::from([
            ("etc".to_owned(), text_file("x")),
            ("etc/passwd".to_owned(), text_file(PASSWD)),
        ]);
        assert!(tar_layer(&conflict).is_err());
    }

    #[test]
    fn size_check_rejects_at_and_over_the_limit() {
        assert!(check_size(SIZE_LIMIT - 1, SIZE_LIMIT).is_ok());
        assert!(check_size(SIZE_LIMIT, SIZE_LIMIT).is_err());
        let oversized = Layer::build(&Tree::from([(
            "big".to_owned(),
            file(&vec![0; 2_000_000], 0o644),
        )]))
        .unwrap();
        // Zeros compress to almost nothing: the limit applies to what is unpacked.
        assert!(oversized.blob.len() < 100_000);
        assert!(check_size(oversized.uncompressed, 1_000_000).is_err());
    }

    #[test]
    fn parses_ldd_and_ld_so_list_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f01)\n\
            \tlibc.so.6 => /tmp/b/rootfs/lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n";
        let objects = parse_ldd(out).unwrap();
        let paths: Vec<_> = objects
            .iter()
            .map(|o| (o.path.as_str(), o.resolved.as_str(), o.interpreter))
            .collect();
        let libgcc = "/lib/x86_64-linux-gnu/libgcc_s.so.1";
        let libc = "/tmp/b/rootfs/lib/x86_64-linux-gnu/libc.so.6";
        let loader = "/lib64/ld-linux-x86-64.so.2";
        assert_eq!(
            paths,
            [
                (libgcc, libgcc, false),
                (libc, libc, false),
                (loader, loader, true)
            ]
        );
        // `ld.so --list` run as a program names the loader by PT_INTERP and by the file it is.
        let listed = parse_ldd("\t/lib64/ld-linux-x86-64.so.2 => /r/lib64/ld.so (0x1)\n").unwrap();
        assert_eq!(listed[0].path, loader);
        assert_eq!(listed[0].resolved, "/r/lib64/ld.so");
        assert!(listed[0].interpreter);
    }

    #[test]
    fn ldd_with_a_missing_library_or_no_loader_fails() {
        let missing = "\tlibfoo.so.1 => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x1)\n";
        assert!(parse_ldd(missing).is_err());
        assert!(parse_ldd("\tstatically linked\n").is_err());
    }

    fn built(service: &'static str, digest_byte: u8, index: &[u8]) -> BuiltImage {
        BuiltImage {
            service,
            dir: PathBuf::new(),
            tag: String::new(),
            name: String::new(),
            manifest_digest: sha256(&[digest_byte]).unwrap(),
            index_json: index.to_vec(),
            compressed: 0,
            uncompressed: 0,
            interpreter: String::new(),
            library_dirs: Vec::new(),
        }
    }

    #[test]
    fn reproducibility_check_catches_a_differing_digest_or_index() {
        let a = [built("backend", 1, b"{}")];
        assert!(check_reproducible(&a, &[built("backend", 1, b"{}")]).is_ok());
        assert!(check_reproducible(&a, &[built("backend", 2, b"{}")]).is_err());
        assert!(check_reproducible(&a, &[built("backend", 1, b"{ }")]).is_err());
        assert!(check_reproducible(&a, &[]).is_err());
    }

    #[test]
    fn replace_dir_refuses_a_directory_that_is_not_a_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let precious = tmp.path().join("precious");
        std::fs::create_dir(&precious).unwrap();
        std::fs::write(precious.join("notes.txt"), "keep").unwrap();
        assert!(replace_dir(&precious).is_err());
        assert!(precious.join("notes.txt").is_file());

        let layout = tmp.path().join("layout");
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(layout.join("oci-layout"), "{}").unwrap();
        std::fs::write(layout.join("blobs/sha256/stale"), "old").unwrap();
        replace_dir(&layout).unwrap();
        assert!(!layout.join("blobs").exists());
    }
}
