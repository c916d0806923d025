//! A throw-away PostgreSQL cluster: `initdb` into a temp dir, `postgres` on a free port.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: there the cluster is created and run
//! as Debian's `postgres` user. Unix sockets are switched off; everything connects over TCP.
//! [`Postgres::start_tls`] starts one that accepts TLS connections only, as managed databases
//! (OCI Database with PostgreSQL) do.
//!
//! [`Postgres::start_with`] takes [`PostgresOptions`] for the rest of what such a database looks
//! like from a Kubernetes pod: it listens on another IPv4 address (pods in their own network
//! namespace reach the host through a veth address such as 10.201.0.1, never through the host's
//! 127.0.0.1), admits the pod network in `pg_hba.conf`, and can demand a superuser password
//! (`scram-sha-256`), so the connection string a cluster keeps in a Secret carries one.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};

use crate::net::Ipv4Cidr;
use crate::process::{ManagedProcess, StopPolicy};
use crate::restartable::Restartable;
pub use crate::tls::ServerTls;
use crate::{Binaries, ports, wait};

/// The superuser of harness clusters (trust authentication unless
/// [`PostgresOptions::superuser_password`] is set).
pub const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server owned by the harness.
pub struct Postgres {
    process: Restartable,
    host: Ipv4Addr,
    port: u16,
    password: Option<String>,
    tls: bool,
    psql: PathBuf,
    pg_isready: PathBuf,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("process", &self.process)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// How [`Postgres::start_with`] starts a cluster. The default is what [`Postgres::start`] does:
/// 127.0.0.1, no TLS, trust authentication.
#[derive(Clone)]
pub struct PostgresOptions {
    /// The one IPv4 address the server listens on (`listen_addresses`), and the host of
    /// [`Postgres::url`] and [`Postgres::dsn`]. It must be an address of this machine.
    pub listen: Ipv4Addr,
    /// Networks admitted in `pg_hba.conf` besides the listen address and the host's own
    /// 127.0.0.1 — e.g. the pod CIDR `10.244.0.0/16` of a local Kubernetes.
    pub client_networks: Vec<Ipv4Cidr>,
    /// Present this certificate and refuse every connection without TLS (`hostnossl … reject`).
    pub tls: Option<ServerTls>,
    /// The superuser's password; every TCP connection must prove it (`scram-sha-256`). `None`:
    /// the admitted sources are trusted without one.
    pub superuser_password: Option<String>,
    /// Own process group, to outlive the terminal (`cargo xtask up --detach`).
    pub detached: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            listen: Ipv4Addr::LOCALHOST,
            client_networks: Vec::new(),
            tls: None,
            superuser_password: None,
            detached: false,
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("listen", &self.listen)
            .field("client_networks", &self.client_networks)
            .field("tls", &self.tls)
            .field(
                "superuser_password",
                &self.superuser_password.as_ref().map(|_| "<set>"),
            )
            .field("detached", &self.detached)
            .finish()
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
        let opts = PostgresOptions {
            detached,
            ..PostgresOptions::default()
        };
        Self::start_with(bins, root, log_dir, &opts).await
    }

    /// [`Postgres::start`], but the server presents `tls` and refuses connections without TLS
    /// (`hostssl` only in `pg_hba.conf`), so whatever connects proves it speaks TLS.
    pub async fn start_tls(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        tls: &ServerTls,
    ) -> anyhow::Result<Self> {
        let opts = PostgresOptions {
            tls: Some(tls.clone()),
            ..PostgresOptions::default()
        };
        Self::start_with(bins, root, log_dir, &opts).await
    }

    /// Creates a cluster under `root/postgres` as `opts` says and starts it; returns once it
    /// accepts connections on `opts.listen`.
    pub async fn start_with(
        bins: &Binaries,
        root: &Path,
        log_dir: &Path,
        opts: &PostgresOptions,
    ) -> anyhow::Result<Self> {
        if let Some(password) = &opts.superuser_password {
            check_password(password)?;
        }
        if let Some(tls) = &opts.tls {
            tls.check()?;
        }
        let data = root.join("postgres");
        std::fs::create_dir_all(&data)?;
        let owner = run_as_owner(&data)?;

        let mut initdb = Command::new(bins.pg("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C.UTF-8"]);
        // initdb reads the password from a file (first line), not from its command line,
        // where `ps` would show it. The file is the server user's, and gone after initdb.
        let pwfile = match &opts.superuser_password {
            Some(password) => {
                let file = tempfile::Builder::new()
                    .prefix("postgres-superuser.")
                    .tempfile_in(root)
                    .context("creating initdb's password file")?;
                std::fs::write(file.path(), format!("{password}\n"))
                    .context("writing initdb's password file")?;
                chown_to(file.path(), owner)?;
                initdb.arg(format!("--pwfile={}", file.path().display()));
                Some(file)
            }
            None => None,
        };
        apply_owner(&mut initdb, owner);
        let out = initdb.output().context("running initdb")?;
        drop(pwfile);
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Some(hba) = pg_hba(opts) {
            write_owned(&data.join("pg_hba.conf"), &hba, 0o600, owner)?;
        }

        let host = opts.listen;
        let port = ports::free_port_on(host).with_context(|| {
            format!("finding a free port on {host} (is it an address of this machine?)")
        })?;
        let mut args: Vec<String> = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            format!("listen_addresses={host}"),
            "-c".into(),
            "unix_socket_directories=".into(),
        ];
        // Test data is disposable: trade durability for speed. The fault tests stop the server
        // cleanly (a fast shutdown writes everything out), so they lose nothing to these.
        for setting in [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
        ] {
            args.extend(["-c".into(), setting.into()]);
        }
        if let Some(tls) = &opts.tls {
            install_tls(&data, tls, owner)?;
            for setting in [
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
            ] {
                args.extend(["-c".into(), setting.into()]);
            }
        }
        let server = bins.pg("postgres");
        let recipe = Box::new(move || {
            let mut cmd = Command::new(&server);
            cmd.args(&args);
            apply_owner(&mut cmd, owner);
            cmd
        });
        // SIGINT is PostgreSQL's "fast shutdown": roll back sessions and stop at once.
        let stop = StopPolicy {
            signal: Signal::SIGINT,
            grace: Duration::from_secs(10),
        };
        let mut process = Restartable::spawn("postgres", recipe, log_dir, stop, opts.detached)?;
        let pg_isready = bins.pg("pg_isready");
        wait_accepting(&pg_isready, host, port, process.get_mut()).await?;
        Ok(Self {
            process,
            host,
            port,
            password: opts.superuser_password.clone(),
            tls: opts.tls.is_some(),
            psql: bins.pg("psql"),
            pg_isready,
        })
    }

    /// The address it listens on (127.0.0.1 unless [`PostgresOptions::listen`] said otherwise).
    pub fn host(&self) -> Ipv4Addr {
        self.host
    }

    /// The TCP port on [`Postgres::host`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for `database` (sqlx style), with the superuser's password if it has
    /// one (percent-encoded). For TLS, append e.g. `?sslmode=verify-full&sslrootcert=<CA file>`.
    pub fn url(&self, database: &str) -> String {
        let user = match &self.password {
            Some(password) => format!("{SUPERUSER}:{}", percent_encode(password)),
            None => SUPERUSER.to_owned(),
        };
        format!("postgres://{user}@{}:{}/{database}", self.host, self.port)
    }

    /// A libpq key/value DSN for `database` (what Dapr's `state.postgresql` expects), with the
    /// superuser's password if it has one. `sslmode` is `disable`, or `require` for a TLS-only
    /// server; libpq takes the last of repeated keys, so appending
    /// ` sslmode=verify-full sslrootcert=<CA file>` tightens it.
    pub fn dsn(&self, database: &str) -> String {
        let password = self
            .password
            .as_deref()
            .map(|p| format!(" password={}", dsn_quote(p)))
            .unwrap_or_default();
        let sslmode = if self.tls { "require" } else { "disable" };
        format!(
            "host={} port={} user={SUPERUSER}{password} dbname={database} sslmode={sslmode}",
            self.host, self.port
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
        let mut cmd = Command::new(&self.psql);
        cmd.args([
            "-h",
            &self.host.to_string(),
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
        ])
        .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]);
        // The environment rather than the command line, where `ps` would show it.
        match &self.password {
            Some(password) => cmd.env("PGPASSWORD", password),
            None => cmd.env_remove("PGPASSWORD"),
        };
        let out = cmd.output().context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The server's PID (for its CPU and memory in the benchmarks), `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The server process (for logs, or to stop it in a failure test).
    pub fn process_mut(&mut self) -> &mut ManagedProcess {
        self.process.get_mut()
    }

    /// Stops the server with a fast shutdown (sessions are ended, everything committed is
    /// written out), as an operator's restart or a failover does.
    pub fn stop(&self) {
        self.process.stop();
    }

    /// Starts the stopped server again on the same port and data; returns once it accepts
    /// connections.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.process.start_again()?;
        wait::until(
            "postgres to accept connections again",
            Duration::from_secs(30),
            || {
                let up = self
                    .process
                    .ensure_running()
                    .and_then(|()| isready(&self.pg_isready, self.host, self.port));
                async move { up.map(|up| up.then_some(())) }
            },
        )
        .await?;
        Ok(())
    }

    /// Leaves the server running after this handle is dropped; returns its PID.
    pub fn detach(self) -> Option<u32> {
        self.process.into_inner().detach()
    }
}

/// Whether the server accepts connections. pg_isready asks only that: no authentication, so it
/// works the same with a password and with TLS only.
fn isready(pg_isready: &Path, host: Ipv4Addr, port: u16) -> anyhow::Result<bool> {
    let status = Command::new(pg_isready)
        .args(["-q", "-h", &host.to_string(), "-p", &port.to_string()])
        .args(["-U", SUPERUSER])
        .status()
        .context("running pg_isready")?;
    Ok(status.success())
}

/// Waits until a freshly started server accepts connections, failing early if it exits.
async fn wait_accepting(
    pg_isready: &Path,
    host: Ipv4Addr,
    port: u16,
    process: &mut ManagedProcess,
) -> anyhow::Result<()> {
    wait::until_running(
        "postgres to accept connections",
        Duration::from_secs(30),
        process,
        || {
            let up = isready(pg_isready, host, port);
            async move { up.map(|up| up.then_some(())) }
        },
    )
    .await?;
    Ok(())
}

/// Writes the certificate and key into the data directory (the key readable by the server's
/// user only, as PostgreSQL demands).
fn install_tls(data: &Path, tls: &ServerTls, owner: Option<(Uid, Gid)>) -> anyhow::Result<()> {
    write_owned(&data.join("server.crt"), &tls.cert_pem, 0o644, owner)?;
    write_owned(&data.join("server.key"), &tls.key_pem, 0o600, owner)
}

/// The `pg_hba.conf` for `opts`, or `None` to keep the one initdb wrote for the default
/// (trust on loopback, which is all [`Postgres::start`] needs).
///
/// Admitted: the host itself (127.0.0.1 — also the source of the host's connections to other
/// 127.x addresses), the listen address, and [`PostgresOptions::client_networks`]. With TLS,
/// every connection without it is refused first, from anywhere, so the server is TLS-only
/// whatever the list says; with a password, every admitted connection must prove it.
fn pg_hba(opts: &PostgresOptions) -> Option<String> {
    if opts.listen == Ipv4Addr::LOCALHOST
        && opts.client_networks.is_empty()
        && opts.tls.is_none()
        && opts.superuser_password.is_none()
    {
        return None;
    }
    let method = if opts.superuser_password.is_some() {
        "scram-sha-256"
    } else {
        "trust"
    };
    let (kind, mut text) = if opts.tls.is_some() {
        (
            "hostssl",
            String::from("hostnossl all all 0.0.0.0/0 reject\n"),
        )
    } else {
        ("host", String::new())
    };
    let mut sources: Vec<Ipv4Cidr> = Vec::new();
    let wanted = [Ipv4Addr::LOCALHOST, opts.listen].map(Ipv4Cidr::host);
    for net in wanted.iter().chain(&opts.client_networks) {
        if !sources.contains(net) {
            sources.push(*net);
        }
    }
    for source in sources {
        text.push_str(&format!("{kind} all all {source} {method}\n"));
    }
    Some(text)
}

/// Refuses passwords initdb's `--pwfile` (one line) cannot carry.
fn check_password(password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !password.is_empty(),
        "PostgresOptions::superuser_password is empty"
    );
    anyhow::ensure!(
        !password.chars().any(char::is_control),
        "PostgresOptions::superuser_password holds a control character"
    );
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (URL user-info).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A libpq conninfo value in single quotes, with `\` and `'` escaped.
fn dsn_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Writes `text` to `path` with `mode`, owned by the server's user when we are root.
fn write_owned(
    path: &Path,
    text: &str,
    mode: u32,
    owner: Option<(Uid, Gid)>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    chown_to(path, owner)
}

fn chown_to(path: &Path, owner: Option<(Uid, Gid)>) -> anyhow::Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
            .with_context(|| format!("chown {}", path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_initdbs_hba() {
        assert_eq!(pg_hba(&PostgresOptions::default()), None);
    }

    #[test]
    fn tls_with_a_password_admits_the_listen_address_and_the_pod_network_over_tls_only() {
        let opts = PostgresOptions {
            listen: Ipv4Addr::new(10, 201, 0, 1),
            client_networks: vec!["10.244.0.0/16".parse().unwrap()],
            tls: Some(ServerTls {
                cert_pem: String::new(),
                key_pem: String::new(),
            }),
            superuser_password: Some("fixture-pw-4711".into()),
            detached: false,
        };
        let hba = pg_hba(&opts).unwrap();
        let lines: Vec<&str> = hba.lines().collect();
        assert_eq!(
            lines,
            [
                "hostnossl all all 0.0.0.0/0 reject",
                "hostssl all all 127.0.0.1/32 scram-sha-256",
                "hostssl all all 10.201.0.1/32 scram-sha-256",
                "hostssl all all 10.244.0.0/16 scram-sha-256",
            ]
        );
        assert!(!format!("{opts:?}").contains("4711"), "{opts:?}");
    }

    #[test]
    fn another_address_without_tls_or_password_is_trusted_plainly() {
        let opts = PostgresOptions {
            listen: Ipv4Addr::new(127, 0, 0, 2),
            ..PostgresOptions::default()
        };
        let hba = pg_hba(&opts).unwrap();
        assert_eq!(
            hba,
            "host all all 127.0.0.1/32 trust\nhost all all 127.0.0.2/32 trust\n"
        );
    }

    #[test]
    fn passwords_are_escaped_for_urls_and_dsns() {
        assert_eq!(percent_encode("a b/c@d:e%~"), "a%20b%2Fc%40d%3Ae%25~");
        assert_eq!(dsn_quote(r"it's a\b"), r"'it\'s a\\b'");
        assert!(check_password("two\nlines").is_err());
        assert!(check_password("").is_err());
        assert!(check_password("fine pass-word!").is_ok());
    }
}
