//! The host's side of the node: starting it in its namespaces, linking it to the host, and
//! stopping it by the PIDs recorded at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use harness::process::{StopPolicy, stop_recorded};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::addresses::{
    API_PORT, BRIDGE, BRIDGE_IP, BRIDGE_PREFIX, CGROUP_ROOT, CLUSTER_CIDR, HOST_IP, HOST_LINK,
    LINK_PREFIX, NODE_IP, NODE_LINK, NODE_NAME, SERVICE_CIDR,
};
use super::node::{NodePlan, Readiness, Step, tail};
use super::{config, pki};
use crate::kube_build::KubeTools;
use crate::step;

/// What `down` needs of a running node; saved next to its data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    /// `unshare`, which holds the node's init as its child and SIGTERMs it when it dies.
    pub(crate) unshare_pid: u32,
    /// The node's init (PID 1 inside), as the host sees it.
    pub(crate) init_pid: u32,
    /// The program the init runs (this xtask binary), checked before signalling.
    pub(crate) init_exe: PathBuf,
    /// The node's PID namespace (`/proc/<pid>/ns/pid`), to find anything left in it.
    pub(crate) pid_namespace: String,
    pub(crate) data_dir: PathBuf,
    /// Host directories `up` created for the node's private mounts, removed by `down`.
    pub(crate) created_dirs: Vec<PathBuf>,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) containerd_socket: PathBuf,
}

/// Host paths some node programs write to regardless of configuration: each gets a private
/// tmpfs inside the node's mount namespace.
const PRIVATE_DIRS: [&str; 4] = [
    "/run/containerd",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
];

/// Starts the node and returns once its API server answers and the node is Ready.
pub(crate) fn start(
    tools: &KubeTools,
    pause_image: &str,
    data_dir: &Path,
) -> anyhow::Result<NodeRecord> {
    if link_exists(HOST_LINK) {
        bail!(
            "{HOST_LINK} already exists: a cluster is running (stop it with `cargo xtask cluster down`) \
             or one was not stopped cleanly"
        );
    }
    for hierarchy in cgroup_hierarchies()? {
        if hierarchy.join(CGROUP_ROOT).exists() {
            bail!(
                "{} exists: another node is running or was not cleaned up",
                hierarchy.join(CGROUP_ROOT).display()
            );
        }
    }
    let pki = pki::create(&data_dir.join("pki"))?;
    let logs = data_dir.join("logs");
    for sub in [
        "logs",
        "cni/net.d",
        "cni/ipam",
        "containerd",
        "kubelet",
        "pod-logs",
        "etcd",
    ] {
        std::fs::create_dir_all(data_dir.join(sub))?;
    }
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = data_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let containerd_toml = write(
        "containerd.toml",
        config::containerd_toml(data_dir, pause_image),
    )?;
    write(
        "cni/net.d/10-todo-dapr.conflist",
        config::cni_conflist(data_dir),
    )?;
    // Pods resolve through the cluster DNS only; the node itself has no upstream resolver.
    write("resolv.conf", String::new())?;
    let kubelet_yaml = write(
        "kubelet.yaml",
        config::kubelet_yaml(
            data_dir,
            &pki.ca.cert,
            &pki.kubelet_serving.cert,
            &pki.kubelet_serving.key,
        ),
    )?;
    let proxy_yaml = write(
        "kube-proxy.yaml",
        config::kube_proxy_yaml(&pki.proxy_kubeconfig),
    )?;
    let corefile = write("Corefile", config::corefile(&pki.coredns_kubeconfig))?;
    let coredns_rbac = write("coredns-rbac.yaml", config::coredns_rbac_yaml())?;
    let socket = data_dir.join("containerd/containerd.sock");

    let mut created_dirs = Vec::new();
    for dir in PRIVATE_DIRS {
        let dir = Path::new(dir);
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            created_dirs.push(dir.to_path_buf());
        }
    }

    let p = |path: &Path| path.display().to_string();
    let kubectl = p(&tools.kubectl);
    let node_admin = p(&pki.node_admin_kubeconfig);
    let start = |name: &str, argv: Vec<String>, ready: Readiness| Step::Start {
        name: name.into(),
        log: logs.join(format!("{name}.log")),
        argv,
        ready,
    };
    let tcp = |port: u16| Readiness::Tcp(([127, 0, 0, 1], port).into());
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let steps = vec![
        start(
            "containerd",
            args(&["containerd", "--config", &p(&containerd_toml)]),
            Readiness::Command(args(&["ctr", "--address", &p(&socket), "version"])),
        ),
        start(
            "etcd",
            args(&[
                &p(&tools.etcd),
                "--name",
                NODE_NAME,
                "--data-dir",
                &p(&data_dir.join("etcd")),
                "--listen-client-urls",
                "http://127.0.0.1:2379",
                "--advertise-client-urls",
                "http://127.0.0.1:2379",
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                &format!("{NODE_NAME}=http://127.0.0.1:2380"),
                "--listen-metrics-urls",
                "http://127.0.0.1:2381",
                // A throwaway test node on a shared disk: durability across power loss is not
                // worth an fsync per write.
                "--unsafe-no-fsync",
            ]),
            tcp(2379),
        ),
        start(
            "kube-apiserver",
            args(&[
                &p(&tools.apiserver),
                "--etcd-servers",
                "http://127.0.0.1:2379",
                "--bind-address",
                "0.0.0.0",
                "--secure-port",
                &API_PORT.to_string(),
                "--advertise-address",
                &NODE_IP.to_string(),
                "--service-cluster-ip-range",
                SERVICE_CIDR,
                "--client-ca-file",
                &p(&pki.ca.cert),
                "--tls-cert-file",
                &p(&pki.apiserver.cert),
                "--tls-private-key-file",
                &p(&pki.apiserver.key),
                "--kubelet-client-certificate",
                &p(&pki.apiserver_kubelet_client.cert),
                "--kubelet-client-key",
                &p(&pki.apiserver_kubelet_client.key),
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                &p(&pki.service_account_pub),
                "--service-account-signing-key-file",
                &p(&pki.service_account_key),
                "--authorization-mode",
                "Node,RBAC",
                "--enable-admission-plugins",
                "NodeRestriction",
                "--allow-privileged=true",
                "--profiling=false",
                // The node's name resolves nowhere (no DNS leaves the machine): use its address.
                "--kubelet-preferred-address-types=InternalIP",
            ]),
            Readiness::Command(args(&[
                &kubectl,
                "--kubeconfig",
                &node_admin,
                "get",
                "--raw",
                "/readyz",
            ])),
        ),
        start(
            "kube-controller-manager",
            args(&[
                &p(&tools.controller_manager),
                "--kubeconfig",
                &p(&pki.controller_manager_kubeconfig),
                "--authentication-kubeconfig",
                &p(&pki.controller_manager_kubeconfig),
                "--authorization-kubeconfig",
                &p(&pki.controller_manager_kubeconfig),
                "--bind-address",
                "127.0.0.1",
                "--cluster-signing-cert-file",
                &p(&pki.ca.cert),
                "--cluster-signing-key-file",
                &p(&pki.ca.key),
                "--root-ca-file",
                &p(&pki.ca.cert),
                "--service-account-private-key-file",
                &p(&pki.service_account_key),
                "--use-service-account-credentials=true",
                "--cluster-cidr",
                CLUSTER_CIDR,
                "--allocate-node-cidrs=false",
                "--leader-elect=false",
            ]),
            tcp(10257),
        ),
        start(
            "kube-scheduler",
            args(&[
                &p(&tools.scheduler),
                "--kubeconfig",
                &p(&pki.scheduler_kubeconfig),
                "--authentication-kubeconfig",
                &p(&pki.scheduler_kubeconfig),
                "--authorization-kubeconfig",
                &p(&pki.scheduler_kubeconfig),
                "--bind-address",
                "127.0.0.1",
                "--leader-elect=false",
            ]),
            tcp(10259),
        ),
        Step::Run {
            name: "CoreDNS RBAC".into(),
            argv: args(&[
                &kubectl,
                "--kubeconfig",
                &node_admin,
                "apply",
                "-f",
                &p(&coredns_rbac),
            ]),
        },
        start(
            "coredns",
            args(&[&p(&tools.coredns), "-conf", &p(&corefile)]),
            tcp(8181),
        ),
        start(
            "kubelet",
            args(&[
                &p(&tools.kubelet),
                "--config",
                &p(&kubelet_yaml),
                "--kubeconfig",
                &p(&pki.kubelet_kubeconfig),
                "--container-runtime-endpoint",
                &format!("unix://{}", p(&socket)),
                // cAdvisor asks containerd at this (deprecated, still honoured) address for
                // each container's pod, namespace and name; at its default path it finds none,
                // and `/metrics/cadvisor` has per-container series without those labels.
                "--containerd",
                &p(&socket),
                "--root-dir",
                &p(&data_dir.join("kubelet")),
                "--hostname-override",
                NODE_NAME,
                "--node-ip",
                &NODE_IP.to_string(),
            ]),
            tcp(10248),
        ),
        // After the kubelet: kube-proxy waits (up to 30 s) for its Node object to exist.
        start(
            "kube-proxy",
            args(&[&p(&tools.proxy), "--config", &p(&proxy_yaml)]),
            tcp(10256),
        ),
    ];
    let plan = NodePlan {
        link: NODE_LINK.into(),
        link_cidr: format!("{NODE_IP}/{LINK_PREFIX}"),
        bridge: BRIDGE.into(),
        bridge_cidr: format!("{BRIDGE_IP}/{BRIDGE_PREFIX}"),
        private_dirs: PRIVATE_DIRS.iter().map(PathBuf::from).collect(),
        kernel_view: BTreeMap::from([
            ("vm.overcommit_memory".into(), "1".into()),
            ("vm.panic_on_oom".into(), "0".into()),
            ("kernel.panic".into(), "10".into()),
            ("kernel.panic_on_oops".into(), "1".into()),
        ]),
        cgroup_root: CGROUP_ROOT.into(),
        service_cidr: SERVICE_CIDR.into(),
        scratch: data_dir.join("proc-view"),
        net_sysctls: BTreeMap::from([
            ("net.ipv4.ip_forward".into(), "1".into()),
            ("net.bridge.bridge-nf-call-iptables".into(), "1".into()),
        ]),
        steps,
        ready_file: data_dir.join("node-ready"),
    };
    let plan_path = data_dir.join("node-plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan)?)?;

    let init_exe = own_copy(data_dir)?;
    let node_log = logs.join("node.log");
    let log_file = std::fs::File::create(&node_log)?;
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--mount", "--net", "--fork", "--mount-proc"])
        .args(["--propagation", "private", "--kill-child=SIGTERM", "--"])
        .arg(&init_exe)
        .args(["cluster", "node"])
        .arg(&plan_path)
        .env("PATH", node_path())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("starting unshare")?;
    let unshare_pid = unshare.id();
    let init_pid = match wait_for_child(unshare_pid) {
        Ok(pid) => pid,
        Err(e) => {
            // Nothing was recorded yet: stop our own child here.
            let _ = unshare.kill();
            let _ = unshare.wait();
            return Err(e.context(format!("the node's log:\n{}", tail(&node_log, 10))));
        }
    };
    let record = NodeRecord {
        unshare_pid,
        init_pid,
        init_exe,
        pid_namespace: std::fs::read_link(format!("/proc/{init_pid}/ns/pid"))?
            .display()
            .to_string(),
        data_dir: data_dir.to_path_buf(),
        created_dirs,
        kubeconfig: pki.admin_kubeconfig,
        containerd_socket: socket,
    };
    // Saved before anything can fail, so `down` can always stop what was started.
    std::fs::write(
        data_dir.join("node.json"),
        serde_json::to_vec_pretty(&record)?,
    )?;

    let linked = link_to_node(init_pid);
    if let Err(e) = linked.and_then(|()| wait_ready(&record, &node_log)) {
        let _ = stop(&record);
        return Err(e);
    }
    Ok(record)
}

/// The node's copy of this program, which runs its init (and the SMTP sink of the release):
/// `cargo xtask test` rebuilds `target/debug/xtask` while a cluster runs, and a copy keeps the
/// recorded executable (checked before `down` signals it) the one that was started.
pub(crate) fn own_copy(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let copy = data_dir.join("bin/xtask");
    if !copy.exists() {
        std::fs::create_dir_all(data_dir.join("bin"))?;
        // /proc/self/exe still reads when the file behind it was replaced.
        std::fs::copy("/proc/self/exe", &copy)
            .with_context(|| format!("copying this program to {}", copy.display()))?;
    }
    Ok(copy)
}

/// PATH for the node's programs: the machine's, with the sbin directories (`ip`, `iptables`,
/// `conntrack`, `runc` live there on Debian).
fn node_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/local/sbin:/usr/sbin:/sbin")
}

/// The single child `unshare --fork` starts: the node's init as the host sees it.
#[allow(clippy::disallowed_methods)] // A poll with a deadline in a synchronous command.
fn wait_for_child(parent: u32) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return Ok(pid.parse()?);
        }
        if Instant::now() > deadline {
            bail!("unshare ({parent}) started no node init");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The veth pair between host and node, and the host's routes to pods and services through it.
fn link_to_node(init_pid: u32) -> anyhow::Result<()> {
    ip(&[
        "link",
        "add",
        HOST_LINK,
        "type",
        "veth",
        "peer",
        "name",
        NODE_LINK,
        "netns",
        &init_pid.to_string(),
    ])?;
    ip(&[
        "addr",
        "add",
        &format!("{HOST_IP}/{LINK_PREFIX}"),
        "dev",
        HOST_LINK,
    ])?;
    ip(&["link", "set", HOST_LINK, "up"])?;
    for range in [CLUSTER_CIDR, SERVICE_CIDR] {
        ip(&[
            "route",
            "add",
            range,
            "via",
            &NODE_IP.to_string(),
            "dev",
            HOST_LINK,
        ])?;
    }
    Ok(())
}

#[allow(clippy::disallowed_methods)] // A poll with a deadline in a synchronous command.
fn wait_ready(record: &NodeRecord, node_log: &Path) -> anyhow::Result<()> {
    let ready = record.data_dir.join("node-ready");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = String::new();
    while !ready.exists() {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.init_pid as i32), None).is_err()
        {
            bail!("the node stopped while starting:\n{}", tail(node_log, 25));
        }
        let log = tail(node_log, 1);
        if log != last && !log.is_empty() {
            step::info(log.trim_start_matches("[node] "));
            last = log;
        }
        if Instant::now() > deadline {
            bail!(
                "the node did not start in 10 minutes:\n{}",
                tail(node_log, 25)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// Stops the node by its recorded PIDs and waits until nothing of it is left.
#[allow(clippy::disallowed_methods)] // A poll with a deadline in a synchronous command.
pub(crate) fn stop(record: &NodeRecord) -> anyhow::Result<()> {
    let policy = StopPolicy {
        signal: Signal::SIGTERM,
        grace: Duration::from_secs(90),
    };
    stop_recorded(record.init_pid, &record.init_exe, policy)?;
    let _ = stop_recorded(record.unshare_pid, Path::new("/usr/bin/unshare"), policy);
    // When the init is gone the kernel kills the rest of the namespace; wait for that.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = processes_in(&record.pid_namespace);
        let link = link_exists(HOST_LINK);
        if left.is_empty() && !link {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node's processes {left:?} (or {HOST_LINK}: {link}) outlived it");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    remove_cgroups()?;
    for dir in &record.created_dirs {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// PIDs whose PID namespace is `namespace`.
pub(crate) fn processes_in(namespace: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|ns| ns.display().to_string() == namespace)
        })
        .collect()
}

pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Every cgroup v1 hierarchy mounted under /sys/fs/cgroup (and the cgroup2 one, if any).
pub(crate) fn cgroup_hierarchies() -> anyhow::Result<Vec<PathBuf>> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    Ok(mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "cgroup" || kind == "cgroup2").then(|| PathBuf::from(dir))
        })
        .collect())
}

/// Removes the kubelet's cgroup tree (empty once the node's processes are gone), deepest first.
fn remove_cgroups() -> anyhow::Result<()> {
    for hierarchy in cgroup_hierarchies()? {
        let root = hierarchy.join(CGROUP_ROOT);
        if root.exists() {
            remove_cgroup_tree(&root).with_context(|| format!("removing {}", root.display()))?;
        }
    }
    Ok(())
}

fn remove_cgroup_tree(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    // A cgroup directory holds only kernel files; rmdir removes it once it has no tasks.
    std::fs::remove_dir(dir)?;
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
