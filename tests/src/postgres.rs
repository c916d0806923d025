//! A throw-away PostgreSQL cluster: `initdb` into a temp dir, `postgres` on a free port.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: there the cluster is created and run
//! as Debian's `postgres` user. Unix sockets are switched off; everything connects over TCP.
//! [`Postgres::start_tls`] starts one that accepts TLS connections only, as managed databases
//! (OCI Database with PostgreSQL) do.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};

use crate::process::{ManagedProcess, StopPolicy};
use crate::{Binaries, ports, wait};

/// The superuser of harness clusters (trust authentication on loopback only).
pub const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server owned by the harness.
#[derive(Debug)]
pub struct Postgres {
    process: ManagedProcess,
    port: u16,
    psql: PathBuf,
}

/// The server side of TLS: a certificate (PEM, chain allowed) and its private key (PEM).
#[derive(Clone)]
pub struct ServerTls {
    /// The server certificate, then any intermediates.
    pub cert_pem: String,
    /// The certificate's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a test fixture, but keys stay out of logs all the same.
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl Postgres {
    /// Creates a cluster under `root/postgres` and starts it; returns once it accepts queries.
    pub async fn start(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        detached: bool,
    ) -> anyhow::Result<Self> {
        Self::launch(bins, root, log_dir, detached, None).await
    }

    /// [`Postgres::start`], but the server presents `tls` and refuses connections without TLS
    /// (`hostssl` only in `pg_hba.conf`), so whatever connects proves it speaks TLS.
    pub async fn start_tls(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        tls: &ServerTls,
    ) -> anyhow::Result<Self> {
        Self::launch(bins, root, log_dir, false, Some(tls)).await
    }

    async fn launch(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        detached: bool,
        tls: Option<&ServerTls>,
    ) -> anyhow::Result<Self> {
        let data = root.join("postgres");
        std::fs::create_dir_all(&data)?;
        let owner = run_as_owner(&data)?;

        let mut initdb = Command::new(bins.pg("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C.UTF-8"]);
        apply_owner(&mut initdb, owner);
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let port = ports::free_port()?;
        let mut cmd = Command::new(bins.pg("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            // Test data is disposable: trade durability for speed.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"]);
        if let Some(tls) = tls {
            install_tls(&data, tls, owner)?;
            cmd.args(["-c", "ssl=on"]).args([
                "-c",
                "ssl_cert_file=server.crt",
                "-c",
                "ssl_key_file=server.key",
            ]);
        }
        apply_owner(&mut cmd, owner);
        // SIGINT is PostgreSQL's "fast shutdown": roll back sessions and stop at once.
        let stop = StopPolicy {
            signal: Signal::SIGINT,
            grace: Duration::from_secs(10),
        };
        let mut process = ManagedProcess::spawn("postgres", cmd, log_dir, stop, detached)?;

        let pg_isready = bins.pg("pg_isready");
        let port_arg = port.to_string();
        wait::until_running(
            "postgres to accept connections",
            Duration::from_secs(30),
            &mut process,
            || {
                let ready = Command::new(&pg_isready)
                    .args(["-q", "-h", "127.0.0.1", "-p", &port_arg, "-U", SUPERUSER])
                    .status();
                async move { Ok::<_, anyhow::Error>(ready?.success().then_some(())) }
            },
        )
        .await?;
        Ok(Self {
            process,
            port,
            psql: bins.pg("psql"),
        })
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for `database` (sqlx style).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A libpq key/value DSN for `database` (what Dapr's `state.postgresql` expects).
    pub fn dsn(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={database} sslmode=disable",
            self.port
        )
    }

    /// Creates an empty database (names are limited to `[a-z0-9_]`).
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!("database name `{name}` must match [a-z0-9_]+");
        }
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(())
    }

    /// Runs one SQL command with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(&self.psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The server process (for logs, or to stop it in a failure test).
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }

    /// Leaves the server running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.detach()
    }
}

/// Writes the certificate and key into the data directory (the key readable by the server's
/// user only, as PostgreSQL demands) and lets loopback clients in over TLS only.
fn install_tls(data: &Path, tls: &ServerTls, owner: Option<(Uid, Gid)>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let files = [
        ("server.crt", tls.cert_pem.as_str(), 0o644),
        ("server.key", tls.key_pem.as_str(), 0o600),
        (
            "pg_hba.conf",
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            0o600,
        ),
    ];
    for (name, text, mode) in files {
        let path = data.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid.as_raw()), Some(gid.as_raw()))
                .with_context(|| format!("chown {}", path.display()))?;
        }
    }
    Ok(())
}

/// When we are root, PostgreSQL must run as another user: returns that user's ids and hands it
/// the data directory (and makes the path to it traversable).
fn run_as_owner(data: &Path) -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name(SUPERUSER)?
        .context("running as root needs the `postgres` system user (installed with Debian's postgresql package)")?;
    std::os::unix::fs::chown(data, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .with_context(|| format!("chown {}", data.display()))?;
    // Temp dirs are created 0700: open our own stack root for traversal, and check that the
    // directories above it (not ours to change) already allow it.
    use std::os::unix::fs::PermissionsExt;
    if let Some(root) = data.parent() {
        let mode = std::fs::metadata(root)?.permissions().mode();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o011))?;
        for dir in root.ancestors().skip(1) {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o001 == 0 {
                bail!(
                    "`{}` is not traversable by the `postgres` user; put the stack's data elsewhere",
                    dir.display()
                );
            }
        }
    }
    Ok(Some((user.uid, user.gid)))
}

fn apply_owner(cmd: &mut Command, owner: Option<(Uid, Gid)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
        // HOME of root is not readable by the server user; initdb does not need one.
        cmd.env("HOME", "/tmp");
    }
}
