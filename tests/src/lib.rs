//! Process harness for todo-dapr's integration and end-to-end tests, and for `cargo xtask up`.
//!
//! It starts the real infrastructure — PostgreSQL (its own `initdb` cluster), the pub/sub broker
//! of the chosen profile (Redis by default; Apache Kafka in KRaft mode from Maven Central jars, or
//! Debian's RabbitMQ), the Dapr Scheduler and one `daprd` per app — as child processes on free
//! 127.0.0.1 ports, with data in a temporary directory and each process's output in a log file.
//! PostgreSQL, Kafka and the SMTP sink can also listen on another IPv4 address of the host, as
//! TLS-only servers with passwords ([`PostgresOptions`], [`KafkaOptions`]), for pods of a local
//! Kubernetes that reach the host through a veth pair and expect managed cloud services.
//! Every process is stopped by the PID this harness started, when its handle is dropped (also
//! when a test fails), never by name.
//!
//! Unlike container-based fixtures, nothing here needs a daemon: the binaries come from Debian
//! packages and from the Dapr build that `cargo xtask deps` makes.

pub mod binaries;
pub mod daprd;
pub mod grafana;
pub mod kafka;
pub mod net;
pub mod pod;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod rabbitmq;
pub mod redis;
pub mod resources;
pub mod restartable;
pub mod scheduler;
pub mod secrets;
pub mod service;
pub mod smtp;
pub mod sockets;
pub mod stack;
pub mod suite;
pub mod tls;
pub mod wait;

pub use binaries::Binaries;
pub use daprd::{AppHealthCheck, Daprd, DaprdOptions, DaprdPorts};
pub use kafka::{Kafka, KafkaOptions, SaslSsl};
pub use net::Ipv4Cidr;
pub use pod::{Pod, PodOptions};
pub use postgres::{Postgres, PostgresOptions};
pub use process::ManagedProcess;
pub use prometheus::Prometheus;
pub use rabbitmq::RabbitMq;
pub use redis::Redis;
pub use resources::{Broker, Resources};
pub use restartable::Restartable;
pub use scheduler::Scheduler;
pub use service::{Service, ServiceOptions};
pub use smtp::{DataGate, SmtpSink};
pub use stack::{BrokerServer, Infra, InfraOptions, TopicGrant};
pub use tls::ServerTls;

/// Root of the repository (the workspace), found from this crate's manifest directory.
pub fn repo_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.to_path_buf(), std::path::Path::to_path_buf)
}
