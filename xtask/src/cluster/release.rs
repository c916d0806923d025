//! todo-dapr on the node: the managed services a cloud would provide, as processes on the host
//! end of the link (PostgreSQL over verified TLS with a password, Kafka with SASL/PLAIN over
//! TLS, an SMTP sink), the Kubernetes Secrets made from generated material, and our chart
//! installed with `helm/todo-dapr/values-local.yaml` — OKE's values shape — plus the run's
//! addresses and image tags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use harness::process::{ManagedProcess, RecordedProcess, StopPolicy};
use harness::{Binaries, Kafka, KafkaOptions, Postgres, PostgresOptions, SaslSsl, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use super::addresses::{CLUSTER_CIDR, HOST_IP, LINK_PREFIX};
use super::kube::Kube;
use crate::cluster_images::{DrillImages, ServiceImageArchive};

/// Namespace and release name of our chart on the node.
pub(crate) const NAMESPACE: &str = "todo";
pub(crate) const RELEASE: &str = "todo";
/// The values file of the local node, relative to the repository root.
pub(crate) const VALUES: &str = "helm/todo-dapr/values-local.yaml";
/// The database the backend and the state store use.
const DATABASE: &str = "todo";
/// The Kafka SASL user.
const KAFKA_USER: &str = "todo-dapr";

/// What `down` and the cluster tests need of the release.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ReleaseRecord {
    /// The servers on the host end of the link, stopped by `down`.
    pub(crate) processes: Vec<RecordedProcess>,
    /// Where the SMTP sink writes each mail (`<n>.eml`).
    pub(crate) mail_dir: PathBuf,
    pub(crate) namespace: String,
    pub(crate) release: String,
    /// The chart and the values files of the release, in `helm -f` order: values-local.yaml and
    /// the run's `values-run.yaml`.
    pub(crate) chart: PathBuf,
    pub(crate) values: Vec<PathBuf>,
    /// Values files that turn the release into the drills' releases (`cluster_images::DrillImages`).
    pub(crate) drills: DrillValues,
}

/// The overlays of the upgrade and rollback drills (`tests/tests/cluster_upgrade.rs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DrillValues {
    /// The next release: every service on its second image, and a changed Dapr Configuration.
    pub(crate) next: PathBuf,
    /// On top of `next`: every service on an image that exits as soon as it starts.
    pub(crate) crash: PathBuf,
    /// On top of `next`: every service on an image that never becomes Ready.
    pub(crate) unready: PathBuf,
}

/// What the chart install needs from the servers.
pub(crate) struct Servers {
    pub(crate) record: ReleaseRecord,
    secrets: Vec<(&'static str, Vec<(&'static str, String)>)>,
    kafka_address: String,
    sink_port: u16,
}

/// Starts the servers on the host end of the link (detached; `record` says how to stop them)
/// and makes the material of the Secrets.
pub(crate) fn start_servers(data_dir: &Path, bins: &Binaries) -> anyhow::Result<Servers> {
    let root = data_dir.join("servers");
    let log_dir = data_dir.join("logs");
    std::fs::create_dir_all(&root)?;
    let ca = TestCa::new()?;
    let ca_file = data_dir.join("servers/ca.crt");
    std::fs::write(&ca_file, ca.cert_pem())?;
    let pg_password = random_token()?;
    let kafka_password = random_token()?;
    let link = harness::net::Ipv4Cidr::new(network(HOST_IP, LINK_PREFIX), LINK_PREFIX)?;
    let pods: harness::net::Ipv4Cidr = CLUSTER_CIDR.parse()?;

    let runtime = tokio::runtime::Runtime::new()?;
    let (postgres, kafka) = runtime.block_on(async {
        let postgres = Postgres::start_with(
            bins,
            &root,
            &log_dir,
            &PostgresOptions {
                listen: HOST_IP,
                client_networks: vec![pods, link],
                tls: Some(ca.server()?),
                superuser_password: Some(pg_password.clone()),
                detached: true,
            },
        )
        .await?;
        postgres.create_database(DATABASE)?;
        let kafka = Kafka::start_with(
            &root,
            &log_dir,
            &KafkaOptions {
                listen: HOST_IP,
                sasl_ssl: Some(SaslSsl {
                    tls: ca.server()?,
                    username: KAFKA_USER.into(),
                    password: kafka_password.clone(),
                }),
                detached: true,
            },
        )
        .await?;
        anyhow::Ok((postgres, kafka))
    })?;

    let mail_dir = data_dir.join("mail");
    let sink_port = harness::ports::free_port()?;
    let xtask_exe = super::host::own_copy(data_dir)?;
    let mut cmd = std::process::Command::new(&xtask_exe);
    cmd.args([
        "smtp-sink",
        "--host",
        &HOST_IP.to_string(),
        "--port",
        &sink_port.to_string(),
    ])
    .arg("--mail-dir")
    .arg(&mail_dir);
    let mut sink = ManagedProcess::spawn("smtp-sink", cmd, &log_dir, StopPolicy::default(), true)?;
    runtime.block_on(harness::wait::until(
        "the SMTP sink",
        Duration::from_secs(10),
        || {
            let running = sink.ensure_running();
            async move {
                running?;
                let open = tokio::net::TcpStream::connect((HOST_IP, sink_port))
                    .await
                    .is_ok();
                Ok::<_, anyhow::Error>(open.then_some(()))
            }
        },
    ))?;

    let ca_path = "/etc/todo-dapr/ca/ca.crt";
    let database_url = format!(
        "{}?sslmode=verify-full&sslrootcert={ca_path}",
        postgres.url(DATABASE)
    );
    let state_dsn = format!(
        "{} sslmode=verify-full sslrootcert={ca_path}",
        postgres.dsn(DATABASE)
    );
    let kafka_address = kafka.address();
    let mut processes = Vec::new();
    let pg_exe = bins.pg("postgres");
    processes.extend(postgres.detach().map(|pid| RecordedProcess {
        name: "postgres".into(),
        pid,
        exe: pg_exe,
    }));
    let kafka_exe = kafka.exe();
    processes.extend(kafka.detach().map(|pid| RecordedProcess {
        name: "kafka".into(),
        pid,
        exe: kafka_exe,
    }));
    processes.extend(sink.detach().map(|pid| RecordedProcess {
        name: "smtp-sink".into(),
        pid,
        exe: xtask_exe,
    }));
    let repo = crate::helm_check::repo_root();
    let record = ReleaseRecord {
        processes,
        mail_dir,
        namespace: NAMESPACE.into(),
        release: RELEASE.into(),
        chart: repo.join("helm/todo-dapr"),
        values: vec![repo.join(VALUES), data_dir.join("values-run.yaml")],
        drills: DrillValues {
            next: data_dir.join("values-next.yaml"),
            crash: data_dir.join("values-crash.yaml"),
            unready: data_dir.join("values-unready.yaml"),
        },
    };
    let ca_pem = ca.cert_pem();
    let secrets: Vec<(&'static str, Vec<(&'static str, String)>)> = vec![
        ("todo-dapr-app-token", vec![("token", random_token()?)]),
        ("jwt-secret", vec![("jwt-secret", random_token()?)]),
        (
            "backend-database-url",
            vec![("backend-database-url", database_url)],
        ),
        ("statestore-postgres", vec![("connectionString", state_dsn)]),
        (
            "kafka-sasl",
            vec![
                ("username", KAFKA_USER.into()),
                ("password", kafka_password),
            ],
        ),
        ("postgres-ca", vec![("ca.crt", ca_pem.clone())]),
        ("kafka-ca", vec![("ca.crt", ca_pem)]),
    ];
    Ok(Servers {
        record,
        secrets,
        kafka_address,
        sink_port,
    })
}

/// Creates the Secrets (from generated material, the way the README tells users to) and
/// installs the chart; returns once every pod of the release is Ready.
pub(crate) fn install_chart(
    kube: &Kube,
    servers: &Servers,
    images: &[ServiceImageArchive],
    drills: &DrillImages,
) -> anyhow::Result<()> {
    kube.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
    ))?;
    for (name, entries) in &servers.secrets {
        kube.apply(&secret_yaml(name, entries))
            .with_context(|| format!("creating the Secret {name}"))?;
    }

    let record = &servers.record;
    let [local, run] = record.values.as_slice() else {
        anyhow::bail!(
            "the release record names {} values files",
            record.values.len()
        );
    };
    std::fs::write(
        run,
        run_values(images, &servers.kafka_address, servers.sink_port),
    )?;
    std::fs::write(&record.drills.next, next_values(&drills.next))?;
    std::fs::write(
        &record.drills.crash,
        image_values(&drills.crash).to_string(),
    )?;
    std::fs::write(
        &record.drills.unready,
        image_values(&drills.unready).to_string(),
    )?;
    kube.install(RELEASE, &record.chart, NAMESPACE, &[local, run])?;
    Ok(())
}

/// `services.<service>.image.tag` of each image.
fn image_values(images: &[ServiceImageArchive]) -> serde_json::Value {
    let services: serde_json::Map<String, serde_json::Value> = images
        .iter()
        .map(|image| {
            (
                image.service.to_owned(),
                serde_json::json!({ "image": { "tag": image.tag } }),
            )
        })
        .collect();
    serde_json::json!({ "services": services })
}

/// The drills' next release: its images, and a Dapr Configuration that differs from the chart's
/// (half the requests traced), which the sidecars only read when they start.
fn next_values(images: &[ServiceImageArchive]) -> String {
    let mut values = image_values(images);
    values["configuration"] = serde_json::json!({ "tracing": { "samplingRate": "0.5" } });
    values.to_string()
}

/// A Secret manifest; the values are base64 in `data`, so nothing is interpreted by YAML.
fn secret_yaml(name: &str, entries: &[(&str, String)]) -> String {
    use base64::Engine as _;
    let data: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(v).into(),
            )
        })
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "type": "Opaque",
        "data": data,
    })
    .to_string()
}

/// What changes from run to run: the image tags, the broker's and the sink's ports.
fn run_values(images: &[ServiceImageArchive], kafka: &str, sink_port: u16) -> String {
    let mut services = serde_json::Map::new();
    for image in images {
        services.insert(
            image.service.to_owned(),
            serde_json::json!({ "image": { "tag": image.tag } }),
        );
    }
    if let Some(email) = services.get_mut("email-delivery") {
        email["env"] = serde_json::json!({
            "SMTP_HOST": HOST_IP.to_string(),
            "SMTP_PORT": sink_port.to_string(),
        });
    }
    serde_json::json!({
        "services": services,
        "pubsub": { "kafka": { "brokers": [kafka] } },
    })
    .to_string()
}

fn network(ip: std::net::Ipv4Addr, prefix: u8) -> std::net::Ipv4Addr {
    let mask = u32::MAX << (32 - u32::from(prefix));
    std::net::Ipv4Addr::from(u32::from(ip) & mask)
}

/// 32 random bytes, hex: passwords, the JWT key and the app token of this run.
fn random_token() -> anyhow::Result<String> {
    crate::up::random_hex(32)
}

/// The CA the "managed" servers' certificates come from; the pods trust it through the
/// `postgres-ca` and `kafka-ca` Secrets.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "todo-dapr local managed-services CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    fn cert_pem(&self) -> String {
        self.issuer.as_ref().pem()
    }

    /// A server certificate for the host end of the link.
    fn server(&self) -> anyhow::Result<ServerTls> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![HOST_IP.to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "managed-services.todo-dapr.local");
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
