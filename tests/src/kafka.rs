//! A throw-away Apache Kafka broker (the `kafka` pub/sub profile): KRaft mode, one node acting as
//! broker and controller, on free 127.0.0.1 ports, with its data under the run's directory.
//!
//! The broker is not a Debian package: its jars come from Maven Central. Maven resolves the small
//! pom kept in `tests/kafka/pom.xml` (`org.apache.kafka:kafka_2.13` and a logging binding) into
//! `~/.cache/todo-dapr/kafka-<version>/lib` once per machine; every run then starts
//! `java -cp '<lib>/*' kafka.Kafka server.properties` after formatting its storage with
//! `kafka.tools.StorageTool` from the same jars. Java 17 and Maven come from Debian
//! (`cargo xtask deps --broker kafka`).
//!
//! [`Kafka::start_with`] takes [`KafkaOptions`]: the client listener on another IPv4 address
//! (pods of a local Kubernetes reach the host through a veth address, not 127.0.0.1), and
//! optionally `SASL_SSL` with mechanism `PLAIN` — what OCI Streaming's Kafka endpoint speaks. The
//! controller, the inter-broker listener and a PLAINTEXT admin listener for the harness's own
//! tools stay on 127.0.0.1 (see [`SaslSsl`] for why).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;

use crate::binaries::find_on_path;
use crate::process::{ManagedProcess, StopPolicy};
use crate::restartable::Restartable;
use crate::tls::ServerTls;
use crate::{ports, repo_root, wait};

/// The pom that pins the broker's jars, relative to the repository root.
pub const POM: &str = "tests/kafka/pom.xml";

/// Every topic Dapr creates gets this many partitions. One partition keeps a topic in one total
/// order (what [`Kafka::topic_messages`] reads back) and is plenty for a single-node test broker;
/// the replicas of one app-id then share a topic by fail-over rather than by partition.
const PARTITIONS: u32 = 1;

/// How long a cold JVM on a loaded 2-core machine may take to start the broker.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// What the broker logs once every listener is bound.
const STARTED_LINE: &str = "Kafka Server started";

/// A running Kafka broker owned by the harness.
#[derive(Debug)]
pub struct Kafka {
    process: Restartable,
    host: Ipv4Addr,
    port: u16,
    admin_port: u16,
    sasl_ssl: bool,
    java: PathBuf,
    lib: PathBuf,
    tools_log_config: PathBuf,
}

/// How [`Kafka::start_with`] starts the broker. The default is what [`Kafka::start`] does: one
/// PLAINTEXT listener on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// The IPv4 address of the client listener ([`Kafka::address`]); an address of this machine.
    pub listen: Ipv4Addr,
    /// Make the client listener `SASL_SSL` (mechanism `PLAIN`); `None`: `PLAINTEXT`.
    pub sasl_ssl: Option<SaslSsl>,
    /// Own process group, to outlive the terminal (`cargo xtask up --detach`).
    pub detached: bool,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            listen: Ipv4Addr::LOCALHOST,
            sasl_ssl: None,
            detached: false,
        }
    }
}

/// A `SASL_SSL` client listener with SASL/PLAIN: the broker presents `tls` and accepts one
/// user, `username` with `password` — like OCI Streaming, whose clients authenticate with
/// SASL/PLAIN over TLS (Dapr's `authType: password`, `saslMechanism: PLAINTEXT`).
///
/// Only the client listener is secured. The KRaft controller listener and the inter-broker
/// listener stay PLAINTEXT on 127.0.0.1, as does an admin listener for the harness's readiness
/// check and [`Kafka::topic_messages`]: on one node that traffic never leaves the host, no pod
/// ever needs it (a managed service exposes only its client endpoint), and securing it would
/// need the broker to be a SASL and TLS client of itself — more configuration that no client
/// of the broker exercises.
#[derive(Clone)]
pub struct SaslSsl {
    /// The broker's certificate (its SANs must name [`KafkaOptions::listen`], which clients
    /// dial) and its unencrypted PKCS#8 key.
    pub tls: ServerTls,
    /// The one SASL user: ASCII letters, digits, `-` and `_`, starting with a letter (it
    /// becomes part of a JAAS option name, `user_<name>`).
    pub username: String,
    /// Its password: any text without control characters.
    pub password: String,
}

impl std::fmt::Debug for SaslSsl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSsl")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SaslSsl {
    /// Refuses what the broker's JAAS configuration could not carry.
    fn check(&self) -> anyhow::Result<()> {
        self.tls.check()?;
        let name_ok = self
            .username
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && self
                .username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        anyhow::ensure!(
            name_ok,
            "SASL username `{}` must be ASCII letters, digits, `-` or `_`, starting with a letter",
            self.username
        );
        anyhow::ensure!(
            !self.password.is_empty() && !self.password.chars().any(char::is_control),
            "the SASL password of `{}` is empty or holds a control character",
            self.username
        );
        Ok(())
    }
}

/// Where the broker listens: the ports, and what the client listener speaks.
#[derive(Clone, Copy, Debug)]
struct Layout<'a> {
    host: Ipv4Addr,
    port: u16,
    /// The PLAINTEXT listener on 127.0.0.1 for inter-broker traffic and the harness's tools;
    /// the client listener itself when that is PLAINTEXT.
    admin_port: u16,
    controller_port: u16,
    sasl_ssl: Option<&'a SaslSsl>,
}

impl Kafka {
    /// Formats a single-node KRaft cluster under `root/kafka` and starts it; returns once the
    /// broker reports it has started and accepts connections on its client port.
    pub async fn start(root: &Path, log_dir: &Path, detached: bool) -> anyhow::Result<Self> {
        let opts = KafkaOptions {
            detached,
            ..KafkaOptions::default()
        };
        Self::start_with(root, log_dir, &opts).await
    }

    /// [`Kafka::start`] with the client listener `opts` describes; returns once the broker has
    /// started and accepts connections on the client and admin ports.
    pub async fn start_with(
        root: &Path,
        log_dir: &Path,
        opts: &KafkaOptions,
    ) -> anyhow::Result<Self> {
        if let Some(sasl) = &opts.sasl_ssl {
            sasl.check()?;
        }
        let lib = ensure_jars()?;
        let java = java()?;
        let dir = root.join("kafka");
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let layout = layout(opts).with_context(|| {
            format!(
                "finding free ports on {} (is it an address of this machine?)",
                opts.listen
            )
        })?;

        let config = dir.join("server.properties");
        write_private(&config, &server_properties(&layout, &data))?;
        let log_config = dir.join("log4j2.properties");
        std::fs::write(&log_config, LOG4J2_BROKER)?;
        let tools_log_config = dir.join("log4j2-tools.properties");
        std::fs::write(&tools_log_config, LOG4J2_TOOLS)?;

        let classpath = classpath(&lib);
        let out = Command::new(&java)
            .arg("-cp")
            .arg(&classpath)
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                tools_log_config.display()
            ))
            .args(["kafka.tools.StorageTool", "format"])
            // One argument with `=`: a base64url id may start with `-`, which the tool's
            // argument parser would otherwise read as an option (1 start in 64).
            .arg(format!("--cluster-id={}", cluster_id()?))
            .arg("--config")
            .arg(&config)
            .output()
            .context("running kafka.tools.StorageTool")?;
        if !out.status.success() {
            bail!(
                "formatting Kafka storage failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let recipe = {
            let java = java.clone();
            Box::new(move || {
                let mut cmd = Command::new(&java);
                cmd.args(JVM_OPTS)
                    .arg("-cp")
                    .arg(&classpath)
                    .arg(format!(
                        "-Dlog4j2.configurationFile={}",
                        log_config.display()
                    ))
                    .arg("kafka.Kafka")
                    .arg(&config)
                    .current_dir(&dir);
                cmd
            })
        };
        // SIGTERM runs the broker's shutdown hook (flushes and closes the logs cleanly).
        let stop = StopPolicy {
            signal: Signal::SIGTERM,
            grace: Duration::from_secs(20),
        };
        let process = Restartable::spawn("kafka", recipe, log_dir, stop, opts.detached)?;
        let Layout {
            host,
            port,
            admin_port,
            ..
        } = layout;
        let kafka = Self {
            process,
            host,
            port,
            admin_port,
            sasl_ssl: layout.sasl_ssl.is_some(),
            java,
            lib,
            tools_log_config,
        };
        kafka.wait_started(0).await?;
        Ok(kafka)
    }

    /// `SIGKILL`: the broker dies without its shutdown hook. Every record it acknowledged is in
    /// its log files (written before the acknowledgement; the page cache survives a process).
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts the broker again on the same ports and data (log recovery, then the listeners);
    /// returns once it serves.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        let before = self.starts_logged().await;
        self.process.start_again()?;
        self.wait_started(before).await
    }

    /// How many times the broker's log says it started (the file is appended to on restarts).
    async fn starts_logged(&self) -> usize {
        let log = self.process.log_path();
        tokio::fs::read_to_string(&log)
            .await
            .unwrap_or_default()
            .matches(STARTED_LINE)
            .count()
    }

    /// Waits for start number `previous + 1`, failing early if the process exits.
    async fn wait_started(&self, previous: usize) -> anyhow::Result<()> {
        let (host, port, admin_port) = (self.host, self.port, self.admin_port);
        wait::until("kafka to start", START_TIMEOUT, || {
            let running = self.process.ensure_running();
            let started = self.starts_logged();
            async move {
                running?;
                if started.await <= previous {
                    return Ok(None);
                }
                // Every listener is bound before that line; connecting proves each is where we
                // meant (the TLS handshake and SASL are the clients' to prove).
                tokio::net::TcpStream::connect((host, port)).await?;
                tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, admin_port)).await?;
                Ok::<_, anyhow::Error>(Some(()))
            }
        })
        .await?;
        Ok(())
    }

    /// `<listen address>:<port>` of the client listener, as Dapr's `brokers` metadata wants it
    /// (`127.0.0.1:<port>` by default).
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The client listener's port (PLAINTEXT, or SASL_SSL with [`KafkaOptions::sasl_ssl`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client listener's address.
    pub fn host(&self) -> Ipv4Addr {
        self.host
    }

    /// Whether the client listener is `SASL_SSL` (else `PLAINTEXT`).
    pub fn is_sasl_ssl(&self) -> bool {
        self.sasl_ssl
    }

    /// `127.0.0.1:<port>` of the PLAINTEXT listener the harness's own tools use: the client
    /// listener itself when that is PLAINTEXT on 127.0.0.1, else a listener of its own. Not for
    /// the system under test, which must go through [`Kafka::address`].
    pub fn admin_address(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    /// The broker process.
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        self.process.get_mut()
    }

    /// The JSON messages of a topic, in broker order (the equivalent of
    /// [`crate::Redis::stream_messages`]).
    ///
    /// Reads partition 0 — the only one (`PARTITIONS`) — from the beginning up to the end
    /// offset it had when called, with Kafka's own command-line tools from the same jars: the
    /// end offset from `GetOffsetShell`, then exactly that many records from `ConsoleConsumer`
    /// (which assigns the partition directly, so no consumer group is created). Dapr stores
    /// each CloudEvent as the record value; ours are compact JSON, one per line.
    pub fn topic_messages(&self, topic: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let offsets = match self.tool(&[
            "org.apache.kafka.tools.GetOffsetShell",
            "--topic",
            topic,
            "--partitions",
            "0",
            "--time",
            "latest",
        ]) {
            Ok(out) => out,
            // Nothing was ever published or subscribed: Dapr has not created the topic.
            Err(e)
                if e.to_string()
                    .contains("Could not match any topic-partitions") =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        // One line per partition: `<topic>:<partition>:<end offset>`; none if no such topic.
        let end: u64 = offsets
            .lines()
            .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
            .sum();
        if end == 0 {
            return Ok(Vec::new());
        }
        let records = self.tool(&[
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            &end.to_string(),
            "--timeout-ms",
            "30000",
        ])?;
        Ok(records
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(serde_json::Value::is_object)
            .collect())
    }

    /// Runs one of Kafka's tools against this broker; returns its stdout.
    fn tool(&self, args: &[&str]) -> anyhow::Result<String> {
        let (main, rest) = args.split_first().context("no tool class")?;
        let out = Command::new(&self.java)
            .args(["-XX:TieredStopAtLevel=1", "-Xshare:auto"])
            .arg("-cp")
            .arg(classpath(&self.lib))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.tools_log_config.display()
            ))
            .arg(main)
            .args(["--bootstrap-server", &self.admin_address()])
            .args(rest)
            .output()
            .with_context(|| format!("running {main}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{main} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The executable to record for `cargo xtask down` (the JVM's real path).
    pub fn exe(&self) -> PathBuf {
        self.process
            .pid()
            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
            .unwrap_or_else(|| self.java.clone())
    }

    /// Leaves the broker running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.into_inner().detach()
    }
}

/// JVM flags: a small heap (the test broker holds little), and start-up speed over peak
/// throughput — C1 only, so the JIT does not compete with the services for the two cores.
const JVM_OPTS: &[&str] = &[
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    // Kafka logs its own shutdown; log4j must not close the appenders first.
    "-Dlog4j2.shutdownHookEnabled=false",
];

/// The ports of `opts`. The admin listener is the client listener when that is PLAINTEXT on
/// loopback (exactly the broker [`Kafka::start`] always ran); otherwise it gets its own port.
fn layout(opts: &KafkaOptions) -> std::io::Result<Layout<'_>> {
    let plain_loopback = opts.sasl_ssl.is_none() && opts.listen == Ipv4Addr::LOCALHOST;
    let [port, admin_port, controller_port] = if plain_loopback {
        let [port, controller_port] = ports::free_ports::<2>()?;
        [port, port, controller_port]
    } else {
        ports::free_ports_on([opts.listen, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST])?
    };
    Ok(Layout {
        host: opts.listen,
        port,
        admin_port,
        controller_port,
        sasl_ssl: opts.sasl_ssl.as_ref(),
    })
}

fn server_properties(layout: &Layout<'_>, data: &Path) -> String {
    let Layout {
        host,
        port,
        admin_port,
        controller_port,
        sasl_ssl,
    } = *layout;
    let client_protocol = if sasl_ssl.is_some() {
        "SASL_SSL"
    } else {
        "PLAINTEXT"
    };
    let listeners = if admin_port == port {
        format!(
            "listeners=PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"
        )
    } else {
        // A SASL_SSL client listener is named after its protocol, so its settings read
        // `listener.name.sasl_ssl.*` as Kafka's documentation spells them.
        let name = if sasl_ssl.is_some() {
            "SASL_SSL"
        } else {
            "CLIENT"
        };
        format!(
            "# Clients: {client_protocol} on {host}. The broker itself, the controller and the
# harness's tools: PLAINTEXT on loopback.
listeners={name}://{host}:{port},PLAINTEXT://127.0.0.1:{admin_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={name}://{host}:{port},PLAINTEXT://127.0.0.1:{admin_port}
listener.security.protocol.map={name}:{client_protocol},PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"
        )
    };
    let sasl = sasl_ssl.map(sasl_ssl_properties).unwrap_or_default();
    format!(
        "# Written by the todo-dapr test harness: one KRaft node.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
{listeners}controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
{sasl}log.dirs={data}
# Dapr creates topics on first use (publish or subscribe).
auto.create.topics.enable=true
num.partitions={PARTITIONS}
default.replication.factor=1
# Internal topics: one replica (one node), and few partitions so the first consumer group and
# the first transaction do not wait for fifty partitions to be created.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
# A joining consumer (a new sidecar) gets its partitions at once instead of after 3 s.
group.initial.rebalance.delay.ms=0
",
        data = data.display()
    )
}

/// The SASL_SSL listener's settings: PLAIN, its user database as JAAS options
/// (`user_<name>="<password>"`), and the key and certificate chain inline in PEM.
///
/// Kafka takes an unencrypted key only inline (`ssl.keystore.key`): a PEM keystore *file* must
/// hold an encrypted key and its password, and a PKCS12 keystore would need `keytool` or
/// openssl. Kafka logs these values as `[hidden]`; the file is readable by its owner only.
fn sasl_ssl_properties(sasl: &SaslSsl) -> String {
    let jaas = format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_{}={};",
        sasl.username,
        jaas_quote(&sasl.password)
    );
    let settings = [
        ("sasl.enabled.mechanisms", "PLAIN"),
        (
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
            jaas.as_str(),
        ),
        ("listener.name.sasl_ssl.ssl.keystore.type", "PEM"),
        (
            "listener.name.sasl_ssl.ssl.keystore.certificate.chain",
            sasl.tls.cert_pem.trim(),
        ),
        (
            "listener.name.sasl_ssl.ssl.keystore.key",
            sasl.tls.key_pem.trim(),
        ),
    ];
    settings
        .iter()
        .map(|(key, value)| format!("{key}={}\n", properties_escape(value)))
        .collect()
}

/// A JAAS option value in double quotes; the JAAS parser (a `StreamTokenizer`) reads `\\` and
/// `\"` inside quotes as escapes.
fn jaas_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A value for a Java `.properties` file: backslashes and line breaks escaped (so a PEM block
/// stays one logical line), a leading space kept, anything outside printable ASCII as `\uXXXX`
/// (the file is read as ISO-8859-1).
fn properties_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if i == 0 => out.push_str("\\ "),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// Writes a file only its owner may read (the broker config may hold a password and a key).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Broker log: INFO to stdout (captured in `kafka.log`), where the readiness line appears.
const LOG4J2_BROKER: &str = "status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
";

/// Tools log: warnings only, to stderr, so stdout carries only the tool's output.
const LOG4J2_TOOLS: &str = "status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
";

/// `<lib>/*`: the JVM expands it to every jar in the directory.
fn classpath(lib: &Path) -> String {
    format!("{}/*", lib.display())
}

/// A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters), the
/// format `kafka-storage random-uuid` prints.
fn cluster_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64_url(&bytes))
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// The `java` to run: `$JAVA_HOME/bin/java`, else the one on `PATH`.
pub fn java() -> anyhow::Result<PathBuf> {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join("java"))
        .filter(|p| p.is_file())
        .or_else(|| find_on_path("java"))
        .context(
            "no `java` (Java >= 17) on PATH or in JAVA_HOME: run `cargo xtask deps --broker kafka`",
        )
}

/// The Kafka version the pom pins (`<kafka.version>`): the cache key.
pub fn pinned_version(pom: &str) -> anyhow::Result<String> {
    let start = pom
        .find("<kafka.version>")
        .context("no <kafka.version> in the Kafka pom")?
        + "<kafka.version>".len();
    let len = pom[start..]
        .find("</kafka.version>")
        .context("unterminated <kafka.version>")?;
    let version = pom[start..start + len].trim();
    anyhow::ensure!(
        !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.'),
        "odd <kafka.version> `{version}`"
    );
    Ok(version.to_owned())
}

/// Where the harness's downloads and builds live: `$XDG_CACHE_HOME/todo-dapr`, else
/// `~/.cache/todo-dapr` (shared with the Dapr runtime build of `cargo xtask deps`).
pub fn cache_root() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(base.join("todo-dapr"))
}

/// The directory of the broker's jars, resolved with Maven on first use and reused after.
///
/// `KAFKA_LIB_DIR` points at another set of jars (e.g. an unpacked Kafka distribution's
/// `libs/`). Otherwise the jars live in `<cache>/kafka-<version>/lib`, reused while the pom they
/// were resolved from is unchanged; a new set is resolved into a scratch directory and renamed
/// into place, so an interrupted download never leaves a half-filled `lib`.
pub fn ensure_jars() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KAFKA_LIB_DIR") {
        let dir = PathBuf::from(dir);
        anyhow::ensure!(
            has_jar(&dir, "kafka_2.13-"),
            "KAFKA_LIB_DIR={} holds no kafka_2.13 jar",
            dir.display()
        );
        return Ok(dir);
    }
    let pom_path = repo_root().join(POM);
    let pom = std::fs::read_to_string(&pom_path)
        .with_context(|| format!("reading {}", pom_path.display()))?;
    let version = pinned_version(&pom)?;
    let cache = cache_root()?.join(format!("kafka-{version}"));
    let lib = cache.join("lib");
    let stamp = cache.join("pom.xml");
    if has_jar(&lib, &format!("kafka_2.13-{version}"))
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(pom.as_str())
    {
        return Ok(lib);
    }
    let mvn = find_on_path("mvn")
        .context("Maven (`mvn`) is not on PATH: run `cargo xtask deps --broker kafka`")?;
    std::fs::create_dir_all(&cache)?;
    let scratch = cache.join(format!("lib.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let out = Command::new(mvn)
        .args(["-B", "-q", "-f"])
        .arg(&pom_path)
        .args(["dependency:copy-dependencies", "-DincludeScope=runtime"])
        .arg(format!("-DoutputDirectory={}", scratch.display()))
        .output()
        .context("running mvn")?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&scratch);
        bail!(
            "mvn dependency:copy-dependencies failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    anyhow::ensure!(
        has_jar(&scratch, &format!("kafka_2.13-{version}")),
        "mvn resolved no kafka_2.13-{version} jar into {}",
        scratch.display()
    );
    let _ = std::fs::remove_dir_all(&lib);
    std::fs::rename(&scratch, &lib)
        .with_context(|| format!("moving the jars into {}", lib.display()))?;
    std::fs::write(&stamp, &pom)?;
    Ok(lib)
}

fn has_jar(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jar"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafka_uuids() {
        let id = cluster_id().unwrap();
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(base64_url(b"\xfb\xff"), "-_8");
        assert_eq!(base64_url(b"Man"), "TWFu");
    }

    #[test]
    fn the_pom_pins_a_kafka_4_version() {
        let pom = std::fs::read_to_string(repo_root().join(POM)).unwrap();
        let v = pinned_version(&pom).unwrap();
        assert!(v.starts_with("4."), "{v}");
        assert!(pinned_version("<x/>").is_err());
    }

    fn sasl_fixture() -> SaslSsl {
        SaslSsl {
            tls: ServerTls {
                cert_pem: "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----\n".into(),
            },
            username: "todo-app".into(),
            password: "p\"w\\d é".into(),
        }
    }

    fn props_of(opts: &KafkaOptions) -> String {
        let layout = Layout {
            host: opts.listen,
            port: 9092,
            admin_port: if opts.sasl_ssl.is_none() && opts.listen == Ipv4Addr::LOCALHOST {
                9092
            } else {
                9094
            },
            controller_port: 9093,
            sasl_ssl: opts.sasl_ssl.as_ref(),
        };
        server_properties(&layout, Path::new("/tmp/k"))
    }

    fn value<'a>(props: &'a str, key: &str) -> &'a str {
        props
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {props}"))
    }

    #[test]
    fn server_properties_stay_on_loopback() {
        let props = props_of(&KafkaOptions::default());
        for line in props.lines().filter(|l| l.contains("://")) {
            assert!(
                !line.contains("0.0.0.0") && line.contains("127.0.0.1"),
                "{line}"
            );
        }
        assert_eq!(
            value(&props, "listeners"),
            "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
        );
        assert!(!props.contains("sasl"), "{props}");
        assert!(props.contains("log.dirs=/tmp/k"));
    }

    #[test]
    fn sasl_ssl_serves_clients_on_the_listen_address_and_keeps_the_rest_on_loopback() {
        let opts = KafkaOptions {
            listen: Ipv4Addr::new(10, 201, 0, 1),
            sasl_ssl: Some(sasl_fixture()),
            detached: false,
        };
        let props = props_of(&opts);
        assert_eq!(
            value(&props, "advertised.listeners"),
            "SASL_SSL://10.201.0.1:9092,PLAINTEXT://127.0.0.1:9094"
        );
        assert_eq!(
            value(&props, "listener.security.protocol.map"),
            "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        );
        assert_eq!(value(&props, "inter.broker.listener.name"), "PLAINTEXT");
        assert_eq!(value(&props, "sasl.enabled.mechanisms"), "PLAIN");
        // The password's quote and backslash are escaped for JAAS, then every backslash for
        // the properties file; `é` becomes a \u escape.
        assert_eq!(
            value(&props, "listener.name.sasl_ssl.plain.sasl.jaas.config"),
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_todo-app="p\\"w\\\\d \u00e9";"#
        );
        assert_eq!(
            value(&props, "listener.name.sasl_ssl.ssl.keystore.key"),
            r"-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----"
        );
        // Only the client listener leaves loopback.
        let listeners = value(&props, "listeners");
        for listener in listeners.split(',') {
            assert!(
                listener.starts_with("SASL_SSL://10.201.0.1:") || listener.contains("//127.0.0.1:"),
                "{listener}"
            );
        }
        assert!(!format!("{opts:?}").contains("p\\\"w"), "{opts:?}");
    }

    #[test]
    fn plaintext_elsewhere_keeps_an_admin_listener_on_loopback() {
        let opts = KafkaOptions {
            listen: Ipv4Addr::new(127, 0, 0, 2),
            ..KafkaOptions::default()
        };
        let props = props_of(&opts);
        assert_eq!(
            value(&props, "listeners"),
            "CLIENT://127.0.0.2:9092,PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"
        );
        assert!(!props.contains("sasl"), "{props}");
    }

    #[test]
    fn sasl_users_must_fit_jaas() {
        sasl_fixture().check().unwrap();
        for (username, password) in [("1abc", "pw"), ("a b", "pw"), ("ok", ""), ("ok", "a\nb")] {
            let sasl = SaslSsl {
                username: username.into(),
                password: password.into(),
                ..sasl_fixture()
            };
            assert!(sasl.check().is_err(), "{username:?} {password:?}");
        }
    }
}
