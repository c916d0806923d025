//! Builds the Dapr runtime (daprd, Scheduler) and the dapr CLI from Dapr's Go modules.
//!
//! The unmodified `github.com/dapr/dapr` module is fetched through the Go module proxy, copied
//! out of the module cache into our build cache (so that it is the main module and its
//! `replace` directives apply) and built there with `go build`, with the fixes of
//! [`crate::dapr_fixes`] applied to copies of the dependencies they edit. Nothing from Dapr is
//! written into this repository. The README ("The Dapr runtime") gives the versions and build
//! times.

#![allow(clippy::print_stdout)] // Build progress goes to the console.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::step;

/// The daprd/Scheduler version built by default.
///
/// v1.18.3 cannot be built here: the Go module proxy refuses `github.com/dapr/durabletask-go`
/// v0.12.4 (and the Pulsar fork it pins) with "403 This module version is not available";
/// v1.18.1's Scheduler needs `go-etcd-cron` v0.12.5, refused the same way. Every module that
/// v1.18.2 pins is served.
pub(crate) const RUNTIME_VERSION: &str = "1.18.2";

/// The dapr CLI version built by default (v1.18.0's module zip is refused by the proxy; v1.16.5
/// is the newest served one we found).
pub(crate) const CLI_VERSION: &str = "1.16.5";

/// Requirements of the CLI module that the proxy refuses, and the nearest served version used
/// instead (`go mod edit -replace` in the build copy; nothing of the CLI's code changes).
/// CLI v1.16.5 requires components-contrib v1.16.3 (refused); v1.16.1 is the same minor line.
const CLI_REPLACEMENTS: &[(&str, &str)] = &[("github.com/dapr/components-contrib", "v1.16.1")];

/// Where the Dapr binaries used by this run are.
#[derive(Clone, Debug)]
pub(crate) struct DaprInstall {
    pub(crate) daprd: PathBuf,
    pub(crate) scheduler: PathBuf,
}

impl DaprInstall {
    /// Every program the harness needs, with these Dapr binaries.
    pub(crate) fn binaries(&self) -> anyhow::Result<harness::Binaries> {
        harness::Binaries::locate_with(|var| match var {
            "DAPRD_PATH" => Some(self.daprd.clone()),
            "DAPR_SCHEDULER_PATH" => Some(self.scheduler.clone()),
            _ => std::env::var_os(var).map(PathBuf::from),
        })
    }

    /// The same as environment variables, for child processes such as `cargo test`.
    pub(crate) fn env(&self) -> [(&'static str, &Path); 2] {
        [
            ("DAPRD_PATH", self.daprd.as_path()),
            ("DAPR_SCHEDULER_PATH", self.scheduler.as_path()),
        ]
    }
}

/// File in `~/.dapr/bin` saying that we installed the binaries there (and which version).
const MARKER: &str = ".todo-dapr-runtime";

/// Ensures daprd and the Scheduler of `version` exist, building them if needed, and returns
/// their paths. Prefers `~/.dapr/bin` (where the dapr CLI looks).
pub(crate) fn ensure_runtime(version: &str) -> anyhow::Result<DaprInstall> {
    let home_bin = dapr_home_bin()?;
    let home = DaprInstall {
        daprd: home_bin.join("daprd"),
        scheduler: home_bin.join("scheduler"),
    };
    let stamp = build_stamp(version);
    let ours = std::fs::read_to_string(home_bin.join(MARKER)).ok();
    if ours.as_deref() == Some(stamp.as_str())
        && daprd_version(&home.daprd).as_deref() == Some(version)
        && home.scheduler.is_file()
    {
        step::info(&format!(
            "reusing daprd {version} in {}",
            home_bin.display()
        ));
        return Ok(home);
    }

    let cache = cache_root()?.join(format!("dapr-{version}"));
    let built = DaprInstall {
        daprd: cache.join("bin").join("daprd"),
        scheduler: cache.join("bin").join("scheduler"),
    };
    let built_stamp = std::fs::read_to_string(cache.join("bin").join(MARKER)).ok();
    if built_stamp.as_deref() == Some(stamp.as_str())
        && daprd_version(&built.daprd).as_deref() == Some(version)
        && built.scheduler.is_file()
    {
        step::info(&format!("reusing the build in {}", cache.display()));
    } else {
        build_runtime(version, &cache)?;
    }

    // Install into ~/.dapr/bin unless someone else's Dapr (e.g. `dapr init`) is there.
    if home.daprd.exists() && ours.is_none() {
        step::info(&format!(
            "leaving the daprd {} in {} alone; using {}",
            daprd_version(&home.daprd).unwrap_or_else(|| "of unknown version".into()),
            home_bin.display(),
            built.daprd.display()
        ));
        return Ok(built);
    }
    std::fs::create_dir_all(&home_bin)?;
    install_file(&built.daprd, &home.daprd)?;
    install_file(&built.scheduler, &home.scheduler)?;
    std::fs::write(home_bin.join(MARKER), &stamp)?;
    step::info(&format!(
        "installed daprd and scheduler {version} into {}",
        home_bin.display()
    ));
    Ok(home)
}

/// Ensures the dapr CLI of `version` is at `~/.dapr/bin/dapr`.
///
/// Built like the runtime, from a copy of its module: `go install module@version` would also
/// fetch the module's version list for deprecation notices, which the proxy here refuses.
pub(crate) fn ensure_cli(version: &str) -> anyhow::Result<()> {
    let target = dapr_home_bin()?.join("dapr");
    if cli_version(&target).as_deref() == Some(version) {
        step::info(&format!(
            "reusing dapr CLI {version} at {}",
            target.display()
        ));
        return Ok(());
    }
    let cache = cache_root()?.join(format!("dapr-cli-{version}"));
    std::fs::create_dir_all(&cache)?;
    let built = cache.join("dapr");
    if !built.is_file() {
        let src = cache.join("src");
        fetch_module_source("github.com/dapr/cli", version, &src)?;
        for (module, replacement) in CLI_REPLACEMENTS {
            step::info(&format!(
                "using {module} {replacement} (the pinned one is not served)"
            ));
            run_quiet(
                go_command()
                    .current_dir(&src)
                    .args(["mod", "edit"])
                    .arg(format!("-replace={module}={module}@{replacement}")),
            )?;
        }
        let tmp = cache.join(".dapr.tmp");
        let mut cmd = go_command();
        // -mod=mod: the replacement's checksums are not in the CLI's go.sum yet.
        cmd.current_dir(&src)
            .env("GOFLAGS", "-trimpath -mod=mod")
            .args(["build", "-v", "-ldflags"])
            .arg(format!(
                "-s -w -X main.version={version} -X main.apiVersion=1.0"
            ))
            .arg("-o")
            .arg(&tmp)
            .arg(".");
        run_with_progress("dapr CLI", cmd, &cache.join("build.log"))?;
        std::fs::rename(&tmp, &built)?;
    }
    std::fs::create_dir_all(dapr_home_bin()?)?;
    install_file(&built, &target)?;
    step::info(&format!(
        "installed dapr CLI {version} at {}",
        target.display()
    ));
    Ok(())
}

/// Copies `module@v<version>` out of the Go module cache (downloading it through the proxy if
/// needed) into a writable `dest`, so that it builds as the main module with its own go.mod.
pub(crate) fn fetch_module_source(module: &str, version: &str, dest: &Path) -> anyhow::Result<()> {
    let module = format!("{module}@v{version}");
    let out = go_command()
        .args(["mod", "download", "-json", &module])
        .output()
        .context("running go mod download")?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "go mod download {module}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(err) = info.get("Error").and_then(|e| e.as_str()) {
        bail!("go mod download {module}: {err}");
    }
    let module_dir = info
        .get("Dir")
        .and_then(|d| d.as_str())
        .context("go mod download printed no Dir")?;
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    run_quiet(Command::new("cp").arg("-r").arg(module_dir).arg(dest))?;
    run_quiet(Command::new("chmod").args(["-R", "u+w"]).arg(dest))?;
    Ok(())
}

fn build_runtime(version: &str, cache: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache.join("bin"))?;
    let log = cache.join("build.log");
    step::info(&format!(
        "building from github.com/dapr/dapr@v{version} (cold: about half an hour on 2 cores); log: {}",
        log.display()
    ));

    // The module cache is read-only and not a main module: build from a writable copy so
    // dapr's own go.mod (with its replace directives) governs the build.
    let src = cache.join("src");
    fetch_module_source("github.com/dapr/dapr", version, &src)?;
    crate::dapr_fixes::apply(&src, cache)?;

    let ldflags = format!(
        "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={version} \
         -X github.com/dapr/kit/logger.DaprVersion={version}"
    );
    for (name, tags) in [("daprd", Some("stablecomponents")), ("scheduler", None)] {
        let mut cmd = go_command();
        cmd.current_dir(&src)
            .args(["build", "-v", "-ldflags", &ldflags]);
        if let Some(tags) = tags {
            cmd.args(["-tags", tags]);
        }
        let tmp = cache.join("bin").join(format!(".{name}.tmp"));
        cmd.arg("-o").arg(&tmp).arg(format!("./cmd/{name}"));
        run_with_progress(name, cmd, &log)?;
        std::fs::rename(&tmp, cache.join("bin").join(name))?;
    }
    let built = daprd_version(&cache.join("bin").join("daprd"));
    if built.as_deref() != Some(version) {
        bail!("built daprd reports version {built:?}, expected {version}");
    }
    std::fs::write(cache.join("bin").join(MARKER), build_stamp(version))?;
    Ok(())
}

/// What a build of `version` with today's fixes is stamped with, in `~/.dapr/bin` and in the
/// cache: a build without a fix added since (or someone else's daprd) is not reused.
fn build_stamp(version: &str) -> String {
    format!("{version}\nfixes: {}\n", crate::dapr_fixes::stamp())
}

/// `go` with the settings of Dapr's release builds: static binaries, reproducible paths, and
/// the machine's own Go (no toolchain download).
pub(crate) fn go_command() -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-trimpath");
    cmd
}

/// Runs a long `go` command, writing its output to `log` and printing a progress line every
/// 20 s (modules downloaded, packages compiled) instead of thousands of lines or silence.
pub(crate) fn run_with_progress(what: &str, mut cmd: Command, log: &Path) -> anyhow::Result<()> {
    let mut log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    writeln!(log_file, "$ {cmd:?}")?;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting the {what} build"))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let start = Instant::now();
    let (mut downloaded, mut compiled) = (0usize, 0usize);
    let mut tail: Vec<String> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                writeln!(log_file, "{line}")?;
                if line.starts_with("go: downloading") {
                    downloaded += 1;
                } else if !line.contains(' ') {
                    compiled += 1; // `go build -v` prints one import path per package
                }
                tail.push(line);
                if tail.len() > 40 {
                    tail.remove(0);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => println!(
                "    {what}: {downloaded} modules downloaded, {compiled} packages compiled, {}",
                step::format_duration(start.elapsed())
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = reader.join();
    let status = child.wait()?;
    step::info(&format!(
        "{what}: {downloaded} modules downloaded, {compiled} packages compiled in {}",
        step::format_duration(start.elapsed())
    ));
    if !status.success() {
        bail!(
            "the {what} build failed ({status}); last lines (full log: {}):\n{}",
            log.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

pub(crate) fn run_quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Copies via a temp file and rename, so a running old binary is never overwritten in place.
fn install_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let tmp = to.with_extension("tmp-install");
    std::fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}

/// The version the dapr CLI at `path` reports, if it runs.
fn cli_version(path: &Path) -> Option<String> {
    let out = harness::binaries::output_of(path, &["version", "--output", "json"]).ok()?;
    let json: serde_json::Value = serde_json::from_str(&out).ok()?;
    json.get("Cli version")?.as_str().map(str::to_owned)
}

/// What `daprd --version` prints, if the binary exists and runs.
pub(crate) fn daprd_version(daprd: &Path) -> Option<String> {
    if !daprd.is_file() {
        return None;
    }
    harness::binaries::output_of(daprd, &["--version"]).ok()
}

/// `~/.dapr/bin`, or `$DAPR_RUNTIME_PATH/.dapr/bin` like the dapr CLI.
pub(crate) fn dapr_home_bin() -> anyhow::Result<PathBuf> {
    harness::binaries::dapr_bin_dir(&|k| std::env::var_os(k).map(PathBuf::from))
        .context("neither DAPR_RUNTIME_PATH nor HOME is set")
}

/// `$XDG_CACHE_HOME/todo-dapr` or `~/.cache/todo-dapr`: outside the checkout, kept across runs.
pub(crate) fn cache_root() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(base.join("todo-dapr"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"1.18.2"` → `(1, 18, 2)`.
    fn version(text: &str) -> (u32, u32, u32) {
        let parts: Vec<u32> = text
            .trim()
            .split('.')
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|_| panic!("`{text}` is not x.y.z"))
            })
            .collect();
        assert_eq!(parts.len(), 3, "`{text}` is not x.y.z");
        (parts[0], parts[1], parts[2])
    }

    /// The chart, its README, the README and the control-plane values name the Dapr version
    /// the tests run: a user who follows them gets a sidecar that serves `/v1.0/jobs`.
    #[test]
    fn every_document_names_the_tested_dapr_version() {
        let root = harness::repo_root();
        let chart: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            &std::fs::read_to_string(root.join("helm/todo-dapr/Chart.yaml")).unwrap(),
        )
        .unwrap();
        let range = chart["annotations"]["todo-dapr/dapr-runtime"]
            .as_str()
            .expect("the dapr-runtime annotation");
        let (low, high) = range
            .split_once(' ')
            .and_then(|(lo, hi)| Some((lo.strip_prefix(">=")?, hi.strip_prefix('<')?)))
            .unwrap_or_else(|| panic!("`{range}` is not `>=x.y.z <x.y.z`"));
        let pinned = version(RUNTIME_VERSION);
        assert!(
            version(low) <= pinned && pinned < version(high),
            "Chart.yaml says {range}, the tests run {RUNTIME_VERSION}"
        );

        let mut seen = 0;
        for doc in [
            "README.md",
            "helm/todo-dapr/README.md",
            "helm/dapr-control-plane/values-minikube.yaml",
            "helm/dapr-control-plane/values-oke.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(doc)).unwrap();
            for (i, _) in text.match_indices("dapr/dapr --version ") {
                let rest = &text[i + "dapr/dapr --version ".len()..];
                let named = rest.split_whitespace().next().unwrap_or_default();
                assert_eq!(named, RUNTIME_VERSION, "{doc} installs Dapr {named}");
                seen += 1;
            }
        }
        assert!(
            seen >= 4,
            "only {seen} control-plane install commands found"
        );
    }
}
