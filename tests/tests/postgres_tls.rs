//! The backend reaches a PostgreSQL that requires TLS — as a managed database does — and
//! verifies its certificate against the CA given in the URL (`sslmode=verify-full`,
//! `sslrootcert`); a server whose certificate that CA did not sign is refused at start-up.
//!
//! Each test makes its own CA and server certificate and runs its own TLS-only server (the
//! harness's `pg_hba.conf` rejects connections without TLS, so a backend that connects at all
//! speaks TLS). No sidecar is needed: the REST write path only touches PostgreSQL.
//!
//! The last test is the database as a pod of a local Kubernetes sees it: on an address other
//! than 127.0.0.1 (127.0.0.2, on Linux's loopback without configuration), TLS only, and a
//! superuser password (`scram-sha-256`) that the connection string carries.

mod support;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use harness::{Binaries, Postgres, PostgresOptions, Service, ServiceOptions, ports};
use support::ca::TestCa;
use support::tokens::{JWT_FIXTURE_KEY, token_for};

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
    creates_a_task_over_tls(&backend, &postgres, "tls-user", "over TLS").await?;
    let rows = postgres.psql("backend", "SELECT title FROM tasks")?;
    ensure!(rows == "over TLS", "tasks table holds {rows:?}");
    Ok(())
}

/// Creates a task through `backend` and proves from the server's side that the backend's
/// sessions are encrypted.
async fn creates_a_task_over_tls(
    backend: &Service,
    postgres: &Postgres,
    user: &str,
    title: &str,
) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/tasks", backend.base_url()))
        .bearer_auth(token_for(user))
        .json(&serde_json::json!({ "title": title }))
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == 201,
        "create answered {status}: {}",
        response.text().await?
    );
    let encrypted = postgres.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = 'backend' AND s.ssl",
    )?;
    let n: u32 = encrypted.parse().context("pg_stat_ssl count")?;
    ensure!(n >= 1, "no TLS session of the backend in pg_stat_ssl");
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

/// Not 127.0.0.1, yet on every Linux machine: the whole 127/8 is routed to `lo`.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Marked as a test fixture: not a real credential. The space, `/`, `@` and `'` must survive
/// the URL and the DSN.
const PG_PASSWORD: &str = "test-fixture pg/pass@word's";

/// `psql -c 'SELECT 1'` with a libpq connection string and no password from the environment
/// unless `password` is given; `Err` carries psql's message.
fn psql_select_1(bins: &Binaries, conninfo: &str, password: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(bins.pg("psql"));
    cmd.args([conninfo, "-At", "-c", "SELECT 1"])
        .env_remove("PGPASSWORD")
        .env("PGCONNECT_TIMEOUT", "10");
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    let out = cmd.output().map_err(|e| format!("running psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[tokio::test]
async fn the_backend_logs_in_with_a_password_over_verified_tls_on_a_non_loopback_address()
-> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let logs = harness::stack::default_log_dir();
    let ca = TestCa::new("todo-dapr test CA")?;
    let bins = Binaries::locate()?;
    let opts = PostgresOptions {
        listen: ELSEWHERE,
        // What a local cluster adds: its pods' network (nothing here comes from it).
        client_networks: vec!["10.244.0.0/16".parse()?],
        tls: Some(ca.server_for("postgres.test", &["127.0.0.2"])?),
        superuser_password: Some(PG_PASSWORD.into()),
        ..PostgresOptions::default()
    };
    harness::secrets::record(&logs, "postgres superuser password", PG_PASSWORD)?;
    let postgres = Postgres::start_with(&bins, root.path(), &logs, &opts).await?;
    let url = postgres.url("backend");
    ensure!(
        url.starts_with("postgres://postgres:test-fixture%20pg%2Fpass%40word%27s@127.0.0.2:"),
        "{url}"
    );
    // The harness's own psql goes to 127.0.0.2 with the password too.
    postgres.create_database("backend")?;
    let ca_file = root.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem())?;

    let backend = start_backend(&postgres, &ca_file, &logs).await?;
    creates_a_task_over_tls(&backend, &postgres, "pw-user", "with a password").await?;

    // The same DSN Dapr's state store would get, verified against the CA.
    let verified = format!(
        "{} sslmode=verify-full sslrootcert={}",
        postgres.dsn("postgres"),
        ca_file.display()
    );
    psql_select_1(&bins, &verified, None)
        .map_err(|e| anyhow::anyhow!("the DSN with its password was refused: {e}"))?;

    // What is refused, and why.
    let port = postgres.port();
    let base = format!(
        "host={ELSEWHERE} port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        ca_file.display()
    );
    let wrong = psql_select_1(&bins, &base, Some("not-the-password"))
        .err()
        .context("a wrong password was accepted")?;
    ensure!(
        wrong.contains("password authentication failed"),
        "wrong password: {wrong}"
    );
    let missing = psql_select_1(&bins, &base, None)
        .err()
        .context("no password was accepted")?;
    ensure!(
        missing.contains("no password supplied") || missing.contains("password authentication"),
        "no password: {missing}"
    );
    let plain =
        format!("host={ELSEWHERE} port={port} user=postgres dbname=postgres sslmode=disable");
    let refused = psql_select_1(&bins, &plain, Some(PG_PASSWORD))
        .err()
        .context("a connection without TLS was accepted")?;
    ensure!(refused.contains("no encryption"), "without TLS: {refused}");
    ensure!(
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err(),
        "the server also listens on 127.0.0.1:{port}"
    );
    Ok(())
}
