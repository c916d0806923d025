//! `cargo xtask up` / `down`: the local stack.
//!
//! The infrastructure (PostgreSQL, Redis for pub/sub, the Dapr Scheduler, the rendered Dapr
//! resources) and the services with their sidecars: the backend serves REST and MCP on
//! 127.0.0.1:8000. Secrets (the database URL, a JWT key made for this run) go into the local
//! secret store, where the services read them through their sidecars. The output is one line
//! per process with its address, then a ready-made token for trying the API.

#![allow(clippy::print_stdout)] // The stack table is the command's output.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use harness::process::{ManagedProcess, RecordedProcess, StopPolicy, stop_recorded};
use harness::{Infra, InfraOptions, Pod, PodOptions};
use serde_json::{Map, json};

use crate::deps::{self, DepsArgs};
use crate::step;

/// Options of `cargo xtask up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Start the stack in the background and return; stop it with `cargo xtask down`.
    #[arg(long)]
    detach: bool,
    /// Port of the backend's REST and MCP endpoints.
    #[arg(long, default_value_t = 8000)]
    backend_port: u16,
    /// Start only the infrastructure (PostgreSQL, broker, Scheduler on 127.0.0.1:50006, SMTP
    /// sink on 127.0.0.1:2525) and render the Dapr resources into `target/dapr-run/`, for
    /// `dapr run -f dapr/dapr.yaml` to start the services with the dapr CLI.
    #[arg(long, conflicts_with = "backend_port")]
    infra_only: bool,
    #[command(flatten)]
    deps: DepsArgs,
}

/// What `up --detach` leaves for `down`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct UpState {
    processes: Vec<RecordedProcess>,
    data_dir: PathBuf,
    log_dir: PathBuf,
}

/// A service and its sidecar, with what `down` needs to recognise the service's process.
struct UpPod {
    name: &'static str,
    pod: Pod,
    exe: PathBuf,
}

/// The services of the stack with their sidecars, and the SMTP sink they mail to.
struct Services {
    pods: Vec<UpPod>,
    sink: ManagedProcess,
    sink_port: u16,
    mail_dir: PathBuf,
    daprd_exe: PathBuf,
    xtask_exe: PathBuf,
    token: String,
}

/// The service binaries `up` runs (each also the app-id of its sidecar).
const SERVICES: [&str; 4] = [
    "backend",
    "notification",
    "email-delivery",
    "recurring-task",
];

/// Addresses `dapr/dapr.yaml` names: the run file cannot read them from anywhere, so
/// `--infra-only` pins them (the Scheduler's is Dapr's own default).
const RUN_FILE_SCHEDULER_PORT: u16 = 50006;
const RUN_FILE_SMTP_PORT: u16 = 2525;
/// Backend port in `dapr/dapr.yaml`.
const RUN_FILE_BACKEND_PORT: u16 = 8000;

/// Where `--infra-only` leaves what `dapr/dapr.yaml` points at: `resources/` and one working
/// directory per app (the CLI keeps its logs in `<app dir>/.dapr/logs`).
fn run_file_dir() -> PathBuf {
    harness::repo_root().join("target").join("dapr-run")
}

/// Where `up --detach` records its processes (`down` reads it; `test` and `soak` refuse to
/// start beside it).
pub(crate) fn state_file() -> PathBuf {
    harness::repo_root().join("target").join("xtask-up.json")
}

pub(crate) fn run(args: &UpArgs) -> anyhow::Result<()> {
    if state_file().exists() {
        bail!(
            "a detached stack is already running ({}): run `cargo xtask down` first",
            state_file().display()
        );
    }
    // The dapr CLI serves only `dapr run -f`, i.e. `--infra-only`; `up` itself starts daprd.
    let install = deps::run(&DepsArgs {
        no_cli: args.deps.no_cli || !args.infra_only,
        ..args.deps.clone()
    })?;
    step::run("cargo build (services)", crate::cargo::build_binaries)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        if args.infra_only {
            for (what, port) in [
                ("the Scheduler", RUN_FILE_SCHEDULER_PORT),
                ("the SMTP sink", RUN_FILE_SMTP_PORT),
            ] {
                std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                    format!("127.0.0.1:{port} is taken; dapr/dapr.yaml expects {what} there")
                })?;
            }
        }
        let infra = Infra::start(InfraOptions {
            detached: args.detach,
            broker: args.deps.broker,
            // Exactly the Dapr binaries `deps` vouched for (maybe the build cache).
            binaries: Some(install.binaries()?),
            scheduler_port: args.infra_only.then_some(RUN_FILE_SCHEDULER_PORT),
            ..InfraOptions::default()
        })
        .await?;
        let services = start_services(&infra, args).await?;
        if args.infra_only {
            prepare_run_file_dir(&infra)?;
        }
        print_table(&infra, &services);
        if args.detach {
            let state = UpState {
                data_dir: infra.data_dir().to_path_buf(),
                log_dir: infra.log_dir().to_path_buf(),
                // Infrastructure first: `down` stops in reverse, services before what they use.
                processes: infra
                    .detach()
                    .into_iter()
                    .chain(services.detach())
                    .collect(),
            };
            std::fs::write(state_file(), serde_json::to_vec_pretty(&state)?)?;
            println!("Detached. Stop with `cargo xtask down`.");
            return Ok(());
        }
        println!("Running. Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        println!("Stopping…");
        // Services before their sidecars before the infrastructure.
        drop(services);
        drop(infra);
        println!("Stopped.");
        Ok(())
    })
}

async fn start_services(infra: &Infra, args: &UpArgs) -> anyhow::Result<Services> {
    infra.postgres.create_database("backend")?;
    let jwt_key = random_hex(32)?;
    let app_token = random_hex(16)?;
    let mut secrets = Map::new();
    secrets.insert(
        "backend-database-url".into(),
        infra.postgres.url("backend").into(),
    );
    secrets.insert("jwt-secret".into(), jwt_key.clone().into());
    infra.add_secrets(secrets)?;

    // The SMTP sink first: email-delivery must find it.
    let sink_port = if args.infra_only {
        RUN_FILE_SMTP_PORT
    } else {
        harness::ports::free_port()?
    };
    let mail_dir = infra.data_dir().join("mail");
    let xtask_exe = own_path()?;
    let mut cmd = std::process::Command::new(&xtask_exe);
    cmd.args(["smtp-sink", "--port", &sink_port.to_string(), "--mail-dir"])
        .arg(&mail_dir);
    let mut sink = ManagedProcess::spawn(
        "smtp-sink",
        cmd,
        infra.log_dir(),
        StopPolicy::default(),
        args.detach,
    )?;
    harness::wait::until("the SMTP sink", std::time::Duration::from_secs(10), || {
        let running = sink.ensure_running();
        async move {
            running?;
            let open = tokio::net::TcpStream::connect(("127.0.0.1", sink_port))
                .await
                .is_ok();
            Ok::<_, anyhow::Error>(open.then_some(()))
        }
    })
    .await?;

    let mut pods = Vec::new();
    // With --infra-only the dapr CLI starts the services and their sidecars instead.
    let services: &[&'static str] = if args.infra_only { &[] } else { &SERVICES };
    for &name in services {
        let port = if name == "backend" {
            args.backend_port
        } else {
            harness::ports::free_port()?
        };
        let port_var = format!("{}_PORT", name.to_uppercase().replace('-', "_"));
        // No DATABASE_URL / JWT_SECRET: the backend reads both from the secret store.
        let mut env = vec![
            (port_var, port.to_string()),
            ("APP_API_TOKEN".to_owned(), app_token.clone()),
            // For people reading the log files; written without colour codes (not a terminal).
            ("LOG_FORMAT".to_owned(), "pretty".to_owned()),
        ];
        if name == "email-delivery" {
            env.extend([
                ("SMTP_HOST".to_owned(), "127.0.0.1".to_owned()),
                ("SMTP_PORT".to_owned(), sink_port.to_string()),
                ("SMTP_TLS".to_owned(), "none".to_owned()),
                (
                    "SMTP_FROM".to_owned(),
                    "Todo Reminders <reminders@localhost>".to_owned(),
                ),
            ]);
        }
        let exe = harness::service::service_binary(name)?;
        let pod = Pod::start(
            infra,
            &PodOptions {
                port: Some(port),
                app_api_token: Some(app_token.clone()),
                env,
                binary_path: Some(exe.clone()),
                detached: args.detach,
                ..PodOptions::new(name)
            },
        )
        .await
        .with_context(|| {
            if name == "backend" {
                format!("starting the backend on port {port} (see --backend-port)")
            } else {
                format!("starting {name}")
            }
        })?;
        pods.push(UpPod { name, pod, exe });
    }
    Ok(Services {
        pods,
        sink,
        sink_port,
        mail_dir,
        daprd_exe: infra.bins.daprd.clone(),
        xtask_exe,
        token: demo_token(&jwt_key)?,
    })
}

impl Services {
    fn detach(self) -> Vec<RecordedProcess> {
        let mut out = Vec::new();
        if let Some(pid) = self.sink.detach() {
            out.push(RecordedProcess {
                name: "smtp-sink".into(),
                pid,
                exe: self.xtask_exe,
            });
        }
        for UpPod { name, pod, exe } in self.pods {
            // Sidecar first: `down` stops in reverse, the app before the sidecar it needs.
            let (service, daprd) = pod.detach();
            if let Some(pid) = daprd {
                out.push(RecordedProcess {
                    name: format!("daprd-{name}"),
                    pid,
                    exe: self.daprd_exe.clone(),
                });
            }
            if let Some(pid) = service {
                out.push(RecordedProcess {
                    name: name.into(),
                    pid,
                    exe,
                });
            }
        }
        out
    }

    fn backend(&self) -> Option<&Pod> {
        self.pods
            .iter()
            .find(|p| p.name == "backend")
            .map(|p| &p.pod)
    }
}

/// Fails while a detached stack is recorded: locally daprd resolves app ids by mDNS across the
/// whole machine, so a second stack's services would reach the first one's.
pub(crate) fn ensure_no_detached_stack() -> anyhow::Result<()> {
    if state_file().exists() {
        bail!(
            "a stack started with `cargo xtask up --detach` is running ({}); stop it with `cargo \
             xtask down` first: local sidecars find apps by mDNS, machine-wide, so the two stacks' \
             services would reach each other",
            state_file().display()
        );
    }
    Ok(())
}

/// The path of this program, to start its `smtp-sink` subcommand.
///
/// `cargo xtask` builds xtask on its own, the build step above builds it with the whole
/// workspace; the two differ in feature unification, so each keeps its own artifact and links
/// it to `target/debug/xtask`, replacing the file this process runs from. `current_exe` then
/// says "`<path> (deleted)`"; the path itself holds a working build of the same sources.
fn own_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program")?;
    Ok(exe
        .to_str()
        .and_then(|e| e.strip_suffix(" (deleted)"))
        .map_or(exe.clone(), PathBuf::from))
}

/// Copies the rendered resources to `target/dapr-run/resources` and makes the apps' working
/// directories, so the committed run file's relative paths resolve (the CLI checks that they
/// exist before it starts anything).
fn prepare_run_file_dir(infra: &Infra) -> anyhow::Result<()> {
    let dir = run_file_dir();
    let resources = dir.join("resources");
    if resources.exists() {
        std::fs::remove_dir_all(&resources)
            .with_context(|| format!("removing {}", resources.display()))?;
    }
    std::fs::create_dir_all(&resources)?;
    for entry in std::fs::read_dir(infra.resources_dir())? {
        let entry = entry?;
        std::fs::copy(entry.path(), resources.join(entry.file_name()))?;
    }
    for name in SERVICES {
        std::fs::create_dir_all(dir.join(name))?;
    }
    Ok(())
}

/// A token for user `demo`, valid for 12 hours, signed with this run's key.
fn demo_token(key: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({
        "sub": "demo", "email": "demo@localhost", "name": "Demo User",
        "iat": now, "exp": now + 12 * 3600,
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )?)
}

/// `bytes` random bytes from the kernel, hex-encoded.
pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn print_table(infra: &Infra, services: &Services) {
    let pg = &infra.postgres;
    println!();
    println!("todo-dapr local stack");
    row(
        "postgres",
        &format!("127.0.0.1:{}", pg.port()),
        &pg.url("postgres"),
    );
    row(
        infra.broker.kind().profile(),
        &infra.broker.address(),
        infra.broker.description(),
    );
    row(
        "scheduler",
        &infra.scheduler.address(),
        "Dapr Jobs API back end",
    );
    row(
        "smtp-sink",
        &format!("127.0.0.1:{}", services.sink_port),
        &format!(
            "mails: {}/smtp-sink.log, {}",
            infra.log_dir().display(),
            services.mail_dir.display()
        ),
    );
    for pod in &services.pods {
        let base = pod.pod.service.base_url();
        let detail = if pod.name == "backend" {
            format!("REST {base}/api/v1  MCP {base}/mcp  OpenAPI {base}/api/v1/openapi.json")
        } else {
            format!("{base}/healthz")
        };
        row(pod.name, &base.replace("http://", ""), &detail);
        row(
            "  sidecar",
            &format!("127.0.0.1:{}", pod.pod.daprd.http_port()),
            &format!(
                "daprd app-id {}, metrics :{}",
                pod.name,
                pod.pod.daprd.metrics_port()
            ),
        );
    }
    row(
        "resources",
        "",
        &infra.resources_dir().display().to_string(),
    );
    row("logs", "", &infra.log_dir().display().to_string());
    println!();
    let base = match services.backend() {
        Some(backend) => backend.service.base_url(),
        None => {
            println!(
                "Infrastructure only. Start the services and their sidecars with the dapr CLI:"
            );
            println!(
                "  {} run -f dapr/dapr.yaml      # stop with Ctrl-C or `dapr stop -f dapr/dapr.yaml`",
                dapr_cli()
            );
            println!(
                "  (resources in {}; sidecar logs in target/dapr-run/<app>/.dapr/logs)",
                run_file_dir().join("resources").display()
            );
            println!();
            format!("http://127.0.0.1:{RUN_FILE_BACKEND_PORT}")
        }
    };
    {
        println!("Try it (token for user `demo`, valid 12 h):");
        println!("  export TOKEN={}", services.token);
        println!(
            "  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -d \"{{\\\"title\\\":\\\"Call mom\\\",\\\"due_at\\\":\\\"$(date -u -d '+1 hour' +%FT%TZ)\\\",\\\"remind_at\\\":\\\"$(date -u -d '+20 seconds' +%FT%TZ)\\\"}}\" \\\n    {base}/api/v1/tasks"
        );
        println!(
            "  # about 20 s later the reminder mail shows up in {}/smtp-sink.log",
            infra.log_dir().display()
        );
        println!();
    }
}

/// How to call the dapr CLI: by name when it is on PATH, else where `deps` installs it.
fn dapr_cli() -> String {
    if harness::binaries::find_on_path("dapr").is_some() {
        return "dapr".into();
    }
    crate::dapr_runtime::dapr_home_bin()
        .map(|bin| bin.join("dapr").display().to_string())
        .unwrap_or_else(|_| "dapr".into())
}

fn row(name: &str, address: &str, detail: &str) {
    println!("  {name:<15} {address:<21} {detail}");
}

pub(crate) fn down() -> anyhow::Result<()> {
    let path = state_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            step::info("no detached stack is running");
            return Ok(());
        }
        Err(e) => return Err(e).context(format!("reading {}", path.display())),
    };
    let state: UpState = serde_json::from_str(&text).context("parsing the stack state file")?;
    for p in state.processes.iter().rev() {
        let stopped = stop_recorded(p.pid, &p.exe, stop_policy(&p.name))?;
        let what = if stopped { "stopped" } else { "already gone" };
        step::info(&format!("{:<21} pid {:<8} {what}", p.name, p.pid));
    }
    remove_data(&state.data_dir)?;
    std::fs::remove_file(&path)?;
    step::info(&format!("logs kept in {}", state.log_dir.display()));
    Ok(())
}

fn stop_policy(name: &str) -> StopPolicy {
    if name == "postgres" {
        // PostgreSQL's fast shutdown.
        StopPolicy {
            signal: nix::sys::signal::Signal::SIGINT,
            ..StopPolicy::default()
        }
    } else {
        StopPolicy::default()
    }
}

fn remove_data(dir: &Path) -> anyhow::Result<()> {
    // Only ever delete what `up` created: a `todo-dapr-*` directory in the temp dir.
    let ours = dir.starts_with(std::env::temp_dir())
        && dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("todo-dapr-"));
    if ours && dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn run_file() -> serde_yaml_ng::Value {
        let path = harness::repo_root().join("dapr").join("dapr.yaml");
        let text = std::fs::read_to_string(&path).expect("dapr/dapr.yaml is readable");
        serde_yaml_ng::from_str(&text).expect("dapr/dapr.yaml is YAML")
    }

    fn str_at<'a>(v: &'a serde_yaml_ng::Value, key: &str) -> &'a str {
        v.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("`{key}` missing or not a string"))
    }

    /// `dapr/dapr.yaml` can only work against what `up --infra-only` provides: the same
    /// Scheduler and SMTP addresses, the directory it prepares, and the binaries it builds.
    #[test]
    fn run_file_agrees_with_infra_only() {
        let file = run_file();
        let common = file.get("common").expect("common section");
        assert_eq!(
            str_at(common, "schedulerHostAddress"),
            format!("127.0.0.1:{RUN_FILE_SCHEDULER_PORT}")
        );
        let dapr_dir = harness::repo_root().join("dapr");
        let resources = common["resourcesPaths"][0]
            .as_str()
            .expect("one resources path");
        assert_eq!(
            normalise(&dapr_dir.join(resources)),
            run_file_dir().join("resources")
        );
        assert!(dapr_dir.join(str_at(common, "configFilePath")).is_file());

        let apps = file["apps"].as_sequence().expect("apps list");
        let ids: Vec<&str> = apps.iter().map(|a| str_at(a, "appID")).collect();
        assert_eq!(ids, SERVICES, "one app per service, in start order");
        let mut taken = BTreeSet::new();
        for app in apps {
            let id = str_at(app, "appID");
            let dir = normalise(&dapr_dir.join(str_at(app, "appDirPath")));
            assert_eq!(dir, run_file_dir().join(id), "{id}: appDirPath");
            let command = app["command"][0].as_str().expect("command");
            assert_eq!(
                normalise(&dir.join(command)),
                harness::repo_root().join("target").join("debug").join(id),
                "{id}: command runs the binary `up` builds"
            );
            let port = app["appPort"].as_u64().expect("appPort");
            let port_var = format!("{}_PORT", id.to_uppercase().replace('-', "_"));
            assert_eq!(
                app["env"][port_var.as_str()].as_str(),
                Some(port.to_string().as_str()),
                "{id}: the service listens where the sidecar calls it"
            );
            if id == "backend" {
                assert_eq!(port, u64::from(RUN_FILE_BACKEND_PORT));
            }
            if id == "email-delivery" {
                assert_eq!(
                    app["env"]["SMTP_PORT"].as_str(),
                    Some(RUN_FILE_SMTP_PORT.to_string().as_str())
                );
            }
            for key in [
                "appPort",
                "daprHTTPPort",
                "daprGRPCPort",
                "daprInternalGRPCPort",
                "metricsPort",
            ] {
                let p = app[key].as_u64().expect("port");
                assert!(taken.insert(p), "{id}: {key} {p} used twice");
            }
        }
        assert!(!taken.contains(&u64::from(RUN_FILE_SCHEDULER_PORT)));
        assert!(!taken.contains(&u64::from(RUN_FILE_SMTP_PORT)));
    }

    /// The dapr CLI's sidecars probe their apps exactly as `up`'s (and the harness's) do.
    #[test]
    fn run_file_probes_apps_like_up() {
        let want = harness::AppHealthCheck::SERVICES;
        for app in file_apps(&run_file()) {
            let id = str_at(&app, "appID").to_owned();
            assert_eq!(app["enableAppHealthCheck"].as_bool(), Some(true), "{id}");
            assert_eq!(str_at(&app, "appHealthCheckPath"), want.path, "{id}");
            let number = |key: &str| app[key].as_u64().unwrap_or_else(|| panic!("{id}: {key}"));
            assert_eq!(
                number("appHealthProbeInterval"),
                u64::from(want.interval_secs)
            );
            assert_eq!(number("appHealthProbeTimeout"), u64::from(want.timeout_ms));
            assert_eq!(number("appHealthThreshold"), u64::from(want.threshold));
        }
    }

    fn file_apps(file: &serde_yaml_ng::Value) -> Vec<serde_yaml_ng::Value> {
        file["apps"].as_sequence().cloned().unwrap_or_default()
    }

    /// `a/b/../c` → `a/c`, without touching the file system (the paths need not exist yet).
    fn normalise(path: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    }
}
