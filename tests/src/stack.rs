//! The shared infrastructure of a run: PostgreSQL, Redis, the Dapr Scheduler and the rendered
//! Dapr resources, all under one data directory, with one log directory.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::process::RecordedProcess;
use crate::resources::{Broker, Overrides};
use crate::{Binaries, Daprd, DaprdOptions, Postgres, Redis, Resources, Scheduler, repo_root};

/// Database that Dapr's `state.postgresql` store uses.
pub const STATE_DATABASE: &str = "dapr_state";

/// Options for [`Infra::start`].
#[derive(Clone, Debug, Default)]
pub struct InfraOptions {
    /// Which pub/sub profile to render.
    pub broker: Broker,
    /// Leave processes running when the handles are dropped (`cargo xtask up --detach`).
    pub detached: bool,
    /// Where logs go (default: `target/harness-logs/<run>`).
    pub log_dir: Option<PathBuf>,
    /// Extra entries for the local secrets file (top-level keys are secret names).
    pub secrets: Map<String, Value>,
    /// Programs to run (default: [`Binaries::locate`]).
    pub binaries: Option<Binaries>,
}

/// Running infrastructure. Dropping it stops every process it started (unless detached).
#[derive(Debug)]
pub struct Infra {
    /// Binaries used, so sidecars start from the same build.
    pub bins: Binaries,
    /// PostgreSQL: app databases and Dapr's state store.
    pub postgres: Postgres,
    /// Redis: the default pub/sub broker.
    pub redis: Redis,
    /// The Dapr Scheduler (Jobs API).
    pub scheduler: Scheduler,
    resources: Resources,
    config: PathBuf,
    secrets_file: PathBuf,
    log_dir: PathBuf,
    detached: bool,
    // Declared last so it is deleted after the processes using it have stopped.
    data: DataDir,
}

#[derive(Debug)]
enum DataDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Kept(p) => p,
        }
    }
}

impl Infra {
    /// Starts PostgreSQL, Redis and the Scheduler, creates the state-store database and renders
    /// the repository's Dapr resources to point at them.
    pub async fn start(opts: InfraOptions) -> anyhow::Result<Self> {
        let bins = match opts.binaries.clone() {
            Some(bins) => bins,
            None => Binaries::locate()?,
        };
        let temp = tempfile::Builder::new().prefix("todo-dapr-").tempdir()?;
        let data = if opts.detached {
            DataDir::Kept(temp.keep())
        } else {
            DataDir::Temp(temp)
        };
        let root = data.path().to_path_buf();
        let log_dir = opts.log_dir.clone().unwrap_or_else(default_log_dir);
        std::fs::create_dir_all(&log_dir)?;

        let postgres = Postgres::start(&bins, &root, &log_dir, opts.detached).await?;
        postgres.create_database(STATE_DATABASE)?;
        let redis = Redis::start(&bins, &root, &log_dir, opts.detached).await?;
        let scheduler = Scheduler::start(&bins, &root, &log_dir, opts.detached).await?;

        let mut secrets = Map::new();
        secrets.insert(
            "state-store-dsn".into(),
            postgres.dsn(STATE_DATABASE).into(),
        );
        secrets.extend(opts.secrets.clone());
        let secrets_file = root.join("secrets.json");
        std::fs::write(
            &secrets_file,
            serde_json::to_vec_pretty(&Value::Object(secrets))?,
        )?;

        let manifests = repo_root().join("dapr");
        let mut overrides = Overrides::new();
        overrides.insert(("pubsub".into(), "redisHost".into()), redis.address());
        overrides.insert(
            ("secretstore".into(), "secretsFile".into()),
            secrets_file.display().to_string(),
        );
        let resources = Resources::render(
            &[
                manifests.join("components").join("common"),
                manifests.join("components").join(opts.broker.profile()),
            ],
            &root.join("resources"),
            &overrides,
        )?;
        let config = manifests.join("config.yaml");
        anyhow::ensure!(config.is_file(), "missing {}", config.display());

        Ok(Self {
            bins,
            postgres,
            redis,
            scheduler,
            resources,
            config,
            secrets_file,
            log_dir,
            detached: opts.detached,
            data,
        })
    }

    /// Starts a sidecar for `app_id` wired to this infrastructure; `customize` may change the
    /// defaults (tokens, app port, log name) before it starts.
    pub async fn daprd(
        &self,
        app_id: &str,
        app_port: Option<u16>,
        customize: impl FnOnce(&mut DaprdOptions),
    ) -> anyhow::Result<Daprd> {
        let mut opts = DaprdOptions {
            app_id: app_id.to_owned(),
            app_port,
            resources: self.resources.dir().to_path_buf(),
            config: Some(self.config.clone()),
            scheduler: Some(self.scheduler.address()),
            ..DaprdOptions::default()
        };
        customize(&mut opts);
        Daprd::start(&self.bins, &opts, &self.log_dir, self.detached)
            .await
            .with_context(|| format!("starting daprd for {app_id}"))
    }

    /// Adds secrets to the local secret store's file. Sidecars read the file when they start,
    /// so call this before starting the sidecar that needs them.
    pub fn add_secrets(&self, secrets: Map<String, Value>) -> anyhow::Result<()> {
        let mut all: Map<String, Value> =
            serde_json::from_slice(&std::fs::read(&self.secrets_file)?)?;
        all.extend(secrets);
        std::fs::write(
            &self.secrets_file,
            serde_json::to_vec_pretty(&Value::Object(all))?,
        )?;
        Ok(())
    }

    /// The rendered resources directory.
    pub fn resources_dir(&self) -> &Path {
        self.resources.dir()
    }

    /// Where every process's log file is.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The data directory (databases, etcd, rendered resources, secrets file).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Leaves every process running and returns what `cargo xtask down` needs to stop them.
    pub fn detach(self) -> Vec<RecordedProcess> {
        let Self {
            bins,
            postgres,
            redis,
            scheduler,
            ..
        } = self;
        let mut out = Vec::new();
        let mut record = |name: &str, pid: Option<u32>, exe: PathBuf| {
            if let Some(pid) = pid {
                out.push(RecordedProcess {
                    name: name.to_owned(),
                    pid,
                    exe,
                });
            }
        };
        // Stop order for `down` is the reverse: scheduler, redis, postgres last.
        record("postgres", postgres.detach(), bins.pg("postgres"));
        record("redis", redis.detach(), bins.redis_server.clone());
        record("scheduler", scheduler.detach(), bins.scheduler);
        out
    }
}

/// `target/harness-logs/<unix seconds>-<pid>`: one directory per run, kept for inspection.
pub fn default_log_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target
        .join("harness-logs")
        .join(format!("{secs}-{}", std::process::id()))
}
