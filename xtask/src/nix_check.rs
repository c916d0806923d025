//! The Nix flake, proven as far as a machine without nixpkgs can: `flake.nix` and `nix/*.nix`
//! parse, and the flake's outputs evaluate, with the expected names and shapes, against the stub
//! inputs in `nix/stubs/` (see `nix/stubs/README.md`): for both systems, the dev shell holds every
//! program of `tools::TOOLS`, and the images are `<registry>/todo-dapr/<service>:<appVersion>`
//! for the system's architecture, with the default registry and with `TODO_DAPR_REGISTRY`.
//!
//! Nix only sees the git-tracked files of a flake in a git repository, so the evaluation runs on
//! a scratch copy of the working tree (tracked and untracked-but-not-ignored files) that gets its
//! own `git init`: the repository's index is never touched, and a fresh clone behaves the same.
//! Nix gets a private store, cache and configuration in the scratch directory, an empty flake
//! registry and no substituters, so nothing is fetched and nothing outside the scratch directory
//! is written. Needs Debian's `nix-bin` (Nix 2.8) and git.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::step;

/// The system whose outputs are checked in depth (the one this project's machines build).
const SYSTEM: &str = "x86_64-linux";
/// Every system the flake describes, with the OCI architecture of its images.
const SYSTEMS: [(&str, &str); 2] = [("x86_64-linux", "amd64"), ("aarch64-linux", "arm64")];
/// A registry given through TODO_DAPR_REGISTRY in the second evaluation of the image names.
const OCIR_EXAMPLE: &str = "fra.ocir.io/axk4example";
/// The environment the dev shell sets for what has no program on PATH (see nix/devshell.nix).
const SHELL_ENV: [&str; 4] = ["PG_BIN_DIR", "JAVA_HOME", "RABBITMQ_SERVER", "CNI_BIN_DIR"];
const SERVICES: [&str; 4] = [
    "backend",
    "notification",
    "email-delivery",
    "recurring-task",
];
const OTHER_PACKAGES: [&str; 3] = ["images", "dapr-manifests", "dashboards"];
const CHECKS: [&str; 4] = ["clippy", "fmt", "tests", "nextest"];
/// The flake inputs, each replaced by `nix/stubs/<input>`.
const STUBBED_INPUTS: [&str; 3] = ["nixpkgs", "crane", "nix2container"];

/// Parses, copies, evaluates and checks the flake's outputs; fails with what is wrong.
pub(crate) fn check() -> anyhow::Result<()> {
    let repo = harness::repo_root();
    for program in ["nix", "nix-instantiate", "git"] {
        ensure!(
            harness::binaries::find_on_path(program).is_some(),
            "`{program}` is not on PATH: `cargo xtask deps` installs Debian's nix-bin (and git)"
        );
    }

    let nix_files = nix_files(&repo)?;
    for file in &nix_files {
        run(Command::new("nix-instantiate").arg("--parse").arg(file))
            .with_context(|| format!("{} does not parse", file.display()))?;
    }
    step::info(&format!(
        "parsed flake.nix and {} files under nix/",
        nix_files.len() - 1
    ));

    let scratch = tempfile::Builder::new()
        .prefix("todo-dapr-nix-")
        .tempdir()?;
    let result = evaluate(&repo, scratch.path());
    // Nix makes store paths read-only; without write permission on the directories a non-root
    // user could not remove them.
    make_dirs_writable(scratch.path());
    result
}

fn evaluate(repo: &Path, scratch: &Path) -> anyhow::Result<()> {
    let flake = scratch.join("flake");
    let copied = copy_worktree(repo, &flake)?;
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args(["-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(&flake))
    };
    git(&["init", "--quiet"])?;
    git(&["add", "--all"])?;
    step::info(&format!(
        "copied {copied} files to {} and git-added them there",
        flake.display()
    ));

    let nix = Nix::new(scratch, &flake)?;
    nix.flake_check()
        .context("`nix flake check --no-build` against the stub inputs failed")?;
    step::info("nix flake check --no-build: every output evaluates to a derivation");

    let packages = nix.eval_json(&format!("packages.{SYSTEM}"), &packages_summary())?;
    let checks = nix.eval_json(&format!("checks.{SYSTEM}"), SUMMARY)?;
    let shells = nix.eval_json(&format!("devShells.{SYSTEM}"), SUMMARY)?;

    let expected_packages: Vec<&str> = SERVICES.iter().chain(&OTHER_PACKAGES).copied().collect();
    expect_derivations("packages", &packages, &expected_packages)?;
    expect_derivations("checks", &checks, &CHECKS)?;
    expect_derivations("devShells", &shells, &["default"])?;

    // Dependencies compiled once: every service and every cargo check starts from the same
    // buildDepsOnly derivation (fmt needs no compiled dependencies).
    let deps = |set: &Value, name: &str| set[name]["deps"].as_str().map(str::to_owned);
    let shared = deps(&packages, SERVICES[0])
        .with_context(|| format!("packages.{SYSTEM}.{} has no cargoArtifacts", SERVICES[0]))?;
    for (output, set, names) in [
        ("packages", &packages, &SERVICES[..]),
        ("checks", &checks, &["clippy", "tests", "nextest"][..]),
    ] {
        for name in names {
            ensure!(
                deps(set, name).as_deref() == Some(shared.as_str()),
                "{output}.{SYSTEM}.{name} does not use the shared dependency build {shared}"
            );
        }
    }
    step::info(&format!("all services and cargo checks reuse {shared}"));

    for service in SERVICES {
        check_service_sources(service, &packages[service]["files"])?;
    }
    step::info("each service's source set holds its crate closure and nothing of the others");

    let images = &packages["images"]["images"];
    for service in SERVICES {
        ensure!(
            images[service].as_bool() == Some(true),
            "packages.{SYSTEM}.images has no image for {service} (expected in its passthru)"
        );
    }
    step::info(&format!(
        "outputs: packages {{{}}}, checks {{{}}}, devShells {{default}}",
        expected_packages.join(", "),
        CHECKS.join(", ")
    ));

    let version = chart_app_version(&flake)?;
    for (system, arch) in SYSTEMS {
        let shell = nix.eval_json(&format!("devShells.{system}.default"), &shell_summary())?;
        check_shell_tools(system, &shell)?;
        let images = nix.eval_json(&format!("packages.{system}.images"), &images_summary())?;
        check_image_names(
            system,
            arch,
            &images,
            crate::images::DEFAULT_REGISTRY,
            &version,
        )?;
    }
    step::info(&format!(
        "devShells {{{}}}: each holds every program xtask looks for ({} of them)",
        SYSTEMS.map(|(s, _)| s).join(", "),
        crate::tools::TOOLS.len()
    ));
    let images = nix.eval_json_with_env(
        &format!("packages.{SYSTEM}.images"),
        &images_summary(),
        ("TODO_DAPR_REGISTRY", OCIR_EXAMPLE),
    )?;
    check_image_names(SYSTEM, "amd64", &images, OCIR_EXAMPLE, &version)?;
    step::info(&format!(
        "images: {}/todo-dapr/<service>:{version} (amd64, arm64), and under TODO_DAPR_REGISTRY",
        crate::images::DEFAULT_REGISTRY
    ));
    Ok(())
}

/// `--apply` for a dev shell: the programs its packages hold (the stub nixpkgs records them) and
/// the variables of [`SHELL_ENV`] it sets.
fn shell_summary() -> String {
    let vars = SHELL_ENV.map(|v| format!("\"{v}\"")).join(" ");
    format!(
        "sh: {{ programs = builtins.concatMap (p: p.stubPrograms or \
         [ (p.meta.mainProgram or p.name) ]) sh.packages; env = builtins.listToAttrs (map (n: \
         {{ name = n; value = sh.${{n}} or null; }}) [ {vars} ]); }}"
    )
}

/// `--apply` for `packages.<system>.images`: each service image's name, tag and architecture.
fn images_summary() -> String {
    let services = SERVICES.map(|s| format!("\"{s}\"")).join(" ");
    format!(
        "set: builtins.listToAttrs (map (s: {{ name = s; value = {{ name = set.${{s}}.imageName; \
         tag = set.${{s}}.imageTag; arch = set.${{s}}.arch or null; }}; }}) [ {services} ])"
    )
}

/// Every program of `tools::TOOLS` is in the shell's packages (except those nixpkgs lacks, which
/// are named with their reason), and the shell sets the variables for what has no program.
fn check_shell_tools(system: &str, shell: &Value) -> anyhow::Result<()> {
    let programs: BTreeSet<&str> = shell["programs"]
        .as_array()
        .with_context(|| format!("devShells.{system}.default lists no packages"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let missing: Vec<&str> = crate::tools::TOOLS
        .iter()
        .map(|(program, _)| *program)
        .filter(|program| !programs.contains(program))
        .filter(|program| {
            !crate::tools::NOT_IN_NIXPKGS
                .iter()
                .any(|(p, _)| p == program)
        })
        .collect();
    ensure!(
        missing.is_empty(),
        "devShells.{system}.default lacks {missing:?}: add their packages to nix/devshell.nix \
         (inside `nix develop`, `cargo xtask` would install them with apt-get)"
    );
    for var in SHELL_ENV {
        ensure!(
            shell["env"][var]
                .as_str()
                .is_some_and(|v| v.starts_with("/nix/store/")),
            "devShells.{system}.default does not set {var} to a store path"
        );
    }
    Ok(())
}

/// Each image is `<registry>/todo-dapr/<service>:<appVersion>` for `arch`: the reference the chart
/// pulls with `image.registry: <registry>` and its default tag.
fn check_image_names(
    system: &str,
    arch: &str,
    images: &Value,
    registry: &str,
    version: &str,
) -> anyhow::Result<()> {
    for service in SERVICES {
        let image = &images[service];
        let want = crate::images::repository(registry, service);
        ensure!(
            image["name"].as_str() == Some(want.as_str()),
            "packages.{system}.images.{service} is named {}, expected {want}",
            image["name"]
        );
        ensure!(
            image["tag"].as_str() == Some(version),
            "packages.{system}.images.{service} is tagged {}, expected the chart's appVersion {version}",
            image["tag"]
        );
        ensure!(
            image["arch"].as_str() == Some(arch),
            "packages.{system}.images.{service} is built for {}, expected {arch}",
            image["arch"]
        );
    }
    Ok(())
}

/// The chart's appVersion, its default image tag; the workspace version must be the same.
fn chart_app_version(flake: &Path) -> anyhow::Result<String> {
    let chart = std::fs::read_to_string(flake.join("helm/todo-dapr/Chart.yaml"))?;
    // A top-level scalar: one line, optionally quoted (no YAML parser in xtask's dependencies).
    let version = chart
        .lines()
        .find_map(|line| line.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        .filter(|v| !v.is_empty())
        .context("helm/todo-dapr/Chart.yaml has no appVersion")?;
    ensure!(
        version == env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion {version} is not the workspace version {}: the images are tagged \
         with the workspace version and the chart pulls its appVersion",
        env!("CARGO_PKG_VERSION")
    );
    let values = std::fs::read_to_string(flake.join("helm/todo-dapr/values.yaml"))?;
    for service in SERVICES {
        ensure!(
            values.contains(&format!("repository: todo-dapr/{service}\n")),
            "helm/todo-dapr/values.yaml: services.{service}.image.repository is not todo-dapr/{service}"
        );
    }
    Ok(version)
}

/// `--apply` for an output set: each attribute's type, name and dependency build (if any).
const SUMMARY: &str = "set: builtins.mapAttrs (_: v: { type = v.type or null; name = v.name or null; \
     deps = v.cargoArtifacts.drvPath or null; }) set";

/// `--apply` for the packages: the summary plus the files of each source set (the stub
/// `lib.fileset.toSource` lists them) and which service images `images` carries.
fn packages_summary() -> String {
    let services = SERVICES.map(|s| format!("\"{s}\"")).join(" ");
    format!(
        "set: builtins.mapAttrs (_: v: {{ type = v.type or null; name = v.name or null; \
         deps = v.cargoArtifacts.drvPath or null; files = v.src.stubFiles or null; \
         images = builtins.listToAttrs (map (s: {{ name = s; \
           value = ((v.${{s}} or null).type or null) == \"derivation\"; }}) [ {services} ]); \
         }}) set"
    )
}

/// Every expected attribute exists and is a derivation.
fn expect_derivations(output: &str, set: &Value, expected: &[&str]) -> anyhow::Result<()> {
    let present: BTreeSet<&str> = set
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| !present.contains(name))
        .collect();
    ensure!(
        missing.is_empty(),
        "{output}.{SYSTEM} lacks {missing:?} (has {present:?})"
    );
    for name in expected {
        let kind = set[*name]["type"].as_str();
        ensure!(
            kind == Some("derivation"),
            "{output}.{SYSTEM}.{name} is not a derivation (type {kind:?})"
        );
    }
    Ok(())
}

/// A service's source set has its own crate (and backend its migrations), but no other service's
/// sources, no xtask and no test harness: editing those must not rebuild it.
fn check_service_sources(service: &str, files: &Value) -> anyhow::Result<()> {
    let files: BTreeSet<&str> = files
        .as_array()
        .with_context(|| format!("packages.{SYSTEM}.{service}.src lists no files"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let dir = format!("services/{service}");
    for needed in [
        "Cargo.lock".to_owned(),
        format!("{dir}/Cargo.toml"),
        format!("{dir}/src/main.rs"),
        "services/contracts/src/lib.rs".to_owned(),
        "dapr/src/lib.rs".to_owned(),
        "middleware/src/lib.rs".to_owned(),
    ] {
        ensure!(
            files.contains(needed.as_str()),
            "packages.{SYSTEM}.{service}: source set lacks {needed}"
        );
    }
    if service == "backend" {
        ensure!(
            files
                .iter()
                .any(|f| f.starts_with("services/backend/migrations/") && f.ends_with(".sql")),
            "packages.{SYSTEM}.backend: source set lacks services/backend/migrations/*.sql \
             (sqlx::migrate! reads them at compile time)"
        );
    }
    let foreign: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| f.ends_with(".rs"))
        .filter(|f| {
            f.starts_with("xtask/")
                || f.starts_with("tests/")
                || SERVICES
                    .iter()
                    .any(|other| *other != service && f.starts_with(&format!("services/{other}/")))
        })
        .collect();
    ensure!(
        foreign.is_empty(),
        "packages.{SYSTEM}.{service}: source set includes sources it does not build: {foreign:?}"
    );
    Ok(())
}

/// `flake.nix` first, then every `.nix` file under `nix/`, sorted.
fn nix_files(repo: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension() == Some(OsStr::new("nix")) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(&repo.join("nix"), &mut files)?;
    files.sort();
    files.insert(0, repo.join("flake.nix"));
    Ok(files)
}

/// Copies what a clone would hold (tracked files plus untracked ones that are not ignored, as
/// they are in the working tree) to `dest`; returns how many files.
fn copy_worktree(repo: &Path, dest: &Path) -> anyhow::Result<usize> {
    let listing = run(Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo))?;
    let mut copied = 0;
    for name in listing.split('\0').filter(|n| !n.is_empty()) {
        let from = repo.join(name);
        // Listed but deleted in the working tree: not part of what we evaluate.
        if !from.is_file() {
            continue;
        }
        let to = dest.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &to).with_context(|| format!("copying {name}"))?;
        copied += 1;
    }
    ensure!(
        dest.join("flake.nix").is_file(),
        "flake.nix is not in the working tree"
    );
    Ok(copied)
}

/// `nix` with a private store and configuration under the scratch directory.
struct Nix {
    flake: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
    config: String,
}

impl Nix {
    fn new(scratch: &Path, flake: &Path) -> anyhow::Result<Self> {
        let dir = |name: &str| -> anyhow::Result<PathBuf> {
            let path = scratch.join(name);
            std::fs::create_dir_all(&path)?;
            Ok(path)
        };
        // No system or user nix.conf, caches and state in the scratch directory.
        let env = vec![
            ("NIX_CONF_DIR", dir("etc-nix")?),
            ("XDG_CONFIG_HOME", dir("xdg/config")?),
            ("XDG_CONFIG_DIRS", dir("xdg/config-dirs")?),
            ("XDG_CACHE_HOME", dir("xdg/cache")?),
            ("XDG_DATA_HOME", dir("xdg/data")?),
            ("XDG_STATE_HOME", dir("xdg/state")?),
        ];
        let store = scratch.join("store");
        // As root without the daemon: no build users. A chroot store of our own, no flake
        // registry and no binary caches, so nothing can be fetched; a scratch git tree is always
        // dirty, which is not worth a warning.
        let config = [
            "build-users-group =".to_owned(),
            "experimental-features = nix-command flakes".to_owned(),
            "flake-registry =".to_owned(),
            "substituters =".to_owned(),
            "warn-dirty = false".to_owned(),
            format!("store = {}", store.display()),
        ]
        .join("\n");
        Ok(Self {
            flake: flake.to_owned(),
            env,
            config,
        })
    }

    /// `nix <subcommand> <flake>[#attr] <extra> --no-write-lock-file --override-input …`.
    fn command(&self, subcommand: &[&str], attr: Option<&str>, extra: &[&str]) -> Command {
        let flake_ref = match attr {
            Some(attr) => format!("{}#{attr}", self.flake.display()),
            None => self.flake.display().to_string(),
        };
        let mut cmd = Command::new("nix");
        cmd.args(subcommand)
            .arg(flake_ref)
            .args(extra)
            .arg("--no-write-lock-file");
        for input in STUBBED_INPUTS {
            let stub = self.flake.join("nix/stubs").join(input);
            cmd.arg("--override-input")
                .arg(input)
                .arg(format!("path:{}", stub.display()));
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NIX_CONFIG", &self.config)
            .current_dir(&self.flake);
        cmd
    }

    fn flake_check(&self) -> anyhow::Result<()> {
        run(&mut self.command(&["flake", "check"], None, &["--no-build"])).map(drop)
    }

    /// `nix eval --json <flake>#<attr> --apply <apply>`, parsed.
    fn eval_json(&self, attr: &str, apply: &str) -> anyhow::Result<Value> {
        let out = run(&mut self.command(&["eval", "--json"], Some(attr), &["--apply", apply]))
            .with_context(|| format!("evaluating {attr}"))?;
        serde_json::from_str(&out).with_context(|| format!("parsing the evaluation of {attr}"))
    }

    /// Like [`Nix::eval_json`], `--impure` with one more environment variable (what the flake
    /// reads with `builtins.getEnv`).
    fn eval_json_with_env(
        &self,
        attr: &str,
        apply: &str,
        (key, value): (&str, &str),
    ) -> anyhow::Result<Value> {
        let mut cmd = self.command(
            &["eval", "--json", "--impure"],
            Some(attr),
            &["--apply", apply],
        );
        cmd.env(key, value);
        let out = run(&mut cmd).with_context(|| format!("evaluating {attr} with {key}={value}"))?;
        serde_json::from_str(&out).with_context(|| format!("parsing the evaluation of {attr}"))
    }
}

/// Runs `cmd`, returns its stdout; on failure the error carries the command and its stderr.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).context("non-UTF-8 output")
}

/// Adds owner write permission to every directory below `root` (best effort).
fn make_dirs_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = std::fs::set_permissions(root, perms);
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        make_dirs_writable(&entry.path());
    }
}
