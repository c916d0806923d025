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
use harness::process::{RecordedProcess, StopPolicy, stop_recorded};
use harness::{Daprd, Infra, InfraOptions, Service, ServiceOptions};
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

/// The services of the stack, each with its sidecar.
struct Services {
    backend: Service,
    backend_dapr: Daprd,
    backend_exe: PathBuf,
    daprd_exe: PathBuf,
    token: String,
}

fn state_file() -> PathBuf {
    harness::repo_root().join("target").join("xtask-up.json")
}

pub(crate) fn run(args: &UpArgs) -> anyhow::Result<()> {
    if state_file().exists() {
        bail!(
            "a detached stack is already running ({}): run `cargo xtask down` first",
            state_file().display()
        );
    }
    let install = deps::run(&args.deps)?;
    step::run("cargo build (services)", || {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--locked", "-p", "backend"])
            .current_dir(harness::repo_root())
            .status()?;
        anyhow::ensure!(status.success(), "cargo build failed ({status})");
        Ok(())
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let infra = Infra::start(InfraOptions {
            detached: args.detach,
            // Exactly the Dapr binaries `deps` vouched for (maybe the build cache).
            binaries: Some(install.binaries()?),
            ..InfraOptions::default()
        })
        .await?;
        let services = start_services(&infra, args).await?;
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

    let port = args.backend_port;
    let backend_dapr = infra
        .daprd("backend", Some(port), |o| {
            o.app_api_token = Some(app_token.clone());
        })
        .await?;
    let backend_exe = harness::service::service_binary("backend")?;
    let backend = Service::start(
        &ServiceOptions {
            binary: "backend".into(),
            log_name: "backend".into(),
            port,
            // No DATABASE_URL / JWT_SECRET: the backend reads both from the secret store.
            env: vec![
                ("BACKEND_PORT".into(), port.to_string()),
                (
                    "DAPR_HTTP_PORT".into(),
                    backend_dapr.http_port().to_string(),
                ),
                ("APP_API_TOKEN".into(), app_token),
                ("LOG_FORMAT".into(), "pretty".into()),
            ],
            binary_path: Some(backend_exe.clone()),
        },
        infra.log_dir(),
        args.detach,
    )
    .await
    .with_context(|| format!("starting the backend on port {port} (see --backend-port)"))?;
    Ok(Services {
        backend,
        backend_dapr,
        backend_exe,
        daprd_exe: infra.bins.daprd.clone(),
        token: demo_token(&jwt_key)?,
    })
}

impl Services {
    fn detach(self) -> Vec<RecordedProcess> {
        let mut out = Vec::new();
        if let Some(pid) = self.backend_dapr.detach() {
            out.push(RecordedProcess {
                name: "daprd-backend".into(),
                pid,
                exe: self.daprd_exe,
            });
        }
        if let Some(pid) = self.backend.detach() {
            out.push(RecordedProcess {
                name: "backend".into(),
                pid,
                exe: self.backend_exe,
            });
        }
        out
    }
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
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn print_table(infra: &Infra, services: &Services) {
    let pg = &infra.postgres;
    let backend = services.backend.base_url();
    println!();
    println!("todo-dapr local stack");
    row(
        "postgres",
        &format!("127.0.0.1:{}", pg.port()),
        &pg.url("postgres"),
    );
    row(
        "redis",
        &infra.redis.address(),
        "pub/sub broker (Redis Streams)",
    );
    row(
        "scheduler",
        &infra.scheduler.address(),
        "Dapr Jobs API back end",
    );
    row(
        "backend",
        &backend.replace("http://", ""),
        &format!("REST {backend}/api/v1  MCP {backend}/mcp  OpenAPI {backend}/api/v1/openapi.json"),
    );
    row(
        "  sidecar",
        &format!("127.0.0.1:{}", services.backend_dapr.http_port()),
        &format!(
            "daprd app-id backend, metrics :{}",
            services.backend_dapr.metrics_port()
        ),
    );
    row(
        "resources",
        "",
        &infra.resources_dir().display().to_string(),
    );
    row("logs", "", &infra.log_dir().display().to_string());
    println!();
    println!("Try it (token for user `demo`, valid 12 h):");
    println!("  export TOKEN={}", services.token);
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -d '{{\"title\":\"Buy milk\"}}' {backend}/api/v1/tasks"
    );
    println!();
}

fn row(name: &str, address: &str, detail: &str) {
    println!("  {name:<10} {address:<21} {detail}");
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
        step::info(&format!("{:<14} pid {:<8} {what}", p.name, p.pid));
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
