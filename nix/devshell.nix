# What `nix develop` adds to the toolchain: every program `cargo xtask` (deps, test, images,
# cluster, up) and the test harness look for, so that inside the shell `cargo xtask test` finds
# them all and installs nothing. xtask/src/tools.rs lists those programs; the offline flake check
# (xtask/src/nix_check.rs) fails when one of them is in none of these packages.
{ pkgs }:
{
  packages = with pkgs; [
    cargo-nextest
    sqlx-cli
    # The Dapr runtime (daprd, Scheduler), etcd, CoreDNS, helm and the Kubernetes binaries are
    # built from their Go modules by xtask; Dapr 1.18 needs Go >= 1.26.
    go_1_26
    dapr-cli
    # Databases and brokers the suites start as processes.
    postgresql
    redis
    jdk17_headless
    maven
    rabbitmq-server
    erlang
    # Observability checks: promtool and Prometheus, tsc through Node.js, grafana/build.py and the
    # Helm check's venv through Python.
    prometheus
    nodejs
    python3
    # Shipping checks: the OCI image tools, the chart, the offline flake check.
    skopeo
    umoci
    glibc.bin
    kubectl
    kubernetes-helm
    git
    nix
    # The local Kubernetes node of `cargo xtask cluster` and its leak check.
    containerd
    runc
    conntrack-tools
    cni-plugins
    iptables
    iproute2
    util-linux
  ];

  # Where xtask and the harness look for what has no program on PATH of its own: PostgreSQL's
  # server directory (Debian: /usr/lib/postgresql/<major>/bin), the JVM, RabbitMQ's server script
  # and the CNI plugins (Debian: /usr/lib/cni).
  env = {
    PG_BIN_DIR = "${pkgs.postgresql}/bin";
    JAVA_HOME = "${pkgs.jdk17_headless}";
    RABBITMQ_SERVER = "${pkgs.rabbitmq-server}/bin/rabbitmq-server";
    CNI_BIN_DIR = "${pkgs.cni-plugins}/bin";
  };
}
