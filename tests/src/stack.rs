//! The shared infrastructure of a run: PostgreSQL, the pub/sub broker of the chosen profile
//! (Redis, Kafka or RabbitMQ), the Dapr Scheduler and the rendered Dapr resources, all under one
//! data directory, with one log directory.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::kafka::Kafka;
use crate::process::RecordedProcess;
use crate::rabbitmq::RabbitMq;
use crate::resources::{Broker, Overrides};
use crate::{Binaries, Daprd, DaprdOptions, Postgres, Redis, Resources, Scheduler, repo_root};

/// Database that Dapr's `state.postgresql` store uses.
pub const STATE_DATABASE: &str = "dapr_state";

/// Options for [`Infra::start`].
#[derive(Clone, Debug, Default)]
pub struct InfraOptions {
    /// Which pub/sub profile to render, and so which broker to start.
    pub broker: Broker,
    /// Leave processes running when the handles are dropped (`cargo xtask up --detach`).
    pub detached: bool,
    /// Where logs go (default: `target/harness-logs/<run>`).
    pub log_dir: Option<PathBuf>,
    /// Extra entries for the local secrets file (top-level keys are secret names).
    pub secrets: Map<String, Value>,
    /// Programs to run (default: [`Binaries::locate`]).
    pub binaries: Option<Binaries>,
    /// The Scheduler's gRPC port (default: a free one). `cargo xtask up --infra-only` pins it
    /// so the committed `dapr/dapr.yaml` can name it.
    pub scheduler_port: Option<u16>,
    /// Test apps allowed onto protected topics beside the services (the committed `pubsub`
    /// components let only the owners publish and subscribe; see `contracts::topic_access`).
    pub topic_grants: Vec<TopicGrant>,
}

/// A test app's access to protected topics, added to the rendered `pubsub` component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicGrant {
    /// The test app's Dapr app-id.
    pub app_id: String,
    /// Topics it may publish to.
    pub publish: Vec<String>,
    /// Topics it may subscribe to.
    pub subscribe: Vec<String>,
}

impl TopicGrant {
    /// `app_id` may subscribe to `subscribe` and publish to `publish`.
    pub fn new(app_id: &str, subscribe: &[&str], publish: &[&str]) -> Self {
        Self {
            app_id: app_id.to_owned(),
            publish: publish.iter().map(|t| (*t).to_owned()).collect(),
            subscribe: subscribe.iter().map(|t| (*t).to_owned()).collect(),
        }
    }
}

/// The committed `scopes` value followed by the grants' entries (`app=t1,t2`).
fn with_grants(
    committed: &str,
    grants: &[TopicGrant],
    topics: fn(&TopicGrant) -> &[String],
) -> String {
    let mut value = committed.to_owned();
    for grant in grants.iter().filter(|g| !topics(g).is_empty()) {
        value.push(';');
        value.push_str(&grant.app_id);
        value.push('=');
        value.push_str(&topics(grant).join(","));
    }
    value
}

impl InfraOptions {
    /// The defaults, with the broker named by `TODO_BROKER` (redis|kafka|rabbitmq; default
    /// redis): how the end-to-end suites run on every broker profile.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            broker: Broker::from_env()?,
            ..Self::default()
        })
    }
}

/// The running pub/sub broker: one per run, of the profile's kind.
#[derive(Debug)]
pub enum BrokerServer {
    /// Redis Streams.
    Redis(Redis),
    /// Apache Kafka, KRaft single node.
    Kafka(Kafka),
    /// RabbitMQ.
    RabbitMq(RabbitMq),
}

impl BrokerServer {
    /// Starts the broker of `broker`'s profile.
    async fn start(
        broker: Broker,
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        detached: bool,
    ) -> anyhow::Result<Self> {
        Ok(match broker {
            Broker::Redis => Self::Redis(Redis::start(bins, root, log_dir, detached).await?),
            Broker::Kafka => Self::Kafka(Kafka::start(root, log_dir, detached).await?),
            Broker::RabbitMq => Self::RabbitMq(RabbitMq::start(root, log_dir, detached).await?),
        })
    }

    /// Which profile this is.
    pub fn kind(&self) -> Broker {
        match self {
            Self::Redis(_) => Broker::Redis,
            Self::Kafka(_) => Broker::Kafka,
            Self::RabbitMq(_) => Broker::RabbitMq,
        }
    }

    /// `127.0.0.1:<port>` of the broker's client listener.
    pub fn address(&self) -> String {
        match self {
            Self::Redis(r) => r.address(),
            Self::Kafka(k) => k.address(),
            Self::RabbitMq(r) => r.address(),
        }
    }

    /// A one-line description for tables (`cargo xtask up`).
    pub fn description(&self) -> &'static str {
        match self {
            Self::Redis(_) => "pub/sub broker (Redis Streams)",
            Self::Kafka(_) => "pub/sub broker (Apache Kafka, KRaft)",
            Self::RabbitMq(_) => "pub/sub broker (RabbitMQ)",
        }
    }

    /// The `pubsub` component metadata the harness replaces: `(name, value)`.
    fn pubsub_override(&self) -> (&'static str, String) {
        let value = match self {
            Self::Redis(r) => r.address(),
            Self::Kafka(k) => k.address(),
            Self::RabbitMq(r) => r.connection_string(),
        };
        (self.kind().address_metadata(), value)
    }

    /// The JSON messages published to `topic`, in broker order, where the broker keeps a
    /// readable log: a Redis stream, or a Kafka topic. `None` for RabbitMQ, whose exchanges
    /// keep nothing (a message lives only in the queues it was routed to, until consumed).
    pub fn topic_messages(&self, topic: &str) -> anyhow::Result<Option<Vec<Value>>> {
        match self {
            Self::Redis(r) => r.stream_messages(topic).map(Some),
            Self::Kafka(k) => k.topic_messages(topic).map(Some),
            Self::RabbitMq(_) => Ok(None),
        }
    }

    /// `SIGKILL` to the broker, as a crash would (for RabbitMQ, to its Erlang VM).
    pub fn kill(&self) {
        match self {
            Self::Redis(r) => r.kill(),
            Self::Kafka(k) => k.kill(),
            Self::RabbitMq(r) => r.kill(),
        }
    }

    /// Starts the killed broker again on the same ports and data; returns once it serves.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        match self {
            Self::Redis(r) => r.start_again().await,
            Self::Kafka(k) => k.start_again().await,
            Self::RabbitMq(r) => r.start_again().await,
        }
    }

    /// The RabbitMQ node, when RabbitMQ is the broker.
    pub fn rabbitmq(&self) -> Option<&RabbitMq> {
        match self {
            Self::RabbitMq(r) => Some(r),
            _ => None,
        }
    }

    /// The Redis server, when Redis is the broker.
    pub fn redis(&self) -> Option<&Redis> {
        match self {
            Self::Redis(r) => Some(r),
            _ => None,
        }
    }

    /// Leaves the broker running; returns what `cargo xtask down` needs, in start order.
    fn detach(self, bins: &Binaries) -> Vec<RecordedProcess> {
        let record = |name: &str, pid: u32, exe: PathBuf| RecordedProcess {
            name: name.to_owned(),
            pid,
            exe,
        };
        match self {
            Self::Redis(r) => r
                .detach()
                .map(|pid| record("redis", pid, bins.redis_server.clone()))
                .into_iter()
                .collect(),
            Self::Kafka(k) => {
                let exe = k.exe();
                k.detach()
                    .map(|pid| record("kafka", pid, exe))
                    .into_iter()
                    .collect()
            }
            Self::RabbitMq(r) => r
                .detach()
                .into_iter()
                .map(|(name, pid, exe)| record(name, pid, exe))
                .collect(),
        }
    }
}

/// Running infrastructure. Dropping it stops every process it started (unless detached).
#[derive(Debug)]
pub struct Infra {
    /// Binaries used, so sidecars start from the same build.
    pub bins: Binaries,
    /// PostgreSQL: app databases and Dapr's state store.
    pub postgres: Postgres,
    /// The pub/sub broker of the chosen profile. Nothing else uses a broker (the state store is
    /// PostgreSQL), so no other broker runs.
    pub broker: BrokerServer,
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
    /// Starts PostgreSQL, the profile's broker and the Scheduler, creates the state-store
    /// database and renders the repository's Dapr resources to point at them.
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
        let broker =
            BrokerServer::start(opts.broker, &bins, &root, &log_dir, opts.detached).await?;
        let scheduler =
            Scheduler::start(&bins, &root, &log_dir, opts.detached, opts.scheduler_port).await?;

        let mut secrets = Map::new();
        secrets.insert(
            "state-store-dsn".into(),
            postgres.dsn(STATE_DATABASE).into(),
        );
        // The state store's DSN carries no password (the harness's PostgreSQL trusts
        // loopback); what callers add is theirs to declare secret, so the log scan looks for it.
        crate::secrets::record_store(&log_dir, &opts.secrets)?;
        secrets.extend(opts.secrets.clone());
        let secrets_file = root.join("secrets.json");
        std::fs::write(
            &secrets_file,
            serde_json::to_vec_pretty(&Value::Object(secrets))?,
        )?;

        let manifests = repo_root().join("dapr");
        let mut overrides = Overrides::new();
        let (key, value) = broker.pubsub_override();
        overrides.insert(("pubsub".into(), key.into()), value);
        overrides.insert(
            ("secretstore".into(), "secretsFile".into()),
            secrets_file.display().to_string(),
        );
        let profile_dir = manifests.join("components").join(opts.broker.profile());
        if !opts.topic_grants.is_empty() {
            let pubsub = profile_dir.join("pubsub.yaml");
            let committed = |key: &str| crate::resources::metadata_value(&pubsub, "pubsub", key);
            let grants = &opts.topic_grants;
            overrides.insert(
                ("pubsub".into(), "publishingScopes".into()),
                with_grants(&committed("publishingScopes")?, grants, |g| &g.publish),
            );
            overrides.insert(
                ("pubsub".into(), "subscriptionScopes".into()),
                with_grants(&committed("subscriptionScopes")?, grants, |g| &g.subscribe),
            );
        }
        let resources = Resources::render(
            &[manifests.join("components").join("common"), profile_dir],
            &root.join("resources"),
            &overrides,
        )?;
        let config = manifests.join("config.yaml");
        anyhow::ensure!(config.is_file(), "missing {}", config.display());

        Ok(Self {
            bins,
            postgres,
            broker,
            scheduler,
            resources,
            config,
            secrets_file,
            log_dir,
            detached: opts.detached,
            data,
        })
    }

    /// A copy of this run's resources under `<data dir>/resources-<name>` with `overrides`
    /// applied (`(component, metadata) -> value`), for a sidecar that must differ from the
    /// others — e.g. a test observer reading a queue one delivery at a time.
    pub fn resources_with(
        &self,
        name: &str,
        overrides: &crate::resources::Overrides,
    ) -> anyhow::Result<PathBuf> {
        let dest = self.data.path().join(format!("resources-{name}"));
        let copy = Resources::render(&[self.resources.dir().to_path_buf()], &dest, overrides)?;
        Ok(copy.dir().to_path_buf())
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
        crate::secrets::record_store(&self.log_dir, &secrets)?;
        all.extend(secrets);
        std::fs::write(
            &self.secrets_file,
            serde_json::to_vec_pretty(&Value::Object(all))?,
        )?;
        Ok(())
    }

    /// The messages published to `topic`, in broker order, if the broker keeps them readable
    /// (see [`BrokerServer::topic_messages`]).
    pub fn topic_messages(&self, topic: &str) -> anyhow::Result<Option<Vec<Value>>> {
        self.broker.topic_messages(topic)
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
            broker,
            scheduler,
            ..
        } = self;
        let record = |name: &str, pid: Option<u32>, exe: PathBuf| {
            pid.map(|pid| RecordedProcess {
                name: name.to_owned(),
                pid,
                exe,
            })
        };
        // Stop order for `down` is the reverse: scheduler, broker, postgres last.
        let mut out: Vec<RecordedProcess> =
            record("postgres", postgres.detach(), bins.pg("postgres"))
                .into_iter()
                .collect();
        out.extend(broker.detach(&bins));
        out.extend(record("scheduler", scheduler.detach(), bins.scheduler));
        out
    }
}

/// `target/harness-logs/<unix seconds>-<pid>`: one directory per run, kept for inspection.
pub fn default_log_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    log_root().join(format!("{secs}-{}", std::process::id()))
}

/// `target/harness-logs`: where [`default_log_dir`] puts each run's directory.
pub fn log_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("harness-logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_extend_the_committed_scopes() {
        let grants = [
            TopicGrant::new("e2e-observer", &["task-events"], &["task-reminders", "x"]),
            TopicGrant::new("e2e-reader", &["task-events"], &[]),
        ];
        assert_eq!(
            with_grants("backend=task-events", &grants, |g| &g.publish),
            "backend=task-events;e2e-observer=task-reminders,x"
        );
        assert_eq!(
            with_grants("notification=task-events", &grants, |g| &g.subscribe),
            "notification=task-events;e2e-observer=task-events;e2e-reader=task-events"
        );
    }
}
