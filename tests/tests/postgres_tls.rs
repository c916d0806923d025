//! The backend reaches a PostgreSQL that requires TLS — as a managed database does — and
//! verifies its certificate against the CA given in the URL (`sslmode=verify-full`,
//! `sslrootcert`); a server whose certificate that CA did not sign is refused at start-up.
//!
//! Each test makes its own CA and server certificate and runs its own TLS-only server (the
//! harness's `pg_hba.conf` rejects connections without TLS, so a backend that connects at all
//! speaks TLS). No sidecar is needed: the REST write path only touches PostgreSQL.

mod support;

use std::path::Path;

use anyhow::{Context, ensure};
use harness::{Binaries, Postgres, ServerTls, Service, ServiceOptions, ports};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use support::tokens::{JWT_FIXTURE_KEY, token_for};

/// A test CA: its certificate (PEM) and the issuer that signs server certificates.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    fn cert_pem(&self) -> String {
        self.issuer.as_ref().pem()
    }

    /// A server certificate for 127.0.0.1 and localhost, signed by this CA.
    fn server(&self) -> anyhow::Result<ServerTls> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "postgres.test");
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The backend against `postgres`, trusting the CA in `ca_file`.
async fn start_backend(
    postgres: &Postgres,
    ca_file: &Path,
    log_dir: &Path,
) -> anyhow::Result<Service> {
    let port = ports::free_port()?;
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        postgres.url("backend"),
        ca_file.display()
    );
    Service::start(
        &ServiceOptions {
            binary: "backend".into(),
            log_name: format!("backend-tls-{port}"),
            port,
            env: vec![
                ("BACKEND_PORT".into(), port.to_string()),
                ("DATABASE_URL".into(), url),
                ("JWT_SECRET".into(), JWT_FIXTURE_KEY.into()),
                // No sidecar here: nothing in these tests goes through one.
                ("DAPR_HTTP_PORT".into(), ports::free_port()?.to_string()),
            ],
            binary_path: None,
        },
        log_dir,
        false,
    )
    .await
}

#[tokio::test]
async fn the_backend_writes_over_verified_tls() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let logs = harness::stack::default_log_dir();
    let ca = TestCa::new("todo-dapr test CA")?;
    let bins = Binaries::locate()?;
    let postgres = Postgres::start_tls(&bins, root.path(), &logs, &ca.server()?).await?;
    postgres.create_database("backend")?;
    let ca_file = root.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem())?;

    let backend = start_backend(&postgres, &ca_file, &logs).await?;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/tasks", backend.base_url()))
        .bearer_auth(token_for("tls-user"))
        .json(&serde_json::json!({"title": "over TLS"}))
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == 201,
        "create answered {status}: {}",
        response.text().await?
    );

    // Positive evidence from the server's side: the backend's sessions are encrypted.
    let encrypted = postgres.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = 'backend' AND s.ssl",
    )?;
    let n: u32 = encrypted.parse().context("pg_stat_ssl count")?;
    ensure!(n >= 1, "no TLS session of the backend in pg_stat_ssl");
    let rows = postgres.psql("backend", "SELECT title FROM tasks")?;
    ensure!(rows == "over TLS", "tasks table holds {rows:?}");
    Ok(())
}

#[tokio::test]
async fn the_backend_refuses_a_server_its_ca_did_not_sign() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let logs = harness::stack::default_log_dir();
    let server_ca = TestCa::new("the server's CA")?;
    let other_ca = TestCa::new("another CA")?;
    let bins = Binaries::locate()?;
    let postgres = Postgres::start_tls(&bins, root.path(), &logs, &server_ca.server()?).await?;
    postgres.create_database("backend")?;
    let ca_file = root.path().join("other-ca.crt");
    std::fs::write(&ca_file, other_ca.cert_pem())?;

    let Err(error) = start_backend(&postgres, &ca_file, &logs).await else {
        anyhow::bail!("the backend started against a server it cannot verify");
    };
    let text = format!("{error:#}");
    ensure!(
        text.contains("connecting to PostgreSQL"),
        "the backend failed, but not at the connection: {text}"
    );
    ensure!(
        text.to_ascii_lowercase().contains("certificate"),
        "the failure does not name the certificate: {text}"
    );
    Ok(())
}
