//! Dapr's `pubsub.kafka` reaches a broker the way it reaches OCI Streaming: SASL/PLAIN over TLS,
//! verifying the broker's certificate against the CA in the component, on an address other than
//! 127.0.0.1 (127.0.0.2, on Linux's loopback without configuration — what a pod of a local
//! Kubernetes dials is a veth address of the host, never its 127.0.0.1).
//!
//! One broker serves every test (a cold JVM takes seconds), so this binary has its own `main`
//! (`harness::suite`): it makes a CA and a broker certificate, starts the broker with a
//! `SASL_SSL` client listener, runs the tests — each with its own `daprd` and component — and
//! stops every process by the PID it started, pass or fail. The broker's PLAINTEXT admin
//! listener on 127.0.0.1 is only for reading a topic back with Kafka's own tools. One test
//! starts a second, PLAINTEXT broker on 127.0.0.2: the listen address does not depend on SASL.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use harness::suite::{self, Parallelism};
use harness::{Binaries, Daprd, DaprdOptions, Kafka, KafkaOptions, SaslSsl, wait};
use serde_json::{Value, json};
use support::ca::TestCa;

/// Not 127.0.0.1, yet on every Linux machine: the whole 127/8 is routed to `lo`.
const LISTEN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const SASL_USER: &str = "todo-dapr";
/// Marked as a test fixture: not a real credential. The quote and backslash check the
/// broker's JAAS escaping with a real login.
const SASL_PASSWORD: &str = r#"test-fixture "sasl" pass\word"#;
const PUBSUB: &str = "pubsub";
/// How long a delivery may take on a loaded 2-core machine (the first consumer group join
/// included); the wait ends as soon as it arrives.
const DEADLINE: Duration = Duration::from_secs(60);

struct Env {
    root: tempfile::TempDir,
    logs: PathBuf,
    bins: Binaries,
    ca: TestCa,
    kafka: Kafka,
}

impl Env {
    async fn start() -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let logs = harness::stack::default_log_dir();
        let bins = Binaries::locate()?;
        let ca = TestCa::new("todo-dapr kafka test CA")?;
        let opts = KafkaOptions {
            listen: LISTEN,
            sasl_ssl: Some(SaslSsl {
                tls: ca.server_for("kafka.test", &["127.0.0.2"])?,
                username: SASL_USER.into(),
                password: SASL_PASSWORD.into(),
            }),
            ..KafkaOptions::default()
        };
        harness::secrets::record(&logs, "kafka SASL password", SASL_PASSWORD)?;
        let kafka = Kafka::start_with(root.path(), &logs, &opts).await?;
        Ok(Self {
            root,
            logs,
            bins,
            ca,
            kafka,
        })
    }

    /// A resources directory named `name` holding only the `pubsub` component, as the Helm
    /// chart renders it for OCI Streaming (`values-oke.yaml`), with these credentials and CA.
    fn resources(&self, name: &str, password: &str, ca_pem: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let component = json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": PUBSUB},
            "spec": {
                "type": "pubsub.kafka",
                "version": "v1",
                "metadata": [
                    {"name": "brokers", "value": self.kafka.address()},
                    {"name": "authType", "value": "password"},
                    {"name": "saslUsername", "value": SASL_USER},
                    {"name": "saslPassword", "value": password},
                    // Dapr's name for SASL/PLAIN.
                    {"name": "saslMechanism", "value": "PLAINTEXT"},
                    {"name": "disableTls", "value": "false"},
                    {"name": "caCert", "value": ca_pem},
                    {"name": "initialOffset", "value": "oldest"},
                ],
            },
        });
        std::fs::write(
            dir.join("pubsub.yaml"),
            serde_yaml_ng::to_string(&component)?,
        )?;
        Ok(dir)
    }

    /// A sidecar for `app_id` with the component in `resources`.
    async fn daprd(
        &self,
        app_id: &str,
        resources: &Path,
        app_port: Option<u16>,
    ) -> anyhow::Result<Daprd> {
        let opts = DaprdOptions {
            app_id: app_id.into(),
            app_port,
            resources: resources.to_path_buf(),
            ..DaprdOptions::default()
        };
        Daprd::start(&self.bins, &opts, &self.logs, false).await
    }

    /// Starts a sidecar whose component must fail to initialise, waits until daprd has exited
    /// over it, and returns daprd's fatal log line.
    ///
    /// daprd 1.18 reports its outbound API healthy ("Status: Running") before it acts on a
    /// component that failed, so the start may succeed and the exit follow a moment later; or
    /// the exit comes first and the start fails. Either way the `level=fatal` line names the
    /// component and the cause.
    async fn fatal_line(&self, app_id: &str, resources: &Path) -> anyhow::Result<String> {
        if let Ok(mut daprd) = self.daprd(app_id, resources, None).await {
            wait::until("daprd to exit", DEADLINE, || {
                let exited = daprd.process_mut().ensure_running().is_err();
                async move { Ok::<_, std::convert::Infallible>(exited.then_some(())) }
            })
            .await
            .context("daprd kept running with a component that should fail")?;
        }
        let log_path = self.logs.join(format!("daprd-{app_id}.log"));
        let log = std::fs::read_to_string(&log_path)
            .with_context(|| format!("reading {}", log_path.display()))?;
        log.lines()
            .find(|l| l.contains("level=fatal"))
            .map(str::to_owned)
            .with_context(|| format!("daprd exited without a fatal error; log:\n{log}"))
    }
}

// ---------------------------------------------------------------------------------------------
// A subscriber app: daprd asks it for its subscriptions and delivers the topic's events to it.

#[derive(Clone)]
struct Subscriber {
    topic: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

/// The app's server; stopped when dropped.
struct App {
    port: u16,
    subscriber: Subscriber,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    async fn start(topic: &str) -> anyhow::Result<Self> {
        let subscriber = Subscriber {
            topic: topic.into(),
            seen: Arc::default(),
        };
        let router = Router::new()
            .route("/dapr/subscribe", get(subscriptions))
            .route("/events", post(on_event))
            .with_state(subscriber.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            // Ends only when aborted (or if the socket fails, which the delivery wait reports).
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            port,
            subscriber,
            task,
        })
    }

    /// The events received so far whose data carries `marker`.
    fn events_with(&self, marker: &str) -> Vec<Value> {
        let seen = self.subscriber.seen.lock().expect("seen lock");
        seen.iter()
            .filter(|e| e["data"]["marker"].as_str() == Some(marker))
            .cloned()
            .collect()
    }
}

async fn subscriptions(State(sub): State<Subscriber>) -> axum::Json<Value> {
    axum::Json(json!([{"pubsubname": PUBSUB, "topic": sub.topic, "route": "/events"}]))
}

/// Records the CloudEvent (daprd sends `application/cloudevents+json`, so the body is parsed
/// here rather than by a content-type-checking extractor).
async fn on_event(State(sub): State<Subscriber>, body: axum::body::Bytes) -> axum::Json<Value> {
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            sub.seen.lock().expect("seen lock").push(event);
            axum::Json(json!({"status": "SUCCESS"}))
        }
        Err(_) => axum::Json(json!({"status": "DROP"})),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The whole path over SASL_SSL: daprd's producer publishes, its consumer group joins and
/// delivers to the app, and the record is in the broker.
async fn daprd_publishes_and_delivers_over_sasl_ssl(env: &Env) -> anyhow::Result<()> {
    let topic = format!("sasl-tls-{}", uuid::Uuid::new_v4().simple());
    let marker = uuid::Uuid::new_v4().to_string();
    let app = App::start(&topic).await?;
    let app_id = "sasl-tls-app";
    let resources = env.resources(app_id, SASL_PASSWORD, &env.ca.cert_pem())?;
    let daprd = env.daprd(app_id, &resources, Some(app.port)).await?;

    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/publish/{PUBSUB}/{topic}",
            daprd.http_endpoint()
        ))
        .json(&json!({"marker": marker}))
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == 204,
        "publish answered {status}: {}",
        response.text().await?
    );

    let delivered = wait::until("the event to reach the subscriber", DEADLINE, || async {
        let events = app.events_with(&marker);
        Ok::<_, std::convert::Infallible>((!events.is_empty()).then_some(events))
    })
    .await?;
    ensure!(
        delivered[0]["topic"].as_str() == Some(topic.as_str()),
        "delivered from another topic: {}",
        delivered[0]
    );

    // The broker's side, read over the admin listener with Kafka's own tools.
    let records = env.kafka.topic_messages(&topic)?;
    ensure!(
        records
            .iter()
            .any(|r| r["data"]["marker"].as_str() == Some(marker.as_str())),
        "the topic holds no record with the marker: {records:?}"
    );
    Ok(())
}

/// SASL is enforced: the right CA but the wrong password, and the component fails to
/// initialise, which ends the sidecar.
async fn a_wrong_password_fails_the_component(env: &Env) -> anyhow::Result<()> {
    let app_id = "sasl-tls-wrong-password";
    let resources = env.resources(app_id, "not-the-password", &env.ca.cert_pem())?;
    let fatal = env.fatal_line(app_id, &resources).await?;
    ensure!(
        fatal.contains("process component pubsub error")
            && fatal.contains("SASL Authentication failed"),
        "daprd failed, but not at the component's SASL authentication: {fatal}"
    );
    Ok(())
}

/// TLS is verified: the right password, but a CA that did not sign the broker's certificate,
/// and the component fails before any password is sent.
async fn a_ca_that_did_not_sign_the_broker_fails_the_component(env: &Env) -> anyhow::Result<()> {
    let app_id = "sasl-tls-wrong-ca";
    let other = TestCa::new("another CA")?;
    let resources = env.resources(app_id, SASL_PASSWORD, &other.cert_pem())?;
    let fatal = env.fatal_line(app_id, &resources).await?;
    ensure!(
        fatal.contains("process component pubsub error")
            && fatal.contains("certificate signed by unknown authority"),
        "daprd failed, but not at the component's certificate check: {fatal}"
    );
    Ok(())
}

/// What clients are given is the SASL_SSL listener on 127.0.0.2; nothing answers on that port
/// at 127.0.0.1, and the harness's admin listener is a different port.
async fn clients_find_the_broker_only_at_its_listen_address(env: &Env) -> anyhow::Result<()> {
    let kafka = &env.kafka;
    ensure!(kafka.is_sasl_ssl(), "the client listener is not SASL_SSL");
    ensure!(
        kafka.address() == format!("127.0.0.2:{}", kafka.port()),
        "{}",
        kafka.address()
    );
    ensure!(
        kafka.admin_address() != format!("127.0.0.1:{}", kafka.port()),
        "the admin listener shares the client port"
    );
    tokio::net::TcpStream::connect((LISTEN, kafka.port()))
        .await
        .context("connecting to the client listener")?;
    ensure!(
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, kafka.port()))
            .await
            .is_err(),
        "something answers on 127.0.0.1:{}",
        kafka.port()
    );
    Ok(())
}

/// Without SASL_SSL the client listener moves as well: PLAINTEXT on 127.0.0.2, with the
/// harness's tools still on their own loopback listener (a broker of its own, on free ports).
async fn a_plaintext_broker_listens_elsewhere_too(env: &Env) -> anyhow::Result<()> {
    let root = env.root.path().join("plaintext");
    let logs = env.logs.join("plaintext");
    let opts = KafkaOptions {
        listen: LISTEN,
        ..KafkaOptions::default()
    };
    let mut kafka = Kafka::start_with(&root, &logs, &opts).await?;
    ensure!(!kafka.is_sasl_ssl(), "the client listener is not PLAINTEXT");
    ensure!(
        kafka.address() == format!("127.0.0.2:{}", kafka.port()),
        "{}",
        kafka.address()
    );
    // What the broker's processes listen on, not whether anything answers: on a busy machine
    // another program may hold the same port on 127.0.0.1.
    let pid = kafka
        .process_mut()
        .pid()
        .context("the broker is not running")?;
    let listening = harness::sockets::listening(pid)?;
    let port = kafka.port();
    ensure!(
        listening.contains(&SocketAddr::new(LISTEN.into(), port)),
        "the broker does not listen on {LISTEN}:{port}: {listening:?}"
    );
    ensure!(
        !listening.iter().any(|a| a.port() == port
            && (a.ip().is_unspecified() || a.ip() == Ipv4Addr::LOCALHOST)),
        "the broker also listens on 127.0.0.1 or every address at port {port}: {listening:?}"
    );
    // The admin listener answers Kafka's tools (no topic yet: nothing to read).
    ensure!(kafka.topic_messages("nobody-wrote-here")?.is_empty());
    kafka.process_mut().stop();
    Ok(())
}

fn main() -> ExitCode {
    let tests = harness::tests![
        daprd_publishes_and_delivers_over_sasl_ssl,
        a_wrong_password_fails_the_component,
        a_ca_that_did_not_sign_the_broker_fails_the_component,
        clients_find_the_broker_only_at_its_listen_address,
        a_plaintext_broker_listens_elsewhere_too,
    ];
    suite::run(Env::start, tests, Parallelism::Parallel, |env| {
        env.logs.clone()
    })
}
